/*-------------------------------------------------------------------------
 *
 * tmpl_render.c
 *	  Renderer: variable lookup, expression evaluation and tags.
 *
 * See src/tmpl/tmpl_int.h for the shared types and the design.
 *
 *-------------------------------------------------------------------------
 */
#include "tmpl_int.h"

/* ----------------------------------------------------------------
 * Renderer: expressions and conditions
 * ----------------------------------------------------------------
 */
static int
lookup_key(TmplRenderCtx *c, const Value *cur, const char *key, size_t keylen,
		   int key_id, Value *out)
{
	struct json_object *j;

	if (cur->t == V_OBJ)
	{
		if (key_id >= 0)
		{
			/* constant key: reuse its hash across lookups and renders */
			struct lh_table *tb = json_object_get_object(cur->u.j);
			KeyHash    *kh = &c->khash[key_id];
			struct lh_entry *le;

			if (tb == NULL)
				goto not_found;
			if (kh->fn != tb->hash_fn)
			{
				kh->h = lh_get_hash(tb, key);
				kh->fn = tb->hash_fn;
			}
			le = lh_table_lookup_entry_w_hash(tb, key, kh->h);
			if (le)
			{
				json_to_value((struct json_object *) lh_entry_v(le), out);
				return RC_OK;
			}
		}
		else if (json_object_object_get_ex(cur->u.j, key, &j))
		{
			json_to_value(j, out);
			return RC_OK;
		}
not_found:
		if (name_is(key, keylen, "size"))
		{
			out->t = V_INT;
			out->u.i = json_object_object_length(cur->u.j);
			return RC_OK;
		}
		if (name_is(key, keylen, "first"))
		{
			obj_first(cur, out);
			return RC_OK;
		}
	}
	else if (is_list(cur))
	{
		int64_t		len = seq_len(cur);

		if (name_is(key, keylen, "size"))
		{
			out->t = V_INT;
			out->u.i = len;
			return RC_OK;
		}
		if (len && (name_is(key, keylen, "first") || name_is(key, keylen, "last")))
		{
			seq_get(cur, key[0] == 'f' ? 0 : len - 1, out);
			return RC_OK;
		}
	}
	else if (cur->t == V_STR && name_is(key, keylen, "size"))
	{
		out->t = V_INT;
		out->u.i = (int64_t) utf8_len(cur->u.s.p, cur->u.s.n);
		return RC_OK;
	}
	out->t = V_NIL;
	return RC_OK;
}

static void
lookup_index(const Value *cur, int64_t idx, Value *out)
{
	out->t = V_NIL;
	if (cur->t == V_ARR || cur->t == V_LIST)
	{
		int64_t		len = seq_len(cur);

		if (idx < 0)
			idx += len;
		if (idx >= 0 && idx < len)
			seq_get(cur, idx, out);
	}
	else if (cur->t == V_PAIR)
	{
		if (idx == 0 || idx == -2)
			set_str(out, cur->u.pr.k, strlen(cur->u.pr.k));
		else if (idx == 1 || idx == -1)
			json_to_value(cur->u.pr.v, out);
	}
}

