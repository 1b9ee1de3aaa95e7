/*-------------------------------------------------------------------------
 *
 * tmpl_filter_arr.c
 *	  Array filters: split, map, where, reject, find, find_index, has,
 *	  sort, sort_natural, reverse, uniq, compact, concat, sum, and slice of
 *	  an array.
 *
 * Semantics follow Shopify Liquid 5 (lib/liquid/standardfilters.rb): the
 * input goes through InputIterator (nil is empty, an array is flattened, a
 * hash or a scalar is a one-item array, a range is its integers), and
 * "item[property]" follows Ruby's [] on the item's type.
 *
 * Bounded storage: an array built here lives in TmplRenderCtx.lists until
 * the end of the render.  Every item a filter reads counts as one loop
 * iteration and every byte of a string copied into a built array counts as
 * output, so the iteration and output limits bound both the time and the
 * memory, and the specialiser's cost accounting (iterations and output)
 * charges pre-run filters exactly as a plain render does.  The flattened
 * input is a temporary in the statement arena.
 *
 *-------------------------------------------------------------------------
 */
#include "tmpl_int.h"

/* nesting flattened by InputIterator; deeper arrays stay items */
#define FLATTEN_DEPTH 16

/* ----------------------------------------------------------------
 * Input, items and built lists
 * ----------------------------------------------------------------
 */
static int
charge_items(TmplRenderCtx *c, int64_t n)
{
	if (n > c->lim.max_iterations - c->iterations)
	{
		c->iterations = c->lim.max_iterations + 1;
		return err_iteration_limit(c);
	}
	c->iterations += n;
	return RC_OK;
}

static int64_t
flat_count(const Value *v, int depth)
{
	int64_t		len = seq_len(v);
	int64_t		i;
	int64_t		k = 0;

	if (v->t == V_RANGE || depth >= FLATTEN_DEPTH)
		return len;
	for (i = 0; i < len; i++)
	{
		Value		e;

		seq_get(v, i, &e);
		if (is_list(&e))
			k += flat_count(&e, depth + 1);
		else
			k++;
	}
	return k;
}

static int64_t
flat_fill(const Value *v, int depth, Value *dst)
{
	int64_t		len = seq_len(v);
	int64_t		i;
	int64_t		k = 0;

	for (i = 0; i < len; i++)
	{
		Value	   *e = &dst[k];

		seq_get(v, i, e);
		if (is_list(e) && v->t != V_RANGE && depth < FLATTEN_DEPTH)
		{
			Value		sub = *e;

			k += flat_fill(&sub, depth + 1, &dst[k]);
		}
		else
			k++;
	}
	return k;
}

/*
 * Liquid's InputIterator: the items of the input, flattened, in a
 * temporary array.  Each item counts as one iteration.
 */
static int
input_items(TmplRenderCtx *c, const Value *in, Value **items, int64_t *n)
{
	int64_t		k;

	*items = NULL;
	*n = 0;
	if (in->t == V_NIL)
		return RC_OK;
	if (seq_len(in) < 0)
	{
		/* a single value is a list of one (a pair is a list of two) */
		if (charge_items(c, 1) != RC_OK || (*items = (Value *) ralloc(c, sizeof(Value))) == NULL)
			return RC_ERR;
		(*items)[0] = *in;
		*n = 1;
		return RC_OK;
	}
	k = flat_count(in, 0);
	if (charge_items(c, k) != RC_OK)
		return RC_ERR;
	if ((*items = (Value *) ralloc(c, sizeof(Value) * (size_t) (k + 1))) == NULL)
		return RC_ERR;
	*n = flat_fill(in, 0, *items);
	Assert(*n == k);
	return RC_OK;
}

/* Room for n items of a built list, in the list arena. */
static Value *
list_alloc(TmplRenderCtx *c, int64_t n)
{
	Value	   *v = arena_alloc(&c->lists, sizeof(Value) * (size_t) (n + 1));

	if (v == NULL)
		rerr(c, TMPL_ERR_NOMEM, "out of memory");
	return v;
}

/*
 * Store an item in a built list: strings are copied into the list arena
 * (their source may be a statement temporary or a slot buffer that a later
 * assign overwrites) and their bytes count as output.
 */
