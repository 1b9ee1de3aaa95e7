/*-------------------------------------------------------------------------
 *
 * bounce.c
 *	  VERP tokens, and reading returned mail (see bounce.h).
 *
 * The parser works on a copy of the message with every line end made LF
 * and NUL bytes made spaces, so that the copy is one C string.  It walks
 * the MIME tree (at most BOUNCE_MAX_DEPTH levels, base64 parts decoded)
 * and reads:
 *	- message/delivery-status parts (RFC 3464): one recipient per block;
 *	- message/feedback-report parts (RFC 5965): a complaint;
 *	- message/rfc822 and text/rfc822-headers parts: the returned message's
 *	  Message-ID and Return-Path;
 *	- failing both, the first text part of a message that looks like a
 *	  bounce (a daemon's From, a bounce subject, X-Failed-Recipients): the
 *	  first address and SMTP code before the copy of the returned message.
 * Everything copied out is truncated to its field's size: any input gives
 * a report or BOUNCE_EINVAL, never a read outside the copy.
 *
 *-------------------------------------------------------------------------
 */
#include "bounce.h"

#include <ctype.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include "sha256.h"

#define BOUNCE_MAX_DEPTH	6
#define BOUNCE_MAX_DECODED	16

static const char b32_alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

typedef struct Ctx
{
	BounceReport *r;
	const char *text;			/* first text/plain part: for text bounces */
	const char *text_end;
	char	   *decoded[BOUNCE_MAX_DECODED];
	int			ndecoded;
	bool		oom;
} Ctx;

/* ------------------------------------------------------------------------
 * VERP tokens
 * ------------------------------------------------------------------------ */

static void
verp_mac(const uint8_t *secret, size_t secret_len, const char *workspace_id,
		 const uint8_t message_id[16], uint8_t mac[BOUNCE_MAC_LEN])
{
	HmacSha256Ctx h;
	uint8_t		full[SHA256_DIGEST_LEN];
	static const char context[] = "be-verp:";

	hmac_sha256_init(&h, secret, secret_len);
	hmac_sha256_update(&h, context, sizeof(context) - 1);
	/* the NUL ends the workspace id: no two (workspace, message) pairs share an input */
	hmac_sha256_update(&h, workspace_id, strlen(workspace_id) + 1);
	hmac_sha256_update(&h, message_id, 16);
	hmac_sha256_final(&h, full);
	memcpy(mac, full, BOUNCE_MAC_LEN);
}

void
bounce_verp_token(const uint8_t *secret, size_t secret_len, const char *workspace_id,
				  const uint8_t message_id[16], char out[BOUNCE_TOKEN_LEN + 1])
{
	uint8_t		raw[16 + BOUNCE_MAC_LEN];
	uint32_t	acc = 0;
	int			bits = 0;
	int			n = 0;
	size_t		i;

	memcpy(raw, message_id, 16);
	verp_mac(secret, secret_len, workspace_id, message_id, raw + 16);
	for (i = 0; i < sizeof(raw); i++)
	{
		acc = (acc << 8) | raw[i];
		bits += 8;
		while (bits >= 5)
		{
			out[n++] = b32_alphabet[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0)
		out[n++] = b32_alphabet[(acc << (5 - bits)) & 31];
	out[n] = '\0';
}

static int
b32_value(char c)
{
	if (c >= 'a' && c <= 'z')
		return c - 'a';
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= '2' && c <= '7')
		return c - '2' + 26;
	return -1;
}

bool
bounce_verp_check(const uint8_t *secret, size_t secret_len, const char *workspace_id,
				  const char *token, size_t len, uint8_t message_id[16])
{
	uint8_t		raw[16 + BOUNCE_MAC_LEN];
	uint8_t		mac[BOUNCE_MAC_LEN];
	uint32_t	acc = 0;
	int			bits = 0;
	size_t		n = 0;
	size_t		i;
	uint8_t		diff = 0;

	if (token == NULL || len != BOUNCE_TOKEN_LEN || secret_len == 0)
		return false;
	for (i = 0; i < len; i++)
	{
		int			v = b32_value(token[i]);

		if (v < 0)
			return false;
		acc = (acc << 5) | (uint32_t) v;
		bits += 5;
		if (bits >= 8)
		{
			raw[n++] = (acc >> (bits - 8)) & 0xff;
			bits -= 8;
		}
	}
	/* 42 characters carry 210 bits: the last two must be zero */
	if (n != sizeof(raw) || (acc & ((1u << bits) - 1)) != 0)
		return false;
	verp_mac(secret, secret_len, workspace_id, raw, mac);
	for (i = 0; i < BOUNCE_MAC_LEN; i++)
		diff |= mac[i] ^ raw[16 + i];
	if (diff != 0)
		return false;
	memcpy(message_id, raw, 16);
	return true;
}

bool
bounce_uuid_parse(const char *s, uint8_t out[16])
{
	int			n = 0;
	int			i;

	if (s == NULL || strlen(s) != 36)
		return false;
	for (i = 0; i < 36; i += 2)
	{
		int			hi,
					lo;

		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (s[i] != '-')
				return false;
			i--;				/* the loop's += 2 steps over the dash */
			continue;
		}
		if (!isxdigit((unsigned char) s[i]) || !isxdigit((unsigned char) s[i + 1]))
			return false;
		hi = isdigit((unsigned char) s[i]) ? s[i] - '0' : (tolower((unsigned char) s[i]) - 'a' + 10);
		lo = isdigit((unsigned char) s[i + 1]) ? s[i + 1] - '0' : (tolower((unsigned char) s[i + 1]) - 'a' + 10);
		out[n++] = (uint8_t) (hi << 4 | lo);
	}
	return n == 16;
}