int
eval_expr(TmplRenderCtx *c, const Expr *e, Value *out)
{
	switch (e->kind)
	{
		case E_LIT:
			*out = e->lit;
			return RC_OK;
		case E_FORLOOP:
			{
				const LoopState *ls;

				if (__builtin_expect(e->tablerow || e->prop >= LP_NAME, 0))
					return tmpl_loop_prop(c, e, out);
				if (c->nloops <= e->up)
				{
					out->t = V_NIL;
					return RC_OK;
				}
				ls = &c->loops[c->nloops - 1 - e->up];
				(void) loop_common_prop(ls, e->prop, out);
				return RC_OK;
			}
		case E_RANGE:
			{
				/* a range is a value too: (1..5) | join, assign r = (1..3) */
				Value		a;
				Value		b;

				if (eval_expr(c, e->lo, &a) != RC_OK || eval_expr(c, e->hi, &b) != RC_OK)
					return RC_ERR;
				out->t = V_RANGE;
				out->u.r.lo = to_int(&a);
				out->u.r.hi = to_int(&b);
				return RC_OK;
			}
		case E_VAR:
			{
				const Value *root;
				Value		cur;
				int			i;

				if (__builtin_expect(e->root_lit, 0))
					root = &e->lit;
				else
				{
					Slot	   *s = &c->slots[e->slot];

					if (!s->set)
					{
						struct json_object *j;

						s->v.t = V_NIL;
						if (c->data && json_object_object_get_ex(c->data, c->t->slot_names[e->slot], &j))
							json_to_value(j, &s->v);
						s->set = true;
					}
					root = &s->v;
				}
				cur = *root;
				if (e->cache_idx >= 0 && (cur.t == V_OBJ || cur.t == V_ARR))
				{
					PathCache  *pc = &c->cache[e->cache_idx];

					if (pc->gen == c->gen && pc->root == cur.u.j)
					{
						*out = pc->v;
						return RC_OK;
					}
					pc->gen = 0;	/* filled below */
					pc->root = cur.u.j;
				}
				for (i = 0; i < e->nsegs && cur.t != V_NIL; i++)
				{
					const Seg  *sg = &e->segs[i];
					Value		next;

					if (sg->kind == SEG_KEY)
						lookup_key(c, &cur, sg->key, sg->keylen, sg->key_id, &next);
					else if (sg->kind == SEG_INDEX)
						lookup_index(&cur, sg->idx, &next);
					else
					{
						Value		k;

						if (eval_expr(c, sg->dyn, &k) != RC_OK)
							return RC_ERR;
						if (k.t == V_INT || k.t == V_DBL)
							lookup_index(&cur, to_int(&k), &next);
						else if (k.t == V_STR)
						{
							/* json-c wants a NUL-terminated key */
							char	   *key = ralloc(c, k.u.s.n + 1);

							if (key == NULL)
								return RC_ERR;
							memcpy(key, k.u.s.p, k.u.s.n);
							key[k.u.s.n] = '\0';
							lookup_key(c, &cur, key, k.u.s.n, -1, &next);
						}
						else
							next.t = V_NIL;
					}
					cur = next;
				}
				if (e->cache_idx >= 0 && c->cache[e->cache_idx].gen == 0 &&
					(root->t == V_OBJ || root->t == V_ARR))
				{
					c->cache[e->cache_idx].v = cur;
					c->cache[e->cache_idx].gen = c->gen;
				}
				*out = cur;
				return RC_OK;
			}
	}
	out->t = V_NIL;
	return RC_OK;
}

/* eval_expr, with literals (most filter arguments and comparands) inline */
static inline int
eval_arg(TmplRenderCtx *c, const Expr *e, Value *out)
{
	if (e->kind == E_LIT)
	{
		*out = e->lit;
		return RC_OK;
	}
	return eval_expr(c, e, out);
}

/* Evaluate the base value and the first nfilters filters. */
static int
eval_filtered_n(TmplRenderCtx *c, const Filtered *f, int nfilters, Value *out)
{
	Value		v;
	int			i;

	if (eval_expr(c, f->base, &v) != RC_OK)
		return RC_ERR;
	for (i = 0; i < nfilters; i++)
	{
		const FilterCall *fc = &f->filters[i];
		Value		args[MAX_FILTER_ARGS + 1];
		Value		in;
		int			a;

		for (a = 0; a < fc->nargs; a++)
			if (eval_arg(c, fc->args[a], &args[a]) != RC_OK)
				return RC_ERR;
		if (fc->allow_false && eval_expr(c, fc->allow_false, &args[MAX_FILTER_ARGS]) != RC_OK)
			return RC_ERR;
		c->line = fc->line;
		c->col = fc->col;
		in = v;
		if (apply_filter(c, fc, &in, args, &v) != RC_OK)
			return RC_ERR;
	}
	*out = v;
	return RC_OK;
}

static inline int
eval_filtered(TmplRenderCtx *c, const Filtered *f, Value *out)
{
	return eval_filtered_n(c, f, f->nfilters, out);
}

