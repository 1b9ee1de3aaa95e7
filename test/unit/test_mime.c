/*
 * test_mime.c
 *	  Unit tests for the MIME builder (src/mime.c, src/mime_encode.c).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime.h"
#include "unit.h"

/* ---------- helpers: independent decoders and wire checks ---------- */

static int
hexv(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* QP decode (RFC 2045): returns malloc'd buffer, *outlen; NULL if invalid */
static char *
qp_decode(const char *s, size_t len, size_t *outlen)
{
	char	   *o = malloc(len + 1);
	size_t		n = 0;
	size_t		i = 0;

	while (i < len)
	{
		if (s[i] == '=')
		{
			if (i + 2 < len + 1 && i + 2 <= len && s[i + 1] == '\r' && s[i + 2] == '\n')
			{
				i += 3;
				continue;
			}
			if (i + 2 >= len + 0 && !(i + 2 < len) && !(i + 2 == len - 0))
				goto bad;
			if (i + 2 >= len + 1 || hexv(s[i + 1]) < 0 || hexv(s[i + 2]) < 0)
				goto bad;
			o[n++] = (char) (hexv(s[i + 1]) * 16 + hexv(s[i + 2]));
			i += 3;
			continue;
		}
		o[n++] = s[i++];
	}
	*outlen = n;
	o[n] = '\0';
	return o;
bad:
	free(o);
	return NULL;
}

static int
b64v(char c)
{
	const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = c ? strchr(a, c) : NULL;

	return p ? (int) (p - a) : -1;
}

/* base64 decode ignoring CRLF */
static char *
b64_decode(const char *s, size_t len, size_t *outlen)
{
	char	   *o = malloc(len + 1);
	size_t		n = 0;
	uint32_t	acc = 0;
	int			bits = 0;
	size_t		i;

	for (i = 0; i < len; i++)
	{
		int			v;

		if (s[i] == '\r' || s[i] == '\n' || s[i] == '=')
			continue;
		v = b64v(s[i]);
		if (v < 0)
		{
			free(o);
			return NULL;
		}
		acc = (acc << 6) | (uint32_t) v;
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			o[n++] = (char) ((acc >> bits) & 0xff);
		}
	}
	*outlen = n;
	o[n] = '\0';
	return o;
}

/* canonical CRLF form of text */
static char *
canon(const char *s, size_t len, size_t *outlen)
{
	char	   *o = malloc(len * 2 + 1);
	size_t		n = 0;
	size_t		i;

	for (i = 0; i < len; i++)
	{
		if (s[i] == '\r')
		{
			if (i + 1 < len && s[i + 1] == '\n')
				i++;
			o[n++] = '\r';
			o[n++] = '\n';
		}
		else if (s[i] == '\n')
		{
			o[n++] = '\r';
			o[n++] = '\n';
		}
		else
			o[n++] = s[i];
	}
	o[n] = '\0';
	*outlen = n;
	return o;
}

/* CRLF only, ASCII only, no line over maxline; returns 1 if fine */
static int
wire_ok(const char *s, size_t len, size_t maxline)
{
	size_t		i;
	size_t		col = 0;

	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == '\r')
		{
			if (i + 1 >= len || s[i + 1] != '\n')
				return 0;
			i++;
			col = 0;
			continue;
		}
		if (c == '\n' || c >= 0x80 || c == 0)
			return 0;
		if (++col > maxline)
			return 0;
	}
	return 1;
}

/* number of header lines (not continuations) in the header block */
static int
count_header_fields(const char *msg, const char *prefix)
{
	const char *end = strstr(msg, "\r\n\r\n");
	const char *p = msg;
	int			n = 0;
	size_t		pl = prefix ? strlen(prefix) : 0;

	if (end == NULL)
		end = msg + strlen(msg);
	while (p < end)
	{
		if (*p != ' ' && *p != '\t' &&
			(prefix == NULL || strncasecmp(p, prefix, pl) == 0))
			n++;
		p = strstr(p, "\r\n");
		if (p == NULL)
			break;
		p += 2;
	}
	return n;
}

static int
count_str(const char *hay, const char *needle)
{
	int			n = 0;
	const char *p = hay;

	while ((p = strstr(p, needle)) != NULL)
	{
		n++;
		p++;
	}
	return n;
}

/* ---------- tests ---------- */

static void
qp_case(const char *in, const char *want, const char *name)
{
	BeBuf		b;

	be_buf_init(&b);
	mime_qp_encode(in, strlen(in), &b);
	UNIT_STREQ(b.data ? b.data : "", want, name);
	be_buf_free(&b);
}