static int
list_put(TmplRenderCtx *c, Value *dst, const Value *src)
{
	*dst = *src;
	if (src->t == V_STR && src->u.s.n > 0)
	{
		char	   *d;

		if (src->u.s.n > c->lim.max_output - c->produced)
			return err_output_limit(c);
		c->produced += src->u.s.n;
		if ((d = arena_alloc(&c->lists, src->u.s.n + 1)) == NULL)
			return rerr(c, TMPL_ERR_NOMEM, "out of memory");
		memcpy(d, src->u.s.p, src->u.s.n);
		d[src->u.s.n] = '\0';
		dst->u.s.p = d;
	}
	return RC_OK;
}

static void
set_list(Value *out, const Value *items, int64_t n)
{
	out->t = V_LIST;
	out->u.l.v = items;
	out->u.l.n = (size_t) n;
}

/* Copy the selected items (keep[i]) of items[0..n) into a new list. */
static int
build_list(TmplRenderCtx *c, const Value *items, int64_t n, const bool *keep, Value *out)
{
	Value	   *l = list_alloc(c, n);
	int64_t		i;
	int64_t		k = 0;

	if (l == NULL)
		return RC_ERR;
	for (i = 0; i < n; i++)
		if (keep == NULL || keep[i])
			if (list_put(c, &l[k++], &items[i]) != RC_OK)
				return RC_ERR;
	set_list(out, l, k);
	return RC_OK;
}

typedef enum PropRes
{
	PROP_OK,
	PROP_NOMETHOD,				/* the item has no [] (nil, true, false, float) */
	PROP_TYPE					/* [] refuses the property's type */
} PropRes;

/* Ruby's item[property] */
static int
item_prop(TmplRenderCtx *c, const Value *item, const Value *prop, Value *out, PropRes *pr)
{
	*pr = PROP_OK;
	out->t = V_NIL;
	switch (item->t)
	{
		case V_OBJ:
			if (prop->t == V_STR)
			{
				char	   *key = ralloc(c, prop->u.s.n + 1);
				struct json_object *j;

				if (key == NULL)
					return RC_ERR;
				memcpy(key, prop->u.s.p, prop->u.s.n);
				key[prop->u.s.n] = '\0';
				if (json_object_object_get_ex(item->u.j, key, &j))
					json_to_value(j, out);
			}
			return RC_OK;
		case V_STR:
			/* String#[](str): the argument if it is a substring */
			if (prop->t == V_STR)
			{
				if (find_sub(item->u.s.p, item->u.s.n, prop->u.s.p, prop->u.s.n))
					*out = *prop;
			}
			else if (prop->t != V_INT)
				*pr = PROP_TYPE;
			return RC_OK;
		case V_ARR:
		case V_LIST:
		case V_PAIR:
		case V_RANGE:
			if (prop->t == V_INT)
			{
				int64_t		len = seq_len(item);
				int64_t		idx = prop->u.i < 0 ? prop->u.i + len : prop->u.i;

				if (idx >= 0 && idx < len)
					seq_get(item, idx, out);
			}
			else
				*pr = PROP_TYPE;
			return RC_OK;
		case V_INT:
			/* Integer#[]: a bit */
			if (prop->t == V_INT)
			{
				out->t = V_INT;
				out->u.i = prop->u.i < 0 ? 0 : prop->u.i >= 63 ? (item->u.i < 0) :
					(item->u.i >> prop->u.i) & 1;
			}
			else
				*pr = PROP_TYPE;
			return RC_OK;
		default:
			*pr = PROP_NOMETHOD;
			return RC_OK;
	}
}

static int
prop_error(TmplRenderCtx *c, const Value *prop)
{
	const char *p;
	size_t		n;

	if (str_of(c, prop, &p, &n) != RC_OK)
		return RC_ERR;
	return rerr(c, TMPL_ERR_RUNTIME, "cannot select the property '%.*s'",
				(int) (n > 64 ? 64 : n), p);
}

/* ----------------------------------------------------------------
 * The filters
 * ----------------------------------------------------------------
 */

