/*-------------------------------------------------------------------------
 *
 * tmpl_value.c
 *	  Renderer: errors, working memory, output and value conversions.
 *
 * See src/tmpl/tmpl_int.h for the shared types and the design.
 *
 *-------------------------------------------------------------------------
 */
#include <float.h>

#include "tmpl_int.h"

int
rerr(TmplRenderCtx *c, TmplErrorKind kind, const char *fmt,...)
{
	va_list		ap;

	c->err->kind = kind;
	c->err->line = c->line;
	c->err->column = c->col;
	va_start(ap, fmt);
	vsnprintf(c->err->message, sizeof(c->err->message), fmt, ap);
	va_end(ap);
	return RC_ERR;
}

int
err_output_limit(TmplRenderCtx *c)
{
	return rerr(c, TMPL_ERR_LIMIT, "template output exceeds the limit of %zu bytes",
				c->lim.max_output);
}

int
err_iteration_limit(TmplRenderCtx *c)
{
	return rerr(c, TMPL_ERR_LIMIT, "template loops exceed the limit of %ld iterations",
				c->lim.max_iterations);
}

char *
ralloc(TmplRenderCtx *c, size_t n)
{
	char	   *p;

	if (n > c->lim.max_output + 64)
	{
		err_output_limit(c);
		return NULL;
	}
	p = arena_alloc(&c->arena, n);
	if (p == NULL)
	{
		if (c->arena.over_limit)
			rerr(c, TMPL_ERR_LIMIT, "template needs more than %zu bytes of working memory",
				 c->arena.limit);
		else
			rerr(c, TMPL_ERR_NOMEM, "out of memory");
		return NULL;
	}
	if (c->arena.inuse > c->peak_inuse)
		c->peak_inuse = c->arena.inuse;
	if (n > c->max_req)
		c->max_req = n;
	return p;
}

/* Characters in UTF-8 text: bytes minus continuation bytes, 8 at a time. */
size_t
utf8_len(const char *p, size_t n)
{
	size_t		cont = 0;
	size_t		i = 0;

	for (; i + 8 <= n; i += 8)
	{
		uint64_t	x;

		memcpy(&x, p + i, 8);
		/* continuation byte: bit 7 set and bit 6 clear */
		x = (x & ~(x << 1) & 0x8080808080808080ULL) >> 7;
		cont += (size_t) ((x * 0x0101010101010101ULL) >> 56);
	}
	for (; i < n; i++)
		if (((unsigned char) p[i] & 0xC0) == 0x80)
			cont++;
	return n - cont;
}

/* Byte offset of the first "chars" characters of p. */
size_t
utf8_prefix(const char *p, size_t n, size_t chars)
{
	size_t		i = 0;
	size_t		k = 0;

	/* ASCII runs: one character per byte */
	while (i + 8 <= n && k + 8 <= chars)
	{
		uint64_t	x;

		memcpy(&x, p + i, 8);
		if (x & 0x8080808080808080ULL)
			break;
		i += 8;
		k += 8;
	}
	for (; i < n; i++)
	{
		if (((unsigned char) p[i] & 0xC0) != 0x80)
		{
			if (k == chars)
				return i;
			k++;
		}
	}
	return n;
}

int
fmt_int(char *buf, int64_t i)
{
	char		tmp[24];
	int			k = 0;
	int			n = 0;
	uint64_t	u = i < 0 ? (uint64_t) 0 - (uint64_t) i : (uint64_t) i;

	do
	{
		tmp[k++] = (char) ('0' + u % 10);
		u /= 10;
	} while (u);
	if (i < 0)
		buf[n++] = '-';
	while (k)
		buf[n++] = tmp[--k];
	buf[n] = '\0';
	return n;
}

/* Ruby's Float#to_s: shortest round-trip digits, "1.0", "1.0e+16" */
/*
 * Fast path for the shortest decimal form of a double with at most 6
 * decimals and |d| < 1e15 (prices, percentages): the smallest k for which
 * m = round(d * 10^k) gives back d as m / 10^k (both exact, the quotient
 * correctly rounded) is the shortest form.  False when it does not apply.
 */
bool
tmpl_short_decimal(double d, int64_t *m, int *e)
{
	static const double p10[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6};
	int			k;

	if (!(fabs(d) < 1e15))
		return false;
	for (k = 0; k <= 6; k++)
	{
		double		x = nearbyint(d * p10[k]);

		if (fabs(x) < 9007199254740992.0 && x / p10[k] == d)
		{
			*m = (int64_t) x;
			*e = -k;
			while (*m != 0 && *m % 10 == 0)
			{
				*m /= 10;
				(*e)++;
			}
			return true;
		}
	}
	return false;
}

