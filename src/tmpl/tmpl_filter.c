/*-------------------------------------------------------------------------
 *
 * tmpl_filter.c
 *	  Comparisons, string helpers and the filters.
 *
 * See src/tmpl/tmpl_int.h for the shared types and the design.
 *
 *-------------------------------------------------------------------------
 */
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "tmpl_int.h"

/* ----------------------------------------------------------------
 * Renderer: filters
 * ----------------------------------------------------------------
 */
static bool
is_empty_value(const Value *v)
{
	switch (v->t)
	{
		case V_STR:
			return v->u.s.n == 0;
		case V_ARR:
			return json_object_array_length(v->u.j) == 0;
		case V_LIST:
			return v->u.l.n == 0;
		case V_OBJ:
			return json_object_object_length(v->u.j) == 0;
		case V_EMPTY:
		case V_BLANK:
			return true;
		default:
			return false;
	}
}

static bool
is_blank_value(const Value *v)
{
	size_t		i;

	switch (v->t)
	{
		case V_NIL:
			return true;
		case V_BOOL:
			return !v->u.b;
		case V_STR:
			for (i = 0; i < v->u.s.n; i++)
				if (!is_ws(v->u.s.p[i]))
					return false;
			return true;
		default:
			return is_empty_value(v);
	}
}

bool
values_equal(const Value *a, const Value *b)
{
	/* the two literals are not equal to each other, as in Liquid */
	if ((a->t == V_EMPTY && b->t == V_BLANK) || (a->t == V_BLANK && b->t == V_EMPTY))
		return false;
	if (b->t == V_EMPTY)
		return is_empty_value(a);
	if (a->t == V_EMPTY)
		return is_empty_value(b);
	if (b->t == V_BLANK)
		return is_blank_value(a);
	if (a->t == V_BLANK)
		return is_blank_value(b);
	if (is_num(a) && is_num(b))
	{
		if (a->t == V_INT && b->t == V_INT)
			return a->u.i == b->u.i;
		return num_dbl(a) == num_dbl(b);
	}
	if (is_list(a) && is_list(b) && (a->t != V_ARR || b->t != V_ARR))
	{
		int64_t		len = seq_len(a);
		int64_t		i;

		if (len != seq_len(b))
			return false;
		for (i = 0; i < len; i++)
		{
			Value		x;
			Value		y;

			seq_get(a, i, &x);
			seq_get(b, i, &y);
			/* lists hold no lists, so this recurses at most once */
			if (!values_equal(&x, &y))
				return false;
		}
		return true;
	}
	if (a->t != b->t)
		return false;
	switch (a->t)
	{
		case V_NIL:
			return true;
		case V_BOOL:
			return a->u.b == b->u.b;
		case V_STR:
			return a->u.s.n == b->u.s.n && memcmp(a->u.s.p, b->u.s.p, a->u.s.n) == 0;
		case V_ARR:
		case V_OBJ:
			return json_object_equal(a->u.j, b->u.j) != 0;
		case V_RANGE:
			/* Ruby's Range#==: same bounds */
			return a->u.r.lo == b->u.r.lo && a->u.r.hi == b->u.r.hi;
		default:
			return false;
	}
}

/* memmem without relying on _GNU_SOURCE */
const char *
find_sub(const char *h, size_t hn, const char *nd, size_t nn)
{
	const char *end;

	if (nn == 0)
		return h;
	if (nn > hn)
		return NULL;
	end = h + hn - nn;
	while (h <= end)
	{
		const char *q = memchr(h, nd[0], (size_t) (end - h) + 1);

		if (q == NULL)
			return NULL;
		if (memcmp(q, nd, nn) == 0)
			return q;
		h = q + 1;
	}
	return NULL;
}

static int
concat(TmplRenderCtx *c, const char *a, size_t an, const char *b, size_t bn, Value *out)
{
	char	   *d;

	if (an + bn > c->lim.max_output)
		return err_output_limit(c);
	if ((d = ralloc(c, an + bn + 1)) == NULL)
		return RC_ERR;
	if (an)
		memcpy(d, a, an);
	if (bn)
		memcpy(d + an, b, bn);
	d[an + bn] = '\0';
	set_str(out, d, an + bn);
	return RC_OK;
}

