/*-------------------------------------------------------------------------
 *
 * tmpl_filter_num.c
 *	  Number filters, and the decimal arithmetic that makes them print as
 *	  Shopify Liquid does.
 *
 * Liquid converts a float operand to a BigDecimal through its shortest
 * decimal form before it adds, subtracts, multiplies or takes a modulo, and
 * converts the exact decimal result back to a float: 19.99 * 0.8 is 15.992,
 * not the binary product 15.991999999999999.  Here a finite double is read
 * as m * 10^e from its shortest round-trip digits (at most 17, so |m| <
 * 10^17) and the operation is done exactly on 128-bit integers; when the
 * exponents are too far apart to align exactly, plain double arithmetic is
 * used, which is what the decimal result would round to anyway.
 *
 *-------------------------------------------------------------------------
 */
#include <float.h>

#include "tmpl_int.h"

typedef __int128 i128;

/* A number as m * 10^e. */
typedef struct Dec
{
	i128		m;
	int			e;
} Dec;

/* The shortest decimal that reads back as d (d finite). */
static void
dec_of_double(double d, Dec *out)
{
	char		tmp[40];
	int			prec;
	const char *s;
	char	   *e;
	int			nd = 0;
	i128		m = 0;
	int			exp10;

	{
		int64_t		sm;
		int			se;

		if (tmpl_short_decimal(d, &sm, &se))
		{
			out->m = sm;
			out->e = se;
			return;
		}
	}

	/*
	 * 15 significant digits always read back when the shortest form has no
	 * more, and are then that form padded with zeros (trimmed below); else
	 * 16 or 17.  Subnormals have fewer digits: search from 1.
	 */
	for (prec = fabs(d) < DBL_MIN ? 1 : 15; prec <= 17; prec++)
	{
		snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, d);
		if (prec == 17 || strtod(tmp, NULL) == d)
			break;
	}
	e = strchr(tmp, 'e');
	for (s = tmp; s < e; s++)
		if (*s >= '0' && *s <= '9')
		{
			m = m * 10 + (*s - '0');
			nd++;
		}
	exp10 = atoi(e + 1) - (nd - 1);
	while (m != 0 && m % 10 == 0)
	{
		m /= 10;
		exp10++;
	}
	out->m = tmp[0] == '-' ? -m : m;
	out->e = exp10;
}

static bool
dec_of(const Value *v, Dec *out)
{
	if (v->t == V_INT)
	{
		out->m = v->u.i;
		out->e = 0;
		return true;
	}
	if (v->t != V_DBL || !isfinite(v->u.d))
		return false;
	dec_of_double(v->u.d, out);
	return true;
}

/* m * 10^e as the nearest double, through its decimal text. */
static double
dec_to_double(const Dec *x)
{
	static const double p10[] = {
		1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
		1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
	};
	char		buf[64];
	char		digits[48];
	int			nd = 0;
	i128		m = x->m < 0 ? -x->m : x->m;

	/* exact operands, one correctly rounded operation: no text needed */
	if (m < ((i128) 1 << 53) && x->e >= -22 && x->e <= 22)
		return x->e >= 0 ? (double) x->m * p10[x->e] : (double) x->m / p10[-x->e];
	do
	{
		digits[nd++] = (char) ('0' + (int) (m % 10));
		m /= 10;
	} while (m > 0);
	{
		int			k = 0;

		if (x->m < 0)
			buf[k++] = '-';
		while (nd > 0)
			buf[k++] = digits[--nd];
		snprintf(buf + k, sizeof(buf) - k, "e%d", x->e);
	}
	return strtod(buf, NULL);
}

/* Bring both to the smaller exponent; false if that would overflow. */
static bool
dec_align(Dec *a, Dec *b)
{
	Dec		   *hi = a->e > b->e ? a : b;
	int			lo_e = a->e > b->e ? b->e : a->e;

	while (hi->e > lo_e)
	{
		if (__builtin_mul_overflow(hi->m, (i128) 10, &hi->m))
			return false;
		hi->e--;
	}
	return true;
}

/*
 * plus, minus, times, modulo with at least one float operand, the Liquid
 * way.  False when the exact route does not apply (the caller then uses
 * double arithmetic).
 */
bool
tmpl_dec_arith(FilterId id, const Value *a, const Value *b, double *res)
{
	Dec			x;
	Dec			y;
	Dec			r;

	if (!dec_of(a, &x) || !dec_of(b, &y))
		return false;
	switch (id)
	{
		case F_TIMES:
			if (__builtin_mul_overflow(x.m, y.m, &r.m))
				return false;
			r.e = x.e + y.e;
			break;
		case F_PLUS:
		case F_MINUS:
			if (!dec_align(&x, &y))
				return false;
			r.e = x.e;
			if (id == F_PLUS ? __builtin_add_overflow(x.m, y.m, &r.m) :
				__builtin_sub_overflow(x.m, y.m, &r.m))
				return false;
			break;
		case F_MODULO:
			if (!dec_align(&x, &y) || y.m == 0)
				return false;
			r.e = x.e;
			r.m = x.m % y.m;
			/* Ruby's modulo takes the divisor's sign */
			if (r.m != 0 && ((r.m < 0) != (y.m < 0)))
				r.m += y.m;
			break;
		default:
			return false;
	}
	*res = dec_to_double(&r);
	return true;
}