/* split: Ruby's String#split (text input) */
int
tmpl_f_split(TmplRenderCtx *c, const FilterCall *fc, const Value *in,
			 const Value *args, Value *out)
{
	const char *s = in->u.s.p;
	size_t		n = in->u.s.n;
	const char *sep;
	size_t		sn;
	Value	   *l;
	int64_t		k = 0;
	size_t		i;
	bool		awk;

	if (str_of(c, &args[0], &sep, &sn) != RC_OK)
		return RC_ERR;
	awk = sn == 1 && sep[0] == ' ';
	/* at most one item per byte, plus one; the items are charged below */
	if ((l = list_alloc(c, (int64_t) n + 1)) == NULL)
		return RC_ERR;
	if (sn == 0)
	{
		/* each character */
		for (i = 0; i < n;)
		{
			size_t		cl = utf8_prefix(s + i, n - i, 1);
			Value		e;

			if (cl == 0)
				cl = 1;
			set_str(&e, s + i, cl);
			if (list_put(c, &l[k++], &e) != RC_OK)
				return RC_ERR;
			i += cl;
		}
	}
	else
	{
		i = 0;
		if (awk)
			while (i < n && is_ws(s[i]))
				i++;
		while (i <= n && i < n + (awk ? 0 : 1))
		{
			const char *q;
			size_t		end;
			size_t		next;
			Value		e;

			if (awk)
			{
				end = i;
				while (end < n && !is_ws(s[end]))
					end++;
				next = end;
				while (next < n && is_ws(s[next]))
					next++;
			}
			else
			{
				q = find_sub(s + i, n - i, sep, sn);
				end = q ? (size_t) (q - s) : n;
				next = q ? end + sn : n + 1;
			}
			set_str(&e, s + i, end - i);
			if (list_put(c, &l[k++], &e) != RC_OK)
				return RC_ERR;
			if (awk && next >= n)
				break;
			i = next;
		}
		/* Ruby drops trailing empty strings */
		while (k > 0 && l[k - 1].u.s.n == 0)
			k--;
	}
	if (charge_items(c, k) != RC_OK)
		return RC_ERR;
	set_list(out, l, k);
	return RC_OK;
}

/* map: item[property] of each item; items without [] give nil */
int
tmpl_f_map(TmplRenderCtx *c, const FilterCall *fc, const Value *in,
		   const Value *args, Value *out)
{
	Value	   *items;
	Value	   *l;
	int64_t		n;
	int64_t		i;

	if (input_items(c, in, &items, &n) != RC_OK || (l = list_alloc(c, n)) == NULL)
		return RC_ERR;
	for (i = 0; i < n; i++)
	{
		Value		v;
		PropRes		pr;

		if (item_prop(c, &items[i], &args[0], &v, &pr) != RC_OK)
			return RC_ERR;
		if (pr == PROP_TYPE)
			return prop_error(c, &args[0]);
		if (list_put(c, &l[i], &v) != RC_OK)
			return RC_ERR;
	}
	set_list(out, l, n);
	return RC_OK;
}

/*
 * where, reject, find, find_index, has: Liquid's filter_array.  An item
 * matches when item[property] is truthy (no value, or value nil) or equals
 * the value.  An item without [] (nil, a boolean) makes the whole filter
 * nil, as Liquid's "return nil" does.
 */
int
tmpl_f_select(TmplRenderCtx *c, const FilterCall *fc, const Value *in,
			  const Value *args, Value *out)
{
	Value	   *items;
	bool	   *keep;
	int64_t		n;
	int64_t		i;
	bool		by_value = fc->nargs > 1 && args[1].t != V_NIL;

	if (input_items(c, in, &items, &n) != RC_OK)
		return RC_ERR;
	if (n == 0)
	{
		if (fc->id == F_HAS)
		{
			out->t = V_BOOL;
			out->u.b = false;
		}
		else if (fc->id == F_WHERE || fc->id == F_REJECT)
			set_list(out, NULL, 0);
		else
			out->t = V_NIL;
		return RC_OK;
	}
	if ((keep = (bool *) ralloc(c, (size_t) n)) == NULL)
		return RC_ERR;
	for (i = 0; i < n; i++)
	{
		Value		v;
		PropRes		pr;
		bool		m;

		if (item_prop(c, &items[i], &args[0], &v, &pr) != RC_OK)
			return RC_ERR;
		if (pr == PROP_TYPE)
			return prop_error(c, &args[0]);
		if (pr == PROP_NOMETHOD)
		{
			out->t = V_NIL;
			return RC_OK;
		}
		m = by_value ? values_equal(&v, &args[1]) : truthy(&v);
		keep[i] = fc->id == F_REJECT ? !m : m;
		if (m && (fc->id == F_FIND || fc->id == F_FIND_INDEX || fc->id == F_HAS))
		{
			if (fc->id == F_FIND)
				*out = items[i];
			else if (fc->id == F_FIND_INDEX)
			{
				out->t = V_INT;
				out->u.i = i;
			}
			else
			{
				out->t = V_BOOL;
				out->u.b = true;
			}
			return RC_OK;
		}
	}
	if (fc->id == F_HAS)
	{
		out->t = V_BOOL;
		out->u.b = false;
		return RC_OK;
	}
	if (fc->id == F_FIND || fc->id == F_FIND_INDEX)
	{
		out->t = V_NIL;
		return RC_OK;
	}
	return build_list(c, items, n, keep, out);
}

