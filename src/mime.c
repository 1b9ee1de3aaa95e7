/*-------------------------------------------------------------------------
 *
 * mime.c
 *	  RFC 5322 / MIME message assembly: header encoding and folding,
 *	  address and field validation, multipart structure.
 *
 * Body encoders and HTML-to-text live in mime_encode.c.
 *
 *-------------------------------------------------------------------------
 */
#include "mime.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define HDR_SOFT_MAX	78		/* RFC 5322 2.1.1 SHOULD */
#define MSGID_PART_MAX	200
#define PHRASE_MAX		512		/* display names, after cleaning */

static void
set_err(char *errbuf, size_t errlen, const char *fmt,...)
__attribute__((format(printf, 3, 4)));

static void
set_err(char *errbuf, size_t errlen, const char *fmt,...)
{
	va_list		ap;

	if (errbuf == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
}

/* ----------------------------------------------------------------
 * Cleaning and validation
 * ----------------------------------------------------------------
 */

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t
utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return (n >= 2 && (s[1] & 0xc0) == 0x80) ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef)
	{
		if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0))
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4)
	{
		if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 ||
			(s[3] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))
			return 0;
		return 4;
	}
	return 0;
}

int
mime_header_value_clean(const char *in, size_t len, BeBuf *out)
{
	const unsigned char *p = (const unsigned char *) in;
	const unsigned char *end = p + len;
	size_t		start = out->len;
	size_t		i;

	if (in == NULL)
		return MIME_OK;
	if (!be_buf_reserve(out, len * 3 + 1))
		return MIME_ENOMEM;
	/* skip leading white space and controls */
	while (p < end && (*p <= 0x20 || *p == 0x7f))
		p++;
	while (p < end)
	{
		unsigned char c = *p;
		size_t		sl;

		if (c < 0x20 || c == 0x7f)
		{
			/* CR, LF, NUL, TAB, ...: never allowed through; CRLF -> one space */
			if (c == '\r' && p + 1 < end && p[1] == '\n')
				p++;
			out->data[out->len++] = ' ';
			p++;
			continue;
		}
		if (c < 0x80)
		{
			out->data[out->len++] = (char) c;
			p++;
			continue;
		}
		sl = utf8_seq_len(p, (size_t) (end - p));
		if (sl == 0)
		{
			memcpy(out->data + out->len, "\xEF\xBF\xBD", 3);
			out->len += 3;
			p++;
			continue;
		}
		for (i = 0; i < sl; i++)
			out->data[out->len++] = (char) p[i];
		p += sl;
	}
	while (out->len > start && out->data[out->len - 1] == ' ')
		out->len--;
	out->data[out->len] = '\0';
	return MIME_OK;
}

bool
mime_field_name_valid(const char *name)
{
	size_t		i;

	if (name == NULL || name[0] == '\0')
		return false;
	for (i = 0; name[i]; i++)
	{
		unsigned char c = (unsigned char) name[i];

		if (c < 33 || c > 126 || c == ':')
			return false;
		if (i >= 76)
			return false;
	}
	return true;
}

static inline bool
is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* dot-atom-text: 1*atext *("." 1*atext) */
static bool
dot_atom_valid(const char *s, size_t len)
{
	size_t		i;

	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (i = 0; i < len; i++)
	{
		if (s[i] == '.')
		{
			if (s[i + 1] == '.')
				return false;
		}
		else if (!is_atext((unsigned char) s[i]))
			return false;
	}
	return true;
}

/* LDH host name; IDNs must arrive as A-labels (punycode) */
static bool
domain_valid(const char *s, size_t len)
{
	size_t		i;
	size_t		label = 0;

	if (len == 0 || len > 253)
		return false;
	for (i = 0; i < len; i++)
	{
		char		c = s[i];

		if (c == '.')
		{
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '-'))
			return false;
		if (label == 0 && c == '-')
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0 && s[len - 1] != '-';
}