/* ------------------------------------------------------------------------
 * Small text helpers (all bounded by an end pointer or a NUL)
 * ------------------------------------------------------------------------ */

static void
copy_trunc(char *dst, size_t cap, const char *src, size_t len)
{
	if (len >= cap)
		len = cap - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

static void
trim(char *s)
{
	size_t		len = strlen(s);
	size_t		start = 0;

	while (len > 0 && isspace((unsigned char) s[len - 1]))
		s[--len] = '\0';
	while (start < len && isspace((unsigned char) s[start]))
		start++;
	if (start > 0)
		memmove(s, s + start, len - start + 1);
}

static void
lower(char *s)
{
	for (; *s; s++)
		*s = tolower((unsigned char) *s);
}

/* a case-insensitive strstr within [p, end) */
static const char *
find_ci(const char *p, const char *end, const char *needle)
{
	size_t		nlen = strlen(needle);

	for (; p + nlen <= end; p++)
		if (strncasecmp(p, needle, nlen) == 0)
			return p;
	return NULL;
}

static const char *
line_end(const char *p, const char *end)
{
	const char *nl = memchr(p, '\n', end - p);

	return nl ? nl : end;
}

/* the start of the body: after the first empty line (or end when none) */
static const char *
header_end(const char *p, const char *end)
{
	if (p < end && *p == '\n')
		return p;
	while (p < end)
	{
		const char *le = line_end(p, end);

		if (le >= end)
			return end;
		if (le + 1 < end && le[1] == '\n')
			return le + 1;
		p = le + 1;
	}
	return end;
}

/*
 * The nth (from 0) header field called name in [h, hend), unfolded, into
 * out; false when there is none.
 */
static bool
get_header_nth(const char *h, const char *hend, const char *name, int nth,
			   char *out, size_t cap)
{
	size_t		nlen = strlen(name);
	const char *p = h;

	while (p < hend)
	{
		const char *le = line_end(p, hend);
		const char *v = p + nlen;

		if ((size_t) (le - p) > nlen && strncasecmp(p, name, nlen) == 0)
		{
			while (v < le && (*v == ' ' || *v == '\t'))
				v++;
			if (v < le && *v == ':' && nth-- == 0)
			{
				size_t		n = 0;

				v++;
				for (;;)
				{
					while (v < le && n + 1 < cap)
					{
						char		c = *v++;

						out[n++] = (c == '\t') ? ' ' : c;
					}
					/* folded continuation lines */
					if (le + 1 < hend && (le[1] == ' ' || le[1] == '\t'))
					{
						v = le + 1;
						le = line_end(v, hend);
						while (v < le && (*v == ' ' || *v == '\t'))
							v++;
						if (n + 1 < cap)
							out[n++] = ' ';
						continue;
					}
					break;
				}
				out[n] = '\0';
				trim(out);
				return true;
			}
		}
		p = le + 1;
	}
	return false;
}

static bool
get_header(const char *h, const char *hend, const char *name, char *out, size_t cap)
{
	return get_header_nth(h, hend, name, 0, out, cap);
}

/* "rfc822; <User@Example.com>" -> "user@example.com" */
static void
address_of(const char *value, char *out, size_t cap)
{
	const char *semi = strchr(value, ';');
	const char *p = semi ? semi + 1 : value;
	const char *lt;
	size_t		n;

	while (*p == ' ')
		p++;
	lt = strchr(p, '<');
	if (lt)
	{
		const char *gt = strchr(lt, '>');

		p = lt + 1;
		n = gt ? (size_t) (gt - p) : strlen(p);
	}
	else
		n = strcspn(p, " \t;,()");
	copy_trunc(out, cap, p, n);
	trim(out);
	lower(out);
	if (strchr(out, '@') == NULL)
		out[0] = '\0';
}

/* the first "<local@domain>" (or bare local@domain) in a header value */
static void
message_id_of(const char *value, char *out, size_t cap)
{
	const char *lt = strchr(value, '<');
	const char *gt = lt ? strchr(lt, '>') : NULL;

	if (lt && gt)
		copy_trunc(out, cap, lt + 1, gt - lt - 1);
	else
		copy_trunc(out, cap, value, strcspn(value, " \t"));
	trim(out);
}

/* every VERP token candidate ("+<42 base32 chars>@") in a header value */
static void
collect_tokens(BounceReport *r, const char *value)
{
	const char *p;

	for (p = strchr(value, '+'); p; p = strchr(p + 1, '+'))
	{
		const char *t = p + 1;
		size_t		n = 0;
		int			i;
		bool		dup = false;

		while (b32_value(t[n]) >= 0 && n <= BOUNCE_TOKEN_LEN)
			n++;
		if (n != BOUNCE_TOKEN_LEN || t[n] != '@' || r->ntokens >= BOUNCE_MAX_TOKENS)
			continue;
		for (i = 0; i < r->ntokens; i++)
			if (strncasecmp(r->tokens[i], t, n) == 0)
				dup = true;
		if (dup)
			continue;
		copy_trunc(r->tokens[r->ntokens], BOUNCE_TOKEN_LEN + 1, t, n);
		lower(r->tokens[r->ntokens]);
		r->ntokens++;
	}
}

static void
collect_header_tokens(BounceReport *r, const char *h, const char *hend, const char *name)
{
	char		v[1024];
	int			i;

	for (i = 0; i < 16 && get_header_nth(h, hend, name, i, v, sizeof(v)); i++)
		collect_tokens(r, v);
}

/* how many digits (at most 4 are looked at) start at q */
static int
digits_at(const char *q, const char *end)
{
	int			n = 0;

	while (q + n < end && n < 4 && isdigit((unsigned char) q[n]))
		n++;
	return n;
}

/* the first enhanced status code (RFC 3463) in [start, end), e.g. "5.1.1" */
static bool
find_enhanced(const char *start, const char *end, char *out, size_t cap)
{
	const char *p;

	for (p = start; p + 5 <= end; p++)
	{
		const char *q;
		int			n;

		if (!(*p == '2' || *p == '4' || *p == '5') || p[1] != '.')
			continue;
		/* not the tail of a longer number or of an address */
		if (p > start && (isalnum((unsigned char) p[-1]) || p[-1] == '.'))
			continue;
		q = p + 2;
		n = digits_at(q, end);
		if (n == 0 || n > 3 || q + n >= end || q[n] != '.')
			continue;
		q += n + 1;
		n = digits_at(q, end);
		if (n == 0 || n > 3)
			continue;
		q += n;
		/* not the head of an IP address (192.0.2.1) or a longer token */
		if (q < end && (isalnum((unsigned char) *q) ||
						(*q == '.' && q + 1 < end && isdigit((unsigned char) q[1]))))
			continue;
		copy_trunc(out, cap, p, q - p);
		return true;
	}
	return false;
}

/* the first basic SMTP reply code (4xx or 5xx) standing alone in [start, end) */
static bool
find_basic(const char *start, const char *end, char *out, size_t cap)
{
	const char *p;

	for (p = start; p + 3 <= end; p++)
	{
		if (!(*p == '4' || *p == '5') || !isdigit((unsigned char) p[1]) || !isdigit((unsigned char) p[2]))
			continue;
		if (p > start && p[-1] != ' ' && p[-1] != '\n' && p[-1] != ':' && p[-1] != '(' && p[-1] != '#')
			continue;
		if (p + 3 < end && p[3] != ' ' && p[3] != '-' && p[3] != '\n')
			continue;
		copy_trunc(out, cap, p, 3);
		return true;
	}
	return false;
}

/* the line around position p, trimmed, as a diagnostic */
static void
line_of(const char *start, const char *end, const char *p, char *out, size_t cap)
{
	const char *ls = p;

	while (ls > start && ls[-1] != '\n')
		ls--;
	copy_trunc(out, cap, ls, line_end(p, end) - ls);
	trim(out);
}

/* ------------------------------------------------------------------------
 * Classification
 * ------------------------------------------------------------------------ */

const char *
bounce_class_name(BounceClass c)
{
	switch (c)
	{
		case BOUNCE_CLASS_HARD:
			return "hard";
		case BOUNCE_CLASS_SOFT:
			return "soft";
		case BOUNCE_CLASS_COMPLAINT:
			return "complaint";
		default:
			return "none";
	}
}

const char *
bounce_kind_name(BounceKind k)
{
	switch (k)
	{
		case BOUNCE_KIND_DSN:
			return "dsn";
		case BOUNCE_KIND_ARF:
			return "arf";
		case BOUNCE_KIND_TEXT:
			return "text";
		default:
			return "none";
	}
}

/*
 * 5.x.x is permanent, but not every permanent failure means a bad address:
 * a full mailbox (5.2.2), a message too large for it (5.2.3, 5.3.4) or a
 * policy or reputation refusal (5.7.x) says nothing about the address, so
 * those count as soft (the soft-bounce threshold suppresses an address
 * that keeps failing).
 */
static BounceClass
class_of_enhanced(const char *code)
{
	if (code[0] == '2')
		return BOUNCE_CLASS_NONE;
	if (code[0] == '4')
		return BOUNCE_CLASS_SOFT;
	if (strcmp(code, "5.2.2") == 0 || strcmp(code, "5.2.3") == 0 || strcmp(code, "5.3.4") == 0 ||
		strncmp(code, "5.7.", 4) == 0)
		return BOUNCE_CLASS_SOFT;
	return BOUNCE_CLASS_HARD;
}

BounceClass
bounce_classify(const char *action, const char *status, const char *diagnostic)
{
	char		code[16];
	const char *dend = diagnostic ? diagnostic + strlen(diagnostic) : NULL;

	if (action && action[0] && strcasecmp(action, "failed") != 0)
		return BOUNCE_CLASS_NONE;	/* delayed, delivered, relayed, expanded */
	code[0] = '\0';
	if (status && status[0] && find_enhanced(status, status + strlen(status), code, sizeof(code)))
	{
		/* "5.0.0" says little: the server's own code may say more */
		if (strcmp(code + 1, ".0.0") == 0 && diagnostic)
		{
			char		d[16];

			if (find_enhanced(diagnostic, dend, d, sizeof(d)) && d[0] == code[0])
				strcpy(code, d);
		}
		return class_of_enhanced(code);
	}
	if (diagnostic && find_enhanced(diagnostic, dend, code, sizeof(code)))
		return class_of_enhanced(code);
	if (status && status[0] && find_basic(status, status + strlen(status), code, sizeof(code)))
		;
	else if (!(diagnostic && find_basic(diagnostic, dend, code, sizeof(code))))
		code[0] = '\0';
	if (code[0] == '4' || strcmp(code, "552") == 0)
		return BOUNCE_CLASS_SOFT;
	if (code[0] == '5')
		return BOUNCE_CLASS_HARD;
	return (action && strcasecmp(action, "failed") == 0) ? BOUNCE_CLASS_HARD : BOUNCE_CLASS_SOFT;
}

/* ------------------------------------------------------------------------
 * MIME walk
 * ------------------------------------------------------------------------ */

static BounceRcpt *
add_rcpt(BounceReport *r)
{
	BounceRcpt *rc;

	if (r->nrcpt >= BOUNCE_MAX_RCPT)
		return NULL;
	rc = &r->rcpt[r->nrcpt++];
	memset(rc, 0, sizeof(*rc));
	return rc;
}

/* RFC 3464: the per-message block, then one block per recipient */
static void
parse_dsn(Ctx *cx, const char *p, const char *end)
{
	BounceReport *r = cx->r;

	while (p < end)
	{
		const char *bend;
		const char *q = p;
		char		v[BOUNCE_TEXT_MAX];
		BounceRcpt *rc;

		/* a block ends at a line of nothing but white space */
		bend = end;
		while (q < end)
		{
			const char *le = line_end(q, end);
			const char *s = q;

			while (s < le && (*s == ' ' || *s == '\t'))
				s++;
			if (s == le)
			{
				bend = q;
				break;
			}
			q = le + 1;
		}
		if (bend > p && (get_header(p, bend, "Final-Recipient", v, sizeof(v)) ||
						 get_header(p, bend, "Action", v, sizeof(v))) &&
			(rc = add_rcpt(r)) != NULL)
		{
			if (get_header(p, bend, "Final-Recipient", v, sizeof(v)))
				address_of(v, rc->email, sizeof(rc->email));
			if (rc->email[0] == '\0' && get_header(p, bend, "Original-Recipient", v, sizeof(v)))
				address_of(v, rc->email, sizeof(rc->email));
			if (get_header(p, bend, "Action", v, sizeof(v)))
			{
				copy_trunc(rc->action, sizeof(rc->action), v, strcspn(v, " ;("));
				lower(rc->action);
			}
			if (get_header(p, bend, "Status", v, sizeof(v)))
				copy_trunc(rc->status, sizeof(rc->status), v, strcspn(v, " ;("));
			if (get_header(p, bend, "Diagnostic-Code", v, sizeof(v)))
			{
				const char *semi = strchr(v, ';');

				copy_trunc(rc->diagnostic, sizeof(rc->diagnostic), semi ? semi + 1 : v,
						   strlen(semi ? semi + 1 : v));
				trim(rc->diagnostic);
			}
			rc->cls = bounce_classify(rc->action, rc->status, rc->diagnostic);
			/* a message with both kinds of report is what came first */
			if (r->kind == BOUNCE_KIND_NONE)
				r->kind = BOUNCE_KIND_DSN;
		}
		p = (bend < end) ? line_end(bend, end) + 1 : end;
	}
}

/* RFC 5965: the feedback report's fields */
static void
parse_arf(Ctx *cx, const char *p, const char *end)
{
	BounceReport *r = cx->r;
	char		v[BOUNCE_TEXT_MAX];
	BounceRcpt *rc;

	if (r->kind == BOUNCE_KIND_NONE)
		r->kind = BOUNCE_KIND_ARF;
	if (get_header(p, end, "Feedback-Type", v, sizeof(v)))
	{
		copy_trunc(r->feedback_type, sizeof(r->feedback_type), v, strcspn(v, " ;"));
		lower(r->feedback_type);
	}
	collect_header_tokens(r, p, end, "Original-Mail-From");
	if ((rc = add_rcpt(r)) == NULL)
		return;
	if (get_header(p, end, "Original-Rcpt-To", v, sizeof(v)))
		address_of(v, rc->email, sizeof(rc->email));
	copy_trunc(rc->action, sizeof(rc->action), "complaint", 9);
	copy_trunc(rc->diagnostic, sizeof(rc->diagnostic), r->feedback_type, strlen(r->feedback_type));
	/* abuse, fraud, virus and other are complaints; not-spam and auth-failure reports are not */
	rc->cls = (r->feedback_type[0] == '\0' || strcmp(r->feedback_type, "abuse") == 0 ||
			   strcmp(r->feedback_type, "fraud") == 0 || strcmp(r->feedback_type, "virus") == 0 ||
			   strcmp(r->feedback_type, "other") == 0)
		? BOUNCE_CLASS_COMPLAINT : BOUNCE_CLASS_NONE;
}

/* the returned message (or its headers): our Message-ID, its Return-Path */
static void
parse_returned(Ctx *cx, const char *p, const char *end)
{
	BounceReport *r = cx->r;
	const char *hend;
	char		v[BOUNCE_TEXT_MAX];

	while (p < end && *p == '\n')
		p++;
	hend = header_end(p, end);
	if (r->message_id[0] == '\0' && get_header(p, hend, "Message-ID", v, sizeof(v)))
		message_id_of(v, r->message_id, sizeof(r->message_id));
	collect_header_tokens(r, p, hend, "Return-Path");
	/* an ARF report that names no recipient: the complained-about message's To */
	if (r->nrcpt > 0 && strcmp(r->rcpt[0].action, "complaint") == 0 && r->rcpt[0].email[0] == '\0' &&
		get_header(p, hend, "To", v, sizeof(v)) && strchr(v, ',') == NULL)
		address_of(v, r->rcpt[0].email, sizeof(r->rcpt[0].email));
}

static void
content_type(const char *value, char *type, size_t tcap, char *boundary, size_t bcap)
{
	const char *p = value;

	copy_trunc(type, tcap, value, strcspn(value, ";"));
	trim(type);
	lower(type);
	boundary[0] = '\0';
	while ((p = strchr(p, ';')) != NULL)
	{
		p++;
		while (*p == ' ')
			p++;
		if (strncasecmp(p, "boundary", 8) == 0)
		{
			const char *q = p + 8;

			while (*q == ' ')
				q++;
			if (*q != '=')
				continue;
			q++;
			while (*q == ' ')
				q++;
			if (*q == '"')
			{
				const char *e = strchr(q + 1, '"');

				copy_trunc(boundary, bcap, q + 1, e ? (size_t) (e - q - 1) : strlen(q + 1));
			}
			else
				copy_trunc(boundary, bcap, q, strcspn(q, " ;"));
		}
	}
}

static char *
base64_decode(const char *p, const char *end, size_t *outlen)
{
	char	   *out = malloc((end - p) / 4 * 3 + 4);
	uint32_t	acc = 0;
	int			bits = 0;
	size_t		n = 0;

	if (out == NULL)
		return NULL;
	for (; p < end; p++)
	{
		int			v;
		char		c = *p;

		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '+')
			v = 62;
		else if (c == '/')
			v = 63;
		else if (c == '=')
			break;
		else
			continue;
		acc = (acc << 6) | (uint32_t) v;
		bits += 6;
		if (bits >= 8)
		{
			out[n++] = (char) ((acc >> (bits - 8)) & 0xff);
			bits -= 8;
		}
	}
	out[n] = '\0';
	*outlen = n;
	return out;
}

