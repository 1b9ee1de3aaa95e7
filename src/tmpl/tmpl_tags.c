/*-------------------------------------------------------------------------
 *
 * tmpl_tags.c
 *	  The less common tags: tablerow (with tablerowloop), increment and
 *	  decrement, cycle's parsing, forloop.name, and the positions of
 *	  errors in snippets.
 *
 * Kept out of tmpl_render.c so that its hot paths only dispatch here.
 *
 * tablerow is a "for" node (u.loop.tablerow) rendered with Shopify's
 * cells around each item:
 *
 *	<tr class="row1">\n<td class="col1">...</td><td class="col2">...</td></tr>\n
 *	<tr class="row2"><td class="col1">...</td></tr>\n
 *
 * A row ends after "cols" cells (every item when cols is not given; never
 * when cols <= 0); nil or false render nothing, any other collection that
 * yields no item renders the empty row.  "tablerowloop" describes the
 * innermost tablerow; "forloop" still means the enclosing for loop.
 *
 * Counters: Liquid keeps increment/decrement counters apart from assigned
 * variables; the counter shows under its name only where the name is not
 * assigned.  Each slot carries its counter (Slot.has_counter, counter) and
 * whether an assign, capture or loop gave it a value (Slot.assigned).
 * Counters start at 0: they never read the data (Liquid would start from
 * a number the data holds under that name, and write it back).
 *
 *-------------------------------------------------------------------------
 */
#include "tmpl_int.h"

/* ----------------------------------------------------------------
 * Compiler
 * ----------------------------------------------------------------
 */
/* cycle [group:] value, value, ... */
Node *
parse_cycle(Parser *ps, const TTok *open)
{
	Node	   *n = new_node(ps, N_CYCLE, open->start);
	Lex			lx;
	Expr	   *vals[64];
	int			nv = 0;
	const char *vstart;

	if (n == NULL || !lex_init(&lx, ps, open->args, open->argslen))
		return NULL;
	vstart = lx.tok.at;
	for (;;)
	{
		Expr	   *e;

		if (lx.tok.k == K_END)
		{
			unexpected_tok(&lx, "a value");
			return NULL;
		}
		if ((e = parse_primary(&lx, 0)) == NULL)
			return NULL;
		if (lx.tok.k == K_COLON && nv == 0 && n->u.cycle.group == NULL)
		{
			n->u.cycle.group = e;
			if (!lex_next(&lx))
				return NULL;
			vstart = lx.tok.at;
			continue;
		}
		if (nv == (int) (sizeof(vals) / sizeof(vals[0])))
		{
			perr(ps, lx.tok.at, "cycle takes at most %d values", nv);
			return NULL;
		}
		vals[nv++] = e;
		if (lx.tok.k == K_END)
			break;
		if (lx.tok.k != K_COMMA)
		{
			unexpected_tok(&lx, "\",\"");
			return NULL;
		}
		if (!lex_next(&lx))
			return NULL;
	}
	if ((n->u.cycle.vals = ps_alloc(ps, sizeof(Expr *) * (size_t) nv)) == NULL)
		return NULL;
	memcpy(n->u.cycle.vals, vals, sizeof(Expr *) * (size_t) nv);
	n->u.cycle.nvals = nv;
	n->u.cycle.markup = vstart;
	n->u.cycle.markuplen = (size_t) (open->args + open->argslen - vstart);
	while (n->u.cycle.markuplen > 0 && is_ws(vstart[n->u.cycle.markuplen - 1]))
		n->u.cycle.markuplen--;
	return n;
}

/* increment name / decrement name: Liquid's counters (tmpl_tags.c) */
Node *
parse_counter(Parser *ps, const TTok *open, int step)
{
	Node	   *n = new_node(ps, N_COUNTER, open->start);
	Lex			lx;

	if (n == NULL || !lex_init(&lx, ps, open->args, open->argslen))
		return NULL;
	if (lx.tok.k != K_IDENT)
	{
		unexpected_tok(&lx, "a counter name");
		return NULL;
	}
	if ((n->u.counter.slot = intern_slot(ps, lx.tok.p, lx.tok.n)) < 0 ||
		!lex_next(&lx) || !expect_end(&lx))
		return NULL;
	n->u.counter.step = step;
	mark_counter(ps, n->u.counter.slot);
	return n;
}