static int
replace_str(TmplRenderCtx *c, const char *s, size_t n, const char *pat, size_t pn,
			const char *rep, size_t rn, bool first_only, Value *out)
{
	size_t		count = 0;
	size_t		total;
	const char *q;
	const char *p;
	char	   *d;
	size_t		k = 0;

	if (pn == 0)
	{
		set_str(out, s, n);
		return RC_OK;
	}
	for (p = s; (q = find_sub(p, n - (size_t) (p - s), pat, pn)) != NULL; p = q + pn)
	{
		count++;
		if (first_only)
			break;
	}
	if (count == 0)
	{
		set_str(out, s, n);
		return RC_OK;
	}
	/* n - count*pn + count*rn, guarding against overflow */
	if (rn > pn && count > (c->lim.max_output + n) / (rn - pn + 1) + 1)
		return err_output_limit(c);
	total = n - count * pn + count * rn;
	if (total > c->lim.max_output)
		return err_output_limit(c);
	if ((d = ralloc(c, total + 1)) == NULL)
		return RC_ERR;
	p = s;
	while (count-- > 0)
	{
		q = find_sub(p, n - (size_t) (p - s), pat, pn);
		memcpy(d + k, p, (size_t) (q - p));
		k += (size_t) (q - p);
		memcpy(d + k, rep, rn);
		k += rn;
		p = q + pn;
	}
	memcpy(d + k, p, n - (size_t) (p - s));
	k += n - (size_t) (p - s);
	d[k] = '\0';
	set_str(out, d, k);
	return RC_OK;
}

static bool
entity_at(const char *p, const char *end)
{
	const char *q = p + 1;

	if (q < end && *q == '#')
	{
		q++;
		if (q < end && (*q == 'x' || *q == 'X'))
		{
			q++;
			if (q >= end || !isxdigit((unsigned char) *q))
				return false;
			while (q < end && isxdigit((unsigned char) *q))
				q++;
		}
		else
		{
			if (q >= end || !isdigit((unsigned char) *q))
				return false;
			while (q < end && isdigit((unsigned char) *q))
				q++;
		}
	}
	else
	{
		if (q >= end || !isalpha((unsigned char) *q))
			return false;
		while (q < end && isalnum((unsigned char) *q))
			q++;
	}
	return q < end && *q == ';';
}

/* Bytes that need escaping: & < > " ' */
static const unsigned char html_special[256] = {
	['&'] = 1,['<'] = 1,['>'] = 1,['"'] = 1,['\''] = 1
};

#ifndef __SSE2__
static inline uint64_t
swar_eq(uint64_t x, unsigned char ch)
{
	uint64_t	y = x ^ (0x0101010101010101ULL * ch);

	return (y - 0x0101010101010101ULL) & ~y & 0x8080808080808080ULL;
}
#endif

/* Offset of the first byte needing HTML escaping, or n. */
static size_t
find_html_special(const char *s, size_t n)
{
	size_t		i = 0;

#ifdef __SSE2__
	/* 16 bytes per step; this scan runs over most of every email */
	const __m128i amp = _mm_set1_epi8('&');
	const __m128i lt = _mm_set1_epi8('<');
	const __m128i gt = _mm_set1_epi8('>');
	const __m128i dq = _mm_set1_epi8('"');
	const __m128i sq = _mm_set1_epi8('\'');

	for (; i + 16 <= n; i += 16)
	{
		__m128i		x = _mm_loadu_si128((const __m128i *) (s + i));
		__m128i		m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, amp), _mm_cmpeq_epi8(x, lt)),
									 _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, gt),
															   _mm_cmpeq_epi8(x, dq)),
												  _mm_cmpeq_epi8(x, sq)));
		int			bits = _mm_movemask_epi8(m);

		if (bits)
			return i + (size_t) __builtin_ctz((unsigned) bits);
	}
#else
	for (; i + 8 <= n; i += 8)
	{
		uint64_t	x;

		memcpy(&x, s + i, 8);
		if (swar_eq(x, '&') | swar_eq(x, '<') | swar_eq(x, '>') |
			swar_eq(x, '"') | swar_eq(x, '\''))
			break;
	}
#endif
	for (; i < n; i++)
		if (html_special[(unsigned char) s[i]])
			return i;
	return n;
}

static const char *
html_entity(char ch)
{
	switch (ch)
	{
		case '&':
			return "&amp;";
		case '<':
			return "&lt;";
		case '>':
			return "&gt;";
		case '"':
			return "&quot;";
		default:
			return "&#39;";
	}
}

/* The escape filter as the last filter of an output: write straight out. */
int
emit_escaped(TmplRenderCtx *c, const char *s, size_t n)
{
	while (n > 0)
	{
		size_t		k = find_html_special(s, n);
		const char *e;

		if (k > 0 && emit(c, s, k) != RC_OK)
			return RC_ERR;
		if (k == n)
			break;
		e = html_entity(s[k]);
		if (emit(c, e, strlen(e)) != RC_OK)
			return RC_ERR;
		s += k + 1;
		n -= k + 1;
	}
	return RC_OK;
}