static void
test_qp(void)
{
	BeBuf		b;
	char		in[400];
	int			i;
	int			allok;
	uint32_t	seed = 1;

	qp_case("", "", "qp empty");
	qp_case("abc", "abc", "qp ascii");
	qp_case("a=b", "a=3Db", "qp escapes =");
	qp_case("caf\xc3\xa9", "caf=C3=A9", "qp escapes utf-8");
	qp_case("end \nx\t\n", "end=20\r\nx=09\r\n", "qp trailing whitespace escaped");
	qp_case("a b\tc", "a b\tc", "qp inner whitespace literal");
	qp_case("trailing ", "trailing=20", "qp whitespace at end escaped");
	qp_case("a\r\nb\rc\nd", "a\r\nb\r\nc\r\nd", "qp canonicalises line breaks");
	qp_case(".\n.x\n", "=2E\r\n=2Ex\r\n", "qp escapes leading dot");
	qp_case("From me\nFromage", "=46rom me\r\nFromage", "qp escapes leading From_");
	qp_case("\x01\x7f", "=01=7F", "qp escapes controls");

	memset(in, 'a', 200);
	in[200] = '\0';
	be_buf_init(&b);
	mime_qp_encode(in, 200, &b);
	UNIT_CHECK(wire_ok(b.data, b.len, 76), "qp long line soft-broken within 76");
	UNIT_CHECK(strncmp(b.data + 75, "=\r\n", 3) == 0, "qp soft break after 75 chars");

	/* escape straddling the limit moves to the next line whole */
	memset(in, 'a', 74);
	strcpy(in + 74, "\xc3\xa9");
	be_buf_reset(&b);
	mime_qp_encode(in, strlen(in), &b);
	UNIT_CHECK(wire_ok(b.data, b.len, 76) && strstr(b.data, "=\r\n=C3=A9") != NULL,
			   "qp never splits an =XX triplet");

	/* random round trips */
	allok = 1;
	for (i = 0; i < 2000; i++)
	{
		size_t		n = 0,
					dl,
					cl;
		size_t		len;
		char	   *d,
				   *c;
		int			k;

		len = (size_t) (seed % 300);
		for (k = 0; k < (int) len; k++)
		{
			seed = seed * 1103515245 + 12345;
			in[n++] = "ab \t=\r\n.F\xc3\xa9\x80\x00~"[(seed >> 16) % 14];
		}
		seed = seed * 1103515245 + 12345;
		be_buf_reset(&b);
		mime_qp_encode(in, n, &b);
		if (!wire_ok(b.data ? b.data : "", b.len, 76))
			allok = 0;
		/* no line ends in white space */
		for (k = 1; k < (int) b.len; k++)
			if (b.data[k] == '\r' && (b.data[k - 1] == ' ' || b.data[k - 1] == '\t'))
				allok = 0;
		d = qp_decode(b.data ? b.data : "", b.len, &dl);
		c = canon(in, n, &cl);
		if (d == NULL || dl != cl || memcmp(d, c, cl) != 0)
			allok = 0;
		free(d);
		free(c);
	}
	UNIT_CHECK(allok, "qp random round trips, lines <= 76, no trailing whitespace");
	UNIT_CHECK(mime_qp_size_estimate("abc", 3) == 3, "qp estimate ascii");
	UNIT_CHECK(mime_qp_size_estimate("\xc3\xa9", 2) == 6, "qp estimate utf-8");
	be_buf_free(&b);
}

static void
b64_case(const char *in, size_t len, const char *want, const char *name)
{
	BeBuf		b;

	be_buf_init(&b);
	mime_base64_encode(in, len, &b);
	UNIT_STREQ(b.data ? b.data : "", want, name);
	be_buf_free(&b);
}

static void
test_base64(void)
{
	BeBuf		b;
	char	   *in;
	int			i;
	int			allok = 1;
	uint32_t	seed = 7;

	b64_case("", 0, "", "base64 empty");
	b64_case("f", 1, "Zg==", "base64 f");
	b64_case("fo", 2, "Zm8=", "base64 fo");
	b64_case("foo", 3, "Zm9v", "base64 foo");
	b64_case("foobar", 6, "Zm9vYmFy", "base64 foobar");
	b64_case("a\nb", 3, "YQ0KYg==", "base64 canonicalises LF to CRLF");
	b64_case("a\rb", 3, "YQ0KYg==", "base64 canonicalises CR to CRLF");
	b64_case("a\r\nb", 4, "YQ0KYg==", "base64 keeps CRLF");

	be_buf_init(&b);
	in = malloc(20000);
	memset(in, 'x', 58);
	mime_base64_encode(in, 57, &b);
	UNIT_CHECK(b.len == 76 && strchr(b.data, '\r') == NULL, "base64 57 bytes: one 76-char line");
	be_buf_reset(&b);
	mime_base64_encode(in, 58, &b);
	UNIT_CHECK(b.len == 76 + 2 + 4 && strncmp(b.data + 76, "\r\n", 2) == 0,
			   "base64 58 bytes: two lines");

	for (i = 0; i < 300; i++)
	{
		size_t		n = (size_t) (seed % 12000),
					dl,
					cl;
		size_t		k;
		char	   *d,
				   *c;

		for (k = 0; k < n; k++)
		{
			seed = seed * 1103515245 + 12345;
			in[k] = (i % 2) ? (char) (seed >> 16) : "ab\n\r\xd0\x9f"[(seed >> 16) % 6];
		}
		seed = seed * 1103515245 + 12345;
		be_buf_reset(&b);
		mime_base64_encode(in, n, &b);
		if (!wire_ok(b.data ? b.data : "", b.len, 76))
			allok = 0;
		d = b64_decode(b.data ? b.data : "", b.len, &dl);
		c = canon(in, n, &cl);
		if (d == NULL || dl != cl || memcmp(d, c, cl) != 0)
			allok = 0;
		free(d);
		free(c);
	}
	UNIT_CHECK(allok, "base64 random round trips (incl. chunked canonicalisation), lines <= 76");
	UNIT_CHECK(mime_base64_size(57) == 76 && mime_base64_size(0) == 0, "base64 size");
	free(in);
	be_buf_free(&b);
}