/* ----------------------------------------------------------------
 * Renderer
 * ----------------------------------------------------------------
 */

/* Column (0-based) and row (1-based) of iteration index0. */
static inline void
tr_cell(const LoopState *ls, int64_t *col0, int64_t *row)
{
	if (ls->cols > 0)
	{
		*col0 = ls->index0 % ls->cols;
		*row = ls->index0 / ls->cols + 1;
	}
	else
	{
		*col0 = ls->index0;
		*row = 1;
	}
}

/* A row or cell tag; fmt has one %lld or none (then num is ignored). */
static int
emit_cell_tag(TmplRenderCtx *c, const Node *n, const char *fmt, int64_t num)
{
	char		buf[64];
	int			len;

	len = strchr(fmt, '%') ? snprintf(buf, sizeof(buf), fmt, (long long) num) :
		snprintf(buf, sizeof(buf), "%s", fmt);
	c->line = n->line;
	c->col = n->col;
	return emit(c, buf, (size_t) len);
}

int
tmpl_render_tablerow(TmplRenderCtx *c, const Node *n)
{
	ForBounds	fb;
	Slot	   *s = &c->slots[n->u.loop.slot];
	Slot		saved;
	bool		copied;
	uint8_t		saved_wr = 0;
	LoopState  *ls;
	int64_t		cols;
	int64_t		k;
	int			rc = RC_OK;

	if (for_bounds(c, n, &fb) != RC_OK)
		return RC_ERR;
	if (!truthy(&fb.coll))
		return RC_OK;
	if (fb.cnt < 0)
		fb.cnt = 0;
	cols = fb.cnt;
	if (n->u.loop.cols)
	{
		Value		v;

		if (eval_expr(c, n->u.loop.cols, &v) != RC_OK)
			return RC_ERR;
		cols = to_int(&v);
	}
	if (emit_cell_tag(c, n, "<tr class=\"row%lld\">\n", 1) != RC_OK)
		return RC_ERR;
	if (fb.cnt > 0)
	{
		if (tmpl_enter_block(c) != RC_OK)
			return RC_ERR;
		if (for_save_var(c, s, &saved, &copied) != RC_OK)
			return RC_ERR;
		if (c->pe_wr)
			saved_wr = c->pe_wr[n->u.loop.slot];
		ls = &c->trloops[c->ntrloops++];
		ls->length = fb.cnt;
		ls->cols = cols;
		ls->name_idx = n->u.loop.name_idx;
		for (k = 0; k < fb.cnt; k++)
		{
			int64_t		col0;
			int64_t		row;

			if (++c->iterations > c->lim.max_iterations)
			{
				c->line = n->line;
				c->col = n->col;
				rc = err_iteration_limit(c);
				break;
			}
			for_item(n, &fb, k, &s->v);
			s->set = true;
			s->assigned = true;
			ls->index0 = k;
			tr_cell(ls, &col0, &row);
			if (emit_cell_tag(c, n, "<td class=\"col%lld\">", col0 + 1) != RC_OK)
			{
				rc = RC_ERR;
				break;
			}
			rc = tmpl_exec_block(c, n->u.loop.body);
			if (rc == RC_ERR)
				break;
			if (emit_cell_tag(c, n, "</td>", 0) != RC_OK)
			{
				rc = RC_ERR;
				break;
			}
			if (rc == RC_BREAK)
			{
				rc = RC_OK;
				break;
			}
			rc = RC_OK;
			if (col0 + 1 == cols && k < fb.cnt - 1 &&
				emit_cell_tag(c, n, "</tr>\n<tr class=\"row%lld\">", row + 1) != RC_OK)
			{
				rc = RC_ERR;
				break;
			}
		}
		c->ntrloops--;
		for_restore_var(s, &saved, copied);
		if (c->pe_wr)
			c->pe_wr[n->u.loop.slot] = saved_wr;
		c->depth--;
		if (rc != RC_OK)
			return rc;
	}
	return emit_cell_tag(c, n, "</tr>\n", 0);
}