static int
compare(TmplRenderCtx *c, CmpOp op, const Value *a, const Value *b, bool *res)
{
	*res = false;
	switch (op)
	{
		case OP_EQ:
			*res = values_equal(a, b);
			break;
		case OP_NE:
			*res = !values_equal(a, b);
			break;
		case OP_LT:
		case OP_GT:
		case OP_LE:
		case OP_GE:
			{
				int			cmp;

				if (is_num(a) && is_num(b))
				{
					if (a->t == V_INT && b->t == V_INT)
						cmp = (a->u.i > b->u.i) - (a->u.i < b->u.i);
					else
					{
						double		x = num_dbl(a);
						double		y = num_dbl(b);

						if (isnan(x) || isnan(y))
							return RC_OK;
						cmp = (x > y) - (x < y);
					}
				}
				else if (a->t == V_STR && b->t == V_STR)
				{
					size_t		m = a->u.s.n < b->u.s.n ? a->u.s.n : b->u.s.n;

					cmp = m ? memcmp(a->u.s.p, b->u.s.p, m) : 0;
					if (cmp == 0)
						cmp = (a->u.s.n > b->u.s.n) - (a->u.s.n < b->u.s.n);
				}
				else
					return RC_OK;	/* incomparable: false, as Liquid's lax mode */
				*res = op == OP_LT ? cmp < 0 : op == OP_GT ? cmp > 0 :
					op == OP_LE ? cmp <= 0 : cmp >= 0;
				break;
			}
		case OP_CONTAINS:
			/* Liquid: "left && right && left.include?(right)" */
			if (b->t == V_NIL || (b->t == V_BOOL && !b->u.b))
				break;
			if (a->t == V_STR)
			{
				const char *p;
				size_t		n;

				if (b->t == V_NIL)
					break;
				if (str_of(c, b, &p, &n) != RC_OK)
					return RC_ERR;
				*res = find_sub(a->u.s.p, a->u.s.n, p, n) != NULL;
			}
			else if (is_list(a))
			{
				int64_t		i;
				int64_t		len = seq_len(a);

				for (i = 0; i < len && !*res; i++)
				{
					Value		e;

					seq_get(a, i, &e);
					*res = values_equal(&e, b);
				}
			}
			else if (a->t == V_OBJ && b->t == V_STR)
			{
				char	   *key = ralloc(c, b->u.s.n + 1);

				if (key == NULL)
					return RC_ERR;
				memcpy(key, b->u.s.p, b->u.s.n);
				key[b->u.s.n] = '\0';
				*res = json_object_object_get_ex(a->u.j, key, NULL) != 0;
			}
			break;
		case OP_NONE:
			*res = truthy(a);
			break;
	}
	return RC_OK;
}

/* Liquid evaluates and/or right to left: a and b or c == a and (b or c) */
int
eval_cond(TmplRenderCtx *c, const Cond *cd, bool *res)
{
	bool		acc = false;
	int			i;

	for (i = cd->nterms - 1; i >= 0; i--)
	{
		const CondTerm *t = &cd->terms[i];
		Value		l;
		Value		r;
		bool		v;

		if (i < cd->nterms - 1)
		{
			/* short-circuit: the right side is already known */
			if (t->or_next && acc)
				continue;
			if (!t->or_next && !acc)
				continue;
		}
		if (eval_expr(c, t->l, &l) != RC_OK)
			return RC_ERR;
		if (t->op == OP_NONE)
			v = truthy(&l);
		else
		{
			if (eval_arg(c, t->r, &r) != RC_OK || compare(c, t->op, &l, &r, &v) != RC_OK)
				return RC_ERR;
		}
		acc = v;
	}
	*res = acc;
	return RC_OK;
}

/* ----------------------------------------------------------------
 * Renderer: nodes
 * ----------------------------------------------------------------
 */
static int	render_block(TmplRenderCtx *c, const Node *n);