static void
walk(Ctx *cx, const char *p, const char *end, int depth, const char *dflt)
{
	const char *hend = header_end(p, end);
	const char *body = hend < end && *hend == '\n' ? hend + 1 : hend;
	char		v[512];
	char		type[64];
	char		boundary[200];

	if (depth > BOUNCE_MAX_DEPTH)
		return;
	if (get_header(p, hend, "Content-Type", v, sizeof(v)))
		content_type(v, type, sizeof(type), boundary, sizeof(boundary));
	else
	{
		copy_trunc(type, sizeof(type), dflt, strlen(dflt));
		boundary[0] = '\0';
	}

	if (strncmp(type, "multipart/", 10) == 0)
	{
		size_t		blen = strlen(boundary);
		const char *q = body;
		const char *part = NULL;
		bool		digest = strcmp(type, "multipart/digest") == 0;

		if (blen == 0)
			return;
		while (q < end)
		{
			const char *le = line_end(q, end);

			if ((size_t) (le - q) >= blen + 2 && q[0] == '-' && q[1] == '-' &&
				strncmp(q + 2, boundary, blen) == 0)
			{
				bool		close = (size_t) (le - q) >= blen + 4 && q[blen + 2] == '-' && q[blen + 3] == '-';

				if (part)
					walk(cx, part, q > part ? q - 1 : q, depth + 1,
						 digest ? "message/rfc822" : "text/plain");
				part = le < end ? le + 1 : end;
				if (close)
					return;
			}
			q = le + 1;
		}
		/* an unterminated last part is still read */
		if (part && part < end)
			walk(cx, part, end, depth + 1, digest ? "message/rfc822" : "text/plain");
		return;
	}

	/* leaf parts: base64 is decoded first (some servers encode their reports) */
	if (get_header(p, hend, "Content-Transfer-Encoding", v, sizeof(v)) &&
		strncasecmp(v, "base64", 6) == 0 && cx->ndecoded < BOUNCE_MAX_DECODED)
	{
		size_t		n;
		char	   *d = base64_decode(body, end, &n);
		size_t		i;

		if (d == NULL)
		{
			cx->oom = true;
			return;
		}
		/* the same normalisation as the whole message: one C string, LF line ends */
		for (i = 0; i < n; i++)
			if (d[i] == '\0')
				d[i] = ' ';
			else if (d[i] == '\r')
				d[i] = (i + 1 < n && d[i + 1] == '\n') ? ' ' : '\n';
		cx->decoded[cx->ndecoded++] = d;
		body = d;
		end = d + n;
	}

	if (strcmp(type, "message/delivery-status") == 0 || strcmp(type, "message/global-delivery-status") == 0)
		parse_dsn(cx, body, end);
	else if (strcmp(type, "message/feedback-report") == 0)
		parse_arf(cx, body, end);
	else if (strcmp(type, "message/rfc822") == 0 || strcmp(type, "message/global") == 0 ||
			 strcmp(type, "text/rfc822-headers") == 0 || strcmp(type, "message/rfc822-headers") == 0 ||
			 strcmp(type, "message/global-headers") == 0 || strcmp(type, "text/rfc822-header") == 0)
		parse_returned(cx, body, end);
	else if (strcmp(type, "text/plain") == 0 && cx->text == NULL)
	{
		cx->text = body;
		cx->text_end = end;
	}
}