/* Ruby's <=> for the values sort meets; false when incomparable. */
static bool
ruby_cmp(const Value *a, const Value *b, int *res)
{
	if (is_num(a) && is_num(b))
	{
		if (a->t == V_INT && b->t == V_INT)
			*res = (a->u.i > b->u.i) - (a->u.i < b->u.i);
		else
		{
			double		x = num_dbl(a);
			double		y = num_dbl(b);

			if (isnan(x) || isnan(y))
				return false;
			*res = (x > y) - (x < y);
		}
		return true;
	}
	if (a->t == V_STR && b->t == V_STR)
	{
		size_t		m = a->u.s.n < b->u.s.n ? a->u.s.n : b->u.s.n;
		int			r = m ? memcmp(a->u.s.p, b->u.s.p, m) : 0;

		*res = r != 0 ? (r > 0) - (r < 0) : (a->u.s.n > b->u.s.n) - (a->u.s.n < b->u.s.n);
		return true;
	}
	if (values_equal(a, b) && a->t == b->t)
	{
		*res = 0;
		return true;
	}
	return false;
}

static int
casecmp(const char *a, size_t an, const char *b, size_t bn)
{
	size_t		m = an < bn ? an : bn;
	size_t		i;

	for (i = 0; i < m; i++)
	{
		int			x = tolower((unsigned char) a[i]);
		int			y = tolower((unsigned char) b[i]);

		if (x != y)
			return x < y ? -1 : 1;
	}
	return (an > bn) - (an < bn);
}

typedef struct SortKey
{
	Value		key;			/* what is compared */
	const char *txt;			/* sort_natural: its text form */
	size_t		txtn;
	int64_t		idx;			/* the item */
} SortKey;

typedef struct SortCtx
{
	bool		natural;
	bool		failed;			/* incomparable values met */
} SortCtx;

static int
sort_cmp(SortCtx *sc, const SortKey *a, const SortKey *b)
{
	int			r;

	/* nil sorts last, in both filters */
	if (a->key.t == V_NIL || b->key.t == V_NIL)
		return (a->key.t == V_NIL) - (b->key.t == V_NIL);
	if (sc->natural)
		return casecmp(a->txt, a->txtn, b->txt, b->txtn);
	if (!ruby_cmp(&a->key, &b->key, &r))
	{
		sc->failed = true;
		return 0;
	}
	return r;
}

/* Stable merge sort of n keys with a scratch array of the same size. */
static void
merge_sort(SortCtx *sc, SortKey *k, SortKey *tmp, int64_t n)
{
	int64_t		w;

	for (w = 1; w < n && !sc->failed; w *= 2)
	{
		int64_t		lo;

		for (lo = 0; lo < n; lo += 2 * w)
		{
			int64_t		mid = lo + w < n ? lo + w : n;
			int64_t		hi = lo + 2 * w < n ? lo + 2 * w : n;
			int64_t		i = lo;
			int64_t		j = mid;
			int64_t		o = lo;

			while (i < mid && j < hi)
				tmp[o++] = sort_cmp(sc, &k[j], &k[i]) < 0 ? k[j++] : k[i++];
			while (i < mid)
				tmp[o++] = k[i++];
			while (j < hi)
				tmp[o++] = k[j++];
		}
		memcpy(k, tmp, sizeof(SortKey) * (size_t) n);
	}
}

