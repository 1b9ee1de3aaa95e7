/*-------------------------------------------------------------------------
 *
 * unsub_token.c
 *	  Signed one-click unsubscribe tokens.
 *
 * Payload layout (version 1):
 *
 *	0x01 F(workspace_id) F(list_id) F(email) F(message_id)
 *
 * where each field F is one of
 *
 *	h < 0x80					h raw bytes follow (0..127)
 *	0x80						16 bytes follow: a canonical lower-case UUID
 *								("8-4-4-4-12" hex), the common id shape,
 *								stored binary to keep URLs short
 *	0x81 hi lo					raw bytes of length hi*256+lo (128..1024)
 *
 * Nothing may follow the last field.  Field bytes must be valid UTF-8 with
 * no control characters, so parsed values are safe to hand to SQL as text.
 *
 * MAC choice: HMAC-SHA256 over "be-unsub:" || payload, truncated to its
 * first 16 bytes.  Truncated HMAC is a standard construction (RFC 2104
 * sec. 5); 128 bits leave an online forger a 2^-128 chance per attempt,
 * which no request rate can make meaningful, while saving 22 URL chars.
 * The "be-unsub:" prefix separates these MACs from anything else signed
 * with the same workspace secret: the same layout also carries the double
 * opt-in confirmation tokens ("be-confirm:") and the tracking tokens
 * ("be-track:", see tracking.c), so no token of one purpose is ever
 * accepted for another.  Verification recomputes
 * the MAC over the exact payload bytes received and compares in constant
 * time; any change to the payload, the MAC, its length or the version is
 * rejected.
 *
 *-------------------------------------------------------------------------
 */
#include "unsub_token.h"

#include <string.h>

#include "sha256.h"

#define UNSUB_NFIELDS		4
#define UNSUB_TAG_UUID		0x80
#define UNSUB_TAG_LONG		0x81