static int
html_escape(TmplRenderCtx *c, const char *s, size_t n, bool once, Value *out)
{
	size_t		extra = 0;
	size_t		i;
	char	   *d;
	size_t		k = 0;
	size_t		first = find_html_special(s, n);

	if (first == n)
	{
		set_str(out, s, n);
		return RC_OK;
	}
	for (i = first; i < n; i++)
	{
		switch (s[i])
		{
			case '&':
				if (!(once && entity_at(s + i, s + n)))
					extra += 4;
				break;
			case '<':
			case '>':
				extra += 3;
				break;
			case '"':
			case '\'':
				extra += 4;
				break;
		}
	}
	if (extra == 0)
	{
		set_str(out, s, n);
		return RC_OK;
	}
	if ((d = ralloc(c, n + extra + 1)) == NULL)
		return RC_ERR;
	for (i = 0; i < n; i++)
	{
		const char *r = NULL;

		switch (s[i])
		{
			case '&':
				if (!(once && entity_at(s + i, s + n)))
					r = "&amp;";
				break;
			case '<':
				r = "&lt;";
				break;
			case '>':
				r = "&gt;";
				break;
			case '"':
				r = "&quot;";
				break;
			case '\'':
				r = "&#39;";
				break;
		}
		if (r)
		{
			size_t		rl = strlen(r);

			memcpy(d + k, r, rl);
			k += rl;
		}
		else
			d[k++] = s[i];
	}
	d[k] = '\0';
	set_str(out, d, k);
	return RC_OK;
}

static int
url_encode(TmplRenderCtx *c, const char *s, size_t n, Value *out)
{
	static const char hex[] = "0123456789ABCDEF";
	char	   *d;
	size_t		i;
	size_t		k = 0;

	if ((d = ralloc(c, n * 3 + 1)) == NULL)
		return RC_ERR;
	for (i = 0; i < n; i++)
	{
		unsigned char ch = (unsigned char) s[i];

		if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~')
			d[k++] = (char) ch;
		else if (ch == ' ')
			d[k++] = '+';
		else
		{
			d[k++] = '%';
			d[k++] = hex[ch >> 4];
			d[k++] = hex[ch & 15];
		}
	}
	d[k] = '\0';
	set_str(out, d, k);
	return RC_OK;
}

static int
arith(TmplRenderCtx *c, FilterId id, const Value *in, const Value *arg, Value *out)
{
	Value		a;
	Value		b;

	to_number(in, &a);
	to_number(arg, &b);
	if ((id == F_DIVIDED_BY || id == F_MODULO) &&
		((b.t == V_INT && b.u.i == 0) || (b.t == V_DBL && b.u.d == 0)))
		return rerr(c, TMPL_ERR_RUNTIME, "divided by 0");
	if (a.t == V_INT && b.t == V_INT)
	{
		int64_t		x = a.u.i;
		int64_t		y = b.u.i;
		int64_t		r = 0;
		bool		ovf = false;

		switch (id)
		{
			case F_PLUS:
				ovf = __builtin_add_overflow(x, y, &r);
				break;
			case F_MINUS:
				ovf = __builtin_sub_overflow(x, y, &r);
				break;
			case F_TIMES:
				ovf = __builtin_mul_overflow(x, y, &r);
				break;
			case F_DIVIDED_BY:
				if (x == INT64_MIN && y == -1)
					ovf = true;
				else
				{
					/* Ruby integer division floors */
					r = x / y;
					if (x % y != 0 && ((x < 0) != (y < 0)))
						r--;
				}
				break;
			default:			/* F_MODULO */
				if (y == -1)
					r = 0;
				else
				{
					r = x % y;
					if (r != 0 && ((r < 0) != (y < 0)))
						r += y;
				}
				break;
		}
		if (!ovf)
		{
			out->t = V_INT;
			out->u.i = r;
			return RC_OK;
		}
	}
	if ((a.t == V_DBL || b.t == V_DBL) && id != F_DIVIDED_BY &&
		tmpl_dec_arith(id, &a, &b, &out->u.d))
	{
		out->t = V_DBL;
		return RC_OK;
	}
	{
		double		x = num_dbl(&a);
		double		y = num_dbl(&b);
		double		r;

		switch (id)
		{
			case F_PLUS:
				r = x + y;
				break;
			case F_MINUS:
				r = x - y;
				break;
			case F_TIMES:
				r = x * y;
				break;
			case F_DIVIDED_BY:
				r = x / y;
				break;
			default:
				r = fmod(x, y);
				if (r != 0 && ((r < 0) != (y < 0)))
					r += y;
				break;
		}
		out->t = V_DBL;
		out->u.d = r;
	}
	return RC_OK;
}

/*
 * Case mapping of two-byte UTF-8 letters (U+0080..U+07FF) whose other case
 * is also two bytes, so upcase/downcase keep the length: Latin-1
 * Supplement, Latin Extended-A, Greek and the Cyrillic of U+0400..U+04FF.
 * Letters without a simple one-to-one mapping (e.g. German sharp s, whose
 * upper case is "SS") are left as they are.
 */