bool
mime_address_valid(const char *addr)
{
	const char *at;
	size_t		len;

	if (addr == NULL)
		return false;
	len = strlen(addr);
	if (len == 0 || len > 254)
		return false;
	at = strrchr(addr, '@');
	if (at == NULL || at == addr || (size_t) (at - addr) > 64)
		return false;
	return dot_atom_valid(addr, (size_t) (at - addr)) &&
		domain_valid(at + 1, len - (size_t) (at - addr) - 1);
}

/* URL characters we let into List-Unsubscribe: visible ASCII minus <>" etc. */
static bool
url_chars_valid(const char *s, size_t len)
{
	size_t		i;

	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '"' ||
			c == '\\' || c == '`' || c == '{' || c == '}' || c == '|' || c == '^')
			return false;
	}
	return true;
}

/* ----------------------------------------------------------------
 * Header encoding
 * ----------------------------------------------------------------
 */

static const char hexdig[] = "0123456789ABCDEF";
static const char b64_alphabet[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* RFC 2047 5(3): the Q characters allowed even inside a phrase */
static inline bool
q_safe(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || c == '!' || c == '*' || c == '+' ||
		c == '-' || c == '/';
}

static inline size_t
q_len(unsigned char c)
{
	return (q_safe(c) || c == ' ') ? 1 : 3;
}

#define EW_PREFIX		"=?UTF-8?"
#define EW_OVERHEAD		12			/* "=?UTF-8?Q?" + "?=" */

bool
mime_encode_words(const char *in, size_t len, size_t col, BeBuf *out)
{
	const unsigned char *p = (const unsigned char *) in;
	const unsigned char *end = p + len;
	size_t		qtotal = 0;
	size_t		i;
	bool		use_q;
	bool		first = true;

	for (i = 0; i < len; i++)
		qtotal += q_len(p[i]);
	use_q = qtotal <= (len + 2) / 3 * 4;

	/* each word is at most 75 chars; 12 of them are overhead */
	if (!be_buf_reserve(out, (use_q ? qtotal : (len + 2) / 3 * 4) +
						(len / 8 + 1) * (EW_OVERHEAD + 3) + 4))
		return false;

	while (p < end || first)
	{
		size_t		maxword = MIME_EW_MAX;
		size_t		room;
		const unsigned char *s = p;
		size_t		used = 0;

		if (first)
		{
			if (col + MIME_EW_MAX > HDR_SOFT_MAX)
				maxword = HDR_SOFT_MAX > col + 24 ? HDR_SOFT_MAX - col : 24;
		}
		else
		{
			be_buf_append(out, "\r\n ", 3);
			maxword = HDR_SOFT_MAX - 1 < MIME_EW_MAX ? HDR_SOFT_MAX - 1 : MIME_EW_MAX;
		}
		if (maxword > MIME_EW_MAX)
			maxword = MIME_EW_MAX;
		room = maxword - EW_OVERHEAD;

		/* take whole UTF-8 characters while they fit */
		while (p < end)
		{
			size_t		sl = utf8_seq_len(p, (size_t) (end - p));
			size_t		cost = 0;
			size_t		k;

			if (sl == 0)
				sl = 1;			/* callers pass cleaned text; be safe */
			if (use_q)
			{
				for (k = 0; k < sl; k++)
					cost += q_len(p[k]);
				if (used + cost > room)
					break;
			}
			else
			{
				size_t		nbytes = (size_t) (p - s) + sl;

				cost = (nbytes + 2) / 3 * 4 - used;
				if (used + cost > room)
					break;
			}
			used += cost;
			p += sl;
		}
		if (p == s && p < end)
		{
			/* cannot happen (room >= 12 fits any character); never loop */
			size_t		sl = utf8_seq_len(p, (size_t) (end - p));

			p += sl ? sl : 1;
		}

		be_buf_append(out, use_q ? EW_PREFIX "Q?" : EW_PREFIX "B?", 10);
		if (use_q)
		{
			const unsigned char *t;

			for (t = s; t < p; t++)
			{
				char		e[3];

				if (q_safe(*t))
					be_buf_putc(out, (char) *t);
				else if (*t == ' ')
					be_buf_putc(out, '_');
				else
				{
					e[0] = '=';
					e[1] = hexdig[*t >> 4];
					e[2] = hexdig[*t & 15];
					be_buf_append(out, e, 3);
				}
			}
		}
		else
		{
			const unsigned char *t = s;

			while (t < p)
			{
				size_t		n = (size_t) (p - t) >= 3 ? 3 : (size_t) (p - t);
				uint32_t	v = (uint32_t) t[0] << 16;
				char		e[4];

				if (n > 1)
					v |= (uint32_t) t[1] << 8;
				if (n > 2)
					v |= t[2];
				e[0] = b64_alphabet[v >> 18];
				e[1] = b64_alphabet[(v >> 12) & 63];
				e[2] = n > 1 ? b64_alphabet[(v >> 6) & 63] : '=';
				e[3] = n > 2 ? b64_alphabet[v & 63] : '=';
				be_buf_append(out, e, 4);
				t += n;
			}
		}
		be_buf_append(out, "?=", 2);
		first = false;
	}
	return !out->oom;
}

static bool
is_ascii(const char *s, size_t len)
{
	size_t		i;

	for (i = 0; i < len; i++)
		if ((unsigned char) s[i] >= 0x80)
			return false;
	return true;
}

/* A literal "=?" would be decoded as an encoded-word by readers. */
static bool
has_ew_start(const char *s, size_t len)
{
	size_t		i;

	for (i = 0; i + 1 < len; i++)
		if (s[i] == '=' && s[i + 1] == '?')
			return true;
	return false;
}

/*
 * Fold cleaned ASCII text at spaces so lines stay within 78 where
 * possible.  Returns false (having written nothing) if some word would
 * push a line past the 998 limit; the caller then encodes instead.
 */
static bool
put_folded_ascii(BeBuf *out, const char *v, size_t len, size_t col, bool *toolong)
{
	size_t		i = 0;
	size_t		c = col;

	*toolong = false;
	/* first pass: feasibility */
	while (i < len)
	{
		size_t		j = i;

		while (j < len && v[j] == ' ')
			j++;
		while (j < len && v[j] != ' ')
			j++;
		if (c + (j - i) > HDR_SOFT_MAX && c > col)
			c = 0;
		c += j - i;
		if (c > MIME_LINE_MAX - 2)
		{
			*toolong = true;
			return true;
		}
		i = j;
	}
	if (!be_buf_reserve(out, len + len / 20 * 2 + 8))
		return false;
	i = 0;
	c = col;
	while (i < len)
	{
		size_t		j = i;

		while (j < len && v[j] == ' ')
			j++;
		while (j < len && v[j] != ' ')
			j++;
		if (c + (j - i) > HDR_SOFT_MAX && c > col)
		{
			be_buf_append(out, "\r\n", 2);
			c = 0;
		}
		be_buf_append(out, v + i, j - i);
		c += j - i;
		i = j;
	}
	return !out->oom;
}

/* unstructured value, already cleaned, after "Name: " at column col */
static bool
put_unstructured_value(BeBuf *out, const char *v, size_t len, size_t col)
{
	if (is_ascii(v, len) && !has_ew_start(v, len))
	{
		bool		toolong;

		if (!put_folded_ascii(out, v, len, col, &toolong))
			return false;
		if (!toolong)
			return true;
	}
	return mime_encode_words(v, len, col, out);
}

static bool
put_unstructured_scratch(BeBuf *out, const char *name, const char *value,
						 size_t len, BeBuf *scratch)
{
	size_t		nlen = strlen(name);

	be_buf_reset(scratch);
	if (mime_header_value_clean(value, len, scratch) != MIME_OK)
		return false;
	be_buf_append(out, name, nlen);
	be_buf_append(out, ": ", 2);
	if (!put_unstructured_value(out, scratch->data ? scratch->data : "",
								scratch->len, nlen + 2))
		return false;
	return be_buf_append(out, "\r\n", 2);
}

bool
mime_put_unstructured(BeBuf *out, const char *name, const char *value, size_t len)
{
	BeBuf		scratch;
	bool		ok;

	be_buf_init(&scratch);
	ok = put_unstructured_scratch(out, name, value ? value : "", value ? len : 0,
								  &scratch);
	be_buf_free(&scratch);
	return ok;
}

/*
 * "display-name <addr>" or bare addr.  The name is cleaned; printable
 * ASCII that fits is sent as a quoted-string, anything else as
 * encoded-words.  "col" is the column the value starts at.
 */
static int
put_address(BeBuf *out, const char *field, const char *addr, const char *name,
			size_t col, BeBuf *scratch, char *errbuf, size_t errlen)
{
	size_t		alen;

	if (!mime_address_valid(addr))
	{
		set_err(errbuf, errlen, "invalid %s address", field);
		return MIME_EINVAL;
	}
	alen = strlen(addr);
	be_buf_reset(scratch);
	if (name && mime_header_value_clean(name, strlen(name), scratch) != MIME_OK)
		return MIME_ENOMEM;
	if (scratch->len > PHRASE_MAX)
	{
		set_err(errbuf, errlen, "%s display name is too long", field);
		return MIME_EINVAL;
	}
	if (scratch->len == 0)
	{
		be_buf_append(out, addr, alen);
		return out->oom ? MIME_ENOMEM : MIME_OK;
	}
	else
	{
		const char *v = scratch->data;
		size_t		vlen = scratch->len;
		size_t		qlen = vlen + 2;
		size_t		i;
		size_t		lastcol;

		for (i = 0; i < vlen; i++)
			if (v[i] == '"' || v[i] == '\\')
				qlen++;
		if (is_ascii(v, vlen) && !has_ew_start(v, vlen) &&
			col + qlen + 2 + alen + 1 <= HDR_SOFT_MAX)
		{
			be_buf_putc(out, '"');
			for (i = 0; i < vlen; i++)
			{
				if (v[i] == '"' || v[i] == '\\')
					be_buf_putc(out, '\\');
				be_buf_putc(out, v[i]);
			}
			be_buf_putc(out, '"');
			lastcol = col + qlen;
		}
		else
		{
			size_t		before = out->len;
			const char *nl;

			if (!mime_encode_words(v, vlen, col, out))
				return MIME_ENOMEM;
			/* column after the last encoded-word */
			nl = out->data + before;
			lastcol = col;
			for (i = before; i < out->len; i++)
			{
				if (out->data[i] == '\n')
				{
					nl = out->data + i + 1;
					lastcol = 0;
				}
			}
			lastcol += (size_t) (out->data + out->len - nl);
		}
		/* FWS before the angle-addr may be a fold */
		if (lastcol + 3 + alen > HDR_SOFT_MAX)
			be_buf_append(out, "\r\n <", 4);
		else
			be_buf_append(out, " <", 2);
		be_buf_append(out, addr, alen);
		be_buf_putc(out, '>');
	}
	return out->oom ? MIME_ENOMEM : MIME_OK;
}

int
mime_format_address(const char *addr, const char *name, BeBuf *out,
					char *errbuf, size_t errlen)
{
	BeBuf		scratch;
	int			rc;

	be_buf_init(&scratch);
	rc = put_address(out, "address", addr, name, 0, &scratch, errbuf, errlen);
	be_buf_free(&scratch);
	return rc;
}

void
mime_format_date(time_t t, char *buf)
{
	static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm	tm;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 < 1900 ||
		tm.tm_year + 1900 > 9999)
	{
		/* out of range for RFC 5322 dates: use the epoch */
		t = 0;
		gmtime_r(&t, &tm);
	}
	/* by hand: strftime depends on the locale, snprintf is slow */
	memcpy(buf, wd[tm.tm_wday], 3);
	buf[3] = ',';
	buf[4] = ' ';
	buf[5] = (char) ('0' + tm.tm_mday / 10);
	buf[6] = (char) ('0' + tm.tm_mday % 10);
	buf[7] = ' ';
	memcpy(buf + 8, mo[tm.tm_mon], 3);
	buf[11] = ' ';
	buf[12] = (char) ('0' + (tm.tm_year + 1900) / 1000);
	buf[13] = (char) ('0' + (tm.tm_year + 1900) / 100 % 10);
	buf[14] = (char) ('0' + (tm.tm_year + 1900) / 10 % 10);
	buf[15] = (char) ('0' + (tm.tm_year + 1900) % 10);
	buf[16] = ' ';
	buf[17] = (char) ('0' + tm.tm_hour / 10);
	buf[18] = (char) ('0' + tm.tm_hour % 10);
	buf[19] = ':';
	buf[20] = (char) ('0' + tm.tm_min / 10);
	buf[21] = (char) ('0' + tm.tm_min % 10);
	buf[22] = ':';
	buf[23] = (char) ('0' + tm.tm_sec / 10);
	buf[24] = (char) ('0' + tm.tm_sec % 10);
	memcpy(buf + 25, " +0000", 7);
}