/* Store a value in a slot; strings are copied into the slot's buffer. */
static int
slot_store(TmplRenderCtx *c, Slot *s, const Value *v)
{
	if (v->t == V_STR)
	{
		const char *p = v->u.s.p;
		size_t		n = v->u.s.n;

		if (s->buf && p >= s->buf && p < s->buf + s->cap)
			memmove(s->buf, p, n);	/* substring of its own value */
		else
		{
			if (n + 1 > s->cap)
			{
				size_t		ncap = s->cap ? s->cap : 64;
				char	   *nb;

				while (ncap < n + 1)
					ncap *= 2;
				nb = realloc(s->buf, ncap);
				if (nb == NULL)
					return rerr(c, TMPL_ERR_NOMEM, "out of memory");
				s->buf = nb;
				s->cap = ncap;
			}
			if (n)
				memcpy(s->buf, p, n);
		}
		s->buf[n] = '\0';
		set_str(&s->v, s->buf, n);
	}
	else
		s->v = *v;
	s->set = true;
	s->assigned = true;
	if (c->pe_wr)
		c->pe_wr[s - c->slots] = 1;
	return RC_OK;
}

static int
enter_block(TmplRenderCtx *c)
{
	if (c->depth >= c->lim.max_depth)
		return rerr(c, TMPL_ERR_LIMIT, "template nesting depth exceeds the limit of %d",
					c->lim.max_depth);
	c->depth++;
	if (c->depth > c->peak_depth)
		c->peak_depth = c->depth;
	return RC_OK;
}


int __attribute__((noinline))
for_bounds(TmplRenderCtx *c, const Node *n, ForBounds *fb)
{
	int64_t		len = 0;

	fb->lo = 0;
	fb->from = 0;
	if (n->u.loop.coll->kind == E_RANGE)
	{
		Value		a;
		Value		b;
		int64_t		hi;

		if (eval_expr(c, n->u.loop.coll->lo, &a) != RC_OK ||
			eval_expr(c, n->u.loop.coll->hi, &b) != RC_OK)
			return RC_ERR;
		fb->lo = to_int(&a);
		hi = to_int(&b);
		len = range_len(fb->lo, hi);
		fb->coll.t = V_INT;
	}
	else
	{
		if (eval_expr(c, n->u.loop.coll, &fb->coll) != RC_OK)
			return RC_ERR;
		if (fb->coll.t == V_OBJ)
		{
			/* pairs [key, value], as Liquid iterates a hash */
			len = json_object_object_length(fb->coll.u.j);
			fb->ent = json_object_get_object(fb->coll.u.j)->head;
			fb->ent_idx = 0;
		}
		else if (fb->coll.t == V_RANGE)
		{
			fb->lo = fb->coll.u.r.lo;
			len = range_len(fb->lo, fb->coll.u.r.hi);
			fb->coll.t = V_INT;
		}
		else if (is_list(&fb->coll))
			len = seq_len(&fb->coll);
		else if (fb->coll.t == V_STR && fb->coll.u.s.n > 0)
		{
			/* iterated once; copy it, the body may reassign its source */
			char	   *d = ralloc(c, fb->coll.u.s.n + 1);

			if (d == NULL)
				return RC_ERR;
			memcpy(d, fb->coll.u.s.p, fb->coll.u.s.n);
			d[fb->coll.u.s.n] = '\0';
			fb->coll.u.s.p = d;
			len = 1;
		}
	}
	if (n->u.loop.offset_continue)
	{
		int64_t		from = c->for_next[n->u.loop.name_idx];

		fb->from = from > len ? len : from;
	}
	else if (n->u.loop.offset)
	{
		Value		v;
		int64_t		from;

		if (eval_expr(c, n->u.loop.offset, &v) != RC_OK)
			return RC_ERR;
		from = to_int(&v);
		fb->from = from < 0 ? 0 : from > len ? len : from;
	}
	fb->cnt = len - fb->from;
	if (n->u.loop.limit)
	{
		Value		v;
		int64_t		lim;

		if (eval_expr(c, n->u.loop.limit, &v) != RC_OK)
			return RC_ERR;
		lim = to_int(&v);
		if (lim < 0)
			lim = 0;
		if (lim < fb->cnt)
			fb->cnt = lim;
	}
	/* every loop records where a later "offset: continue" starts, as Liquid */
	if (c->for_next && !n->u.loop.tablerow)
		c->for_next[n->u.loop.name_idx] = fb->from + (fb->cnt > 0 ? fb->cnt : 0);
	return RC_OK;
}

/*
 * Save the loop variable.  A string held in the slot's own buffer must
 * survive reassignment in the body; it is copied aside and put back into
 * the buffer by for_restore_var (the copy dies with the statement).
 */