/* decode a run of encoded-words separated by CRLF SP; checks each word */
static char *
ew_decode(const char *s, int *words_ok)
{
	BeBuf		o;
	const char *p = s;

	be_buf_init(&o);
	be_buf_puts(&o, "");
	*words_ok = 1;
	while (*p)
	{
		const char *e;
		char		enc;
		size_t		wl;
		char	   *d;
		size_t		dl;

		if (strncmp(p, "\r\n ", 3) == 0)
		{
			p += 3;
			continue;
		}
		if (strncmp(p, "=?UTF-8?", 8) != 0)
		{
			*words_ok = 0;
			break;
		}
		enc = p[8];
		e = strstr(p + 10, "?=");
		if (e == NULL)
		{
			*words_ok = 0;
			break;
		}
		wl = (size_t) (e + 2 - p);
		if (wl > 75)
			*words_ok = 0;
		if (enc == 'B')
			d = b64_decode(p + 10, (size_t) (e - p - 10), &dl);
		else
		{
			char	   *t = strndup(p + 10, (size_t) (e - p - 10));
			size_t		i;

			for (i = 0; t[i]; i++)
			{
				if (t[i] == '_')
					t[i] = ' ';
				else if (t[i] != '=' && !((t[i] >= 'A' && t[i] <= 'Z') ||
										  (t[i] >= 'a' && t[i] <= 'z') ||
										  (t[i] >= '0' && t[i] <= '9') ||
										  strchr("!*+-/", t[i])))
					*words_ok = 0;	/* not phrase-safe */
			}
			d = qp_decode(t, strlen(t), &dl);
			free(t);
		}
		if (d == NULL)
		{
			*words_ok = 0;
			break;
		}
		/* each word must hold whole UTF-8 characters */
		if (dl > 0 && (((unsigned char) d[0] & 0xc0) == 0x80))
			*words_ok = 0;
		if (dl > 0)
		{
			unsigned char last = (unsigned char) d[dl - 1];
			size_t		k = dl - 1;

			while (k > 0 && ((unsigned char) d[k] & 0xc0) == 0x80)
				k--;
			if (last >= 0x80)
			{
				unsigned char lead = (unsigned char) d[k];
				size_t		need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;

				if (dl - k != need)
					*words_ok = 0;
			}
		}
		be_buf_append(&o, d, dl);
		free(d);
		p = e + 2;
	}
	return o.data;
}

static void
test_rfc2047(void)
{
	BeBuf		b;
	char		in[2000];
	char	   *d;
	int			ok;
	int			i;

	be_buf_init(&b);
	mime_encode_words("Caf\xc3\xa9 au lait", 13, 9, &b);
	UNIT_STREQ(b.data, "=?UTF-8?Q?Caf=C3=A9_au_lait?=", "2047 Q word when shorter");
	be_buf_reset(&b);
	mime_encode_words("a b c d e_f", 11, 9, &b);
	UNIT_STREQ(b.data, "=?UTF-8?Q?a_b_c_d_e=5Ff?=", "2047 Q escapes _ and space");
	be_buf_reset(&b);
	mime_encode_words("\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82", 12, 9, &b);
	UNIT_STREQ(b.data, "=?UTF-8?B?0J/RgNC40LLQtdGC?=", "2047 B word when shorter");

	/* long text of 4-byte characters: words <= 75, no split sequences */
	in[0] = '\0';
	for (i = 0; i < 60; i++)
		strcat(in, i % 3 ? "\xf0\x9f\x98\x80" : "x\xc3\xa9 ");
	be_buf_reset(&b);
	mime_encode_words(in, strlen(in), 9, &b);
	d = ew_decode(b.data, &ok);
	UNIT_CHECK(ok, "2047 words <= 75 chars, whole characters, phrase-safe");
	UNIT_STREQ(d, in, "2047 long text decodes back");
	UNIT_CHECK(wire_ok(b.data, b.len, 76) && strstr(b.data, "\r\n") - b.data <= 78 - 9,
			   "2047 folded lines <= 78 counting the header name");
	free(d);

	be_buf_reset(&b);
	for (i = 0; i < 300; i++)
		in[i] = "a\xc3\xa9 ?=_"[i % 8];
	in[300] = '\0';
	mime_encode_words(in, strlen(in), 40, &b);
	d = ew_decode(b.data, &ok);
	UNIT_CHECK(ok && strcmp(d, in) == 0, "2047 mixed text round trip");
	free(d);
	be_buf_free(&b);
}

static void
test_unstructured(void)
{
	BeBuf		b;
	char		in[3000];
	int			i;

	be_buf_init(&b);
	mime_put_unstructured(&b, "Subject", "Hello", 5);
	UNIT_STREQ(b.data, "Subject: Hello\r\n", "unstructured ascii");

	be_buf_reset(&b);
	in[0] = '\0';
	for (i = 0; i < 50; i++)
		strcat(in, "lorem ipsum ");
	mime_put_unstructured(&b, "Subject", in, strlen(in));
	UNIT_CHECK(wire_ok(b.data, b.len, 78), "long ascii subject folded to 78");
	{
		/* unfolding gives back the cleaned value */
		char	   *u = malloc(b.len + 1);
		size_t		n = 0;
		size_t		k;

		for (k = 0; k < b.len; k++)
		{
			if (b.data[k] == '\r' && b.data[k + 1] == '\n')
			{
				k++;
				continue;
			}
			u[n++] = b.data[k];
		}
		u[n] = '\0';
		in[strlen(in) - 1] = '\0';	/* cleaning trims the trailing space */
		UNIT_CHECK(strncmp(u, "Subject: ", 9) == 0 && strcmp(u + 9, in) == 0,
				   "folded subject unfolds to the input");
		free(u);
	}

	be_buf_reset(&b);
	memset(in, 'w', 2500);
	in[2500] = '\0';
	mime_put_unstructured(&b, "Subject", in, 2500);
	UNIT_CHECK(wire_ok(b.data, b.len, 998) && strstr(b.data, "=?UTF-8?") != NULL,
			   "2500-char word encoded rather than over 998");

	be_buf_reset(&b);
	mime_put_unstructured(&b, "Subject", "x =?utf-8?q?y?= z", 17);
	UNIT_CHECK(strncmp(b.data, "Subject: =?UTF-8?", 17) == 0,
			   "literal =? in ascii is encoded");

	be_buf_reset(&b);
	mime_put_unstructured(&b, "Subject", "Hi\r\nBcc: x@y.z", 14);
	UNIT_STREQ(b.data, "Subject: Hi Bcc: x@y.z\r\n", "CRLF in subject becomes a space");
	be_buf_free(&b);
}