/* ------------------------------------------------------------------------
 * Text bounces
 * ------------------------------------------------------------------------ */

static const char *const copy_markers[] = {
	"------ This is a copy of the message",	/* Exim */
	"--- Below this line is a copy of the message",	/* qmail */
	"--- Original message follows",
	"----- Original message -----",
	"------ Original message",
	"----- The following addresses had",
	"Original message follows",
	"----- Transcript of session follows",
	NULL
};

static bool
looks_like_bounce(const char *h, const char *hend)
{
	char		v[512];
	static const char *const subjects[] = {
		"undeliver", "delivery fail", "delivery status", "failure notice", "returned mail",
		"mail delivery failed", "delivery problem", "non-deliver", "nondeliver", "could not be delivered",
		"returned to sender", NULL
	};
	int			i;

	if (get_header(h, hend, "X-Failed-Recipients", v, sizeof(v)))
		return true;
	if (get_header(h, hend, "From", v, sizeof(v)) &&
		(find_ci(v, v + strlen(v), "mailer-daemon") || find_ci(v, v + strlen(v), "postmaster") ||
		 find_ci(v, v + strlen(v), "mail delivery")))
		return true;
	if (get_header(h, hend, "Subject", v, sizeof(v)))
		for (i = 0; subjects[i]; i++)
			if (find_ci(v, v + strlen(v), subjects[i]))
				return true;
	return false;
}

