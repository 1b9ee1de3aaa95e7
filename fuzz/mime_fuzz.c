/*
 * mime_fuzz.c
 *	  libFuzzer target for the MIME builder, HTML-to-text, header cleaning
 *	  and unsubscribe tokens.
 *
 * Input: two flag bytes, then up to 16 fields separated by FF FE:
 *
 *	0 from_email  1 from_name  2 to_email  3 to_name  4 reply_to
 *	5 reply_to_name  6 subject  7 html  8 text  9 message_id  10 domain
 *	11 unsubscribe_url  12 unsubscribe_mailto  13 extra name  14 extra value
 *	15 token
 *
 * Flag bits choose, for the structural fields (addresses, ids, URLs, extra
 * header name), between the fuzzed bytes and a valid default, so that both
 * rejection paths and successful builds with hostile free text are reached.
 * Bodies may contain NUL (they are passed with explicit lengths).
 *
 * Invariants checked on every successful build: 7-bit output without NUL,
 * CRLF line endings only, no line over 998, encoded body lines <= 76, the
 * exact expected sequence of header fields (nothing injected), the html
 * part decodes back to the input, the boundary appears only 3 times.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime.h"
#include "unsub_token.h"

#define NFIELDS 16

#define CHECK(cond) \
	do { if (!(cond)) { fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__); abort(); } } while (0)

static int
hexv(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* decode QP or base64 body [s, s+len) into out */
static void
decode_body(const char *s, size_t len, bool qp, BeBuf *out)
{
	size_t		i;

	if (qp)
	{
		for (i = 0; i < len; i++)
		{
			if (s[i] == '=')
			{
				CHECK(i + 2 < len + 1);
				if (i + 2 < len && s[i + 1] == '\r' && s[i + 2] == '\n')
				{
					i += 2;
					continue;
				}
				if (i + 2 == len && s[i + 1] == '\r')
					CHECK(0);
				CHECK(i + 2 < len || (i + 2 == len && 0));
				CHECK(hexv(s[i + 1]) >= 0 && hexv(s[i + 2]) >= 0);
				be_buf_putc(out, (char) (hexv(s[i + 1]) * 16 + hexv(s[i + 2])));
				i += 2;
				continue;
			}
			be_buf_putc(out, s[i]);
		}
	}
	else
	{
		static const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		uint32_t	acc = 0;
		int			bits = 0;

		for (i = 0; i < len; i++)
		{
			const char *p;

			if (s[i] == '\r' || s[i] == '\n' || s[i] == '=')
				continue;
			p = strchr(a, s[i]);
			CHECK(p != NULL && s[i] != '\0');
			acc = (acc << 6) | (uint32_t) (p - a);
			bits += 6;
			if (bits >= 8)
			{
				bits -= 8;
				be_buf_putc(out, (char) ((acc >> bits) & 0xff));
			}
		}
	}
}

static void
canon(const char *s, size_t len, BeBuf *out)
{
	size_t		i;

	for (i = 0; i < len; i++)
	{
		if (s[i] == '\r')
		{
			if (i + 1 < len && s[i + 1] == '\n')
				i++;
			be_buf_append(out, "\r\n", 2);
		}
		else if (s[i] == '\n')
			be_buf_append(out, "\r\n", 2);
		else
			be_buf_putc(out, s[i]);
	}
}

/*
 * Check one part: h points at its header lines (which end at the first
 * CRLF CRLF), the body runs to the next "CRLF--boundary" or, for a single
 * part, to the end of the message.
 */