static void
clean_case(const char *in, size_t len, const char *want, const char *name)
{
	BeBuf		b;

	be_buf_init(&b);
	mime_header_value_clean(in, len, &b);
	UNIT_STREQ(b.data ? b.data : "", want, name);
	be_buf_free(&b);
}

static void
test_clean(void)
{
	clean_case("plain", 5, "plain", "clean plain");
	clean_case("a\r\nb", 4, "a b", "clean CRLF -> space");
	clean_case("a\nb\rc", 5, "a b c", "clean LF, CR -> space");
	clean_case("a\0b", 3, "a b", "clean NUL -> space");
	clean_case("a\tb\x7f", 4, "a b", "clean TAB, DEL");
	clean_case("  x  ", 5, "x", "clean trims");
	clean_case("\r\n\r\n", 4, "", "clean only breaks -> empty");
	clean_case("caf\xc3\xa9", 5, "caf\xc3\xa9", "clean keeps utf-8");
	clean_case("a\xff" "b", 3, "a\xef\xbf\xbd" "b", "clean invalid utf-8 -> U+FFFD");
	clean_case("\xe2\x82", 2, "\xef\xbf\xbd\xef\xbf\xbd", "clean truncated sequence");
	clean_case("\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", "clean surrogate rejected");
	clean_case("\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd", "clean overlong rejected");
}

static void
addr_case(const char *addr, const char *name, const char *want, const char *label)
{
	BeBuf		b;
	char		err[128];
	int			rc;

	be_buf_init(&b);
	rc = mime_format_address(addr, name, &b, err, sizeof(err));
	if (want == NULL)
		UNIT_CHECK(rc == MIME_EINVAL, label);
	else
		UNIT_STREQ(rc == MIME_OK ? (b.data ? b.data : "") : err, want, label);
	be_buf_free(&b);
}

static void
test_addresses(void)
{
	const char *good[] = {"a@b", "a.b@c.d", "o'brien+x@ex-ample.co.uk",
		"x!#$%&'*+-/=?^_`{|}~@a.b", "A@B.COM", "a@1.2.3.4", NULL};
	const char *bad[] = {"", "a", "@b", "a@", "a..b@c.d", ".a@b", "a.@b",
		"a b@c", "a@b c", "a@-b.com", "a@b-.com", "a@b..com", "a@.b",
		"a\r\n@b", "a@b\r\nBcc: x@y", "a@b\n", "<a@b>", "a@b@c", "\"a\"@b",
		"a,b@c", "a;b@c", "a(b)@c", "\xc3\xa9@b", "a@\xc3\xa9.com", "a@b_c.com",
		"a\0@b", "a@b.", NULL};
	char		local[70];
	int			i;
	int			ok = 1;

	for (i = 0; good[i]; i++)
		if (!mime_address_valid(good[i]))
		{
			ok = 0;
			printf("#   rejected %s\n", good[i]);
		}
	UNIT_CHECK(ok, "valid addresses accepted");
	ok = 1;
	for (i = 0; bad[i]; i++)
		if (mime_address_valid(bad[i]))
		{
			ok = 0;
			printf("#   accepted %s\n", bad[i]);
		}
	UNIT_CHECK(ok, "invalid addresses rejected");
	memset(local, 'l', 64);
	strcpy(local + 64, "@b");
	UNIT_CHECK(mime_address_valid(local), "64-char local part ok");
	memset(local, 'l', 65);
	strcpy(local + 65, "@b");
	UNIT_CHECK(!mime_address_valid(local), "65-char local part rejected");
	UNIT_CHECK(!mime_address_valid(NULL), "NULL address rejected");

	addr_case("a@b.c", NULL, "a@b.c", "address without name");
	addr_case("a@b.c", "", "a@b.c", "address with empty name");
	addr_case("a@b.c", "John Doe", "\"John Doe\" <a@b.c>", "quoted display name");
	addr_case("a@b.c", "Doe, John \"JD\" \\o/", "\"Doe, John \\\"JD\\\" \\\\o/\" <a@b.c>",
			  "display name quotes and backslashes escaped");
	addr_case("a@b.c", "J\xc3\xb6rg Schmidt", "=?UTF-8?Q?J=C3=B6rg_Schmidt?= <a@b.c>",
			  "non-ascii display name encoded");
	addr_case("a@b.c", "x =?utf-8?q?y?=", "=?UTF-8?B?eCA9P3V0Zi04P3E/eT89?= <a@b.c>",
			  "display name with =? encoded");
	addr_case("a@b.c", "Evil\r\nBcc: x@y.z", "\"Evil Bcc: x@y.z\" <a@b.c>",
			  "CRLF in display name neutralised");
	addr_case("a@b.c\r\nBcc: x@y.z", "n", NULL, "CRLF in address rejected");
	addr_case("not an address", "n", NULL, "bad address rejected");

	UNIT_CHECK(mime_field_name_valid("X-Campaign"), "field name ok");
	UNIT_CHECK(!mime_field_name_valid(""), "empty field name rejected");
	UNIT_CHECK(!mime_field_name_valid("X Foo"), "field name with space rejected");
	UNIT_CHECK(!mime_field_name_valid("X:Foo"), "field name with colon rejected");
	UNIT_CHECK(!mime_field_name_valid("X\r\nBcc"), "field name with CRLF rejected");
	UNIT_CHECK(!mime_field_name_valid("X-\xc3\xa9"), "non-ascii field name rejected");
	UNIT_CHECK(!mime_field_name_valid(NULL), "NULL field name rejected");
}