int
for_save_var(TmplRenderCtx *c, const Slot *s, Slot *saved, bool *copied)
{
	*saved = *s;
	*copied = false;
	if (saved->set && saved->v.t == V_STR && s->buf &&
		saved->v.u.s.p >= s->buf && saved->v.u.s.p < s->buf + s->cap)
	{
		char	   *d = ralloc(c, saved->v.u.s.n + 1);

		if (d == NULL)
			return RC_ERR;
		memcpy(d, saved->v.u.s.p, saved->v.u.s.n);
		d[saved->v.u.s.n] = '\0';
		saved->v.u.s.p = d;
		*copied = true;
	}
	return RC_OK;
}

void
for_restore_var(Slot *s, const Slot *saved, bool copied)
{
	s->v = saved->v;
	s->set = saved->set;
	s->assigned = saved->assigned;
	if (copied)
	{
		/* the buffer only grows, so the saved string still fits */
		memcpy(s->buf, saved->v.u.s.p, saved->v.u.s.n + 1);
		s->v.u.s.p = s->buf;
	}
	/* a counter changed in the loop shows again */
	if (__builtin_expect(s->has_counter, 0))
		tmpl_counter_show(s);
}

static int __attribute__((noinline))
render_for(TmplRenderCtx *c, const Node *n)
{
	ForBounds	fb;
	int64_t		k;
	Slot	   *s = &c->slots[n->u.loop.slot];
	Slot		saved;
	bool		copied;
	uint8_t		saved_wr = 0;
	int			rc = RC_OK;
	LoopState  *ls;

	if (__builtin_expect(n->u.loop.tablerow, 0))
		return tmpl_render_tablerow(c, n);
	if (for_bounds(c, n, &fb) != RC_OK)
		return RC_ERR;
	if (fb.cnt <= 0)
	{
		if (n->u.loop.else_body == NULL)
			return RC_OK;
		if (enter_block(c) != RC_OK)
			return RC_ERR;
		rc = render_block(c, n->u.loop.else_body);
		c->depth--;
		return rc;
	}
	if (enter_block(c) != RC_OK)
		return RC_ERR;
	if (for_save_var(c, s, &saved, &copied) != RC_OK)
		return RC_ERR;
	if (c->pe_wr)
		saved_wr = c->pe_wr[n->u.loop.slot];
	ls = &c->loops[c->nloops++];
	ls->length = fb.cnt;
	ls->name_idx = n->u.loop.name_idx;
	s->assigned = true;
	for (k = 0; k < fb.cnt; k++)
	{
		if (++c->iterations > c->lim.max_iterations)
		{
			c->line = n->line;
			c->col = n->col;
			rc = err_iteration_limit(c);
			break;
		}
		for_item(n, &fb, k, &s->v);
		s->set = true;
		ls->index0 = k;
		rc = render_block(c, n->u.loop.body);
		if (rc == RC_ERR)
			break;
		if (rc == RC_BREAK)
		{
			rc = RC_OK;
			break;
		}
		rc = RC_OK;
	}
	c->nloops--;
	for_restore_var(s, &saved, copied);
	if (c->pe_wr)
		c->pe_wr[n->u.loop.slot] = saved_wr;
	c->depth--;
	return rc;
}

/*
 * Charge the cost of a pre-rendered part of a specialised template, in
 * the same terms as the original would have failed.
 */
static int
charge_cost(TmplRenderCtx *c, const TmplCost *k)
{
	if (k->max_req > c->lim.max_output + 64)
		return err_output_limit(c);
	if (k->arena_peak > c->arena.limit || c->arena.inuse > c->arena.limit - k->arena_peak)
		return rerr(c, TMPL_ERR_LIMIT, "template needs more than %zu bytes of working memory",
					c->arena.limit);
	if (k->peak_depth > c->lim.max_depth)
		return rerr(c, TMPL_ERR_LIMIT, "template nesting depth exceeds the limit of %d",
					c->lim.max_depth);
	if (k->iters > c->lim.max_iterations - c->iterations)
		return err_iteration_limit(c);
	c->iterations += k->iters;
	if (k->extra_out > c->lim.max_output - c->produced)
		return err_output_limit(c);
	c->produced += k->extra_out;
	return RC_OK;
}

