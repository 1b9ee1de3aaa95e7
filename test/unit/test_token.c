/*
 * test_token.c
 *	  SHA-256 / HMAC-SHA256 vectors and unsubscribe token tests.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sha256.h"
#include "unit.h"
#include "unsub_token.h"

static void
to_hex(const uint8_t *d, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";
	size_t		i;

	for (i = 0; i < n; i++)
	{
		out[2 * i] = hx[d[i] >> 4];
		out[2 * i + 1] = hx[d[i] & 15];
	}
	out[2 * n] = '\0';
}

static const char *
sha_hex(const void *data, size_t len)
{
	static char hex[65];
	uint8_t		d[32];

	sha256(data, len, d);
	to_hex(d, 32, hex);
	return hex;
}

static const char *
hmac_hex(const void *key, size_t klen, const void *msg, size_t mlen, size_t outlen)
{
	static char hex[65];
	uint8_t		d[32];

	hmac_sha256(key, klen, msg, mlen, d);
	to_hex(d, outlen, hex);
	return hex;
}

static void
test_sha256(void)
{
	char	   *million = malloc(1000000);
	const char *s448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	const char *s896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
		"hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
	Sha256Ctx	ctx;
	uint8_t		d1[32],
				d2[32];
	size_t		i;

	/* FIPS 180-4 / NIST CAVP examples */
	UNIT_STREQ(sha_hex("", 0),
			   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
			   "sha256 empty");
	UNIT_STREQ(sha_hex("abc", 3),
			   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
			   "sha256 abc");
	UNIT_STREQ(sha_hex(s448, strlen(s448)),
			   "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
			   "sha256 448-bit message");
	UNIT_STREQ(sha_hex(s896, strlen(s896)),
			   "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
			   "sha256 896-bit message");
	memset(million, 'a', 1000000);
	UNIT_STREQ(sha_hex(million, 1000000),
			   "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
			   "sha256 one million a");

	/* incremental in odd chunk sizes equals one-shot */
	sha256(million, 100003, d1);
	sha256_init(&ctx);
	for (i = 0; i < 100003;)
	{
		size_t		n = (i * 7 + 1) % 131;

		if (n > 100003 - i)
			n = 100003 - i;
		sha256_update(&ctx, million + i, n);
		i += n;
	}
	sha256_final(&ctx, d2);
	UNIT_CHECK(memcmp(d1, d2, 32) == 0, "sha256 incremental == one-shot");
	/* padding boundary lengths 55, 56, 63, 64 */
	UNIT_STREQ(sha_hex(million, 55),
			   "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318",
			   "sha256 55 bytes");
	UNIT_STREQ(sha_hex(million, 56),
			   "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a",
			   "sha256 56 bytes");
	UNIT_STREQ(sha_hex(million, 64),
			   "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb",
			   "sha256 64 bytes");
	free(million);
}

static void
test_hmac(void)
{
	uint8_t		k[131];
	uint8_t		m[50];
	size_t		i;
	const char *t7 = "This is a test using a larger than block-size key and a larger "
		"than block-size data. The key needs to be hashed before being used by "
		"the HMAC algorithm.";

	/* RFC 4231 test cases 1-7 */
	memset(k, 0x0b, 20);
	UNIT_STREQ(hmac_hex(k, 20, "Hi There", 8, 32),
			   "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
			   "hmac rfc4231 case 1");
	UNIT_STREQ(hmac_hex("Jefe", 4, "what do ya want for nothing?", 28, 32),
			   "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
			   "hmac rfc4231 case 2");
	memset(k, 0xaa, 20);
	memset(m, 0xdd, 50);
	UNIT_STREQ(hmac_hex(k, 20, m, 50, 32),
			   "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
			   "hmac rfc4231 case 3");
	for (i = 0; i < 25; i++)
		k[i] = (uint8_t) (i + 1);
	memset(m, 0xcd, 50);
	UNIT_STREQ(hmac_hex(k, 25, m, 50, 32),
			   "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
			   "hmac rfc4231 case 4");
	memset(k, 0x0c, 20);
	UNIT_STREQ(hmac_hex(k, 20, "Test With Truncation", 20, 16),
			   "a3b6167473100ee06e0c796c2955552b",
			   "hmac rfc4231 case 5 (truncated)");
	memset(k, 0xaa, 131);
	UNIT_STREQ(hmac_hex(k, 131, "Test Using Larger Than Block-Size Key - Hash Key First", 54, 32),
			   "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
			   "hmac rfc4231 case 6");
	UNIT_STREQ(hmac_hex(k, 131, t7, strlen(t7), 32),
			   "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
			   "hmac rfc4231 case 7");

	UNIT_CHECK(sha256_ct_equal("abcd", "abcd", 4), "ct_equal equal");
	UNIT_CHECK(!sha256_ct_equal("abcd", "abce", 4), "ct_equal differs in last byte");
	UNIT_CHECK(!sha256_ct_equal("xbcd", "abcd", 4), "ct_equal differs in first byte");
	UNIT_CHECK(sha256_ct_equal("", "", 0), "ct_equal empty");
}