static int
check_msgid(const MimeMessage *m, char *errbuf, size_t errlen)
{
	size_t		il = m->message_id ? strlen(m->message_id) : 0;
	size_t		dl = m->domain ? strlen(m->domain) : 0;

	if (il == 0 || il > MSGID_PART_MAX || !dot_atom_valid(m->message_id, il))
	{
		set_err(errbuf, errlen, "invalid message_id");
		return MIME_EINVAL;
	}
	if (!domain_valid(m->domain ? m->domain : "", dl))
	{
		set_err(errbuf, errlen, "invalid domain");
		return MIME_EINVAL;
	}
	return MIME_OK;
}

/* http:// or https:// followed by at least one character */
static bool
url_is_http(const char *url, size_t len)
{
	return (len > 8 && strncasecmp(url, "https://", 8) == 0) ||
		(len > 7 && strncasecmp(url, "http://", 7) == 0);
}

/*
 * RFC 8058 one-click (List-Unsubscribe-Post) needs an HTTPS URI; a plain
 * http:// URL still gets a List-Unsubscribe header (RFC 2369), no POST.
 */
static bool
one_click(const MimeMessage *m)
{
	return m->unsubscribe_url && strncasecmp(m->unsubscribe_url, "https://", 8) == 0;
}

/* List-Unsubscribe value, without folding when fold is false */
static int
put_list_unsub(BeBuf *out, const char *url, const char *mailto, bool fold,
			   char *errbuf, size_t errlen)
{
	size_t		ulen = url ? strlen(url) : 0;
	size_t		mlen = mailto ? strlen(mailto) : 0;
	bool		mailto_prefix = false;

	if (ulen > 0)
	{
		if (!url_is_http(url, ulen) ||
			ulen > MIME_URL_MAX || !url_chars_valid(url, ulen))
		{
			set_err(errbuf, errlen, "invalid unsubscribe_url");
			return MIME_EINVAL;
		}
	}
	if (mlen > 0)
	{
		if (mlen > 7 && strncasecmp(mailto, "mailto:", 7) == 0)
		{
			if (mlen > MIME_URL_MAX || !url_chars_valid(mailto, mlen) ||
				mailto[7] == '?')
			{
				set_err(errbuf, errlen, "invalid unsubscribe_mailto");
				return MIME_EINVAL;
			}
		}
		else if (mime_address_valid(mailto))
			mailto_prefix = true;
		else
		{
			set_err(errbuf, errlen, "invalid unsubscribe_mailto");
			return MIME_EINVAL;
		}
	}
	if (ulen > 0)
	{
		be_buf_putc(out, '<');
		be_buf_append(out, url, ulen);
		be_buf_putc(out, '>');
	}
	if (mlen > 0)
	{
		if (ulen > 0)
			be_buf_append(out, fold ? ",\r\n <" : ", <", fold ? 5 : 3);
		else
			be_buf_putc(out, '<');
		if (mailto_prefix)
			be_buf_append(out, "mailto:", 7);
		be_buf_append(out, mailto, mlen);
		be_buf_putc(out, '>');
	}
	return out->oom ? MIME_ENOMEM : MIME_OK;
}