/*
 * Nodes only found in specialised templates; out of line so that the
 * common node kinds stay inlined into render_block.
 */
static int __attribute__((noinline))
render_specialised(TmplRenderCtx *c, const Node *n)
{
	if (n->kind == N_CHUNK)
	{
		if (n->u.chunk.cost && charge_cost(c, n->u.chunk.cost) != RC_OK)
			return RC_ERR;
		return emit(c, n->u.chunk.p, n->u.chunk.n);
	}
	else
	{
		int			rc;

		if (n->u.block.pre && charge_cost(c, n->u.block.pre) != RC_OK)
			return RC_ERR;
		if (n->u.block.reserve &&
			arena_alloc(&c->arena, n->u.block.reserve) == NULL)
		{
			if (c->arena.over_limit)
				return rerr(c, TMPL_ERR_LIMIT, "template needs more than %zu bytes of working memory",
							c->arena.limit);
			return rerr(c, TMPL_ERR_NOMEM, "out of memory");
		}
		if (enter_block(c) != RC_OK)
			return RC_ERR;
		rc = render_block(c, n->u.block.body);
		c->depth--;
		return rc;
	}
}

/* inlined into render_block, the hot loop, as before specialisation */
static inline __attribute__((always_inline)) int
render_node(TmplRenderCtx *c, const Node *n)
{
	c->line = n->line;
	c->col = n->col;
	switch (n->kind)
	{
		case N_TEXT:
			return emit(c, n->u.text.p, n->u.text.n);
		case N_OUTPUT:
			{
				const Filtered *f = n->u.out;
				Value		v;

				/* "| escape" last: escape straight into the output */
				if (f->nfilters > 0 && f->filters[f->nfilters - 1].id == F_ESCAPE)
				{
					const char *p;
					size_t		len;

					if (eval_filtered_n(c, f, f->nfilters - 1, &v) != RC_OK)
						return RC_ERR;
					c->line = n->line;
					c->col = n->col;
					if (str_of(c, &v, &p, &len) != RC_OK)
						return RC_ERR;
					return emit_escaped(c, p, len);
				}
				if (eval_filtered(c, f, &v) != RC_OK)
					return RC_ERR;
				c->line = n->line;
				c->col = n->col;
				return emit_value(c, &v);
			}
		case N_IF:
			{
				const IfBranch *br;

				for (br = n->u.branches; br; br = br->next)
				{
					bool		take = true;
					int			rc;

					if (br->cond)
					{
						if (eval_cond(c, br->cond, &take) != RC_OK)
							return RC_ERR;
						if (br->negate)
							take = !take;
					}
					if (!take)
						continue;
					if (br->body == NULL)
						return RC_OK;
					if (enter_block(c) != RC_OK)
						return RC_ERR;
					rc = render_block(c, br->body);
					c->depth--;
					return rc;
				}
				return RC_OK;
			}
		case N_FOR:
			return render_for(c, n);
		case N_CHUNK:
		case N_BLOCK:
			return render_specialised(c, n);
		case N_CYCLE:
			return tmpl_render_cycle(c, n);
		case N_COUNTER:
			return tmpl_render_counter(c, n);
		case N_BREAK:
			return RC_BREAK;
		case N_CONTINUE:
			return RC_CONTINUE;
		case N_ASSIGN:
			{
				Value		v;

				if (eval_filtered(c, n->u.assign.val, &v) != RC_OK)
					return RC_ERR;
				return slot_store(c, &c->slots[n->u.assign.slot], &v);
			}
		case N_CAPTURE:
		case N_IFCHANGED:
			{
				BeBuf	   *saved_out = c->out;
				BeBuf	   *cb;
				Value		v;
				int			rc;

				if (enter_block(c) != RC_OK)
					return RC_ERR;
				cb = &c->capbufs[c->ncap++];
				be_buf_reset(cb);
				c->out = cb;
				rc = render_block(c, n->u.capture.body);
				sink_finish(cb);
				c->out = saved_out;
				c->ncap--;
				c->depth--;
				if (rc == RC_ERR)
					return rc;
				if (n->kind == N_IFCHANGED)
					return tmpl_ifchanged_emit(c, c->out, cb) != RC_OK ? RC_ERR : rc;
				set_str(&v, cb->data ? cb->data : "", cb->len);
				if (slot_store(c, &c->slots[n->u.capture.slot], &v) != RC_OK)
					return RC_ERR;
				return rc;
			}
	}
	return RC_OK;
}