static void
test_b64url(void)
{
	uint8_t		in[64];
	uint8_t		dec[64];
	BeBuf		b;
	size_t		n;
	int			allok = 1;

	be_buf_init(&b);
	for (n = 0; n < 64; n++)
		in[n] = (uint8_t) (n * 37 + 250);
	for (n = 0; n <= 40; n++)
	{
		long		r;

		be_buf_reset(&b);
		unsub_b64url_encode(in, n, &b);
		r = unsub_b64url_decode(b.data ? b.data : "", b.len, dec, sizeof(dec));
		if (r != (long) n || memcmp(in, dec, n) != 0 ||
			(b.data && (strchr(b.data, '=') || strchr(b.data, '+') || strchr(b.data, '/'))))
			allok = 0;
	}
	UNIT_CHECK(allok, "b64url round trips 0..40 bytes, no padding, url alphabet");

	be_buf_reset(&b);
	unsub_b64url_encode((const uint8_t *) "\xfb\xff\xbf", 3, &b);
	UNIT_STREQ(b.data, "-_-_", "b64url uses - and _");
	UNIT_CHECK(unsub_b64url_decode("Zm9v", 4, dec, 64) == 3 && memcmp(dec, "foo", 3) == 0,
			   "b64url decode foo");
	UNIT_CHECK(unsub_b64url_decode("Zg", 2, dec, 64) == 1, "b64url decode unpadded 1 byte");
	UNIT_CHECK(unsub_b64url_decode("Zg==", 4, dec, 64) == -1, "b64url rejects padding");
	UNIT_CHECK(unsub_b64url_decode("Zh", 2, dec, 64) == -1, "b64url rejects non-zero trailing bits");
	UNIT_CHECK(unsub_b64url_decode("Z", 1, dec, 64) == -1, "b64url rejects length 1 mod 4");
	UNIT_CHECK(unsub_b64url_decode("Zm+v", 4, dec, 64) == -1, "b64url rejects +");
	UNIT_CHECK(unsub_b64url_decode("Zm/v", 4, dec, 64) == -1, "b64url rejects /");
	UNIT_CHECK(unsub_b64url_decode("Zm 9v", 5, dec, 64) == -1, "b64url rejects space");
	UNIT_CHECK(unsub_b64url_decode("Zm9vYmFy", 8, dec, 5) == -1, "b64url respects outcap");
	be_buf_free(&b);
}

static const uint8_t secret[] = "0123456789abcdef0123456789abcdef";
#define SECLEN 32

static char *
make(const char *ws, const char *list, const char *email, const char *mid, int *rc)
{
	BeBuf		b;

	be_buf_init(&b);
	*rc = unsub_token_make(secret, SECLEN, ws, list, email, mid, &b);
	if (*rc != UNSUB_OK)
	{
		be_buf_free(&b);
		return NULL;
	}
	return b.data;
}

static bool
verify(const char *tok)
{
	return unsub_token_verify(tok, strlen(tok), secret, SECLEN);
}