/* Liquid's Utils.to_number of the input */
static inline void
num_in(const Value *in, Value *out)
{
	to_number(in, out);
}

/* abs */
int
tmpl_f_abs(TmplRenderCtx *c, const FilterCall *fc, const Value *in,
		   const Value *args, Value *out)
{
	num_in(in, out);
	if (out->t == V_INT)
	{
		if (out->u.i == INT64_MIN)
		{
			out->t = V_DBL;
			out->u.d = 9223372036854775808.0;
		}
		else if (out->u.i < 0)
			out->u.i = -out->u.i;
	}
	else
		out->u.d = fabs(out->u.d);
	return RC_OK;
}

/* at_least / at_most: the larger / smaller of input and argument */
static int
bound(const Value *in, const Value *arg, bool least, Value *out)
{
	Value		a;
	Value		b;
	double		x;
	double		y;

	num_in(in, &a);
	num_in(arg, &b);
	if (a.t == V_INT && b.t == V_INT)
		*out = (least ? a.u.i >= b.u.i : a.u.i <= b.u.i) ? a : b;
	else
	{
		x = num_dbl(&a);
		y = num_dbl(&b);
		*out = (least ? x >= y : x <= y) ? a : b;
	}
	return RC_OK;
}

int
tmpl_f_at_least(TmplRenderCtx *c, const FilterCall *fc, const Value *in,
				const Value *args, Value *out)
{
	return bound(in, &args[0], true, out);
}

int
tmpl_f_at_most(TmplRenderCtx *c, const FilterCall *fc, const Value *in,
			   const Value *args, Value *out)
{
	return bound(in, &args[0], false, out);
}

/* an integral double as an integer, or an error when out of range */
static int
to_integer(TmplRenderCtx *c, double d, Value *out)
{
	if (isnan(d) || d >= 9.2233720368547758e18 || d < -9.2233720368547758e18)
		return rerr(c, TMPL_ERR_RUNTIME, "number out of range for an integer");
	out->t = V_INT;
	out->u.i = (int64_t) d;
	return RC_OK;
}

/* ceil / floor: always an integer, as Liquid's .ceil.to_i */
int
tmpl_f_ceil(TmplRenderCtx *c, const FilterCall *fc, const Value *in,
			const Value *args, Value *out)
{
	Value		a;

	num_in(in, &a);
	if (a.t == V_INT)
	{
		*out = a;
		return RC_OK;
	}
	return to_integer(c, ceil(a.u.d), out);
}

int
tmpl_f_floor(TmplRenderCtx *c, const FilterCall *fc, const Value *in,
			 const Value *args, Value *out)
{
	Value		a;

	num_in(in, &a);
	if (a.t == V_INT)
	{
		*out = a;
		return RC_OK;
	}
	return to_integer(c, floor(a.u.d), out);
}

/*
 * round: to "n" decimal places (default 0, then an integer), half away
 * from zero on the decimal form (BigDecimal's ROUND_HALF_UP).
 */
int
tmpl_f_round(TmplRenderCtx *c, const FilterCall *fc, const Value *in,
			 const Value *args, Value *out)
{
	Value		a;
	int64_t		places = fc->nargs > 0 ? to_int(&args[0]) : 0;
	Dec			x;

	num_in(in, &a);
	if (a.t == V_INT || !isfinite(a.u.d))
	{
		*out = a;
		if (a.t == V_DBL && places == 0)
			return to_integer(c, a.u.d, out);
		/* Integer#round(n) with n < 0 rounds to tens, hundreds... */
		if (a.t == V_INT && places < 0 && places > -19)
		{
			int64_t		p = 1;
			int64_t		r;
			int			k;

			for (k = 0; k < -places; k++)
				p *= 10;
			r = a.u.i / p * p;
			if ((a.u.i % p) * 2 >= p)
				r += p;
			else if ((a.u.i % p) * 2 <= -p)
				r -= p;
			out->u.i = r;
		}
		return RC_OK;
	}
	dec_of_double(a.u.d, &x);
	if (places > 30)
		places = 30;
	if (places < -30)
		places = -30;
	while (x.e < -places)
	{
		i128		q = x.m / 10;
		int			rem = (int) (x.m % 10);

		/* the most significant dropped digit decides: half away from zero */
		if (x.e + 1 == -places)
		{
			if (rem >= 5)
				q++;
			else if (rem <= -5)
				q--;
		}
		x.m = q;
		x.e++;
	}
	/* Float#round to zero or fewer places gives an Integer */
	if (places <= 0)
		return to_integer(c, dec_to_double(&x), out);
	out->t = V_DBL;
	out->u.d = dec_to_double(&x);
	return RC_OK;
}