/* sort, sort_natural */
int
tmpl_f_sort(TmplRenderCtx *c, const FilterCall *fc, const Value *in,
			const Value *args, Value *out)
{
	Value	   *items;
	SortKey    *keys;
	SortKey    *tmp;
	Value	   *l;
	int64_t		n;
	int64_t		i;
	bool		by_prop = fc->nargs > 0 && args[0].t != V_NIL;
	SortCtx		sc = {fc->id == F_SORT_NATURAL, false};

	if (input_items(c, in, &items, &n) != RC_OK)
		return RC_ERR;
	if (n == 0)
	{
		set_list(out, NULL, 0);
		return RC_OK;
	}
	keys = (SortKey *) ralloc(c, sizeof(SortKey) * (size_t) n);
	tmp = (SortKey *) ralloc(c, sizeof(SortKey) * (size_t) n);
	if (keys == NULL || tmp == NULL)
		return RC_ERR;
	for (i = 0; i < n; i++)
	{
		keys[i].idx = i;
		keys[i].key = items[i];
		if (by_prop)
		{
			PropRes		pr;

			if (item_prop(c, &items[i], &args[0], &keys[i].key, &pr) != RC_OK)
				return RC_ERR;
			if (pr == PROP_TYPE)
				return prop_error(c, &args[0]);
			if (pr == PROP_NOMETHOD)
			{
				/* Liquid: nil unless every item has [] */
				out->t = V_NIL;
				return RC_OK;
			}
		}
		keys[i].txt = "";
		keys[i].txtn = 0;
		if (sc.natural && keys[i].key.t != V_NIL &&
			str_of(c, &keys[i].key, &keys[i].txt, &keys[i].txtn) != RC_OK)
			return RC_ERR;
	}
	merge_sort(&sc, keys, tmp, n);
	if (sc.failed)
		return rerr(c, TMPL_ERR_RUNTIME, "cannot sort values of incompatible types");
	if ((l = list_alloc(c, n)) == NULL)
		return RC_ERR;
	for (i = 0; i < n; i++)
		if (list_put(c, &l[i], &items[keys[i].idx]) != RC_OK)
			return RC_ERR;
	set_list(out, l, n);
	return RC_OK;
}

int
tmpl_f_reverse(TmplRenderCtx *c, const FilterCall *fc, const Value *in,
			   const Value *args, Value *out)
{
	Value	   *items;
	Value	   *l;
	int64_t		n;
	int64_t		i;

	if (input_items(c, in, &items, &n) != RC_OK || (l = list_alloc(c, n)) == NULL)
		return RC_ERR;
	for (i = 0; i < n; i++)
		if (list_put(c, &l[i], &items[n - 1 - i]) != RC_OK)
			return RC_ERR;
	set_list(out, l, n);
	return RC_OK;
}

/* uniq: first of each value (or of each item[property]) */
int
tmpl_f_uniq(TmplRenderCtx *c, const FilterCall *fc, const Value *in,
			const Value *args, Value *out)
{
	Value	   *items;
	Value	   *keys;
	bool	   *keep;
	int64_t		n;
	int64_t		i;
	int64_t		j;
	int64_t		cmps = 0;
	bool		by_prop = fc->nargs > 0 && args[0].t != V_NIL;

	if (input_items(c, in, &items, &n) != RC_OK)
		return RC_ERR;
	keys = (Value *) ralloc(c, sizeof(Value) * (size_t) (n + 1));
	keep = (bool *) ralloc(c, (size_t) n + 1);
	if (keys == NULL || keep == NULL)
		return RC_ERR;
	for (i = 0; i < n; i++)
	{
		keys[i] = items[i];
		if (by_prop)
		{
			PropRes		pr;

			if (item_prop(c, &items[i], &args[0], &keys[i], &pr) != RC_OK)
				return RC_ERR;
			if (pr == PROP_TYPE)
				return prop_error(c, &args[0]);
		}
		keep[i] = true;
		/* quadratic: every 64 comparisons count as one more iteration */
		for (j = 0; j < i && keep[i]; j++)
		{
			if (keep[j] && keys[j].t == keys[i].t && values_equal(&keys[j], &keys[i]))
				keep[i] = false;
			if (++cmps % 64 == 0 && charge_items(c, 1) != RC_OK)
				return RC_ERR;
		}
	}
	return build_list(c, items, n, keep, out);
}