static void
parse_text(Ctx *cx, const char *h, const char *hend)
{
	BounceReport *r = cx->r;
	const char *p = cx->text;
	const char *end = cx->text_end;
	const char *region_end = end;
	const char *copy = NULL;
	const char *q;
	char		v[512];
	char		code[16];
	BounceRcpt *rc;
	int			i;

	for (i = 0; copy_markers[i]; i++)
	{
		const char *m = find_ci(p, end, copy_markers[i]);

		if (m && m < region_end)
			region_end = m;
	}
	if (region_end < end)
		copy = line_end(region_end, end);
	if ((rc = add_rcpt(r)) == NULL)
		return;

	/* the recipient: Exim names it in a header, others in the text */
	if (get_header(h, hend, "X-Failed-Recipients", v, sizeof(v)))
	{
		v[strcspn(v, ",")] = '\0';
		address_of(v, rc->email, sizeof(rc->email));
	}
	for (q = p; rc->email[0] == '\0' && q < region_end; q = line_end(q, region_end) + 1)
	{
		const char *le = line_end(q, region_end);
		const char *lt = memchr(q, '<', le - q);
		const char *at;
		char		line[BOUNCE_ADDR_MAX];

		if (lt && (at = memchr(lt, '@', le - lt)) && memchr(at, '>', le - at))
		{
			copy_trunc(line, sizeof(line), lt, le - lt);
			address_of(line, rc->email, sizeof(rc->email));
		}
		else
		{
			/* a line that is nothing but an address (Exim's indented list) */
			copy_trunc(line, sizeof(line), q, le - q);
			trim(line);
			if (line[0] && strchr(line, '@') && strpbrk(line, " \t") == NULL)
				address_of(line, rc->email, sizeof(rc->email));
		}
	}

	/* the code and the line it is on */
	code[0] = '\0';
	if (find_enhanced(p, region_end, code, sizeof(code)) || find_basic(p, region_end, code, sizeof(code)))
	{
		const char *at = find_ci(p, region_end, code);

		copy_trunc(rc->status, sizeof(rc->status), code, strlen(code));
		if (at)
			line_of(p, region_end, at, rc->diagnostic, sizeof(rc->diagnostic));
	}
	/* a warning that the server keeps trying is not a failure */
	if ((find_ci(p, region_end, "delayed") || find_ci(p, region_end, "will continue") ||
		 find_ci(p, region_end, "still trying") || find_ci(p, region_end, "will be retried")) &&
		!find_ci(p, region_end, "permanent") && code[0] != '5')
		copy_trunc(rc->action, sizeof(rc->action), "delayed", 7);
	else
		copy_trunc(rc->action, sizeof(rc->action), "failed", 6);
	rc->cls = bounce_classify(rc->action, rc->status, rc->diagnostic);
	if (rc->email[0] == '\0' && rc->status[0] == '\0')
	{
		r->nrcpt--;
		return;
	}
	r->kind = BOUNCE_KIND_TEXT;

	/* the copy of the returned message, inline after the marker */
	if (copy && copy < end)
		parse_returned(cx, copy + 1 <= end ? copy + 1 : end, end);
}