static int
cyr_lat_pair(uint32_t cp)
{
	/* ranges where an even code point is upper case and the next lower */
	return (cp >= 0x0100 && cp <= 0x012F) || (cp >= 0x0132 && cp <= 0x0137) ||
		(cp >= 0x014A && cp <= 0x0177) || (cp >= 0x0460 && cp <= 0x0481) ||
		(cp >= 0x048A && cp <= 0x04BF) || (cp >= 0x04D0 && cp <= 0x04FF);
}

static int
lat_odd_pair(uint32_t cp)
{
	/* ranges where an odd code point is upper case and the next lower */
	return (cp >= 0x0139 && cp <= 0x0148) || (cp >= 0x0179 && cp <= 0x017E) ||
		(cp >= 0x04C1 && cp <= 0x04CE);
}

uint32_t
tmpl_upper2(uint32_t cp)
{
	if ((cp >= 0xE0 && cp <= 0xFE && cp != 0xF7) ||
		(cp >= 0x03B1 && cp <= 0x03CB && cp != 0x03C2) || (cp >= 0x0430 && cp <= 0x044F))
		return cp - 0x20;
	if (cp == 0xFF)
		return 0x0178;
	if (cp == 0x03C2)
		return 0x03A3;			/* final sigma */
	if (cp == 0x03AC)
		return 0x0386;
	if (cp >= 0x03AD && cp <= 0x03AF)
		return cp - 0x25;
	if (cp == 0x03CC)
		return 0x038C;
	if (cp == 0x03CD || cp == 0x03CE)
		return cp - 0x3F;
	if (cp >= 0x0450 && cp <= 0x045F)
		return cp - 0x50;
	if (cyr_lat_pair(cp) && (cp & 1))
		return cp - 1;
	if (lat_odd_pair(cp) && !(cp & 1))
		return cp - 1;
	if (cp == 0x04CF)
		return 0x04C0;
	return cp;
}

uint32_t
tmpl_lower2(uint32_t cp)
{
	if ((cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) ||
		(cp >= 0x0391 && cp <= 0x03AB && cp != 0x03A2) || (cp >= 0x0410 && cp <= 0x042F))
		return cp + 0x20;
	if (cp == 0x0178)
		return 0xFF;
	if (cp == 0x0386)
		return 0x03AC;
	if (cp >= 0x0388 && cp <= 0x038A)
		return cp + 0x25;
	if (cp == 0x038C)
		return 0x03CC;
	if (cp == 0x038E || cp == 0x038F)
		return cp + 0x3F;
	if (cp >= 0x0400 && cp <= 0x040F)
		return cp + 0x50;
	if (cyr_lat_pair(cp) && !(cp & 1))
		return cp + 1;
	if (lat_odd_pair(cp) && (cp & 1))
		return cp + 1;
	if (cp == 0x04C0)
		return 0x04CF;
	return cp;
}

/* join of a range: its integers, within the output limit */
static int
join_range(TmplRenderCtx *c, const FilterCall *fc, const Value *in,
		   const Value *args, Value *out)
{
	const char *sep = " ";
	size_t		sn = 1;
	int64_t		len = range_len(in->u.r.lo, in->u.r.hi);
	int64_t		i;
	BeBuf		tmp;
	bool		ok = true;
	char	   *d;

	if (fc->nargs > 0 && str_of(c, &args[0], &sep, &sn) != RC_OK)
		return RC_ERR;
	be_buf_init(&tmp);
	for (i = 0; i < len && ok; i++)
	{
		char		num[24];
		int			k = fmt_int(num, in->u.r.lo + i);

		if (i > 0)
			ok = be_buf_append(&tmp, sep, sn);
		ok = ok && be_buf_append(&tmp, num, (size_t) k) && tmp.len <= c->lim.max_output;
	}
	if (!ok)
	{
		bool		oom = tmp.oom;

		be_buf_free(&tmp);
		return oom ? rerr(c, TMPL_ERR_NOMEM, "out of memory") : err_output_limit(c);
	}
	if ((d = ralloc(c, tmp.len + 1)) != NULL)
	{
		if (tmp.len)
			memcpy(d, tmp.data, tmp.len);
		d[tmp.len] = '\0';
		set_str(out, d, tmp.len);
	}
	be_buf_free(&tmp);
	return d ? RC_OK : RC_ERR;
}