static void
test_date(void)
{
	char		buf[32];

	mime_format_date(0, buf);
	UNIT_STREQ(buf, "Thu, 01 Jan 1970 00:00:00 +0000", "date epoch");
	mime_format_date(1700000000, buf);
	UNIT_STREQ(buf, "Tue, 14 Nov 2023 22:13:20 +0000", "date 2023");
	mime_format_date(951782400, buf);
	UNIT_STREQ(buf, "Tue, 29 Feb 2000 00:00:00 +0000", "date leap day");
	mime_format_date(253402300799LL, buf);
	UNIT_STREQ(buf, "Fri, 31 Dec 9999 23:59:59 +0000", "date 9999");
}

static MimeMessage
base_msg(void)
{
	MimeMessage m;

	memset(&m, 0, sizeof(m));
	m.from_email = "news@example.com";
	m.from_name = "Example";
	m.to_email = "alice@example.org";
	m.to_name = "Alice";
	m.subject = "Hello";
	m.html = "<p>Hello <b>Alice</b></p>";
	m.text = "Hello Alice\n";
	m.message_id = "abc-123";
	m.domain = "mail.example.com";
	m.date = 1700000000;
	m.unsubscribe_url = "https://u.example.com/u/TOKEN";
	return m;
}

static int
build(const MimeMessage *m, BeBuf *b, char *err)
{
	be_buf_reset(b);
	return mime_build(m, b, err, 256);
}

static void
test_build(void)
{
	MimeMessage m = base_msg();
	BeBuf		b;
	char		err[256];
	const char *tp,
			   *hp;
	MimeHeader	xh[3];

	be_buf_init(&b);
	UNIT_CHECK(build(&m, &b, err) == MIME_OK, "build basic message");
	UNIT_CHECK(wire_ok(b.data, b.len, 998), "basic message wire format");
	UNIT_CHECK(strncmp(b.data, "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n", 39) == 0, "Date first");
	UNIT_CHECK(strstr(b.data, "\r\nFrom: \"Example\" <news@example.com>\r\n") != NULL, "From header");
	UNIT_CHECK(strstr(b.data, "\r\nTo: \"Alice\" <alice@example.org>\r\n") != NULL, "To header");
	UNIT_CHECK(strstr(b.data, "\r\nSubject: Hello\r\n") != NULL, "Subject header");
	UNIT_CHECK(strstr(b.data, "\r\nMessage-ID: <abc-123@mail.example.com>\r\n") != NULL, "Message-ID header");
	UNIT_CHECK(strstr(b.data, "\r\nMIME-Version: 1.0\r\n") != NULL, "MIME-Version header");
	UNIT_CHECK(strstr(b.data, "\r\nList-Unsubscribe: <https://u.example.com/u/TOKEN>\r\n") != NULL,
			   "List-Unsubscribe header");
	UNIT_CHECK(strstr(b.data, "\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n") != NULL,
			   "List-Unsubscribe-Post header");
	UNIT_CHECK(strstr(b.data, "Reply-To") == NULL, "no Reply-To unless given");
	UNIT_CHECK(strstr(b.data, "\r\nContent-Type: multipart/alternative; boundary=\"=_be_") != NULL,
			   "multipart/alternative with =_ boundary");
	tp = strstr(b.data, "Content-Type: text/plain; charset=utf-8");
	hp = strstr(b.data, "Content-Type: text/html; charset=utf-8");
	UNIT_CHECK(tp && hp && tp < hp, "text/plain before text/html");
	UNIT_CHECK(b.len > 6 && strcmp(b.data + b.len - 4, "--\r\n") == 0, "closing boundary ends message");
	UNIT_CHECK(count_header_fields(b.data, NULL) == 9, "9 top-level header fields");

	/* reply-to, mailto, extra headers */
	m.reply_to = "help@example.com";
	m.reply_to_name = "Help";
	m.unsubscribe_mailto = "unsub@example.com";
	xh[0].name = "X-Campaign";
	xh[0].value = "spring";
	xh[1].name = "Precedence";
	xh[1].value = "bulk";
	m.extra = xh;
	m.n_extra = 2;
	UNIT_CHECK(build(&m, &b, err) == MIME_OK, "build with reply-to, mailto, extras");
	UNIT_CHECK(strstr(b.data, "\r\nReply-To: \"Help\" <help@example.com>\r\n") != NULL, "Reply-To header");
	UNIT_CHECK(strstr(b.data, "List-Unsubscribe: <https://u.example.com/u/TOKEN>,\r\n <mailto:unsub@example.com>\r\n") != NULL,
			   "List-Unsubscribe with mailto, folded");
	UNIT_CHECK(strstr(b.data, "\r\nX-Campaign: spring\r\nPrecedence: bulk\r\n") != NULL, "extra headers");

	/* single parts */
	m = base_msg();
	m.html = NULL;
	UNIT_CHECK(build(&m, &b, err) == MIME_OK && strstr(b.data, "multipart") == NULL &&
			   strstr(b.data, "\r\nContent-Type: text/plain; charset=utf-8\r\n") != NULL,
			   "text only: single text/plain part");
	UNIT_CHECK(b.len > 2 && strcmp(b.data + b.len - 2, "\r\n") == 0, "single part ends in CRLF");
	m = base_msg();
	m.text = NULL;
	m.no_derive_text = true;
	UNIT_CHECK(build(&m, &b, err) == MIME_OK && strstr(b.data, "multipart") == NULL &&
			   strstr(b.data, "\r\nContent-Type: text/html; charset=utf-8\r\n") != NULL,
			   "html only without derivation: single text/html part");
	m.no_derive_text = false;
	UNIT_CHECK(build(&m, &b, err) == MIME_OK && strstr(b.data, "multipart/alternative") != NULL &&
			   strstr(b.data, "\r\n\r\nHello Alice\r\n") != NULL,
			   "html only: text part derived");
	m.html = NULL;
	UNIT_CHECK(build(&m, &b, err) == MIME_OK && strstr(b.data, "text/plain") != NULL,
			   "no body at all: empty text/plain");

	/* encodings */
	m = base_msg();
	m.text = "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82, \xd0\xbc\xd0\xb8\xd1\x80! "
		"\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82, \xd0\xbc\xd0\xb8\xd1\x80!";
	UNIT_CHECK(build(&m, &b, err) == MIME_OK &&
			   strstr(b.data, "text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64") != NULL,
			   "cyrillic text uses base64");
	UNIT_CHECK(strstr(b.data, "text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable") != NULL,
			   "ascii html uses quoted-printable");

	/* ASCII start, non-Latin rest: QP gives up half way, base64 is used */
	{
		static char mixed[12000];
		int			k;

		memset(mixed, 'a', 1100);
		mixed[1100] = '\0';
		for (k = 0; k < 500; k++)
			strcat(mixed, "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 ");
		m = base_msg();
		m.text = mixed;
		UNIT_CHECK(build(&m, &b, err) == MIME_OK &&
				   strstr(b.data, "text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64") != NULL &&
				   wire_ok(b.data, b.len, 998),
				   "late non-Latin text falls back from QP to base64");
		be_buf_reset(&b);
		UNIT_CHECK(mime_qp_encode_limit(mixed, strlen(mixed), &b, 1000) == -1 && b.len == 0,
				   "qp limit exceeded leaves output unchanged");
		UNIT_CHECK(mime_qp_encode_limit("abc", 3, &b, 1000) == 1 && b.len == 3,
				   "qp limit not reached");
	}

	/* body content can never produce the boundary */
	m = base_msg();
	m.text = "--=_be_0000000000000000\n--=_be_0000000000000000--\n";
	UNIT_CHECK(build(&m, &b, err) == MIME_OK && strstr(b.data, "\r\n--=_be_0000000000000000") == NULL,
			   "boundary lookalike in body is escaped");

	/* out is appended to, and unchanged on error */
	m = base_msg();
	be_buf_reset(&b);
	be_buf_puts(&b, "PREFIX");
	m.to_email = "bad";
	UNIT_CHECK(mime_build(&m, &b, err, sizeof(err)) == MIME_EINVAL && b.len == 6 &&
			   strcmp(b.data, "PREFIX") == 0, "error leaves output untouched");
	UNIT_STREQ(err, "invalid to address", "error message");

	be_buf_free(&b);
}