/* ------------------------------------------------------------------------
 * Entry point
 * ------------------------------------------------------------------------ */

int
bounce_parse(const char *raw, size_t len, BounceReport *r)
{
	Ctx			cx;
	char	   *s;
	size_t		i,
				n = 0;
	const char *hend;
	char		v[BOUNCE_TEXT_MAX];

	memset(r, 0, sizeof(*r));
	if (raw == NULL || len == 0 || len > BOUNCE_INPUT_MAX)
		return BOUNCE_EINVAL;
	s = malloc(len + 1);
	if (s == NULL)
		return BOUNCE_ENOMEM;
	for (i = 0; i < len; i++)
	{
		char		c = raw[i];

		if (c == '\r')
		{
			if (i + 1 < len && raw[i + 1] == '\n')
				continue;
			c = '\n';
		}
		else if (c == '\0')
			c = ' ';
		s[n++] = c;
	}
	s[n] = '\0';

	memset(&cx, 0, sizeof(cx));
	cx.r = r;
	hend = header_end(s, s + n);

	/* where the bounce was sent: the VERP address */
	collect_header_tokens(r, s, hend, "To");
	collect_header_tokens(r, s, hend, "Delivered-To");
	collect_header_tokens(r, s, hend, "X-Original-To");
	collect_header_tokens(r, s, hend, "Envelope-To");
	collect_header_tokens(r, s, hend, "X-Envelope-To");
	if (get_header(s, hend, "Date", v, sizeof(v)))
	{
		char	   *c;

		/* "Thu, 29 Apr 2013 23:45:32 +0900 (JST)": the comment goes */
		if ((c = strchr(v, '(')) != NULL)
			*c = '\0';
		trim(v);
		copy_trunc(r->date, sizeof(r->date), v, strlen(v));
	}

	walk(&cx, s, s + n, 0, "text/plain");
	if (!cx.oom && r->nrcpt == 0 && cx.text && looks_like_bounce(s, hend))
		parse_text(&cx, s, hend);

	for (i = 0; i < (size_t) r->nrcpt; i++)
		if (r->rcpt[i].cls != BOUNCE_CLASS_NONE)
		{
			r->cls = r->rcpt[i].cls;
			break;
		}

	for (i = 0; i < (size_t) cx.ndecoded; i++)
		free(cx.decoded[i]);
	free(s);
	return cx.oom ? BOUNCE_ENOMEM : BOUNCE_OK;
}