int
mime_list_unsubscribe_value(const char *url, const char *mailto, BeBuf *out,
							char *errbuf, size_t errlen)
{
	size_t		start = out->len;
	int			rc = put_list_unsub(out, url, mailto, false, errbuf, errlen);

	if (rc != MIME_OK)
	{
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
	}
	return rc;
}

/* headers the builder owns; callers may not add them again */
static bool
reserved_header(const char *name)
{
	static const char *const names[] = {"date", "from", "to", "reply-to",
		"subject", "message-id", "mime-version", "list-unsubscribe",
	"list-unsubscribe-post", "sender", "cc", "bcc", NULL};
	int			i;

	if (strncasecmp(name, "content-", 8) == 0)
		return true;
	for (i = 0; names[i]; i++)
		if (strcasecmp(name, names[i]) == 0)
			return true;
	return false;
}

static int
check_extra(const MimeMessage *m, char *errbuf, size_t errlen)
{
	size_t		i;

	if (m->n_extra > 0 && m->extra == NULL)
	{
		set_err(errbuf, errlen, "extra headers missing");
		return MIME_EINVAL;
	}
	if (m->n_extra > MIME_EXTRA_HEADERS_MAX)
	{
		set_err(errbuf, errlen, "too many extra headers");
		return MIME_EINVAL;
	}
	for (i = 0; i < m->n_extra; i++)
	{
		const char *n = m->extra[i].name;

		if (!mime_field_name_valid(n))
		{
			set_err(errbuf, errlen, "invalid header name");
			return MIME_EINVAL;
		}
		if (reserved_header(n))
		{
			set_err(errbuf, errlen, "header \"%s\" cannot be set as an extra header", n);
			return MIME_EINVAL;
		}
	}
	return MIME_OK;
}