const FilterDef filter_defs[] = {
	{"default", F_DEFAULT, 0, 1, NULL, false},
	{"upcase", F_UPCASE, 0, 0, NULL, false},
	{"downcase", F_DOWNCASE, 0, 0, NULL, false},
	{"capitalize", F_CAPITALIZE, 0, 0, NULL, false},
	{"escape", F_ESCAPE, 0, 0, NULL, false},
	{"h", F_ESCAPE, 0, 0, NULL, false},
	{"escape_once", F_ESCAPE_ONCE, 0, 0, NULL, false},
	{"url_encode", F_URL_ENCODE, 0, 0, NULL, false},
	{"strip", F_STRIP, 0, 0, NULL, false},
	{"lstrip", F_LSTRIP, 0, 0, NULL, false},
	{"rstrip", F_RSTRIP, 0, 0, NULL, false},
	{"strip_newlines", F_STRIP_NEWLINES, 0, 0, NULL, false},
	{"newline_to_br", F_NEWLINE_TO_BR, 0, 0, NULL, false},
	{"truncate", F_TRUNCATE, 0, 2, NULL, false},
	{"truncatewords", F_TRUNCATEWORDS, 0, 2, NULL, false},
	{"append", F_APPEND, 1, 1, NULL, false},
	{"prepend", F_PREPEND, 1, 1, NULL, false},
	{"replace", F_REPLACE, 1, 2, NULL, false},
	{"replace_first", F_REPLACE_FIRST, 1, 2, NULL, false},
	{"remove", F_REMOVE, 1, 1, NULL, false},
	{"remove_first", F_REMOVE_FIRST, 1, 1, NULL, false},
	{"date", F_DATE, 1, 2, NULL, false},
	{"size", F_SIZE, 0, 0, NULL, false},
	{"first", F_FIRST, 0, 0, NULL, false},
	{"last", F_LAST, 0, 0, NULL, false},
	{"join", F_JOIN, 0, 1, NULL, false},
	{"plus", F_PLUS, 1, 1, NULL, false},
	{"minus", F_MINUS, 1, 1, NULL, false},
	{"times", F_TIMES, 1, 1, NULL, false},
	{"divided_by", F_DIVIDED_BY, 1, 1, NULL, false},
	{"modulo", F_MODULO, 1, 1, NULL, false},
	{"abs", F_ABS, 0, 0, tmpl_f_abs, false},
	{"at_least", F_AT_LEAST, 1, 1, tmpl_f_at_least, false},
	{"at_most", F_AT_MOST, 1, 1, tmpl_f_at_most, false},
	{"ceil", F_CEIL, 0, 0, tmpl_f_ceil, false},
	{"floor", F_FLOOR, 0, 0, tmpl_f_floor, false},
	{"round", F_ROUND, 0, 1, tmpl_f_round, false},
	{"replace_last", F_REPLACE_LAST, 2, 2, tmpl_f_replace_last, true},
	{"remove_last", F_REMOVE_LAST, 1, 1, tmpl_f_replace_last, true},
	{"url_decode", F_URL_DECODE, 0, 0, tmpl_f_url_decode, true},
	{"base64_encode", F_BASE64_ENCODE, 0, 0, tmpl_f_base64, true},
	{"base64_decode", F_BASE64_DECODE, 0, 0, tmpl_f_base64, true},
	{"base64_url_safe_encode", F_BASE64_URL_SAFE_ENCODE, 0, 0, tmpl_f_base64, true},
	{"base64_url_safe_decode", F_BASE64_URL_SAFE_DECODE, 0, 0, tmpl_f_base64, true},
	{"strip_html", F_STRIP_HTML, 0, 0, tmpl_f_strip_html, true},
	{"slice", F_SLICE, 1, 2, tmpl_f_slice, false},
	{"split", F_SPLIT, 1, 1, tmpl_f_split, true},
	{"map", F_MAP, 1, 1, tmpl_f_map, false},
	{"where", F_WHERE, 1, 2, tmpl_f_select, false},
	{"reject", F_REJECT, 1, 2, tmpl_f_select, false},
	{"find", F_FIND, 1, 2, tmpl_f_select, false},
	{"find_index", F_FIND_INDEX, 1, 2, tmpl_f_select, false},
	{"has", F_HAS, 1, 2, tmpl_f_select, false},
	{"sort", F_SORT, 0, 1, tmpl_f_sort, false},
	{"sort_natural", F_SORT_NATURAL, 0, 1, tmpl_f_sort, false},
	{"reverse", F_REVERSE, 0, 0, tmpl_f_reverse, false},
	{"uniq", F_UNIQ, 0, 1, tmpl_f_uniq, false},
	{"compact", F_COMPACT, 0, 1, tmpl_f_compact, false},
	{"concat", F_CONCAT, 1, 1, tmpl_f_concat, false},
	{"sum", F_SUM, 0, 1, tmpl_f_sum, false},
	{NULL, 0, 0, 0, NULL, false}
};


/*
 * Ruby's gsub with an empty pattern (Liquid's replace of "" or nil): the
 * replacement before every character and at the end.
 */