/* Re-sign a payload with the real secret (to test version handling). */
static char *
sign_payload(const uint8_t *payload, size_t len)
{
	BeBuf		b;
	HmacSha256Ctx h;
	uint8_t		mac[32];

	hmac_sha256_init(&h, secret, SECLEN);
	hmac_sha256_update(&h, "be-unsub:", 9);
	hmac_sha256_update(&h, payload, len);
	hmac_sha256_final(&h, mac);
	be_buf_init(&b);
	unsub_b64url_encode(payload, len, &b);
	be_buf_putc(&b, '.');
	unsub_b64url_encode(mac, 16, &b);
	return b.data;
}

static void
test_tokens(void)
{
	const char *ws = "6f1c2d3e-4a5b-4c6d-8e7f-901234567890";
	const char *list = "0b9e8d7c-6b5a-4948-8726-354433221100";
	const char *mid = "0f8fad5b-d9cb-469f-a165-70867728950e";
	int			rc;
	char	   *t = make(ws, list, "alice@example.org", mid, &rc);
	UnsubToken	tok;
	size_t		len,
				i;
	int			allbad;
	char		name[128];

	UNIT_CHECK(t != NULL && rc == UNSUB_OK, "make token");
	if (t == NULL)
		return;
	len = strlen(t);
	snprintf(name, sizeof(name), "token with uuids is short (%zu chars)", len);
	UNIT_CHECK(len < 130, name);
	UNIT_CHECK(strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") == len,
			   "token is URL-safe");
	UNIT_CHECK(verify(t), "token verifies");
	UNIT_CHECK(unsub_token_parse(t, len, &tok) == UNSUB_OK, "token parses");
	UNIT_STREQ(tok.workspace_id, ws, "parsed workspace_id");
	UNIT_STREQ(tok.list_id, list, "parsed list_id");
	UNIT_STREQ(tok.email, "alice@example.org", "parsed email");
	UNIT_STREQ(tok.message_id, mid, "parsed message_id");
	UNIT_CHECK(tok.version == 1, "parsed version");
	UNIT_CHECK(unsub_token_verify_parsed(&tok, secret, SECLEN), "verify_parsed");
	UNIT_CHECK(!unsub_token_verify_parsed(&tok, (const uint8_t *) "other", 5),
			   "verify_parsed wrong secret");
	unsub_token_free(&tok);

	UNIT_CHECK(!unsub_token_verify(t, len, (const uint8_t *) "0123456789abcdef0123456789abcdeF", SECLEN),
			   "wrong secret (one bit) rejected");
	UNIT_CHECK(!unsub_token_verify(t, len, secret, SECLEN - 1), "shorter secret rejected");
	UNIT_CHECK(!unsub_token_verify(t, len, secret, 0), "empty secret rejected");

	/* every single-character substitution is rejected */
	allbad = 1;
	for (i = 0; i < len; i++)
	{
		char	   *c = strdup(t);
		const char *alts = "AQgw_-.";
		size_t		k;

		for (k = 0; alts[k]; k++)
		{
			if (alts[k] == t[i])
				continue;
			c[i] = alts[k];
			if (verify(c))
			{
				allbad = 0;
				printf("#   accepted tampered token %s\n", c);
			}
		}
		free(c);
	}
	UNIT_CHECK(allbad, "every tampered character rejected");

	allbad = 1;
	for (i = 0; i < len; i++)
	{
		if (unsub_token_verify(t, i, secret, SECLEN))
			allbad = 0;
	}
	UNIT_CHECK(allbad, "every truncation rejected");

	{
		const char *ext[] = {"A", "AA", "AAA", "AAAA", ".", ".x", "=", "==", " ", "\n", NULL};
		BeBuf		b;

		allbad = 1;
		be_buf_init(&b);
		for (i = 0; ext[i]; i++)
		{
			be_buf_reset(&b);
			be_buf_puts(&b, t);
			be_buf_puts(&b, ext[i]);
			if (verify(b.data))
				allbad = 0;
			/* and prepended */
			be_buf_reset(&b);
			be_buf_puts(&b, ext[i]);
			be_buf_puts(&b, t);
			if (verify(b.data))
				allbad = 0;
		}
		/* extend the payload, keep the MAC */
		{
			const char *dot = strchr(t, '.');

			be_buf_reset(&b);
			be_buf_append(&b, t, (size_t) (dot - t));
			be_buf_puts(&b, "AAAA");
			be_buf_puts(&b, dot);
			if (verify(b.data))
				allbad = 0;
			UNIT_CHECK(unsub_token_parse(b.data, b.len, &tok) != UNSUB_OK,
					   "payload with trailing bytes does not parse");
		}
		be_buf_free(&b);
		UNIT_CHECK(allbad, "extended tokens rejected");
	}

	/* swap MACs between two tokens */
	{
		char	   *t2 = make(ws, list, "bob@example.org", mid, &rc);
		BeBuf		b;

		be_buf_init(&b);
		be_buf_append(&b, t, (size_t) (strchr(t, '.') - t));
		be_buf_puts(&b, strchr(t2, '.'));
		UNIT_CHECK(verify(t2) && !verify(b.data), "MAC of another token rejected");
		be_buf_free(&b);
		free(t2);
	}

	/* wrong version, correctly signed: parse says EVERSION, verify false */
	{
		uint8_t		payload[512];
		const char *dot = strchr(t, '.');
		long		pl = unsub_b64url_decode(t, (size_t) (dot - t), payload, sizeof(payload));
		char	   *t2;

		UNIT_CHECK(pl > 0 && payload[0] == 1, "payload starts with version 1");
		payload[0] = 2;
		t2 = sign_payload(payload, (size_t) pl);
		UNIT_CHECK(unsub_token_parse(t2, strlen(t2), &tok) == UNSUB_EVERSION,
				   "version 2 token: UNSUB_EVERSION");
		UNIT_CHECK(!verify(t2), "version 2 token does not verify");
		free(t2);
		payload[0] = 1;
		t2 = sign_payload(payload, (size_t) pl);
		UNIT_CHECK(verify(t2), "re-signing the same payload verifies (sanity)");
		free(t2);

		/* signed but malformed payloads still fail to parse */
		t2 = sign_payload(payload, (size_t) pl - 1);
		UNIT_CHECK(!verify(t2), "signed truncated payload rejected");
		free(t2);
		payload[1] = 0x82;
		t2 = sign_payload(payload, (size_t) pl);
		UNIT_CHECK(!verify(t2), "signed payload with unknown field tag rejected");
		free(t2);
		t2 = sign_payload((const uint8_t *) "\x01\x01\x01\x00\x05\x61\x00\x62\x40\x63\x00", 11);
		UNIT_CHECK(!verify(t2), "signed payload with NUL in a field rejected");
		free(t2);
		t2 = sign_payload((const uint8_t *) "\x01\x01w\x00\x03\x61\x0a\x62\x00", 9);
		UNIT_CHECK(!verify(t2), "signed payload with LF in a field rejected");
		free(t2);
		t2 = sign_payload((const uint8_t *) "\x01\x01w\x00\x02\xc3\x28\x00", 8);
		UNIT_CHECK(!verify(t2), "signed payload with invalid UTF-8 rejected");
		free(t2);
		t2 = sign_payload((const uint8_t *) "\x01\x01w\x00\x01\x61\x00", 7);
		UNIT_CHECK(verify(t2), "minimal signed payload verifies (sanity)");
		free(t2);
	}
	free(t);

	/* other shapes */
	t = make("ws-1", "", "Zo\xc3\xab+tag@example.org", "", &rc);
	UNIT_CHECK(t && verify(t), "global (empty list) token, non-ASCII email");
	if (t && unsub_token_parse(t, strlen(t), &tok) == UNSUB_OK)
	{
		UNIT_STREQ(tok.list_id, "", "empty list_id round trips");
		UNIT_STREQ(tok.email, "Zo\xc3\xab+tag@example.org", "utf-8 email round trips");
		UNIT_STREQ(tok.message_id, "", "empty message_id round trips");
		unsub_token_free(&tok);
	}
	free(t);
	t = make("6F1C2D3E-4A5B-4C6D-8E7F-901234567890", NULL, "a@b.c", NULL, &rc);
	if (t && unsub_token_parse(t, strlen(t), &tok) == UNSUB_OK)
	{
		UNIT_STREQ(tok.workspace_id, "6F1C2D3E-4A5B-4C6D-8E7F-901234567890",
				   "upper-case uuid kept verbatim");
		unsub_token_free(&tok);
	}
	else
		UNIT_CHECK(0, "upper-case uuid token");
	free(t);
	{
		char		longf[1025];

		memset(longf, 'x', 1024);
		longf[1024] = '\0';
		t = make(longf, longf + 800, longf + 1, longf + 900, &rc);
		UNIT_CHECK(t && verify(t), "1024-byte fields round trip");
		if (t && unsub_token_parse(t, strlen(t), &tok) == UNSUB_OK)
		{
			UNIT_CHECK(strlen(tok.workspace_id) == 1024 && strlen(tok.list_id) == 224 &&
					   strlen(tok.email) == 1023 && strlen(tok.message_id) == 124,
					   "long field lengths");
			unsub_token_free(&tok);
		}
		free(t);
		longf[0] = '\0';
		memset(longf, 'y', 1024);
		{
			char		toolong[1026];

			memset(toolong, 'z', 1025);
			toolong[1025] = '\0';
			t = make(toolong, "", "a@b.c", "", &rc);
			UNIT_CHECK(t == NULL && rc == UNSUB_EINVAL, "1025-byte field rejected");
		}
	}

	/* make rejects bad input */
	UNIT_CHECK(make("", "", "a@b.c", "", &rc) == NULL && rc == UNSUB_EINVAL, "empty workspace rejected");
	UNIT_CHECK(make("w", "", "", "", &rc) == NULL && rc == UNSUB_EINVAL, "empty email rejected");
	UNIT_CHECK(make(NULL, "", "a@b.c", "", &rc) == NULL && rc == UNSUB_EINVAL, "NULL workspace rejected");
	UNIT_CHECK(make("w", "l\r\n", "a@b.c", "", &rc) == NULL && rc == UNSUB_EINVAL, "CRLF in field rejected");
	UNIT_CHECK(make("w", "", "a@b.c\x01", "", &rc) == NULL && rc == UNSUB_EINVAL, "control char rejected");
	UNIT_CHECK(make("w", "", "a@b.c\xff", "", &rc) == NULL && rc == UNSUB_EINVAL, "invalid utf-8 rejected");
	{
		BeBuf		b;

		be_buf_init(&b);
		UNIT_CHECK(unsub_token_make(secret, 0, "w", "", "a@b.c", "", &b) == UNSUB_EINVAL,
				   "empty secret rejected by make");
		be_buf_free(&b);
	}

	/* garbage */
	{
		const char *bad[] = {"", ".", "..", "AQ", "AQ.", ".AAAAAAAAAAAAAAAAAAAAAA",
			"AQ.AAAAAAAAAAAAAAAAAAAAAA", "AQAA.AAAAAAAAAAAAAAAAAAAAAA",
			"!!!!.AAAAAAAAAAAAAAAAAAAAAA", "AQ==.AAAAAAAAAAAAAAAAAAAAAA", NULL};

		allbad = 1;
		for (i = 0; bad[i]; i++)
		{
			if (unsub_token_parse(bad[i], strlen(bad[i]), &tok) == UNSUB_OK)
			{
				allbad = 0;
				printf("#   parsed: %s\n", bad[i]);
				unsub_token_free(&tok);
			}
			if (verify(bad[i]))
				allbad = 0;
		}
		UNIT_CHECK(allbad, "garbage tokens rejected");
		UNIT_CHECK(unsub_token_parse(NULL, 0, &tok) == UNSUB_EINVAL, "NULL token rejected");
	}
}

int
main(void)
{
	test_sha256();
	test_hmac();
	test_b64url();
	test_tokens();
	UNIT_DONE();
}