/* A message built with "bad" in one structural field must be rejected. */
static void
test_rejects(void)
{
	static const char *hostile[] = {
		"x\r\nBcc: evil@example.net", "x\nBcc: evil@example.net",
		"x\rBcc: evil@example.net", "x y", "x\t", "", "\x01", "x>", "x<", NULL
	};
	BeBuf		b;
	char		err[256];
	int			i;
	int			ok;
	MimeMessage m;
	MimeHeader	xh[1];

#define REJECT_FIELD(field, label) \
	do { \
		ok = 1; \
		for (i = 0; hostile[i]; i++) \
		{ \
			m = base_msg(); \
			m.field = hostile[i]; \
			if (hostile[i][0] == '\0' && \
				(strcmp(#field, "reply_to") == 0 || strcmp(#field, "unsubscribe_url") == 0 || \
				 strcmp(#field, "unsubscribe_mailto") == 0)) \
				continue;	/* empty = not set */ \
			if (build(&m, &b, err) != MIME_EINVAL || b.len != 0 || err[0] == '\0') \
			{ \
				ok = 0; \
				printf("#   %s accepted %s\n", #field, hostile[i]); \
			} \
		} \
		UNIT_CHECK(ok, label); \
	} while (0)

	be_buf_init(&b);
	REJECT_FIELD(from_email, "hostile from_email rejected");
	REJECT_FIELD(to_email, "hostile to_email rejected");
	REJECT_FIELD(reply_to, "hostile reply_to rejected");
	REJECT_FIELD(message_id, "hostile message_id rejected");
	REJECT_FIELD(domain, "hostile domain rejected");
	REJECT_FIELD(unsubscribe_url, "hostile unsubscribe_url rejected");
	REJECT_FIELD(unsubscribe_mailto, "hostile unsubscribe_mailto rejected");

	m = base_msg();
	m.message_id = "a@b";
	UNIT_CHECK(build(&m, &b, err) == MIME_EINVAL, "message_id with @ rejected");
	m = base_msg();
	m.unsubscribe_url = "http://u.example.com/x";
	UNIT_CHECK(build(&m, &b, err) == MIME_OK &&
			   strstr(b.data, "\r\nList-Unsubscribe: <http://u.example.com/x>\r\n") != NULL &&
			   strstr(b.data, "List-Unsubscribe-Post") == NULL,
			   "http unsubscribe_url: List-Unsubscribe without one-click POST");
	m.unsubscribe_url = "ftp://u.example.com/x";
	UNIT_CHECK(build(&m, &b, err) == MIME_EINVAL, "ftp unsubscribe_url rejected");
	m.unsubscribe_url = "https://";
	UNIT_CHECK(build(&m, &b, err) == MIME_EINVAL, "bare https:// rejected");
	m.unsubscribe_url = "javascript:alert(1)";
	UNIT_CHECK(build(&m, &b, err) == MIME_EINVAL, "javascript: unsubscribe_url rejected");
	m.unsubscribe_url = "https://u.example.com/\xc3\xa9";
	UNIT_CHECK(build(&m, &b, err) == MIME_EINVAL, "non-ascii unsubscribe_url rejected");
	m = base_msg();
	m.unsubscribe_mailto = "mailto:?body=x";
	UNIT_CHECK(build(&m, &b, err) == MIME_EINVAL, "mailto without address rejected");

	/* extra header names ("<" and ">" are legal in field names) */
	ok = 1;
	for (i = 0; hostile[i]; i++)
	{
		if (hostile[i][0] == 'x' && (hostile[i][1] == '<' || hostile[i][1] == '>'))
			continue;
		m = base_msg();
		xh[0].name = hostile[i];
		xh[0].value = "v";
		m.extra = xh;
		m.n_extra = 1;
		if (build(&m, &b, err) != MIME_EINVAL)
			ok = 0;
	}
	UNIT_CHECK(ok, "hostile extra header names rejected");
	{
		const char *reserved[] = {"Content-Type", "content-transfer-encoding", "FROM",
		"To", "Bcc", "Subject", "Message-ID", "List-Unsubscribe", "MIME-Version", NULL};

		ok = 1;
		for (i = 0; reserved[i]; i++)
		{
			m = base_msg();
			xh[0].name = reserved[i];
			xh[0].value = "v";
			m.extra = xh;
			m.n_extra = 1;
			if (build(&m, &b, err) != MIME_EINVAL)
				ok = 0;
		}
		UNIT_CHECK(ok, "builder-owned header names rejected as extras");
	}
	m = base_msg();
	m.n_extra = MIME_EXTRA_HEADERS_MAX + 1;
	m.extra = xh;
	UNIT_CHECK(build(&m, &b, err) == MIME_EINVAL, "too many extra headers rejected");
	be_buf_free(&b);
}

/* free-text fields: injection neutralised, exactly the expected headers */
static void
test_injection(void)
{
	static const char *payloads[] = {
		"x\r\nBcc: evil@example.net", "x\nBcc: evil@example.net",
		"x\rBcc: evil@example.net", "x\r\n\r\n<html>body", "x\r\n Bcc: y",
		"\r\nBcc: evil@example.net\r\n", "x\x0b\x0c\x1b\x7f" "Bcc: y",
		"\xc3\xa9\r\nBcc: evil@example.net", "=?utf-8?q?=0D=0ABcc:_y?=",
		"x\xe2\x80\xa8" "Bcc: y", NULL
	};
	BeBuf		b;
	char		err[256];
	int			i;
	int			f;
	int			ok = 1;
	MimeHeader	xh[1];

	be_buf_init(&b);
	for (f = 0; f < 6; f++)
	{
		for (i = 0; payloads[i]; i++)
		{
			MimeMessage m = base_msg();
			int			want = 9;

			xh[0].name = "X-Tag";
			xh[0].value = "t";
			m.extra = xh;
			m.n_extra = 1;
			want++;
			m.reply_to = "r@example.com";
			want++;
			switch (f)
			{
				case 0:
					m.subject = payloads[i];
					break;
				case 1:
					m.from_name = payloads[i];
					break;
				case 2:
					m.to_name = payloads[i];
					break;
				case 3:
					m.reply_to_name = payloads[i];
					break;
				case 4:
					xh[0].value = payloads[i];
					break;
				case 5:
					m.text = payloads[i];
					m.html = payloads[i];
					break;
			}
			if (build(&m, &b, err) != MIME_OK ||
				!wire_ok(b.data, b.len, 998) ||
				count_header_fields(b.data, NULL) != want ||
				count_header_fields(b.data, "Bcc") != 0 ||
				count_str(b.data, "\r\n--=_be_") != 3 ||
				(f != 5 && strstr(b.data, "\r\nBcc") != NULL) ||
				(f != 5 && strstr(b.data, "\r\n<html>") != NULL))
			{
				ok = 0;
				printf("#   field %d payload %d\n", f, i);
			}
		}
	}
	UNIT_CHECK(ok, "CR/LF/control injection in every free-text field neutralised");
	be_buf_free(&b);
}

static void
test_header_values(void)
{
	MimeMessage m = base_msg();
	BeBuf		store;
	MimeHeader	h[8];
	MimeHeader	xh[1];
	size_t		n;
	char		err[256];

	be_buf_init(&store);
	xh[0].name = "X-Campaign";
	xh[0].value = "a\r\nBcc: b";
	m.extra = xh;
	m.n_extra = 1;
	m.unsubscribe_mailto = "mailto:u@example.com?subject=unsubscribe";
	UNIT_CHECK(mime_header_values(&m, &store, h, 8, &n, err, sizeof(err)) == MIME_OK && n == 4,
			   "header values: 4 headers");
	if (n == 4)
	{
		UNIT_STREQ(h[0].name, "Message-ID", "hv Message-ID name");
		UNIT_STREQ(h[0].value, "<abc-123@mail.example.com>", "hv Message-ID value");
		UNIT_STREQ(h[1].name, "List-Unsubscribe", "hv List-Unsubscribe name");
		UNIT_STREQ(h[1].value, "<https://u.example.com/u/TOKEN>, <mailto:u@example.com?subject=unsubscribe>",
				   "hv List-Unsubscribe value (unfolded)");
		UNIT_STREQ(h[2].value, "List-Unsubscribe=One-Click", "hv List-Unsubscribe-Post value");
		UNIT_STREQ(h[3].value, "a Bcc: b", "hv extra value cleaned");
	}
	UNIT_CHECK(mime_header_values(&m, &store, h, 2, &n, err, sizeof(err)) == MIME_EINVAL,
			   "header values: array too small");
	m.unsubscribe_url = "https://x\r\ny";
	UNIT_CHECK(mime_header_values(&m, &store, h, 8, &n, err, sizeof(err)) == MIME_EINVAL,
			   "header values: bad url rejected");

	be_buf_reset(&store);
	UNIT_CHECK(mime_list_unsubscribe_value("https://a.example/x", "u@example.com", &store, err, sizeof(err)) == MIME_OK,
			   "list-unsubscribe value");
	UNIT_STREQ(store.data, "<https://a.example/x>, <mailto:u@example.com>", "list-unsubscribe value text");
	be_buf_reset(&store);
	UNIT_CHECK(mime_list_unsubscribe_value("https://a\nb", NULL, &store, err, sizeof(err)) == MIME_EINVAL &&
			   store.len == 0, "list-unsubscribe value rejects LF");
	be_buf_free(&store);
}

static void
h2t_case(const char *html, const char *want, const char *name)
{
	BeBuf		b;

	be_buf_init(&b);
	mime_html_to_text(html, strlen(html), &b);
	UNIT_STREQ(b.data ? b.data : "", want, name);
	be_buf_free(&b);
}

static void
test_html_to_text(void)
{
	h2t_case("", "", "h2t empty");
	h2t_case("Hello", "Hello\n", "h2t plain");
	h2t_case("<p>Hello</p><p>World</p>", "Hello\n\nWorld\n", "h2t paragraphs");
	h2t_case("a<br>b<br/>c<BR />d", "a\nb\nc\nd\n", "h2t br");
	h2t_case("a<br><br><br><br>b", "a\n\nb\n", "h2t at most one blank line");
	h2t_case("<div>a</div><div>b</div>", "a\nb\n", "h2t divs");
	h2t_case("<h1>Title</h1>text", "Title\n\ntext\n", "h2t heading");
	h2t_case("<ul><li>One</li><li>Two</li></ul>", "- One\n- Two\n", "h2t list items");
	h2t_case("<script>var x = '<p>';</script>Hi<style>.a{color:red}</style>!", "Hi!\n",
			 "h2t drops script and style");
	h2t_case("<html><head><title>T</title><meta x=y></head><body>Y</body></html>", "Y\n",
			 "h2t drops head");
	h2t_case("<SCRIPT>x</SCRIPT><P>Upper</P>", "Upper\n", "h2t case-insensitive tags");
	h2t_case("&amp;&lt;&gt;&quot;&#39;&#x41;&nbsp;&copy;&bogus; &", "&<>\"'A \xc2\xa9&bogus; &\n",
			 "h2t entities");
	h2t_case("&#0;&#xD800;&#1114112;", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\n",
			 "h2t invalid numeric entities -> U+FFFD");
	h2t_case("a&zwnj;b&#8212;c", "ab\xe2\x80\x94" "c\n", "h2t zwnj dropped, mdash");
	h2t_case("<a href=\"https://x.example/a?b=1&amp;c=2\">Shop now</a>",
			 "Shop now (https://x.example/a?b=1&c=2)\n", "h2t link as text (url)");
	h2t_case("<a href='https://x.example'>https://x.example</a>", "https://x.example\n",
			 "h2t link text equal to url not repeated");
	h2t_case("<a href=\"mailto:a@b.example\">a@b.example</a>", "a@b.example\n",
			 "h2t mailto equal to text");
	h2t_case("<a href=\"#top\">Top</a>", "Top\n", "h2t fragment link dropped");
	h2t_case("<a href=\"javascript:x()\">J</a>", "J\n", "h2t javascript link dropped");
	h2t_case("<a href=https://x.example/u><img src=a.png></a>", "https://x.example/u\n",
			 "h2t image-only link shows url");
	h2t_case("<img alt=\"Logo\" src=x>Text", "Logo Text\n", "h2t img alt");
	h2t_case("  lots   of\n\n  space  ", "lots of space\n", "h2t collapses whitespace");
	h2t_case("<!-- c <p> -->x<!DOCTYPE html>y", "xy\n", "h2t comments and doctype");
	h2t_case("1 < 2 & 3 > 2", "1 < 2 & 3 > 2\n", "h2t literal < and &");
	h2t_case("<pre>a\n  b</pre>c", "a\n  b\n\nc\n", "h2t pre keeps whitespace");
	h2t_case("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc\n",
			 "h2t table cells");
	h2t_case("<p>unclosed <b", "unclosed\n", "h2t unterminated tag");
	h2t_case("<script>never closed", "", "h2t unterminated script dropped");
	h2t_case("<p title=\"a>b\">x</p>", "x\n", "h2t quoted > in attribute");
	h2t_case("<style-x>a</style-x><p-q>b<scriptx>c", "abc\n", "h2t custom element names are plain tags");
	h2t_case("Caf\xc3\xa9 \xe2\x82\xac", "Caf\xc3\xa9 \xe2\x82\xac\n", "h2t utf-8 passes through");
}

int
main(void)
{
	test_qp();
	test_base64();
	test_rfc2047();
	test_unstructured();
	test_clean();
	test_addresses();
	test_date();
	test_build();
	test_rejects();
	test_injection();
	test_header_values();
	test_html_to_text();
	UNIT_DONE();
}