static int
replace_empty(TmplRenderCtx *c, const char *s, size_t n, const char *rep, size_t rn,
			  Value *out)
{
	size_t		chars = 0;
	size_t		need;
	size_t		i = 0;
	size_t		k = 0;
	char	   *d;

	/* count characters as the loop below steps over them */
	for (i = 0; i < n; chars++)
	{
		size_t		cl = utf8_prefix(s + i, n - i, 1);

		i += cl ? cl : 1;
	}
	i = 0;
	if (chars + 1 > (c->lim.max_output + 64) / rn)
		return err_output_limit(c);
	need = n + (chars + 1) * rn;
	if ((d = ralloc(c, need + 1)) == NULL)
		return RC_ERR;
	while (i < n)
	{
		size_t		cl = utf8_prefix(s + i, n - i, 1);

		if (cl == 0)
			cl = 1;
		memcpy(d + k, rep, rn);
		k += rn;
		memcpy(d + k, s + i, cl);
		k += cl;
		i += cl;
	}
	memcpy(d + k, rep, rn);
	k += rn;
	Assert(k == need);
	d[k] = '\0';
	set_str(out, d, k);
	return RC_OK;
}

/*
 * Liquid's Utils.to_integer for a length argument: an integer or a string
 * of one (Ruby's Integer()), else an error naming the filter.
 */
static int
int_arg(TmplRenderCtx *c, const Value *v, const char *filter, int64_t *out)
{
	if (v->t == V_INT)
	{
		*out = v->u.i;
		return RC_OK;
	}
	if (v->t == V_STR)
	{
		size_t		i = 0;
		size_t		n = v->u.s.n;
		const char *p = v->u.s.p;
		size_t		digits;

		while (i < n && is_ws(p[i]))
			i++;
		if (i < n && (p[i] == '-' || p[i] == '+'))
			i++;
		for (digits = 0; i < n && p[i] >= '0' && p[i] <= '9'; i++)
			digits++;
		while (i < n && is_ws(p[i]))
			i++;
		if (digits > 0 && digits <= 18 && i == n)
		{
			*out = to_int(v);
			return RC_OK;
		}
	}
	return rerr(c, TMPL_ERR_RUNTIME, "the length of \"%s\" must be an integer", filter);
}