static int
render_block(TmplRenderCtx *c, const Node *n)
{
	for (; n; n = n->next)
	{
		ArenaMark	m;
		int			rc;

		if (n->kind == N_TEXT)
		{
			if (emit(c, n->u.text.p, n->u.text.n) != RC_OK)
			{
				/* positions are not tracked for text on the fast path */
				c->err->line = n->line;
				c->err->column = n->col;
				return RC_ERR;
			}
			continue;
		}
		m = arena_mark(&c->arena);
		rc = render_node(c, n);

		/* temporaries of a statement die with it */
		arena_release(&c->arena, m);
		if (rc != RC_OK)
			return rc;
	}
	return RC_OK;
}

TmplRenderCtx *
tmpl_ctx_create(void)
{
	TmplRenderCtx *c = calloc(1, sizeof(TmplRenderCtx));
	int			i;

	if (c == NULL)
		return NULL;
	arena_init(&c->arena);
	arena_init(&c->lists);
	for (i = 0; i <= TMPL_MAX_COMPILE_DEPTH; i++)
		be_buf_init(&c->capbufs[i]);
	return c;
}

void
tmpl_ctx_free(TmplRenderCtx *c)
{
	int			i;

	if (c == NULL)
		return;
	arena_free(&c->arena);
	arena_free(&c->lists);
	free(c->for_next);
	for (i = 0; i < c->nslots; i++)
		free(c->slots[i].buf);
	free(c->slots);
	free(c->cache);
	free(c->khash);
	for (i = 0; i <= TMPL_MAX_COMPILE_DEPTH; i++)
		be_buf_free(&c->capbufs[i]);
	free(c);
}

void
tmpl_ctx_set_tz_resolver(TmplRenderCtx *c, TmplTzResolver fn, void *arg)
{
	c->tz_fn = fn;
	c->tz_arg = fn ? arg : NULL;
}