static int
fmt_dbl(char *buf, double d)
{
	char		tmp[40];
	char		digits[24];
	int			nd = 0;
	int			exp;
	int			prec;
	int			k = 0;
	char	   *e;
	const char *s;
	bool		neg;

	if (isnan(d))
		return snprintf(buf, 40, "NaN");
	if (isinf(d))
		return snprintf(buf, 40, d < 0 ? "-Infinity" : "Infinity");
	if (d == 0)
		return snprintf(buf, 40, signbit(d) ? "-0.0" : "0.0");
	{
		int64_t		m;
		int			me;

		if (tmpl_short_decimal(d, &m, &me))
		{
			/* the same text as below, from the known digits */
			nd = fmt_int(digits, m < 0 ? -m : m);
			neg = m < 0;
			exp = me + nd - 1;
			goto format;
		}
	}

	/*
	 * 15 digits read back unless the shortest form needs 16 or 17 (the
	 * zeros they end with are trimmed below); subnormals: search from 1
	 */
	for (prec = fabs(d) < DBL_MIN ? 1 : 15; prec <= 17; prec++)
	{
		snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, d);
		if (prec == 17 || strtod(tmp, NULL) == d)
			break;
	}
	neg = tmp[0] == '-';
	e = strchr(tmp, 'e');
	exp = atoi(e + 1);
	for (s = tmp + (neg ? 1 : 0); s < e; s++)
		if (*s >= '0' && *s <= '9')
			digits[nd++] = *s;
format:
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	if (neg)
		buf[k++] = '-';
	if (exp >= 16 || exp < -4)
	{
		int			i;

		buf[k++] = digits[0];
		buf[k++] = '.';
		if (nd == 1)
			buf[k++] = '0';
		for (i = 1; i < nd; i++)
			buf[k++] = digits[i];
		k += snprintf(buf + k, 8, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
	}
	else if (exp >= 0)
	{
		int			i;

		for (i = 0; i <= exp; i++)
			buf[k++] = i < nd ? digits[i] : '0';
		buf[k++] = '.';
		if (nd <= exp + 1)
			buf[k++] = '0';
		for (i = exp + 1; i < nd; i++)
			buf[k++] = digits[i];
	}
	else
	{
		int			i;

		buf[k++] = '0';
		buf[k++] = '.';
		for (i = 0; i < -exp - 1; i++)
			buf[k++] = '0';
		for (i = 0; i < nd; i++)
			buf[k++] = digits[i];
	}
	buf[k] = '\0';
	return k;
}

#define MAX_STR_DEPTH 32

/* Append the text form of v to b, bounded by "cap" bytes. */
bool
append_value(BeBuf *b, const Value *v, int depth, size_t cap)
{
	char		num[48];
	int			n;

	if (b->len > cap)
		return false;
	switch (v->t)
	{
		case V_STR:
			return be_buf_append(b, v->u.s.p, v->u.s.n);
		case V_INT:
			n = fmt_int(num, v->u.i);
			return be_buf_append(b, num, (size_t) n);
		case V_DBL:
			n = fmt_dbl(num, v->u.d);
			return be_buf_append(b, num, (size_t) n);
		case V_BOOL:
			return be_buf_puts(b, v->u.b ? "true" : "false");
		case V_ARR:
		case V_LIST:
			{
				int64_t		i;
				int64_t		len = seq_len(v);

				if (depth >= MAX_STR_DEPTH)
					return true;
				for (i = 0; i < len; i++)
				{
					Value		e;

					seq_get(v, i, &e);
					if (!append_value(b, &e, depth + 1, cap))
						return false;
				}
				return true;
			}
		case V_OBJ:
			return be_buf_puts(b, json_object_to_json_string_ext(v->u.j, JSON_C_TO_STRING_PLAIN));
		case V_PAIR:
			{
				Value		e;

				if (depth >= MAX_STR_DEPTH)
					return true;
				json_to_value(v->u.pr.v, &e);
				return be_buf_puts(b, v->u.pr.k) && append_value(b, &e, depth + 1, cap);
			}
		default:
			return true;
	}
}

/*
 * Text form of a value.  Strings are returned as they are; other values
 * are formatted into the arena.
 */