/* compact: without the nil items (or those whose property is nil) */
int
tmpl_f_compact(TmplRenderCtx *c, const FilterCall *fc, const Value *in,
			   const Value *args, Value *out)
{
	Value	   *items;
	bool	   *keep;
	int64_t		n;
	int64_t		i;
	bool		by_prop = fc->nargs > 0 && args[0].t != V_NIL;

	if (input_items(c, in, &items, &n) != RC_OK)
		return RC_ERR;
	if ((keep = (bool *) ralloc(c, (size_t) n + 1)) == NULL)
		return RC_ERR;
	for (i = 0; i < n; i++)
	{
		Value		v = items[i];

		if (by_prop)
		{
			PropRes		pr;

			if (item_prop(c, &items[i], &args[0], &v, &pr) != RC_OK)
				return RC_ERR;
			if (pr == PROP_TYPE)
				return prop_error(c, &args[0]);
			if (pr == PROP_NOMETHOD)
			{
				out->t = V_NIL;
				return RC_OK;
			}
		}
		keep[i] = v.t != V_NIL;
	}
	return build_list(c, items, n, keep, out);
}

/* concat: the flattened input, then the argument's items as they are */
int
tmpl_f_concat(TmplRenderCtx *c, const FilterCall *fc, const Value *in,
			  const Value *args, Value *out)
{
	Value	   *items;
	Value	   *l;
	int64_t		n;
	int64_t		m;
	int64_t		i;

	if (!is_list(&args[0]))
		return rerr(c, TMPL_ERR_RUNTIME, "concat filter requires an array argument");
	m = seq_len(&args[0]);
	if (input_items(c, in, &items, &n) != RC_OK || charge_items(c, m) != RC_OK ||
		(l = list_alloc(c, n + m)) == NULL)
		return RC_ERR;
	for (i = 0; i < n; i++)
		if (list_put(c, &l[i], &items[i]) != RC_OK)
			return RC_ERR;
	for (i = 0; i < m; i++)
	{
		Value		e;

		seq_get(&args[0], i, &e);
		if (list_put(c, &l[n + i], &e) != RC_OK)
			return RC_ERR;
	}
	set_list(out, l, n + m);
	return RC_OK;
}

/* sum: of the items' numbers (strings parsed, anything else 0) */
int
tmpl_f_sum(TmplRenderCtx *c, const FilterCall *fc, const Value *in,
		   const Value *args, Value *out)
{
	Value	   *items;
	int64_t		n;
	int64_t		i;
	Value		acc;
	bool		by_prop = fc->nargs > 0 && args[0].t != V_NIL;

	if (input_items(c, in, &items, &n) != RC_OK)
		return RC_ERR;
	acc.t = V_INT;
	acc.u.i = 0;
	for (i = 0; i < n; i++)
	{
		Value		v = items[i];
		Value		x;

		if (by_prop)
		{
			PropRes		pr;

			if (item_prop(c, &items[i], &args[0], &v, &pr) != RC_OK)
				return RC_ERR;
			if (pr == PROP_TYPE)
				return prop_error(c, &args[0]);
			if (pr == PROP_NOMETHOD)
				v.t = V_NIL;
		}
		to_number(&v, &x);
		if (acc.t == V_INT && x.t == V_INT)
		{
			if (__builtin_add_overflow(acc.u.i, x.u.i, &acc.u.i))
				return rerr(c, TMPL_ERR_RUNTIME, "sum: integer overflow");
		}
		else
		{
			double		d;

			if (!tmpl_dec_arith(F_PLUS, &acc, &x, &d))
				d = num_dbl(&acc) + num_dbl(&x);
			acc.t = V_DBL;
			acc.u.d = d;
		}
	}
	*out = acc;
	return RC_OK;
}

/* slice of an array-like input: Ruby's Array#slice(start, length) */
int
tmpl_f_seq_slice(TmplRenderCtx *c, const Value *in, int64_t off, int64_t len, Value *out)
{
	int64_t		n = seq_len(in);
	Value	   *l;
	int64_t		i;

	if (off < 0)
		off += n;
	if (off < 0 || off > n || len < 0)
	{
		out->t = V_NIL;
		return RC_OK;
	}
	if (len > n - off)
		len = n - off;
	if (charge_items(c, len) != RC_OK || (l = list_alloc(c, len)) == NULL)
		return RC_ERR;
	for (i = 0; i < len; i++)
	{
		Value		e;

		seq_get(in, off + i, &e);
		if (list_put(c, &l[i], &e) != RC_OK)
			return RC_ERR;
	}
	set_list(out, l, len);
	return RC_OK;
}