int
apply_filter(TmplRenderCtx *c, const FilterCall *fc, const Value *in,
			 const Value *args, Value *out)
{
	const char *s;
	size_t		n;
	char	   *d;
	size_t		i;

	if (fc->def->fn)
	{
		Value		sv;

		if (!fc->def->text)
			return fc->def->fn(c, fc, in, args, out);
		if (str_of(c, in, &s, &n) != RC_OK)
			return RC_ERR;
		set_str(&sv, s, n);
		return fc->def->fn(c, fc, &sv, args, out);
	}
	switch (fc->id)
	{
		case F_DEFAULT:
			{
				bool		use;

				if (in->t == V_BOOL && !in->u.b)
				{
					/* args[MAX_FILTER_ARGS] holds allow_false when given */
					use = !(fc->allow_false && truthy(&args[MAX_FILTER_ARGS]));
				}
				else
					use = in->t == V_NIL || (is_empty_value(in) && in->t != V_BLANK && in->t != V_EMPTY);
				if (!use)
					*out = *in;
				else if (fc->nargs > 0)
					*out = args[0];
				else
					set_str(out, "", 0);	/* Liquid: default_value = '' */
				return RC_OK;
			}
		case F_SIZE:
			out->t = V_INT;
			if (in->t == V_STR)
				out->u.i = (int64_t) utf8_len(in->u.s.p, in->u.s.n);
			else if (in->t == V_ARR || in->t == V_LIST)
				out->u.i = seq_len(in);
			else if (in->t == V_OBJ)
				out->u.i = json_object_object_length(in->u.j);
			else if (in->t == V_RANGE)
				out->u.i = range_len(in->u.r.lo, in->u.r.hi);
			else if (in->t == V_PAIR)
				out->u.i = 2;
			else
				out->u.i = 0;
			return RC_OK;
		case F_FIRST:
		case F_LAST:
			out->t = V_NIL;
			if (in->t == V_RANGE && in->u.r.hi >= in->u.r.lo)
			{
				out->t = V_INT;
				out->u.i = fc->id == F_FIRST ? in->u.r.lo : in->u.r.hi;
			}
			if (in->t == V_OBJ && fc->id == F_FIRST)
				obj_first(in, out);
			if (in->t == V_PAIR)
			{
				if (fc->id == F_FIRST)
					set_str(out, in->u.pr.k, strlen(in->u.pr.k));
				else
					json_to_value(in->u.pr.v, out);
			}
			if (in->t == V_ARR || in->t == V_LIST)
			{
				int64_t		len = seq_len(in);

				if (len)
					seq_get(in, fc->id == F_FIRST ? 0 : len - 1, out);
			}
			if (in->t == V_STR && in->u.s.n > 0)
			{
				/* Liquid 5: the first or last character of a string */
				size_t		k = utf8_prefix(in->u.s.p, in->u.s.n, 1);

				if (fc->id == F_FIRST)
					set_str(out, in->u.s.p, k);
				else
				{
					size_t		st = in->u.s.n - 1;

					while (st > 0 && ((unsigned char) in->u.s.p[st] & 0xC0) == 0x80)
						st--;
					set_str(out, in->u.s.p + st, in->u.s.n - st);
				}
			}
			return RC_OK;
		case F_PLUS:
		case F_MINUS:
		case F_TIMES:
		case F_DIVIDED_BY:
		case F_MODULO:
			return arith(c, fc->id, in, &args[0], out);
		case F_JOIN:
			if (in->t == V_RANGE)
				return join_range(c, fc, in, args, out);
			if (is_list(in))
			{
				BeBuf		tmp;
				const char *sep = " ";
				size_t		sn = 1;
				int64_t		len = seq_len(in);
				bool		ok = true;

				if (fc->nargs > 0 && str_of(c, &args[0], &sep, &sn) != RC_OK)
					return RC_ERR;
				be_buf_init(&tmp);
				for (i = 0; i < (size_t) len && ok; i++)
				{
					Value		e;

					seq_get(in, (int64_t) i, &e);
					if (i > 0)
						ok = be_buf_append(&tmp, sep, sn);
					ok = ok && append_value(&tmp, &e, 1, c->lim.max_output) &&
						tmp.len <= c->lim.max_output;
				}
				if (!ok)
				{
					bool		oom = tmp.oom;

					be_buf_free(&tmp);
					return oom ? rerr(c, TMPL_ERR_NOMEM, "out of memory") : err_output_limit(c);
				}
				if ((d = ralloc(c, tmp.len + 1)) != NULL)
				{
					if (tmp.len)
						memcpy(d, tmp.data, tmp.len);
					d[tmp.len] = '\0';
					set_str(out, d, tmp.len);
				}
				be_buf_free(&tmp);
				return d ? RC_OK : RC_ERR;
			}
			*out = *in;
			return RC_OK;
		case F_DATE:
			{
				int64_t		secs;
				const char *f;
				size_t		fn;
				int			off;
				char		abbr[16];

				if (in->t == V_NIL || (in->t == V_STR && in->u.s.n == 0) ||
					!value_to_time(c, in, &secs))
				{
					*out = *in;
					return RC_OK;
				}
				if (str_of(c, &args[0], &f, &fn) != RC_OK)
					return RC_ERR;
				if (fn == 0)
				{
					*out = *in;
					return RC_OK;
				}
				if (date_zone(c, fc, args, secs, &off, abbr, sizeof(abbr)) != RC_OK)
					return RC_ERR;
				if ((d = ralloc(c, fn * 16 + 32)) == NULL)
					return RC_ERR;
				n = format_time(d, fn * 16 + 32, f, fn, secs, off, abbr);
				set_str(out, d, n);
				return RC_OK;
			}
		default:
			break;
	}

	/* the remaining filters work on the text form of the input */
	if (str_of(c, in, &s, &n) != RC_OK)
		return RC_ERR;
	switch (fc->id)
	{
		case F_UPCASE:
		case F_DOWNCASE:
		case F_CAPITALIZE:
			if ((d = ralloc(c, n + 1)) == NULL)
				return RC_ERR;
			for (i = 0; i < n;)
			{
				unsigned char ch = (unsigned char) s[i];
				bool		up = fc->id == F_UPCASE || (fc->id == F_CAPITALIZE && i == 0);

				if (ch < 0x80 && i > 0)
				{
					/* a run of ASCII, the common case, without the checks below */
					unsigned char lo = up ? 'a' : 'A';

					do
					{
						d[i++] = (char) ((unsigned) (ch - lo) < 26u ? ch ^ 0x20 : ch);
					} while (i < n && (ch = (unsigned char) s[i]) < 0x80);
				}
				else if (ch < 0x80)
				{
					if (up && ch >= 'a' && ch <= 'z')
						ch -= 32;
					else if (!up && ch >= 'A' && ch <= 'Z')
						ch += 32;
					d[i++] = (char) ch;
				}
				else if (ch >= 0xC2 && ch <= 0xDF && i + 1 < n &&
						 ((unsigned char) s[i + 1] & 0xC0) == 0x80)
				{
					/* two-byte letters map to two-byte letters */
					uint32_t	cp = ((uint32_t) (ch & 0x1F) << 6) | ((unsigned char) s[i + 1] & 0x3F);

					cp = up ? tmpl_upper2(cp) : tmpl_lower2(cp);
					d[i] = (char) (0xC0 | (cp >> 6));
					d[i + 1] = (char) (0x80 | (cp & 0x3F));
					i += 2;
				}
				else
				{
					d[i] = s[i];
					i++;
				}
			}
			d[n] = '\0';
			set_str(out, d, n);
			return RC_OK;
		case F_ESCAPE:
		case F_ESCAPE_ONCE:
			return html_escape(c, s, n, fc->id == F_ESCAPE_ONCE, out);
		case F_URL_ENCODE:
			return url_encode(c, s, n, out);
		case F_STRIP:
		case F_LSTRIP:
		case F_RSTRIP:
			if (fc->id != F_RSTRIP)
				while (n > 0 && is_ws(*s))
					s++, n--;
			if (fc->id != F_LSTRIP)
				while (n > 0 && is_ws(s[n - 1]))
					n--;
			set_str(out, s, n);
			return RC_OK;
		case F_STRIP_NEWLINES:
			return replace_str(c, s, n, "\n", 1, "", 0, false, out) != RC_OK ? RC_ERR :
				replace_str(c, out->u.s.p, out->u.s.n, "\r", 1, "", 0, false, out);
		case F_NEWLINE_TO_BR:
			if (replace_str(c, s, n, "\r\n", 2, "\n", 1, false, out) != RC_OK)
				return RC_ERR;
			return replace_str(c, out->u.s.p, out->u.s.n, "\n", 1, "<br />\n", 7, false, out);
		case F_TRUNCATE:
			{
				int64_t		len = 50;

				const char *ell = "...";
				size_t		elln = 3;
				size_t		ellc;
				int64_t		keep;

				if (fc->nargs > 0 && int_arg(c, &args[0], "truncate", &len) != RC_OK)
					return RC_ERR;
				if (fc->nargs > 1 && str_of(c, &args[1], &ell, &elln) != RC_OK)
					return RC_ERR;
				if (len < 0)
					len = 0;
				/* at most "len" characters: unchanged */
				if ((uint64_t) len >= n || utf8_prefix(s, n, (size_t) len) == n)
				{
					set_str(out, s, n);
					return RC_OK;
				}
				ellc = utf8_len(ell, elln);
				keep = len - (int64_t) ellc;
				if (keep < 0)
					keep = 0;
				return concat(c, s, utf8_prefix(s, n, (size_t) keep), ell, elln, out);
			}
		case F_TRUNCATEWORDS:
			{
				int64_t		words = 15;

				const char *ell = "...";
				size_t		elln = 3;
				int64_t		count = 0;
				size_t		k = 0;

				if (fc->nargs > 0 && int_arg(c, &args[0], "truncatewords", &words) != RC_OK)
					return RC_ERR;
				if (fc->nargs > 1 && str_of(c, &args[1], &ell, &elln) != RC_OK)
					return RC_ERR;
				if (words <= 0)
					words = 1;
				/* count words; stop once we know there are more than "words" */
				for (i = 0; i < n && count <= words;)
				{
					while (i < n && is_ws(s[i]))
						i++;
					if (i < n)
						count++;
					while (i < n && !is_ws(s[i]))
						i++;
				}
				if (count <= words)
				{
					set_str(out, s, n);
					return RC_OK;
				}
				if ((d = ralloc(c, n + elln + 1)) == NULL)
					return RC_ERR;
				count = 0;
				for (i = 0; i < n && count < words;)
				{
					while (i < n && is_ws(s[i]))
						i++;
					if (count > 0)
						d[k++] = ' ';
					while (i < n && !is_ws(s[i]))
						d[k++] = s[i++];
					count++;
				}
				memcpy(d + k, ell, elln);
				k += elln;
				d[k] = '\0';
				set_str(out, d, k);
				return RC_OK;
			}
		case F_APPEND:
		case F_PREPEND:
			{
				const char *a;
				size_t		an;

				if (str_of(c, &args[0], &a, &an) != RC_OK)
					return RC_ERR;
				if (fc->id == F_APPEND)
					return concat(c, s, n, a, an, out);
				return concat(c, a, an, s, n, out);
			}
		case F_REPLACE:
		case F_REPLACE_FIRST:
		case F_REMOVE:
		case F_REMOVE_FIRST:
			{
				const char *pat;
				size_t		pn;
				const char *rep = "";
				size_t		rn = 0;

				if (str_of(c, &args[0], &pat, &pn) != RC_OK)
					return RC_ERR;
				if ((fc->id == F_REPLACE || fc->id == F_REPLACE_FIRST) && fc->nargs > 1 &&
					str_of(c, &args[1], &rep, &rn) != RC_OK)
					return RC_ERR;
				if (pn == 0 && rn > 0 && fc->id == F_REPLACE_FIRST)
					return concat(c, rep, rn, s, n, out);
				if (pn == 0 && rn > 0 && fc->id == F_REPLACE)
					return replace_empty(c, s, n, rep, rn, out);
				return replace_str(c, s, n, pat, pn, rep, rn,
								   fc->id == F_REPLACE_FIRST || fc->id == F_REMOVE_FIRST, out);
			}
		default:
			set_str(out, s, n);
			return RC_OK;
	}
}