int
str_of(TmplRenderCtx *c, const Value *v, const char **p, size_t *n)
{
	char		num[48];
	int			k;
	char	   *d;

	switch (v->t)
	{
		case V_STR:
			*p = v->u.s.p;
			*n = v->u.s.n;
			return RC_OK;
		case V_NIL:
		case V_EMPTY:
		case V_BLANK:
			*p = "";
			*n = 0;
			return RC_OK;
		case V_BOOL:
			*p = v->u.b ? "true" : "false";
			*n = strlen(*p);
			return RC_OK;
		case V_INT:
		case V_DBL:
			k = v->t == V_INT ? fmt_int(num, v->u.i) : fmt_dbl(num, v->u.d);
			if ((d = ralloc(c, (size_t) k + 1)) == NULL)
				return RC_ERR;
			memcpy(d, num, (size_t) k + 1);
			*p = d;
			*n = (size_t) k;
			return RC_OK;
		case V_RANGE:
			/* Ruby's Range#to_s */
			if ((d = ralloc(c, 48)) == NULL)
				return RC_ERR;
			k = fmt_int(d, v->u.r.lo);
			d[k++] = '.';
			d[k++] = '.';
			k += fmt_int(d + k, v->u.r.hi);
			*p = d;
			*n = (size_t) k;
			return RC_OK;
		case V_ARR:
		case V_LIST:
		case V_OBJ:
		case V_PAIR:
			{
				BeBuf		tmp;
				bool		ok;

				be_buf_init(&tmp);
				ok = append_value(&tmp, v, 0, c->lim.max_output);
				if (!ok || tmp.len > c->lim.max_output)
				{
					bool		oom = tmp.oom;

					be_buf_free(&tmp);
					return oom ? rerr(c, TMPL_ERR_NOMEM, "out of memory") : err_output_limit(c);
				}
				d = ralloc(c, tmp.len + 1);
				if (d && tmp.len)
					memcpy(d, tmp.data, tmp.len);
				if (d)
					d[tmp.len] = '\0';
				*p = d;
				*n = tmp.len;
				be_buf_free(&tmp);
				return d ? RC_OK : RC_ERR;
			}
	}
	return RC_OK;
}

int
emit_value(TmplRenderCtx *c, const Value *v)
{
	const char *p;
	size_t		n;
	char		num[48];

	switch (v->t)
	{
		case V_STR:
			return emit(c, v->u.s.p, v->u.s.n);
		case V_NIL:
		case V_EMPTY:
		case V_BLANK:
			return RC_OK;
		case V_INT:
			return emit(c, num, (size_t) fmt_int(num, v->u.i));
		default:
			if (str_of(c, v, &p, &n) != RC_OK)
				return RC_ERR;
			return emit(c, p, n);
	}
}

/*
 * Ruby's Hash#first: the first [key, value] pair of an object (insertion
 * order, as json-c keeps it), nil when it is empty.
 */
void
obj_first(const Value *in, Value *out)
{
	struct lh_table *tb = json_object_get_object(in->u.j);

	out->t = V_NIL;
	if (tb == NULL || tb->head == NULL)
		return;
	out->t = V_PAIR;
	out->u.pr.k = (const char *) lh_entry_k(tb->head);
	out->u.pr.v = (struct json_object *) lh_entry_v(tb->head);
}

/* Liquid's to_number: ints stay ints, "1.5" becomes a float */
void
to_number(const Value *v, Value *out)
{
	out->t = V_INT;
	out->u.i = 0;
	if (v->t == V_INT || v->t == V_DBL)
		*out = *v;
	else if (v->t == V_STR)
	{
		char		buf[64];
		size_t		n = v->u.s.n < sizeof(buf) - 1 ? v->u.s.n : sizeof(buf) - 1;
		const char *s;
		bool		is_dbl = false;

		memcpy(buf, v->u.s.p, n);
		buf[n] = '\0';
		s = buf;
		while (is_ws(*s))
			s++;
		{
			const char *q = s;

			if (*q == '-' || *q == '+')
				q++;
			while (*q >= '0' && *q <= '9')
				q++;
			if (q > s && *q == '.' && q[1] >= '0' && q[1] <= '9')
				is_dbl = true;
		}
		if (is_dbl)
		{
			out->t = V_DBL;
			out->u.d = strtod(s, NULL);
		}
		else
		{
			long long	i = strtoll(s, NULL, 10);

			out->u.i = i;
		}
	}
}

int64_t
to_int(const Value *v)
{
	Value		n;

	to_number(v, &n);
	if (n.t == V_DBL)
	{
		if (isnan(n.u.d))
			return 0;
		if (n.u.d >= 9.2e18)
			return INT64_MAX;
		if (n.u.d <= -9.2e18)
			return INT64_MIN;
		return (int64_t) n.u.d;
	}
	return n.u.i;
}

