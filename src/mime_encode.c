/*-------------------------------------------------------------------------
 *
 * mime_encode.c
 *	  Body encoders (quoted-printable, base64) and HTML-to-text for the
 *	  MIME builder.
 *
 * The encoders are on the per-recipient hot path: they reserve the
 * worst-case output once and then write through a raw pointer with a
 * lookup table per byte, no per-line allocation or bounds checks.
 *
 *-------------------------------------------------------------------------
 */
#include "mime.h"

#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

static const char hexdig[] = "0123456789ABCDEF";
static const char b64_alphabet[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* byte classes for quoted-printable */
#define QP_LIT	0				/* printable, copied as is */
#define QP_ESC	1				/* always =XX */
#define QP_WS	2				/* SP/TAB: literal unless before a line end */
#define QP_CR	3
#define QP_LF	4
#define QP_BOL	5				/* '.' and 'F': escaped at start of line */

/* GNU range designators (gcc and clang, -std=gnu11) keep this readable */
static const uint8_t qp_class[256] = {
	[0x00 ... 0x08] = QP_ESC,
	['\t'] = QP_WS,
	['\n'] = QP_LF,
	[0x0b ... 0x0c] = QP_ESC,
	['\r'] = QP_CR,
	[0x0e ... 0x1f] = QP_ESC,
	[' '] = QP_WS,
	['!' ... '-'] = QP_LIT,
	['.'] = QP_BOL,
	['/' ... '<'] = QP_LIT,
	['='] = QP_ESC,
	['>' ... 'E'] = QP_LIT,
	['F'] = QP_BOL,
	['G' ... '~'] = QP_LIT,
	[0x7f ... 0xff] = QP_ESC,
};

#define ONES8	UINT64_C(0x0101010101010101)
#define HIGH8	UINT64_C(0x8080808080808080)

/*
 * Number of leading bytes (in memory order) of the 8 in x that are
 * printable ASCII (0x20..0x7e) other than '='.  Each term flags bad bytes
 * in their high bit; carries and borrows only travel towards later bytes,
 * so the first flagged byte is exact even if later flags are not.
 */
static inline size_t
qp_plain_prefix(uint64_t x)
{
	uint64_t	e = x ^ (ONES8 * '=');
	uint64_t	bad;

	bad = (x & HIGH8) |				/* >= 0x80 */
		(~(x + ONES8 * 0x60) & HIGH8) |	/* < 0x20 */
		((x + ONES8) & HIGH8) |		/* 0x7f */
		((e - ONES8) & ~e & HIGH8);	/* '=' */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return bad ? (size_t) __builtin_ctzll(bad) / 8 : 8;
#else
	return bad ? 0 : 8;
#endif
}

/*
 * Quoted-printable (RFC 2045 6.7).  Lines carry at most 75 characters plus
 * the "=" of a soft break, so no line exceeds 76.  Line breaks in the input
 * (LF, CR or CRLF) become CRLF.  No CRLF is added at the end: the CRLF
 * before the next boundary belongs to the boundary.
 *
 * Runs of plain text are copied 8 bytes at a time; everything else goes
 * through the per-byte class table.  If the output would exceed "limit"
 * bytes we stop, restore out and return -1 (the caller uses base64).
 * Returns 1 on success, 0 when out of memory.
 */
static int
qp_encode_limit(const char *in, size_t len, BeBuf *out, size_t limit)
{
	const unsigned char *p = (const unsigned char *) in;
	const unsigned char *end = p + len;
	char	   *o;
	char	   *start;
	char	   *linestart;

	/* worst case: 3 bytes per input byte, plus 3 per 25 for soft breaks */
	if (len > (SIZE_MAX - 16) / 4 || !be_buf_reserve(out, len * 4 + 16))
		return 0;
	start = o = out->data + out->len;
	linestart = o;

	while (p < end)
	{
		unsigned char c;

		/*
		 * Fast path: copy the plain prefix of the next 8 bytes (not at line
		 * start, where '.' and "From " need care).  A copied prefix never
		 * ends in a space: the slow path knows whether a line break follows.
		 */
		if (o > linestart && o - linestart <= 75 - 8 && end - p >= 8)
		{
			uint64_t	x;
			size_t		n;

			memcpy(&x, p, 8);
			n = qp_plain_prefix(x);
			if (n > 0 && p[n - 1] == ' ')
				n--;
			if (n > 0)
			{
				memcpy(o, p, 8);
				o += n;
				p += n;
				continue;
			}
		}

		c = *p;
		switch (qp_class[c])
		{
			case QP_LIT:
		literal:
				if (o - linestart >= 75)
				{
					if ((size_t) (o - start) > limit)
						goto toolong;
					o[0] = '=';
					o[1] = '\r';
					o[2] = '\n';
					o += 3;
					linestart = o;
					if (c == '.' ||
						(c == 'F' && end - p >= 5 && memcmp(p, "From ", 5) == 0))
						goto escape;
				}
				*o++ = (char) c;
				p++;
				continue;
			case QP_WS:
				/* trailing white space would be stripped in transit */
				if (p + 1 == end || p[1] == '\r' || p[1] == '\n')
					goto escape;
				goto literal;
			case QP_BOL:
				/* "." alone on a line ends SMTP DATA; "From " gets munged */
				if (o == linestart &&
					(c == '.' || (end - p >= 5 && memcmp(p, "From ", 5) == 0)))
					goto escape;
				goto literal;
			case QP_CR:
				if ((size_t) (o - start) > limit)
					goto toolong;
				o[0] = '\r';
				o[1] = '\n';
				o += 2;
				linestart = o;
				p += (p + 1 < end && p[1] == '\n') ? 2 : 1;
				continue;
			case QP_LF:
				if ((size_t) (o - start) > limit)
					goto toolong;
				o[0] = '\r';
				o[1] = '\n';
				o += 2;
				linestart = o;
				p++;
				continue;
			default:
		escape:
				if (o - linestart > 72)
				{
					if ((size_t) (o - start) > limit)
						goto toolong;
					o[0] = '=';
					o[1] = '\r';
					o[2] = '\n';
					o += 3;
					linestart = o;
				}
				o[0] = '=';
				o[1] = hexdig[c >> 4];
				o[2] = hexdig[c & 15];
				o += 3;
				p++;
				continue;
		}
	}
	if ((size_t) (o - start) > limit)
		goto toolong;
	out->len = (size_t) (o - out->data);
	out->data[out->len] = '\0';
	return 1;

toolong:
	out->data[out->len] = '\0';
	return -1;
}

bool
mime_qp_encode(const char *in, size_t len, BeBuf *out)
{
	return qp_encode_limit(in, len, out, SIZE_MAX) == 1;
}

int
mime_qp_encode_limit(const char *in, size_t len, BeBuf *out, size_t limit)
{
	return qp_encode_limit(in, len, out, limit);
}

/* bytes that cost 3 in quoted-printable */
static const uint8_t qp_cost2[256] = {
	[0x00 ... 0x08] = 1,
	[0x0b ... 0x0c] = 1,
	[0x0e ... 0x1f] = 1,
	['='] = 1,
	[0x7f ... 0xff] = 1,
};

/* Size prediction from a byte count: table lookups, no branches. */
size_t
mime_qp_size_estimate(const char *in, size_t len)
{
	const unsigned char *p = (const unsigned char *) in;
	size_t		esc = 0;
	size_t		i;

	for (i = 0; i < len; i++)
		esc += qp_cost2[p[i]];
	/* each escape adds 2; soft breaks add 3 per ~75 output chars */
	return len + 2 * esc + 3 * ((len + 2 * esc) / 73);
}

size_t
mime_base64_size(size_t len)
{
	size_t		chars = (len + 2) / 3 * 4;

	return chars ? chars + 2 * ((chars - 1) / 76) : 0;
}

/* base64 of a buffer already in canonical form, 76-char lines */
static bool
base64_raw(const unsigned char *p, size_t len, BeBuf *out)
{
	size_t		chars = (len + 2) / 3 * 4;
	size_t		need = chars + 2 * (chars / 76) + 4;
	char	   *o;
	size_t		i = 0;

	if (len > SIZE_MAX / 2 || !be_buf_reserve(out, need))
		return false;
	o = out->data + out->len;

	/* full lines: 57 input bytes -> 76 chars */
	while (len - i >= 57)
	{
		const unsigned char *q = p + i;
		int			k;

		for (k = 0; k < 19; k++, q += 3)
		{
			uint32_t	v = ((uint32_t) q[0] << 16) | ((uint32_t) q[1] << 8) | q[2];

			o[0] = b64_alphabet[v >> 18];
			o[1] = b64_alphabet[(v >> 12) & 63];
			o[2] = b64_alphabet[(v >> 6) & 63];
			o[3] = b64_alphabet[v & 63];
			o += 4;
		}
		i += 57;
		if (i < len)
		{
			o[0] = '\r';
			o[1] = '\n';
			o += 2;
		}
	}
	for (; len - i >= 3; i += 3)
	{
		uint32_t	v = ((uint32_t) p[i] << 16) | ((uint32_t) p[i + 1] << 8) | p[i + 2];

		o[0] = b64_alphabet[v >> 18];
		o[1] = b64_alphabet[(v >> 12) & 63];
		o[2] = b64_alphabet[(v >> 6) & 63];
		o[3] = b64_alphabet[v & 63];
		o += 4;
	}
	if (len - i == 1)
	{
		o[0] = b64_alphabet[p[i] >> 2];
		o[1] = b64_alphabet[(p[i] & 3) << 4];
		o[2] = '=';
		o[3] = '=';
		o += 4;
	}
	else if (len - i == 2)
	{
		o[0] = b64_alphabet[p[i] >> 2];
		o[1] = b64_alphabet[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
		o[2] = b64_alphabet[(p[i + 1] & 15) << 2];
		o[3] = '=';
		o += 4;
	}
	out->len = (size_t) (o - out->data);
	out->data[out->len] = '\0';
	return true;
}

/* Does the text have any line break that isn't CRLF? */
static bool
needs_canonical(const char *in, size_t len)
{
	const char *p = in;
	const char *end = in + len;

	while (p < end)
	{
		const char *q = memchr(p, '\n', (size_t) (end - p));
		const char *r = memchr(p, '\r', (size_t) (end - p));

		if (q == NULL && r == NULL)
			return false;
		if (q != NULL && (r == NULL || q < r))
			return true;		/* bare LF */
		if (r + 1 == end || r[1] != '\n')
			return true;		/* bare CR */
		p = r + 2;
	}
	return false;
}

#define B64_CHUNK	(57 * 64)

/*
 * base64 of text with line breaks canonicalised to CRLF.  Text that needs
 * it is converted through a stack chunk holding a whole number of 57-byte
 * lines, so no allocation and the 76-char line grid is kept.
 */
bool
mime_base64_encode(const char *in, size_t len, BeBuf *out)
{
	char		chunk[B64_CHUNK + 2];
	size_t		n = 0;
	bool		first = true;
	const char *p = in;
	const char *end = in + len;

	if (!needs_canonical(in, len))
		return base64_raw((const unsigned char *) in, len, out);

	/* reserve for the worst case (every byte a bare LF) up front */
	if (len > SIZE_MAX / 4 || !be_buf_reserve(out, mime_base64_size(len * 2) + 4))
		return false;
	while (p < end)
	{
		char		c = *p++;

		if (c == '\r')
		{
			if (p < end && *p == '\n')
				p++;
			chunk[n++] = '\r';
			chunk[n++] = '\n';
		}
		else if (c == '\n')
		{
			chunk[n++] = '\r';
			chunk[n++] = '\n';
		}
		else
			chunk[n++] = c;
		if (n >= B64_CHUNK)
		{
			if (!first && !be_buf_append(out, "\r\n", 2))
				return false;
			if (!base64_raw((const unsigned char *) chunk, B64_CHUNK, out))
				return false;
			first = false;
			n -= B64_CHUNK;
			if (n > 0)
				chunk[0] = chunk[B64_CHUNK];
		}
	}
	if (n > 0)
	{
		if (!first && !be_buf_append(out, "\r\n", 2))
			return false;
		if (!base64_raw((const unsigned char *) chunk, n, out))
			return false;
	}
	return true;
}

/* ----------------------------------------------------------------
 * HTML to text
 * ----------------------------------------------------------------
 */

#define H2T_HREF_MAX	2048
#define H2T_ALT_MAX		512

typedef struct H2T
{
	BeBuf	   *out;
	size_t		start;			/* out->len on entry */
	int			nl;				/* pending line breaks (0..2) */
	bool		sp;				/* pending space */
	bool		started;		/* any text written */
	int			pre;			/* inside <pre> */
	bool		in_link;
	size_t		link_start;
	char		href[H2T_HREF_MAX + 1];
	size_t		href_len;		/* 0 = none / unusable */
} H2T;

static inline void
h2t_flush(H2T *h)
{
	if (h->started)
	{
		if (h->nl > 0)
			be_buf_append(h->out, "\n\n", (size_t) h->nl);
		else if (h->sp)
			be_buf_putc(h->out, ' ');
	}
	h->nl = 0;
	h->sp = false;
}

static inline void
h2t_text(H2T *h, const char *s, size_t n)
{
	if (n == 0)
		return;
	h2t_flush(h);
	be_buf_append(h->out, s, n);
	h->started = true;
}

static inline void
h2t_break(H2T *h, int n)
{
	if (n > h->nl)
		h->nl = n;
	h->sp = false;
}

/* Encode code point cp as UTF-8 into buf; returns length. */
static size_t
utf8_put(uint32_t cp, char *buf)
{
	if (cp < 0x80)
	{
		buf[0] = (char) cp;
		return 1;
	}
	if (cp < 0x800)
	{
		buf[0] = (char) (0xc0 | (cp >> 6));
		buf[1] = (char) (0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000)
	{
		buf[0] = (char) (0xe0 | (cp >> 12));
		buf[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
		buf[2] = (char) (0x80 | (cp & 0x3f));
		return 3;
	}
	buf[0] = (char) (0xf0 | (cp >> 18));
	buf[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
	buf[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
	buf[3] = (char) (0x80 | (cp & 0x3f));
	return 4;
}

typedef struct HtmlEntity
{
	const char *name;
	uint32_t	cp;
} HtmlEntity;

static const HtmlEntity html_entities[] = {
	{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''},
	{"nbsp", ' '}, {"copy", 0xa9}, {"reg", 0xae}, {"trade", 0x2122},
	{"mdash", 0x2014}, {"ndash", 0x2013}, {"hellip", 0x2026},
	{"laquo", 0xab}, {"raquo", 0xbb}, {"lsquo", 0x2018}, {"rsquo", 0x2019},
	{"ldquo", 0x201c}, {"rdquo", 0x201d}, {"bull", 0x2022}, {"euro", 0x20ac},
	{"middot", 0xb7}, {"pound", 0xa3}, {"yen", 0xa5}, {"cent", 0xa2},
	{"deg", 0xb0}, {"times", 0xd7}, {"divide", 0xf7}, {"sect", 0xa7},
	{"para", 0xb6}, {"iexcl", 0xa1}, {"iquest", 0xbf}, {"shy", 0},
	{"zwnj", 0}, {"zwj", 0}, {"ensp", ' '}, {"emsp", ' '}, {"thinsp", ' '},
	{NULL, 0}
};

/*
 * Decode the entity at p ('&'); returns bytes consumed (0 = not an entity)
 * and the UTF-8 in buf, its length in *blen.  Code points that are controls, surrogates or
 * out of range become U+FFFD or a space so the text stays clean.
 */
static size_t
h2t_entity(const char *p, const char *end, char *buf, size_t *blen)
{
	const char *q = p + 1;
	uint32_t	cp = 0;

	*blen = 0;
	if (q < end && *q == '#')
	{
		int			digits = 0;
		bool		hex = false;

		q++;
		if (q < end && (*q == 'x' || *q == 'X'))
		{
			hex = true;
			q++;
		}
		while (q < end && digits < 8)
		{
			int			d;

			if (*q >= '0' && *q <= '9')
				d = *q - '0';
			else if (hex && *q >= 'a' && *q <= 'f')
				d = *q - 'a' + 10;
			else if (hex && *q >= 'A' && *q <= 'F')
				d = *q - 'A' + 10;
			else
				break;
			cp = cp * (hex ? 16 : 10) + (uint32_t) d;
			digits++;
			q++;
		}
		if (digits == 0 || q >= end || *q != ';')
			return 0;
		q++;
		if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			cp = 0xfffd;
		else if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || cp == 0xa0)
			cp = ' ';
		*blen = utf8_put(cp, buf);
		return (size_t) (q - p);
	}
	else
	{
		char		name[8];
		int			n = 0;
		int			i;

		while (q < end && n < 7 &&
			   ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z')))
			name[n++] = *q++;
		if (n == 0 || q >= end || *q != ';')
			return 0;
		name[n] = '\0';
		q++;
		for (i = 0; html_entities[i].name; i++)
		{
			if (strcmp(html_entities[i].name, name) == 0)
			{
				if (html_entities[i].cp != 0)
					*blen = utf8_put(html_entities[i].cp, buf);
				return (size_t) (q - p);
			}
		}
		return 0;
	}
}

static inline bool
h2t_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static inline char
ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char) (c + 32) : c;
}

/* Case-insensitive search for "</name" from p; returns position or NULL. */
static const char *
h2t_find_close(const char *p, const char *end, const char *name)
{
	size_t		nlen = strlen(name);

	while (p < end)
	{
		const char *lt = memchr(p, '<', (size_t) (end - p));
		size_t		i;

		if (lt == NULL)
			return NULL;
		if ((size_t) (end - lt) >= nlen + 2 && lt[1] == '/')
		{
			for (i = 0; i < nlen; i++)
				if (ascii_lower(lt[2 + i]) != name[i])
					break;
			if (i == nlen &&
				(lt + 2 + nlen == end || !((lt[2 + nlen] >= 'a' && lt[2 + nlen] <= 'z') ||
										   (lt[2 + nlen] >= 'A' && lt[2 + nlen] <= 'Z') ||
										   (lt[2 + nlen] >= '0' && lt[2 + nlen] <= '9'))))
				return lt;
		}
		p = lt + 1;
	}
	return NULL;
}

/* Append attribute value [v, vend) to dst with entities decoded. */
static size_t
h2t_attr_decode(const char *v, const char *vend, char *dst, size_t cap)
{
	size_t		n = 0;

	while (v < vend)
	{
		char		eb[4];
		size_t		el;
		size_t		used;

		if (*v == '&' && (used = h2t_entity(v, vend, eb, &el)) > 0)
		{
			if (n + el > cap)
				return (size_t) -1;
			memcpy(dst + n, eb, el);
			n += el;
			v += used;
			continue;
		}
		if (n + 1 > cap)
			return (size_t) -1;
		/* white space and controls inside URLs/alt text: one space */
		dst[n++] = ((unsigned char) *v < 0x20) ? ' ' : *v;
		v++;
	}
	return n;
}

/* the tags that only matter as layout */
typedef enum H2TKind
{
	TK_OTHER,
	TK_BR,
	TK_PARA,					/* blank line before and after */
	TK_LINE,					/* line break before and after */
	TK_LI,
	TK_CELL,
	TK_A,
	TK_IMG,
	TK_PRE,
	TK_SKIP						/* drop element and content */
} H2TKind;

static H2TKind
h2t_kind(const char *name)
{
	static const char *const para[] = {"p", "h1", "h2", "h3", "h4", "h5", "h6",
		"blockquote", "table", "ul", "ol", "dl", "hr", NULL};
	static const char *const line[] = {"div", "tr", "section", "article",
		"header", "footer", "nav", "dt", "dd", "address", "center", "main",
		"aside", "form", "caption", "figure", "figcaption", "tbody", "thead",
		"tfoot", NULL};
	static const char *const skip[] = {"script", "style", "head", "title",
	"template", "noscript", "svg", "object", "iframe", NULL};
	int			i;

	if (strcmp(name, "br") == 0)
		return TK_BR;
	if (strcmp(name, "li") == 0)
		return TK_LI;
	if (strcmp(name, "td") == 0 || strcmp(name, "th") == 0)
		return TK_CELL;
	if (strcmp(name, "a") == 0)
		return TK_A;
	if (strcmp(name, "img") == 0)
		return TK_IMG;
	if (strcmp(name, "pre") == 0)
		return TK_PRE;
	for (i = 0; para[i]; i++)
		if (strcmp(name, para[i]) == 0)
			return TK_PARA;
	for (i = 0; line[i]; i++)
		if (strcmp(name, line[i]) == 0)
			return TK_LINE;
	for (i = 0; skip[i]; i++)
		if (strcmp(name, skip[i]) == 0)
			return TK_SKIP;
	return TK_OTHER;
}

static bool
h2t_href_usable(const char *href, size_t len)
{
	if (len == 0 || href[0] == '#')
		return false;
	if (len >= 11 && strncasecmp(href, "javascript:", 11) == 0)
		return false;
	return true;
}

static void
h2t_close_link(H2T *h)
{
	const char *txt;
	size_t		tlen;
	const char *url = h->href;
	size_t		ulen = h->href_len;

	h->in_link = false;
	if (ulen == 0)
		return;
	txt = h->out->data ? h->out->data + h->link_start : "";
	tlen = h->out->len - h->link_start;
	while (tlen > 0 && h2t_is_space(*txt))
	{
		txt++;
		tlen--;
	}
	/* link text that already is the URL (or the mailto address) */
	if (tlen == ulen && memcmp(txt, url, ulen) == 0)
		return;
	if (ulen > 7 && strncasecmp(url, "mailto:", 7) == 0 &&
		tlen == ulen - 7 && memcmp(txt, url + 7, tlen) == 0)
		return;
	if (tlen > 0)
	{
		h->sp = true;
		h2t_text(h, "(", 1);
		h2t_text(h, url, ulen);
		h2t_text(h, ")", 1);
	}
	else
		h2t_text(h, url, ulen);
}

int
mime_html_to_text(const char *html, size_t len, BeBuf *out)
{
	H2T			h;
	const char *p = html;
	const char *end = html + len;

	memset(&h, 0, offsetof(H2T, href));
	h.href_len = 0;
	h.out = out;
	h.start = out->len;
	if (html == NULL)
		len = 0, p = end = "";

	/* typical text is ~40% of the html */
	be_buf_reserve(out, len / 2 + 16);

	while (p < end)
	{
		char		c = *p;

		if (c == '<')
		{
			const char *q = p + 1;
			bool		closing = false;
			char		name[16];
			int			nlen = 0;
			H2TKind		kind;
			bool		selfclose = false;
			char		alt[H2T_ALT_MAX + 1];
			size_t		alt_len = 0;

			if (q < end && *q == '!')
			{
				/* comment, doctype or CDATA */
				if (end - q >= 3 && q[1] == '-' && q[2] == '-')
				{
					const char *e = q + 3;

					while (e + 2 < end && !(e[0] == '-' && e[1] == '-' && e[2] == '>'))
						e++;
					p = (e + 2 < end) ? e + 3 : end;
					continue;
				}
				if (end - q >= 8 && memcmp(q, "![CDATA[", 8) == 0)
				{
					const char *e = q + 8;
					const char *s = e;

					while (e + 2 < end && !(e[0] == ']' && e[1] == ']' && e[2] == '>'))
						e++;
					if (e + 2 >= end)
						e = end;
					for (; s < e; s++)
					{
						if (h2t_is_space(*s) && !h.pre)
							h.sp = true;
						else
							h2t_text(&h, s, 1);
					}
					p = (e < end) ? e + 3 : end;
					continue;
				}
				q = memchr(q, '>', (size_t) (end - q));
				p = q ? q + 1 : end;
				continue;
			}
			if (q < end && *q == '?')
			{
				q = memchr(q, '>', (size_t) (end - q));
				p = q ? q + 1 : end;
				continue;
			}
			if (q < end && *q == '/')
			{
				closing = true;
				q++;
			}
			if (q >= end || !((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z')))
			{
				/* not a tag: a literal '<' */
				h2t_text(&h, "<", 1);
				p++;
				continue;
			}
			while (q < end && nlen < 15 &&
				   ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
					(*q >= '0' && *q <= '9')))
				name[nlen++] = ascii_lower(*q++);
			while (q < end && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
							   (*q >= '0' && *q <= '9') || *q == '-' || *q == ':'))
			{
				nlen = 0;		/* overlong or custom name: unknown tag */
				q++;
			}
			name[nlen] = '\0';
			kind = nlen > 0 ? h2t_kind(name) : TK_OTHER;

			/* attributes */
			if (!closing && kind == TK_A)
				h.href_len = 0;
			while (q < end && *q != '>')
			{
				const char *an;
				size_t		anl;
				const char *v = NULL;
				const char *vend = NULL;

				if (h2t_is_space(*q))
				{
					q++;
					continue;
				}
				if (*q == '/')
				{
					if (q + 1 < end && q[1] == '>')
						selfclose = true;
					q++;
					continue;
				}
				an = q;
				while (q < end && !h2t_is_space(*q) && *q != '=' && *q != '>' && *q != '/')
					q++;
				anl = (size_t) (q - an);
				while (q < end && h2t_is_space(*q))
					q++;
				if (q < end && *q == '=')
				{
					q++;
					while (q < end && h2t_is_space(*q))
						q++;
					if (q < end && (*q == '"' || *q == '\''))
					{
						char		quote = *q++;

						v = q;
						while (q < end && *q != quote)
							q++;
						vend = q;
						if (q < end)
							q++;
					}
					else
					{
						v = q;
						while (q < end && !h2t_is_space(*q) && *q != '>')
							q++;
						vend = q;
					}
				}
				if (anl == 0)
				{
					q++;		/* stray '=' or similar */
					continue;
				}
				if (v && !closing && kind == TK_A && anl == 4 &&
					strncasecmp(an, "href", 4) == 0)
				{
					size_t		n = h2t_attr_decode(v, vend, h.href, H2T_HREF_MAX);
					size_t		s = 0;

					if (n == (size_t) -1)
						n = 0;
					/* trim */
					while (s < n && h.href[s] == ' ')
						s++;
					while (n > s && h.href[n - 1] == ' ')
						n--;
					memmove(h.href, h.href + s, n - s);
					n -= s;
					h.href_len = h2t_href_usable(h.href, n) ? n : 0;
				}
				else if (v && !closing && kind == TK_IMG && anl == 3 &&
						 strncasecmp(an, "alt", 3) == 0)
				{
					size_t		n = h2t_attr_decode(v, vend, alt, H2T_ALT_MAX);

					alt_len = (n == (size_t) -1) ? 0 : n;
				}
			}
			p = (q < end) ? q + 1 : end;

			switch (kind)
			{
				case TK_BR:
					if (h.started)
						h.nl = h.nl < 2 ? h.nl + 1 : 2;
					h.sp = false;
					break;
				case TK_PARA:
					h2t_break(&h, 2);
					break;
				case TK_LINE:
					h2t_break(&h, 1);
					break;
				case TK_LI:
					h2t_break(&h, 1);
					if (!closing)
					{
						h2t_text(&h, "-", 1);
						h.sp = true;
					}
					break;
				case TK_CELL:
					if (!closing)
						h.sp = true;
					break;
				case TK_PRE:
					h2t_break(&h, 2);
					if (closing)
						h.pre = h.pre > 0 ? h.pre - 1 : 0;
					else if (!selfclose)
						h.pre++;
					break;
				case TK_A:
					if (closing)
					{
						if (h.in_link)
							h2t_close_link(&h);
					}
					else
					{
						if (h.in_link)
							h2t_close_link(&h);
						if (h.href_len > 0)
						{
							h2t_flush(&h);
							h.in_link = true;
							h.link_start = out->len;
						}
					}
					break;
				case TK_IMG:
					if (alt_len > 0)
					{
						size_t		i;

						h.sp = true;

						for (i = 0; i < alt_len; i++)
						{
							if (alt[i] == ' ')
								h.sp = true;
							else
							{
								size_t		j = i;

								while (j < alt_len && alt[j] != ' ')
									j++;
								h2t_text(&h, alt + i, j - i);
								i = j - 1;
							}
						}
						h.sp = true;
					}
					break;
				case TK_SKIP:
					if (!closing && !selfclose)
					{
						const char *e = h2t_find_close(p, end, name);

						if (e != NULL)
						{
							e = memchr(e, '>', (size_t) (end - e));
							p = e ? e + 1 : end;
						}
						else if (strcmp(name, "head") != 0)
							p = end;	/* unclosed script/style: drop rest */
					}
					break;
				case TK_OTHER:
					break;
			}
			continue;
		}
		if (c == '&')
		{
			char		eb[4];
			size_t		el;
			size_t		used = h2t_entity(p, end, eb, &el);

			if (used > 0)
			{
				if (el == 1 && eb[0] == ' ' && !h.pre)
					h.sp = true;
				else
					h2t_text(&h, eb, el);
				p += used;
				continue;
			}
			h2t_text(&h, "&", 1);
			p++;
			continue;
		}
		if (h2t_is_space(c))
		{
			if (h.pre)
			{
				if (c == '\n')
				{
					if (h.started)
						h.nl = h.nl < 2 ? h.nl + 1 : 2;
					h.sp = false;
				}
				else if (c != '\r')
					h2t_text(&h, " ", 1);
			}
			else
				h.sp = true;
			p++;
			continue;
		}
		else
		{
			/* a run of ordinary text */
			const char *s = p;

			while (p < end && *p != '<' && *p != '&' && !h2t_is_space(*p))
				p++;
			h2t_text(&h, s, (size_t) (p - s));
		}
	}
	if (h.in_link)
		h2t_close_link(&h);
	if (h.started)
		be_buf_putc(out, '\n');
	if (out->data && !out->oom)
		out->data[out->len] = '\0';
	return out->oom ? MIME_ENOMEM : MIME_OK;
}