int
mime_header_values(const MimeMessage *m, BeBuf *store, MimeHeader *hdrs,
				   size_t maxhdrs, size_t *nhdrs, char *errbuf, size_t errlen)
{
	size_t		offs[2 * (MIME_EXTRA_HEADERS_MAX + 3)];
	size_t		n = 0;
	size_t		i;
	int			rc;
	bool		has_unsub = (m->unsubscribe_url && m->unsubscribe_url[0]) ||
		(m->unsubscribe_mailto && m->unsubscribe_mailto[0]);

	*nhdrs = 0;
	be_buf_reset(store);
	if ((rc = check_msgid(m, errbuf, errlen)) != MIME_OK ||
		(rc = check_extra(m, errbuf, errlen)) != MIME_OK)
		return rc;

#define ADD_NAME(s) \
	do { offs[2 * n] = store->len; be_buf_append(store, s, strlen(s) + 1); \
		 offs[2 * n + 1] = store->len; } while (0)

	ADD_NAME("Message-ID");
	be_buf_putc(store, '<');
	be_buf_puts(store, m->message_id);
	be_buf_putc(store, '@');
	be_buf_puts(store, m->domain);
	be_buf_putc(store, '>');
	be_buf_append(store, "", 1);
	n++;
	if (has_unsub)
	{
		ADD_NAME("List-Unsubscribe");
		rc = put_list_unsub(store, m->unsubscribe_url, m->unsubscribe_mailto,
							false, errbuf, errlen);
		if (rc != MIME_OK)
			return rc;
		be_buf_append(store, "", 1);
		n++;
		if (one_click(m))
		{
			ADD_NAME("List-Unsubscribe-Post");
			be_buf_append(store, MIME_LIST_UNSUB_POST_VALUE,
						  sizeof(MIME_LIST_UNSUB_POST_VALUE));
			n++;
		}
	}
	for (i = 0; i < m->n_extra; i++)
	{
		const char *v = m->extra[i].value ? m->extra[i].value : "";

		ADD_NAME(m->extra[i].name);
		if (mime_header_value_clean(v, strlen(v), store) != MIME_OK)
			return MIME_ENOMEM;
		be_buf_append(store, "", 1);
		n++;
	}
#undef ADD_NAME
	if (store->oom)
		return MIME_ENOMEM;
	if (n > maxhdrs)
	{
		set_err(errbuf, errlen, "too many headers for the output array");
		return MIME_EINVAL;
	}
	for (i = 0; i < n; i++)
	{
		hdrs[i].name = store->data + offs[2 * i];
		hdrs[i].value = store->data + offs[2 * i + 1];
	}
	*nhdrs = n;
	return MIME_OK;
}