static void
check_part(const char *msg, size_t mlen, const char *h, const char *ctype,
		   const char *body, size_t blen, const char *boundary, bool last_single)
{
	const char *b;
	const char *e;
	const char *cte;
	bool		qp;
	BeBuf		got,
				want;

	b = strstr(h, "\r\n\r\n");
	CHECK(b != NULL);
	CHECK(strstr(h, ctype) != NULL && strstr(h, ctype) < b);
	cte = strstr(h, "Content-Transfer-Encoding: ");
	CHECK(cte != NULL && cte < b);
	qp = strncmp(cte + 27, "quoted-printable\r\n", 18) == 0;
	CHECK(qp || strncmp(cte + 27, "base64\r\n", 8) == 0);
	b += 4;
	if (boundary)
	{
		char		delim[64];

		snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
		e = strstr(b, delim);
		CHECK(e != NULL);
	}
	else
	{
		e = msg + mlen;
		/* a single base64 part ends in CRLF; a QP one in CRLF or "=CRLF" */
		if (!qp && e - b >= 2)
			e -= 2;
	}
	be_buf_init(&got);
	be_buf_init(&want);
	be_buf_puts(&got, "");
	be_buf_puts(&want, "");
	decode_body(b, (size_t) (e - b), qp, &got);
	canon(body, blen, &want);
	if (last_single && qp && got.len == want.len + 2)
		got.len -= 2;			/* the message's final CRLF */
	CHECK(got.len == want.len && memcmp(got.data, want.data, got.len) == 0);
	be_buf_free(&got);
	be_buf_free(&want);
}

static void
check_message(const MimeMessage *m, const char *msg, size_t len)
{
	const char *expect[16];
	int			ne = 0;
	size_t		i;
	size_t		col = 0;
	const char *hend;
	const char *p;
	int			nh = 0;
	bool		multipart;
	const char *html = m->html ? m->html : "";
	size_t		html_len = m->html_len;

	CHECK(len > 0 && strlen(msg) == len);
	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) msg[i];

		CHECK(c != 0 && c < 0x80);
		if (c == '\r')
		{
			CHECK(i + 1 < len && msg[i + 1] == '\n');
			i++;
			col = 0;
			continue;
		}
		CHECK(c != '\n');
		col++;
		CHECK(col <= MIME_LINE_MAX);
	}
	CHECK(len >= 2 && msg[len - 2] == '\r' && msg[len - 1] == '\n');

	hend = strstr(msg, "\r\n\r\n");
	CHECK(hend != NULL);
	/* real header lines start after CRLF; folds start with white space */
	multipart = strstr(msg, "\r\nContent-Type: multipart/alternative;") != NULL &&
		strstr(msg, "\r\nContent-Type: multipart/alternative;") < hend;

	expect[ne++] = "Date: ";
	expect[ne++] = "From: ";
	expect[ne++] = "To: ";
	if (m->reply_to && m->reply_to[0])
		expect[ne++] = "Reply-To: ";
	expect[ne++] = "Subject: ";
	expect[ne++] = "Message-ID: ";
	expect[ne++] = "MIME-Version: 1.0";
	if ((m->unsubscribe_url && m->unsubscribe_url[0]) ||
		(m->unsubscribe_mailto && m->unsubscribe_mailto[0]))
		expect[ne++] = "List-Unsubscribe: ";
	if (m->unsubscribe_url && strncasecmp(m->unsubscribe_url, "https://", 8) == 0)
		expect[ne++] = "List-Unsubscribe-Post: List-Unsubscribe=One-Click";
	if (m->n_extra == 1)
		expect[ne++] = m->extra[0].name;
	expect[ne++] = "Content-Type: ";
	if (!multipart)
		expect[ne++] = "Content-Transfer-Encoding: ";

	/* every header line is either one we expect, in order, or a fold */
	p = msg;
	while (p < hend + 2)
	{
		const char *eol = strstr(p, "\r\n");

		if (*p == ' ' || *p == '\t')
		{
			const char *q = p;

			CHECK(nh > 0);
			/* a fold line must carry something besides white space */
			while (q < eol && (*q == ' ' || *q == '\t'))
				q++;
			CHECK(q < eol);
		}
		else
		{
			CHECK(nh < ne);
			CHECK(strncmp(p, expect[nh], strlen(expect[nh])) == 0);
			if (expect[nh] == (m->n_extra == 1 ? m->extra[0].name : NULL))
				CHECK(p[strlen(expect[nh])] == ':');
			nh++;
		}
		p = eol + 2;
	}
	CHECK(nh == ne);

	/* encoded body lines stay within 76 */
	col = 0;
	for (p = hend + 4; *p; p++)
	{
		if (*p == '\r')
		{
			col = 0;
			p++;
			continue;
		}
		col++;
		CHECK(col <= MIME_QP_LINE_MAX);
	}

	if (multipart)
	{
		const char *bq = strstr(msg, "\r\nContent-Type: multipart/alternative; boundary=\"");
		char		boundary[64];
		const char *bend;
		int			count = 0;
		char		delim[80];
		const char *p1,
				   *p2;

		CHECK(bq != NULL && bq < hend);
		bq += 49;
		bend = strchr(bq, '"');
		CHECK(bend != NULL && bend - bq < 60);
		memcpy(boundary, bq, (size_t) (bend - bq));
		boundary[bend - bq] = '\0';
		snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
		for (p = msg; (p = strstr(p, delim)) != NULL; p++)
			count++;
		CHECK(count == 3);
		p1 = strstr(hend, delim);
		CHECK(p1 == hend + 2);
		p1 += strlen(delim) + 2;
		p2 = strstr(p1, delim);
		CHECK(p2 != NULL);
		p2 += strlen(delim) + 2;
		CHECK(strncmp(p1, "Content-Type: text/plain", 24) == 0);
		CHECK(strncmp(p2, "Content-Type: text/html", 23) == 0);
		check_part(msg, len, p2, "text/html", html, html_len, boundary, false);
		if (m->text_len > 0)
			check_part(msg, len, p1, "text/plain", m->text, m->text_len,
					   boundary, false);
	}
	else
	{
		const char *ct = strstr(msg, "\r\nContent-Type: text/");

		CHECK(ct != NULL && ct < hend);
		if (html_len > 0)
			check_part(msg, len, ct, "text/html", html, html_len, NULL, true);
		else
			check_part(msg, len, ct, "text/plain", m->text ? m->text : "",
					   m->text_len, NULL, true);
	}
}