/*
 * forloop.name and the tablerowloop properties (the common forloop ones
 * are evaluated inline in eval_expr).
 */
int
tmpl_loop_prop(TmplRenderCtx *c, const Expr *e, Value *out)
{
	const LoopState *ls;
	int64_t		col0;
	int64_t		row;

	out->t = V_NIL;
	if (!e->tablerow)
	{
		const char *name;

		Assert(e->prop == LP_NAME);
		if (c->nloops <= e->up)
			return RC_OK;
		ls = &c->loops[c->nloops - 1 - e->up];
		name = ls->name_idx >= 0 && ls->name_idx < c->t->nfornames ?
			c->t->fornames[ls->name_idx] : "";
		set_str(out, name, strlen(name));
		return RC_OK;
	}
	if (c->ntrloops == 0)
		return RC_OK;
	ls = &c->trloops[c->ntrloops - 1];
	tr_cell(ls, &col0, &row);
	if (loop_common_prop(ls, e->prop, out))
		return RC_OK;
	switch (e->prop)
	{
		case LP_COL:
			out->u.i = col0 + 1;
			break;
		case LP_COL0:
			out->u.i = col0;
			break;
		case LP_COL_FIRST:
			out->t = V_BOOL;
			out->u.b = col0 == 0;
			break;
		case LP_COL_LAST:
			out->t = V_BOOL;
			out->u.b = col0 + 1 == ls->cols;
			break;
		case LP_ROW:
			out->u.i = row;
			break;
		case LP_NAME:
			out->t = V_NIL;
			break;
		default:
			Assert(false);		/* loop_common_prop's */
			break;
	}
	return RC_OK;
}

/* Show the counter under the slot's name when no assign hides it. */
void
tmpl_counter_show(Slot *s)
{
	if (s->has_counter && !s->assigned)
	{
		s->v.t = V_INT;
		s->v.u.i = s->counter;
		s->set = true;
	}
}

/*
 * increment renders the counter then adds one; decrement subtracts one
 * then renders it; step 0 (a render snippet starting again) forgets the
 * counter and the snippet's value of the name.
 */
int
tmpl_render_counter(TmplRenderCtx *c, const Node *n)
{
	Slot	   *s = &c->slots[n->u.counter.slot];
	char		buf[24];
	int64_t		v;

	if (n->u.counter.step == 0)
	{
		const Template *t = c->t;
		int			slot = n->u.counter.slot;

		s->has_counter = false;
		s->assigned = false;
		/* looked up again, as a fresh scope would */
		s->set = t->slot_init ? t->slot_init_set[slot] : false;
		if (s->set)
			s->v = t->slot_init[slot];
		return RC_OK;
	}
	v = s->has_counter ? s->counter : 0;
	if (n->u.counter.step < 0)
		v = v == INT64_MIN ? v : v - 1;
	s->counter = n->u.counter.step > 0 && v < INT64_MAX ? v + 1 : v;
	s->has_counter = true;
	tmpl_counter_show(s);
	return emit(c, buf, (size_t) fmt_int(buf, v));
}

/*
 * Errors raised inside a snippet carry a SnipPos index as their line (see
 * node_pos): say which snippet, where in it, and point at the render or
 * include tag in the template.
 */
void
tmpl_error_locate(const Template *t, TmplError *err)
{
	const SnipPos *sp;
	char		msg[sizeof(err->message) + 128];

	if (err->line >= 0)
		return;
	if (t == NULL || -(long) err->line > t->nsnippos)
	{
		err->line = err->column = 0;
		return;
	}
	sp = &t->snippos[-err->line - 1];
	snprintf(msg, sizeof(msg), "in snippet \"%.64s\" line %d column %d: %s",
			 sp->name, sp->line, sp->col, err->message);
	msg[sizeof(err->message) - 1] = '\0';
	memcpy(err->message, msg, sizeof(err->message));
	err->line = sp->top_line;
	err->column = sp->top_col;
}