/* Prepare a context for one render of t; fills err on failure. */
int
ctx_begin(const Template *t, TmplRenderCtx *c, struct json_object *data,
		  const TmplLimits *lim, BeBuf *out, TmplError *err)
{
	int			i;

	if (t->nslots > c->nslots)
	{
		Slot	   *ns = realloc(c->slots, sizeof(Slot) * (size_t) t->nslots);

		if (ns == NULL)
		{
			set_error(err, TMPL_ERR_NOMEM, 0, 0, "out of memory");
			return RC_ERR;
		}
		memset(ns + c->nslots, 0, sizeof(Slot) * (size_t) (t->nslots - c->nslots));
		c->slots = ns;
		c->nslots = t->nslots;
	}
	if (t->slot_init)
	{
		/* constant roots of a specialised template */
		for (i = 0; i < t->nslots; i++)
		{
			c->slots[i].set = t->slot_init_set[i];
			c->slots[i].v = t->slot_init[i];
			c->slots[i].assigned = false;
			c->slots[i].has_counter = false;
		}
	}
	else
	{
		for (i = 0; i < t->nslots; i++)
		{
			c->slots[i].set = false;
			c->slots[i].assigned = false;
			c->slots[i].has_counter = false;
		}
	}
	if (t->nfornames > c->nfor_next)
	{
		int64_t    *nf = realloc(c->for_next, sizeof(int64_t) * (size_t) t->nfornames);

		if (nf == NULL)
		{
			set_error(err, TMPL_ERR_NOMEM, 0, 0, "out of memory");
			return RC_ERR;
		}
		c->for_next = nf;
		c->nfor_next = t->nfornames;
	}
	if (t->uses_continue)
		memset(c->for_next, 0, sizeof(int64_t) * (size_t) t->nfornames);
	if (t->ncache > c->ncache)
	{
		PathCache  *nc = realloc(c->cache, sizeof(PathCache) * (size_t) t->ncache);

		if (nc == NULL)
		{
			set_error(err, TMPL_ERR_NOMEM, 0, 0, "out of memory");
			return RC_ERR;
		}
		memset(nc + c->ncache, 0, sizeof(PathCache) * (size_t) (t->ncache - c->ncache));
		c->cache = nc;
		c->ncache = t->ncache;
	}
	if (t->nkeys > c->nkhash)
	{
		KeyHash    *nk = realloc(c->khash, sizeof(KeyHash) * (size_t) t->nkeys);

		if (nk == NULL)
		{
			set_error(err, TMPL_ERR_NOMEM, 0, 0, "out of memory");
			return RC_ERR;
		}
		memset(nk + c->nkhash, 0, sizeof(KeyHash) * (size_t) (t->nkeys - c->nkhash));
		c->khash = nk;
		c->nkhash = t->nkeys;
	}
	if (c->khash_owner != t->id)
	{
		if (c->nkhash)
			memset(c->khash, 0, sizeof(KeyHash) * (size_t) c->nkhash);
		c->khash_owner = t->id;
	}
	/* a new generation invalidates every cached path */
	if (++c->gen == 0)
	{
		memset(c->cache, 0, sizeof(PathCache) * (size_t) c->ncache);
		c->gen = 1;
	}
	c->t = t;
	c->data = data;
	c->lim = *lim;
	if (c->lim.max_depth > TMPL_MAX_COMPILE_DEPTH)
		c->lim.max_depth = TMPL_MAX_COMPILE_DEPTH;
	c->out = out;
	c->produced = 0;
	c->iterations = 0;
	c->depth = 0;
	c->nloops = 0;
	c->ntrloops = 0;
	c->ncap = 0;
	c->line = 0;
	c->col = 0;
	c->err = err;
	/* intermediate strings are bounded by the output limit */
	c->arena.limit = (c->lim.max_output > SIZE_MAX / 8 ? SIZE_MAX / 2 :
					  c->lim.max_output * 4) + 65536;
	arena_release(&c->arena, (ArenaMark) {NULL, 0, 0});
	arena_release(&c->lists, (ArenaMark) {NULL, 0, 0});
	c->cycles = NULL;
	c->ifchanged_last = NULL;
	c->ifchanged_len = 0;
	return RC_OK;
}

int
tmpl_render(const Template *t, TmplRenderCtx *c, struct json_object *data,
			const TmplLimits *lim, BeBuf *out, TmplError *err)
{
	TmplLimits	deflim;
	int			rc;

	memset(err, 0, sizeof(*err));
	if (lim == NULL)
	{
		tmpl_default_limits(&deflim);
		lim = &deflim;
	}
	if (ctx_begin(t, c, data, lim, out, err) != RC_OK)
		return -1;

	rc = render_block(c, t->root);
	sink_finish(out);
	c->data = NULL;
	c->t = NULL;
	if (rc == RC_ERR)
	{
		tmpl_error_locate(t, err);
		return -1;
	}
	if (out->oom)
	{
		set_error(err, TMPL_ERR_NOMEM, 0, 0, "out of memory");
		return -1;
	}
	return 0;
}


struct json_object *
tmpl_data_parse(const char *json, size_t len)
{
	struct json_tokener *tok;
	struct json_object *obj;

	if (len > INT_MAX)
		return NULL;
	tok = json_tokener_new();
	if (tok == NULL)
		return NULL;
	obj = json_tokener_parse_ex(tok, json, (int) len);
	if (json_tokener_get_error(tok) != json_tokener_success)
	{
		json_object_put(obj);
		obj = NULL;
	}
	json_tokener_free(tok);
	return obj;
}

void
tmpl_data_free(struct json_object *data)
{
	json_object_put(data);
}

/* render_node for tmpl_specialize, which runs nodes it cannot pre-render */
int
tmpl_exec_node(TmplRenderCtx *c, const Node *n)
{
	return render_node(c, n);
}

/* render_block and enter_block for the tags of tmpl_tags.c */
int
tmpl_exec_block(TmplRenderCtx *c, const Node *n)
{
	return render_block(c, n);
}

int
tmpl_enter_block(TmplRenderCtx *c)
{
	return enter_block(c);
}