static const char b64url_alphabet[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* alphabet value of c, or -1 */
static inline int
b64url_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

bool
unsub_b64url_encode(const uint8_t *in, size_t len, BeBuf *out)
{
	size_t		olen = (len / 3) * 4 + (len % 3 ? len % 3 + 1 : 0);
	char	   *o;
	size_t		i;

	if (!be_buf_reserve(out, olen))
		return false;
	o = out->data + out->len;
	for (i = 0; i + 3 <= len; i += 3)
	{
		uint32_t	v = ((uint32_t) in[i] << 16) | ((uint32_t) in[i + 1] << 8) | in[i + 2];

		*o++ = b64url_alphabet[(v >> 18) & 63];
		*o++ = b64url_alphabet[(v >> 12) & 63];
		*o++ = b64url_alphabet[(v >> 6) & 63];
		*o++ = b64url_alphabet[v & 63];
	}
	if (len - i == 1)
	{
		uint32_t	v = (uint32_t) in[i] << 16;

		*o++ = b64url_alphabet[(v >> 18) & 63];
		*o++ = b64url_alphabet[(v >> 12) & 63];
	}
	else if (len - i == 2)
	{
		uint32_t	v = ((uint32_t) in[i] << 16) | ((uint32_t) in[i + 1] << 8);

		*o++ = b64url_alphabet[(v >> 18) & 63];
		*o++ = b64url_alphabet[(v >> 12) & 63];
		*o++ = b64url_alphabet[(v >> 6) & 63];
	}
	out->len += olen;
	out->data[out->len] = '\0';
	return true;
}

long
unsub_b64url_decode(const char *in, size_t len, uint8_t *out, size_t outcap)
{
	size_t		need;
	size_t		i;
	size_t		n = 0;
	uint32_t	acc = 0;
	int			bits = 0;

	if (len % 4 == 1)
		return -1;
	need = (len / 4) * 3 + (len % 4 ? len % 4 - 1 : 0);
	if (need > outcap || need > (size_t) 0x7fffffff)
		return -1;
	for (i = 0; i < len; i++)
	{
		int			v = b64url_val((unsigned char) in[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t) v;
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			out[n++] = (uint8_t) (acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* leftover bits must be zero, or two strings would decode alike */
	if (acc != 0)
		return -1;
	return (long) n;
}

/* Valid UTF-8 (no overlongs, surrogates or > U+10FFFF), no C0 or DEL. */
static bool
unsub_field_ok(const uint8_t *s, size_t len)
{
	size_t		i = 0;

	while (i < len)
	{
		uint8_t		c = s[i];

		if (c < 0x80)
		{
			if (c < 0x20 || c == 0x7f)
				return false;
			i++;
		}
		else if (c >= 0xc2 && c <= 0xdf)
		{
			if (i + 1 >= len || (s[i + 1] & 0xc0) != 0x80)
				return false;
			i += 2;
		}
		else if (c >= 0xe0 && c <= 0xef)
		{
			if (i + 2 >= len || (s[i + 1] & 0xc0) != 0x80 ||
				(s[i + 2] & 0xc0) != 0x80)
				return false;
			if (c == 0xe0 && s[i + 1] < 0xa0)
				return false;
			if (c == 0xed && s[i + 1] >= 0xa0)
				return false;
			i += 3;
		}
		else if (c >= 0xf0 && c <= 0xf4)
		{
			if (i + 3 >= len || (s[i + 1] & 0xc0) != 0x80 ||
				(s[i + 2] & 0xc0) != 0x80 || (s[i + 3] & 0xc0) != 0x80)
				return false;
			if (c == 0xf0 && s[i + 1] < 0x90)
				return false;
			if (c == 0xf4 && s[i + 1] >= 0x90)
				return false;
			i += 4;
		}
		else
			return false;
	}
	return true;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Canonical lower-case UUID text?  Then store its 16 bytes in bin. */
static bool
uuid_pack(const char *s, size_t len, uint8_t bin[16])
{
	size_t		i;
	int			n = 0;

	if (len != 36)
		return false;
	for (i = 0; i < 36; i++)
	{
		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (s[i] != '-')
				return false;
			continue;
		}
		if (hexval(s[i]) < 0)
			return false;
	}
	for (i = 0; i < 36; i++)
	{
		if (s[i] == '-')
			continue;
		if (n % 2 == 0)
			bin[n / 2] = (uint8_t) (hexval(s[i]) << 4);
		else
			bin[n / 2] |= (uint8_t) hexval(s[i]);
		n++;
	}
	return true;
}

static void
uuid_unpack(const uint8_t bin[16], char *out)
{
	static const char hx[] = "0123456789abcdef";
	int			i;
	char	   *o = out;

	for (i = 0; i < 16; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*o++ = '-';
		*o++ = hx[bin[i] >> 4];
		*o++ = hx[bin[i] & 15];
	}
	*o = '\0';
}

static bool
put_field(BeBuf *p, const char *s)
{
	size_t		len = s ? strlen(s) : 0;
	uint8_t		bin[16];
	uint8_t		hdr[3];

	if (uuid_pack(s, len, bin))
	{
		hdr[0] = UNSUB_TAG_UUID;
		return be_buf_append(p, (char *) hdr, 1) &&
			be_buf_append(p, (char *) bin, 16);
	}
	if (len < 0x80)
	{
		hdr[0] = (uint8_t) len;
		return be_buf_append(p, (char *) hdr, 1) &&
			be_buf_append(p, s ? s : "", len);
	}
	hdr[0] = UNSUB_TAG_LONG;
	hdr[1] = (uint8_t) (len >> 8);
	hdr[2] = (uint8_t) len;
	return be_buf_append(p, (char *) hdr, 3) && be_buf_append(p, s, len);
}

static void
compute_mac(const char *context, const uint8_t *secret, size_t secret_len,
			const uint8_t *payload, size_t payload_len,
			uint8_t mac[UNSUB_MAC_LEN])
{
	HmacSha256Ctx ctx;
	uint8_t		full[SHA256_DIGEST_LEN];

	hmac_sha256_init(&ctx, secret, secret_len);
	hmac_sha256_update(&ctx, context, strlen(context));
	hmac_sha256_update(&ctx, payload, payload_len);
	hmac_sha256_final(&ctx, full);
	memcpy(mac, full, UNSUB_MAC_LEN);
	memset(full, 0, sizeof(full));
}

int
unsub_token_make(const uint8_t *secret, size_t secret_len,
				 const char *workspace_id, const char *list_id,
				 const char *email, const char *message_id,
				 BeBuf *out)
{
	return be_token_make(UNSUB_MAC_CONTEXT, secret, secret_len, workspace_id, list_id,
						 email, message_id, out);
}

int
be_token_make(const char *context, const uint8_t *secret, size_t secret_len,
			  const char *workspace_id, const char *list_id,
			  const char *email, const char *message_id,
			  BeBuf *out)
{
	const char *fields[UNSUB_NFIELDS];
	BeBuf		payload;
	uint8_t		mac[UNSUB_MAC_LEN];
	uint8_t		ver = UNSUB_TOKEN_VERSION;
	int			i;
	int			rc = UNSUB_OK;

	if (secret == NULL || secret_len == 0 ||
		workspace_id == NULL || workspace_id[0] == '\0' ||
		email == NULL || email[0] == '\0')
		return UNSUB_EINVAL;
	fields[0] = workspace_id;
	fields[1] = list_id ? list_id : "";
	fields[2] = email;
	fields[3] = message_id ? message_id : "";
	for (i = 0; i < UNSUB_NFIELDS; i++)
	{
		size_t		l = strlen(fields[i]);

		if (l > UNSUB_FIELD_MAX || !unsub_field_ok((const uint8_t *) fields[i], l))
			return UNSUB_EINVAL;
	}

	be_buf_init(&payload);
	be_buf_append(&payload, (char *) &ver, 1);
	for (i = 0; i < UNSUB_NFIELDS; i++)
		put_field(&payload, fields[i]);
	if (payload.oom)
	{
		be_buf_free(&payload);
		return UNSUB_ENOMEM;
	}
	compute_mac(context, secret, secret_len, (uint8_t *) payload.data, payload.len, mac);
	if (!unsub_b64url_encode((uint8_t *) payload.data, payload.len, out) ||
		!be_buf_putc(out, '.') ||
		!unsub_b64url_encode(mac, UNSUB_MAC_LEN, out))
		rc = UNSUB_ENOMEM;
	be_buf_free(&payload);
	return rc;
}

void
unsub_token_free(UnsubToken *tok)
{
	if (tok == NULL)
		return;
	free(tok->storage);
	memset(tok, 0, sizeof(*tok));
}

/*
 * Layout of the single allocation: payload bytes, then the four fields as
 * NUL-terminated strings.  A UUID field expands from 16 to 36 bytes, raw
 * ones keep their size, so payload_len * 3 + 4 bounds the strings.
 */
int
unsub_token_parse(const char *token, size_t len, UnsubToken *tok)
{
	const char *dot;
	size_t		plen_b64;
	size_t		cap;
	uint8_t    *store;
	long		plen;
	long		mlen;
	uint8_t		macbuf[UNSUB_MAC_LEN + 3];
	char	   *strs;
	char	   *fieldp[UNSUB_NFIELDS];
	size_t		pos;
	int			i;

	memset(tok, 0, sizeof(*tok));
	if (token == NULL || len == 0 || len > UNSUB_TOKEN_MAX)
		return UNSUB_EINVAL;
	dot = memchr(token, '.', len);
	if (dot == NULL)
		return UNSUB_EINVAL;
	plen_b64 = (size_t) (dot - token);
	if (plen_b64 == 0)
		return UNSUB_EINVAL;

	/* MAC part: must decode to exactly UNSUB_MAC_LEN bytes */
	mlen = unsub_b64url_decode(dot + 1, len - plen_b64 - 1, macbuf, sizeof(macbuf));
	if (mlen != UNSUB_MAC_LEN)
		return UNSUB_EINVAL;

	cap = plen_b64 * 3 / 4 + 1;
	store = malloc(cap + cap * 3 + UNSUB_NFIELDS + 64);
	if (store == NULL)
		return UNSUB_ENOMEM;
	plen = unsub_b64url_decode(token, plen_b64, store, cap);
	if (plen < 1)
		goto bad;
	if (store[0] != UNSUB_TOKEN_VERSION)
	{
		free(store);
		return UNSUB_EVERSION;
	}

	strs = (char *) store + plen;
	pos = 1;
	for (i = 0; i < UNSUB_NFIELDS; i++)
	{
		uint8_t		h;
		size_t		flen;

		if (pos >= (size_t) plen)
			goto bad;
		h = store[pos++];
		fieldp[i] = strs;
		if (h == UNSUB_TAG_UUID)
		{
			if ((size_t) plen - pos < 16)
				goto bad;
			uuid_unpack(store + pos, strs);
			pos += 16;
			strs += 37;
			continue;
		}
		if (h < 0x80)
			flen = h;
		else if (h == UNSUB_TAG_LONG)
		{
			if ((size_t) plen - pos < 2)
				goto bad;
			flen = ((size_t) store[pos] << 8) | store[pos + 1];
			pos += 2;
			if (flen < 0x80 || flen > UNSUB_FIELD_MAX)
				goto bad;
		}
		else
			goto bad;
		if ((size_t) plen - pos < flen)
			goto bad;
		if (!unsub_field_ok(store + pos, flen))
			goto bad;
		memcpy(strs, store + pos, flen);
		strs[flen] = '\0';
		pos += flen;
		strs += flen + 1;
	}
	if (pos != (size_t) plen)
		goto bad;				/* trailing bytes */
	if (fieldp[0][0] == '\0' || fieldp[2][0] == '\0')
		goto bad;				/* make() never produces these */

	tok->version = store[0];
	tok->workspace_id = fieldp[0];
	tok->list_id = fieldp[1];
	tok->email = fieldp[2];
	tok->message_id = fieldp[3];
	tok->payload = store;
	tok->payload_len = (size_t) plen;
	memcpy(tok->mac, macbuf, UNSUB_MAC_LEN);
	tok->storage = store;
	return UNSUB_OK;

bad:
	free(store);
	return UNSUB_EINVAL;
}

bool
unsub_token_verify_parsed(const UnsubToken *tok,
						  const uint8_t *secret, size_t secret_len)
{
	return be_token_verify_parsed(UNSUB_MAC_CONTEXT, tok, secret, secret_len);
}

bool
be_token_verify_parsed(const char *context, const UnsubToken *tok,
					   const uint8_t *secret, size_t secret_len)
{
	uint8_t		mac[UNSUB_MAC_LEN];
	bool		ok;

	if (tok == NULL || tok->payload == NULL || secret == NULL || secret_len == 0)
		return false;
	if (tok->version != UNSUB_TOKEN_VERSION)
		return false;
	compute_mac(context, secret, secret_len, tok->payload, tok->payload_len, mac);
	ok = sha256_ct_equal(mac, tok->mac, UNSUB_MAC_LEN);
	memset(mac, 0, sizeof(mac));
	return ok;
}

bool
unsub_token_verify(const char *token, size_t len,
				   const uint8_t *secret, size_t secret_len)
{
	return be_token_verify(UNSUB_MAC_CONTEXT, token, len, secret, secret_len);
}

bool
be_token_verify(const char *context, const char *token, size_t len,
				const uint8_t *secret, size_t secret_len)
{
	UnsubToken	tok;
	bool		ok;

	if (unsub_token_parse(token, len, &tok) != UNSUB_OK)
		return false;
	ok = be_token_verify_parsed(context, &tok, secret, secret_len);
	unsub_token_free(&tok);
	return ok;
}