static void
check_clean(const char *s, size_t len)
{
	BeBuf		b;
	size_t		i;

	be_buf_init(&b);
	CHECK(mime_header_value_clean(s, len, &b) == MIME_OK);
	for (i = 0; i < b.len; i++)
	{
		unsigned char c = (unsigned char) b.data[i];

		CHECK(c >= 0x20 && c != 0x7f);
	}
	CHECK(b.len == 0 || (b.data[0] != ' ' && b.data[b.len - 1] != ' '));
	be_buf_free(&b);
}

static void
check_tokens(const char *f[NFIELDS], const size_t fl[NFIELDS])
{
	static const uint8_t secret[] = "fuzz-secret-fuzz-secret-32bytes!";
	UnsubToken	tok;
	BeBuf		b;
	int			rc;

	/* arbitrary token text: parse must not crash, verify must fail */
	rc = unsub_token_parse(f[15], fl[15], &tok);
	if (rc == UNSUB_OK)
	{
		CHECK(tok.workspace_id && tok.email && tok.list_id && tok.message_id);
		CHECK(!unsub_token_verify_parsed(&tok, secret, 32));
		unsub_token_free(&tok);
	}
	CHECK(!unsub_token_verify(f[15], fl[15], secret, 32));

	/* make from fuzzed fields: must round-trip */
	be_buf_init(&b);
	rc = unsub_token_make(secret, 32, f[1], f[3], f[6], f[9], &b);
	if (rc == UNSUB_OK)
	{
		CHECK(unsub_token_verify(b.data, b.len, secret, 32));
		CHECK(!unsub_token_verify(b.data, b.len, secret, 31));
		CHECK(unsub_token_parse(b.data, b.len, &tok) == UNSUB_OK);
		CHECK(strcmp(tok.workspace_id, f[1]) == 0);
		CHECK(strcmp(tok.list_id, f[3]) == 0);
		CHECK(strcmp(tok.email, f[6]) == 0);
		CHECK(strcmp(tok.message_id, f[9]) == 0);
		unsub_token_free(&tok);
		/* flipping the last character must break it */
		b.data[b.len - 1] = b.data[b.len - 1] == 'A' ? 'B' : 'A';
		CHECK(!unsub_token_verify(b.data, b.len, secret, 32));
	}
	be_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *defaults[NFIELDS] = {
		"from@example.com", NULL, "to@example.org", NULL, "", NULL, NULL, NULL,
		NULL, "msg-1", "example.com", "https://u.example.com/u/x", "", "X-Tag",
		NULL, NULL
	};
	char	   *buf;
	const char *f[NFIELDS];
	size_t		fl[NFIELDS];
	uint16_t	flags;
	size_t		i;
	int			nf = 0;
	size_t		start;
	MimeMessage m;
	MimeHeader	xh[1];
	BeBuf		out,
				scratch,
				store;
	char		err[256];
	int			rc;

	if (size < 2)
		return 0;
	flags = (uint16_t) (data[0] | (data[1] << 8));
	data += 2;
	size -= 2;
	buf = malloc(size + NFIELDS);

	/*
	 * Split on the two-byte separator FF FE (never valid UTF-8), copying
	 * each field NUL-terminated.  Fields may contain NUL bytes: bodies and
	 * tokens are passed with explicit lengths; C-string fields simply end
	 * at the first NUL, as they would for any C caller.
	 */
	for (i = 0; i < NFIELDS; i++)
	{
		f[i] = "";
		fl[i] = 0;
	}
	{
		size_t		o = 0;

		start = 0;
		for (i = 0; i <= size && nf < NFIELDS; i++)
		{
			bool		sep = i + 1 < size && data[i] == 0xff && data[i + 1] == 0xfe;

			if (i == size || sep || (nf == NFIELDS - 1 && i == size))
			{
				if (nf == NFIELDS - 1)
					i = size;	/* last field takes the rest */
				memcpy(buf + o, data + start, i - start);
				f[nf] = buf + o;
				fl[nf] = i - start;
				o += i - start;
				buf[o++] = '\0';
				nf++;
				start = i + 2;
				i++;
			}
		}
	}

	memset(&m, 0, sizeof(m));
#define PICK(idx, bit) ((flags & (1u << (bit))) || defaults[idx] == NULL ? f[idx] : defaults[idx])
	m.from_email = PICK(0, 0);
	m.from_name = f[1];
	m.to_email = PICK(2, 1);
	m.to_name = f[3];
	m.reply_to = PICK(4, 2);
	m.reply_to_name = f[5];
	m.subject = f[6];
	m.html = f[7];
	m.html_len = fl[7];
	m.text = f[8];
	m.text_len = fl[8];
	m.no_derive_text = (flags & (1u << 8)) != 0;
	m.message_id = PICK(9, 3);
	m.domain = PICK(10, 4);
	m.unsubscribe_url = PICK(11, 5);
	m.unsubscribe_mailto = PICK(12, 6);
	m.date = (time_t) ((int64_t) fl[6] * 86400 * 97);
	if (flags & (1u << 9))
	{
		xh[0].name = PICK(13, 7);
		xh[0].value = f[14];
		m.extra = xh;
		m.n_extra = 1;
	}
#undef PICK

	be_buf_init(&out);
	be_buf_init(&scratch);
	be_buf_init(&store);
	be_buf_puts(&out, "");
	rc = mime_build_ex(&m, &out, &scratch, err, sizeof(err));
	CHECK(rc == MIME_OK || rc == MIME_EINVAL);
	if (rc == MIME_OK)
	{
		MimeMessage m2 = m;
		BeBuf		dtext;

		/* derived text is what the checker must compare against */
		be_buf_init(&dtext);
		if (m.text_len == 0 && m.html_len > 0 && !m.no_derive_text)
		{
			CHECK(mime_html_to_text(m.html, m.html_len, &dtext) == MIME_OK);
			m2.text = dtext.data ? dtext.data : "";
			m2.text_len = dtext.len;
		}
		check_message(&m2, out.data, out.len);
		be_buf_free(&dtext);
	}
	else
	{
		CHECK(out.len == 0 && err[0] != '\0');
	}

	{
		MimeHeader	hv[8];
		size_t		n;

		if (mime_header_values(&m, &store, hv, 8, &n, err, sizeof(err)) == MIME_OK)
		{
			for (i = 0; i < n; i++)
				CHECK(strpbrk(hv[i].value, "\r\n") == NULL &&
					  strpbrk(hv[i].name, "\r\n: ") == NULL);
		}
	}

	/* html-to-text on raw bytes, header cleaning on each free-text field */
	be_buf_reset(&scratch);
	CHECK(mime_html_to_text(f[7], fl[7], &scratch) == MIME_OK);
	check_clean(f[1], fl[1]);
	check_clean(f[6], fl[6]);
	check_clean(f[14], fl[14]);

	check_tokens(f, fl);

	be_buf_free(&out);
	be_buf_free(&scratch);
	be_buf_free(&store);
	free(buf);
	return 0;
}