/* ----------------------------------------------------------------
 * The message
 * ----------------------------------------------------------------
 */

static uint64_t
fnv1a64(const char *s, uint64_t h)
{
	while (*s)
	{
		h ^= (unsigned char) *s++;
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

#define QP_SAMPLE	1024

/*
 * Body part headers + encoded body.  Quoted-printable unless base64 is
 * shorter: a byte count over the first QP_SAMPLE bytes catches mostly
 * non-Latin text up front; otherwise QP runs with the base64 size as its
 * limit and gives up if it would be longer, so typical ASCII-heavy HTML
 * costs a single pass.
 */
static bool
put_body(BeBuf *out, const char *ctype, const char *body, size_t len,
		 bool last)
{
	size_t		b64 = mime_base64_size(len + len / 40);
	size_t		sample = len < QP_SAMPLE ? len : QP_SAMPLE;
	size_t		mark;
	int			rc = -1;

	be_buf_append(out, "Content-Type: ", 14);
	be_buf_puts(out, ctype);
	be_buf_append(out, "; charset=utf-8\r\n", 17);
	mark = out->len;
	if (mime_qp_size_estimate(body, sample) <= mime_base64_size(sample + sample / 40))
	{
		be_buf_puts(out, "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
		rc = mime_qp_encode_limit(body, len, out, b64);
		if (rc == 0)
			return false;
		if (rc < 0)
		{
			out->len = mark;
			out->data[mark] = '\0';
		}
	}
	if (rc > 0)
	{
		/*
		 * A single-part message has no boundary to own the final CRLF: end
		 * with a soft break instead, so the message ends in CRLF (as SMTP
		 * wants) yet decodes to exactly the input.
		 */
		if (last)
		{
			if (len == 0 || body[len - 1] == '\n' || body[len - 1] == '\r')
				return true;
			return be_buf_append(out, "=\r\n", 3);
		}
	}
	else
	{
		be_buf_puts(out, "Content-Transfer-Encoding: base64\r\n\r\n");
		if (!mime_base64_encode(body, len, out))
			return false;
	}
	return be_buf_append(out, "\r\n", 2);
}

static int
build(const MimeMessage *m, BeBuf *out, BeBuf *scratch,
	  char *errbuf, size_t errlen)
{
	char		date[32];
	char		boundary[40];
	const char *html = m->html ? m->html : "";
	size_t		html_len = m->html_len ? m->html_len : strlen(html);
	const char *text = m->text ? m->text : "";
	size_t		text_len = m->text_len ? m->text_len : strlen(text);
	int			rc;
	size_t		i;

	if ((rc = check_msgid(m, errbuf, errlen)) != MIME_OK ||
		(rc = check_extra(m, errbuf, errlen)) != MIME_OK)
		return rc;

	/* rough size so that the common case grows the buffer once */
	if (!be_buf_reserve(out, 1024 + html_len + html_len / 8 + text_len + text_len / 8))
		return MIME_ENOMEM;

	mime_format_date(m->date, date);
	be_buf_append(out, "Date: ", 6);
	be_buf_puts(out, date);
	be_buf_append(out, "\r\nFrom: ", 8);
	if ((rc = put_address(out, "from", m->from_email, m->from_name, 6,
						  scratch, errbuf, errlen)) != MIME_OK)
		return rc;
	be_buf_append(out, "\r\nTo: ", 6);
	if ((rc = put_address(out, "to", m->to_email, m->to_name, 4,
						  scratch, errbuf, errlen)) != MIME_OK)
		return rc;
	be_buf_append(out, "\r\n", 2);
	if (m->reply_to && m->reply_to[0])
	{
		be_buf_append(out, "Reply-To: ", 10);
		if ((rc = put_address(out, "reply_to", m->reply_to, m->reply_to_name, 10,
							  scratch, errbuf, errlen)) != MIME_OK)
			return rc;
		be_buf_append(out, "\r\n", 2);
	}
	if (!put_unstructured_scratch(out, "Subject", m->subject ? m->subject : "",
								  m->subject ? strlen(m->subject) : 0, scratch))
		return MIME_ENOMEM;
	be_buf_append(out, "Message-ID: <", 13);
	be_buf_puts(out, m->message_id);
	be_buf_putc(out, '@');
	be_buf_puts(out, m->domain);
	be_buf_append(out, ">\r\nMIME-Version: 1.0\r\n", 22);

	if ((m->unsubscribe_url && m->unsubscribe_url[0]) ||
		(m->unsubscribe_mailto && m->unsubscribe_mailto[0]))
	{
		be_buf_append(out, "List-Unsubscribe: ", 18);
		if ((rc = put_list_unsub(out, m->unsubscribe_url, m->unsubscribe_mailto,
								 true, errbuf, errlen)) != MIME_OK)
			return rc;
		be_buf_append(out, "\r\n", 2);
		if (one_click(m))
			be_buf_puts(out, "List-Unsubscribe-Post: " MIME_LIST_UNSUB_POST_VALUE "\r\n");
	}
	for (i = 0; i < m->n_extra; i++)
	{
		const char *v = m->extra[i].value ? m->extra[i].value : "";

		if (!put_unstructured_scratch(out, m->extra[i].name, v, strlen(v), scratch))
			return MIME_ENOMEM;
	}

	/* derive a text part when the template has none */
	if (text_len == 0 && html_len > 0 && !m->no_derive_text)
	{
		be_buf_reset(scratch);
		if ((rc = mime_html_to_text(html, html_len, scratch)) != MIME_OK)
			return rc;
		text = scratch->data ? scratch->data : "";
		text_len = scratch->len;
	}

	if (text_len > 0 && html_len > 0)
	{
		/*
		 * Encoded bodies never contain "=_" (QP writes '=' only before hex
		 * digits or CRLF, base64 only as final padding), so a boundary
		 * starting with it cannot occur in a part.  The hash only makes it
		 * look different per message.
		 */
		uint64_t	h = fnv1a64(m->message_id, UINT64_C(0xcbf29ce484222325));
		int			k;

		memcpy(boundary, "=_be_", 5);
		for (k = 0; k < 16; k++)
			boundary[5 + k] = hexdig[(h >> (60 - 4 * k)) & 15];
		boundary[21] = '\0';

		be_buf_puts(out, "Content-Type: multipart/alternative; boundary=\"");
		be_buf_append(out, boundary, 21);
		be_buf_append(out, "\"\r\n\r\n--", 7);
		be_buf_append(out, boundary, 21);
		be_buf_append(out, "\r\n", 2);
		if (!put_body(out, "text/plain", text, text_len, false))
			return MIME_ENOMEM;
		be_buf_append(out, "--", 2);
		be_buf_append(out, boundary, 21);
		be_buf_append(out, "\r\n", 2);
		if (!put_body(out, "text/html", html, html_len, false))
			return MIME_ENOMEM;
		be_buf_append(out, "--", 2);
		be_buf_append(out, boundary, 21);
		be_buf_append(out, "--\r\n", 4);
	}
	else if (html_len > 0)
	{
		if (!put_body(out, "text/html", html, html_len, true))
			return MIME_ENOMEM;
	}
	else
	{
		if (!put_body(out, "text/plain", text, text_len, true))
			return MIME_ENOMEM;
	}
	return out->oom ? MIME_ENOMEM : MIME_OK;
}

int
mime_build_ex(const MimeMessage *m, BeBuf *out, BeBuf *scratch,
			  char *errbuf, size_t errlen)
{
	size_t		start = out->len;
	BeBuf		local;
	int			rc;

	if (errbuf && errlen)
		errbuf[0] = '\0';
	if (out->oom)
		return MIME_ENOMEM;
	if (scratch == NULL)
	{
		be_buf_init(&local);
		scratch = &local;
	}
	rc = build(m, out, scratch, errbuf, errlen);
	if (rc == MIME_OK && (out->oom || scratch->oom))
		rc = MIME_ENOMEM;
	if (rc == MIME_ENOMEM)
		set_err(errbuf, errlen, "out of memory");
	if (scratch == &local)
		be_buf_free(&local);
	if (rc != MIME_OK)
	{
		/* leave out as it was; clear oom so the caller can reuse it */
		out->oom = false;
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
	}
	return rc;
}

int
mime_build(const MimeMessage *m, BeBuf *out, char *errbuf, size_t errlen)
{
	return mime_build_ex(m, out, NULL, errbuf, errlen);
}
