/*-------------------------------------------------------------------------
 *
 * tmpl_filter_str.c
 *	  String filters added for Liquid conformance: replace_last and
 *	  remove_last, url_decode, the base64 family, strip_html and slice.
 *
 * Each takes the text form of its input (their FilterDef rows are marked
 * "text") and writes its result into the render arena.
 *
 *-------------------------------------------------------------------------
 */
#include "tmpl_int.h"

static const char b64std[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64url[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static const char *
last_sub(const char *h, size_t hn, const char *nd, size_t nn)
{
	size_t		i;

	if (nn > hn)
		return NULL;
	for (i = hn - nn + 1; i-- > 0;)
		if (memcmp(h + i, nd, nn) == 0)
			return h + i;
	return NULL;
}

/* replace_last / remove_last */
int
tmpl_f_replace_last(TmplRenderCtx *c, const FilterCall *fc, const Value *in,
					const Value *args, Value *out)
{
	const char *s = in->u.s.p;
	size_t		n = in->u.s.n;
	const char *pat;
	size_t		pn;
	const char *rep = "";
	size_t		rn = 0;
	const char *at;
	char	   *d;
	size_t		pre;

	if (str_of(c, &args[0], &pat, &pn) != RC_OK)
		return RC_ERR;
	if (fc->id == F_REPLACE_LAST && str_of(c, &args[1], &rep, &rn) != RC_OK)
		return RC_ERR;
	if ((at = last_sub(s, n, pat, pn)) == NULL)
	{
		*out = *in;
		return RC_OK;
	}
	pre = (size_t) (at - s);
	if ((d = ralloc(c, n - pn + rn + 1)) == NULL)
		return RC_ERR;
	memcpy(d, s, pre);
	memcpy(d + pre, rep, rn);
	memcpy(d + pre + rn, at + pn, n - pre - pn);
	d[n - pn + rn] = '\0';
	set_str(out, d, n - pn + rn);
	return RC_OK;
}

static int
hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* true if p[0..n) is valid UTF-8 */
static bool
utf8_valid(const unsigned char *p, size_t n)
{
	size_t		i = 0;

	while (i < n)
	{
		unsigned char ch = p[i];
		int			len;
		uint32_t	cp;
		int			k;

		if (ch < 0x80)
		{
			i++;
			continue;
		}
		if (ch >= 0xC2 && ch <= 0xDF)
			len = 2, cp = ch & 0x1F;
		else if (ch >= 0xE0 && ch <= 0xEF)
			len = 3, cp = ch & 0x0F;
		else if (ch >= 0xF0 && ch <= 0xF4)
			len = 4, cp = ch & 0x07;
		else
			return false;
		if (n - i < (size_t) len)
			return false;
		for (k = 1; k < len; k++)
		{
			if ((p[i + k] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3F);
		}
		if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
			(len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
			return false;
		i += len;
	}
	return true;
}

/* url_decode: "+" is a space, %XX a byte; the result must be UTF-8 */
int
tmpl_f_url_decode(TmplRenderCtx *c, const FilterCall *fc, const Value *in,
				  const Value *args, Value *out)
{
	const char *s = in->u.s.p;
	size_t		n = in->u.s.n;
	char	   *d = ralloc(c, n + 1);
	size_t		i;
	size_t		k = 0;

	if (d == NULL)
		return RC_ERR;
	for (i = 0; i < n; i++)
	{
		if (s[i] == '+')
			d[k++] = ' ';
		else if (s[i] == '%' && i + 2 < n + 0 && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0)
		{
			d[k++] = (char) (hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		}
		else
			d[k++] = s[i];
	}
	d[k] = '\0';
	if (!utf8_valid((const unsigned char *) d, k))
		return rerr(c, TMPL_ERR_RUNTIME, "url_decode: invalid byte sequence in UTF-8");
	set_str(out, d, k);
	return RC_OK;
}

static int
b64_encode(TmplRenderCtx *c, const Value *in, const char *alpha, Value *out)
{
	const unsigned char *s = (const unsigned char *) in->u.s.p;
	size_t		n = in->u.s.n;
	size_t		olen = (n + 2) / 3 * 4;
	char	   *d = ralloc(c, olen + 1);
	size_t		i;
	size_t		k = 0;

	if (d == NULL)
		return RC_ERR;
	for (i = 0; i + 2 < n; i += 3)
	{
		uint32_t	v = ((uint32_t) s[i] << 16) | ((uint32_t) s[i + 1] << 8) | s[i + 2];

		d[k++] = alpha[v >> 18];
		d[k++] = alpha[(v >> 12) & 63];
		d[k++] = alpha[(v >> 6) & 63];
		d[k++] = alpha[v & 63];
	}
	if (i < n)
	{
		uint32_t	v = (uint32_t) s[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t) s[i + 1] << 8;
		d[k++] = alpha[v >> 18];
		d[k++] = alpha[(v >> 12) & 63];
		d[k++] = i + 1 < n ? alpha[(v >> 6) & 63] : '=';
		d[k++] = '=';
	}
	d[k] = '\0';
	set_str(out, d, k);
	return RC_OK;
}

/*
 * Strict decoding as Ruby's strict_decode64 (standard alphabet, padding
 * required) or urlsafe_decode64 (URL alphabet, padding optional); the
 * result must be UTF-8 to be output as text.
 */
static int
b64_decode(TmplRenderCtx *c, const FilterCall *fc, const Value *in, bool url, Value *out)
{
	const char *s = in->u.s.p;
	size_t		n = in->u.s.n;
	const char *alpha = url ? b64url : b64std;
	char	   *d = ralloc(c, n / 4 * 3 + 4);
	size_t		i;
	size_t		k = 0;
	size_t		pad = 0;
	uint32_t	acc = 0;
	int			bits = 0;

	if (d == NULL)
		return RC_ERR;
	if (url && n % 4 != 0)
		pad = 4 - n % 4;		/* padding may be left out */
	if (n % 4 == 1 || (!url && n % 4 != 0))
		goto bad;
	for (i = 0; i < n; i++)
	{
		const char *q;

		if (s[i] == '=')
		{
			/* only at the end, at most two */
			size_t		rest = n - i;

			if (rest > 2 || (rest == 2 && s[i + 1] != '='))
				goto bad;
			if (url && pad)
				goto bad;
			break;
		}
		if ((q = memchr(alpha, s[i], 64)) == NULL || s[i] == '\0')
			goto bad;
		acc = (acc << 6) | (uint32_t) (q - alpha);
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			d[k++] = (char) ((acc >> bits) & 0xFF);
		}
	}
	/* leftover bits must be zero, as strict decoding requires */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		goto bad;
	d[k] = '\0';
	if (!utf8_valid((const unsigned char *) d, k))
		return rerr(c, TMPL_ERR_RUNTIME, "%s: the decoded bytes are not UTF-8 text",
					fc->def->name);
	set_str(out, d, k);
	return RC_OK;
bad:
	return rerr(c, TMPL_ERR_RUNTIME, "invalid base64 provided to %s", fc->def->name);
}

int
tmpl_f_base64(TmplRenderCtx *c, const FilterCall *fc, const Value *in,
			  const Value *args, Value *out)
{
	switch (fc->id)
	{
		case F_BASE64_ENCODE:
			return b64_encode(c, in, b64std, out);
		case F_BASE64_URL_SAFE_ENCODE:
			return b64_encode(c, in, b64url, out);
		case F_BASE64_DECODE:
			return b64_decode(c, fc, in, false, out);
		default:
			return b64_decode(c, fc, in, true, out);
	}
}

/* case-insensitive prefix test of an ASCII word */
static bool
ci_prefix(const char *p, const char *end, const char *w)
{
	size_t		n = strlen(w);

	return (size_t) (end - p) >= n && strncasecmp(p, w, n) == 0;
}

/*
 * strip_html, as Liquid: drop <script>...</script>, <style>...</style> and
 * <!-- ... --> with their content, then every other <...> tag.
 */
int
tmpl_f_strip_html(TmplRenderCtx *c, const FilterCall *fc, const Value *in,
				  const Value *args, Value *out)
{
	const char *s = in->u.s.p;
	const char *end = s + in->u.s.n;
	char	   *d = ralloc(c, in->u.s.n + 1);
	size_t		k = 0;

	if (d == NULL)
		return RC_ERR;
	while (s < end)
	{
		const char *close = NULL;

		if (*s != '<')
		{
			d[k++] = *s++;
			continue;
		}
		if (ci_prefix(s, end, "<!--"))
		{
			close = find_sub(s + 4, (size_t) (end - s - 4), "-->", 3);
			if (close)
				close += 3;
		}
		else if (ci_prefix(s, end, "<script") || ci_prefix(s, end, "<style"))
		{
			const char *endtag = ci_prefix(s, end, "<script") ? "</script" : "</style";
			const char *q;

			for (q = s + 1; q < end && !ci_prefix(q, end, endtag); q++)
				;
			if (q < end)
				close = memchr(q, '>', (size_t) (end - q));
			if (close)
				close++;
		}
		if (close == NULL)
		{
			close = memchr(s + 1, '>', (size_t) (end - s - 1));
			if (close == NULL)
			{
				/* no tag: keep the rest as it is */
				d[k++] = *s++;
				continue;
			}
			close++;
		}
		s = close;
	}
	d[k] = '\0';
	set_str(out, d, k);
	return RC_OK;
}

/* An integer, or a string that is one (Ruby's Integer()); not a float. */
static bool
strict_int(const Value *v, int64_t *out)
{
	char		buf[32];
	char	   *end;
	size_t		n;

	if (v->t == V_INT)
	{
		*out = v->u.i;
		return true;
	}
	if (v->t != V_STR || v->u.s.n == 0 || v->u.s.n >= sizeof(buf))
		return false;
	n = v->u.s.n;
	memcpy(buf, v->u.s.p, n);
	buf[n] = '\0';
	errno = 0;
	*out = strtoll(buf, &end, 10);
	while (*end && is_ws(*end))
		end++;
	return errno == 0 && *end == '\0' && !is_ws(buf[0]);
}

/*
 * slice: "length" characters (default 1) from "offset" (negative: from the
 * end), as Ruby's String#slice; empty when the offset is out of range.
 */
int
tmpl_f_slice(TmplRenderCtx *c, const FilterCall *fc, const Value *in,
			 const Value *args, Value *out)
{
	const char *s;
	size_t		n;
	int64_t		chars;
	int64_t		off;
	int64_t		len = 1;
	size_t		from;
	size_t		to;

	if (!strict_int(&args[0], &off) ||
		(fc->nargs > 1 && args[1].t != V_NIL && !strict_int(&args[1], &len)))
		return rerr(c, TMPL_ERR_RUNTIME, "slice: invalid integer");
	if (seq_len(in) >= 0)
		return tmpl_f_seq_slice(c, in, off, len, out);
	if (str_of(c, in, &s, &n) != RC_OK)
		return RC_ERR;
	chars = (int64_t) utf8_len(s, n);
	if (off < 0)
		off += chars;
	if (off < 0 || off > chars || len < 0)
	{
		set_str(out, "", 0);
		return RC_OK;
	}
	if (len > chars - off)
		len = chars - off;
	from = utf8_prefix(s, n, (size_t) off);
	to = from + utf8_prefix(s + from, n - from, (size_t) len);
	set_str(out, s + from, to - from);
	return RC_OK;
}
