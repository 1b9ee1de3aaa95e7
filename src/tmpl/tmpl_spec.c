/*-------------------------------------------------------------------------
 *
 * tmpl_spec.c
 *	  Per-broadcast specialisation (tmpl_specialize).
 *
 * See src/tmpl/tmpl_int.h for the shared types and the design.
 *
 *-------------------------------------------------------------------------
 */
#include "tmpl_int.h"

/* ----------------------------------------------------------------
 * Specialisation: partial evaluation over constant data
 *
 * tmpl_specialize walks the tree once, knowing the value of every slot
 * whose root is a key of the constant data, and of every slot assigned
 * from known values.  A node that reads only known values ("static") is
 * run by the ordinary renderer and replaced by its output; loops over
 * known collections whose body is not static are unrolled; what remains
 * is copied with known sub-expressions replaced by literals.
 *
 * Exactness rules:
 * - Pre-rendered text keeps what it cost (output including captures,
 *   iterations, depth, working memory) and charges it on every render, so
 *   limits fail as they would on the original (N_CHUNK, N_BLOCK).
 * - A slot known only at specialisation time ("unmaterialised") is given
 *   its value at render time by an emitted assign before any residual
 *   construct that may write it, since after such a construct the value
 *   is unknown and must be correct in the render-time slot.  Inside such a
 *   construct every write is emitted.
 * - Node structure that renders enter a block for is kept (N_BLOCK), so
 *   depth and the working memory held by a tag match the original.
 * - Anything that fails or reads the clock while pre-rendering is left to
 *   render time, where it fails or reads the clock as the original would.
 * ----------------------------------------------------------------
 */
typedef enum SlotKnow
{
	SK_UNKNOWN = 0,				/* per-recipient: render time has the value */
	SK_MAT,						/* known, and render time has it too */
	SK_UNMAT					/* known only here */
} SlotKnow;

typedef struct PeList
{
	Node	   *head;
	Node	  **tail;
	BeBuf		text;			/* pending pre-rendered text */
	TmplCost	cost;			/* pending cost, charged before the text */
	int			line;			/* position of the pending part */
	int			col;
} PeList;

/* A list built at specialisation time, copied once into the new template */
typedef struct PeListCopy
{
	const Value *src;
	size_t		n;
	const Value *dst;
	struct PeListCopy *next;
} PeListCopy;

typedef struct Pe
{
	const Template *t;
	Template   *nt;				/* the specialised template being built */
	TmplRenderCtx *c;			/* evaluates known parts for real */
	uint8_t    *know;			/* SlotKnow per slot */
	uint8_t    *bound;			/* static check: written earlier */
	int		   *undo;
	int			nundo;
	int			capundo;
	bool		loop_known[TMPL_MAX_COMPILE_DEPTH + 2];
	PeList	   *cur;
	int		   *snap;			/* slots saved by pe_exec */
	int			nsnap;
	Value	   *snapv;
	int			dyn;			/* inside a residual if/for: emit writes */
	int			trin;			/* static check: inside a tablerow of it */
	bool		jump_dyn;		/* break/continue must happen at render time */
	/* work left for pre-rendering; failures spend it too */
	long		iter_budget;
	size_t		out_budget;
	PeListCopy *list_copies;	/* built lists are immutable: share copies */
	long		unroll_budget;
	bool		nomem;
} Pe;

/* budgets of one specialisation; the fuzz target builds with small ones */
#ifndef PE_MAX_OUTPUT
#define PE_MAX_OUTPUT ((size_t) 4 * 1024 * 1024)
#endif
#ifndef PE_MAX_ITERATIONS
#define PE_MAX_ITERATIONS 100000L
#endif
#ifndef PE_MAX_UNROLL
#define PE_MAX_UNROLL 4096L
#endif
#define PE_FAILED 3

static void *
pe_alloc(Pe *pe, size_t n)
{
	void	   *p = arena_alloc(&pe->nt->arena, n);

	if (p == NULL)
	{
		pe->nomem = true;
		return NULL;
	}
	memset(p, 0, n);
	return p;
}

static char *
pe_strdup(Pe *pe, const char *s, size_t n)
{
	char	   *p = pe_alloc(pe, n + 1);

	if (p && n)
		memcpy(p, s, n);
	return p;
}

/*
 * Copy a value into the new template (strings are copied, and a list
 * built at specialisation time with its items: it lives in the
 * specialising context, which is freed).  Lists hold no lists.
 */
static void
pe_copy_value(Pe *pe, const Value *v, Value *out)
{
	*out = *v;
	if (v->t == V_STR)
	{
		char	   *d = pe_strdup(pe, v->u.s.p, v->u.s.n);

		out->u.s.p = d ? d : "";
	}
	else if (v->t == V_LIST && v->u.l.n > 0)
	{
		Value	   *items;
		PeListCopy *lc;
		size_t		i;

		/*
		 * Copy each built list once, however often residual code reads it
		 * (an unrolled loop may): the copies are then bounded by what the
		 * specialisation budgets let the filters build.
		 */
		for (lc = pe->list_copies; lc; lc = lc->next)
			if (lc->src == v->u.l.v && lc->n == v->u.l.n)
			{
				out->u.l.v = lc->dst;
				return;
			}
		items = pe_alloc(pe, sizeof(Value) * v->u.l.n);
		lc = pe_alloc(pe, sizeof(PeListCopy));
		out->u.l.v = items;
		if (items == NULL || lc == NULL)
		{
			out->u.l.n = 0;
			return;
		}
		for (i = 0; i < v->u.l.n; i++)
		{
			Assert(v->u.l.v[i].t != V_LIST);
			pe_copy_value(pe, &v->u.l.v[i], &items[i]);
		}
		lc->src = v->u.l.v;
		lc->n = v->u.l.n;
		lc->dst = items;
		lc->next = pe->list_copies;
		pe->list_copies = lc;
	}
}

static Expr *
pe_lit(Pe *pe, const Value *v)
{
	Expr	   *e = pe_alloc(pe, sizeof(Expr));

	if (e)
	{
		e->kind = E_LIT;
		e->cache_idx = -1;
		pe_copy_value(pe, v, &e->lit);
	}
	return e;
}

/* Whether the loop "up" levels out (forloop.parentloop...) is known. */
static bool
pe_loop_known_at(Pe *pe, int up)
{
	int			k = pe->c->nloops - 1 - up;

	return k < 0 || pe->loop_known[k];
}

/* Can e be evaluated now?  "inloop": inside a loop of the checked tree. */
static bool
pe_expr_known(Pe *pe, const Expr *e, int inloop)
{
	int			i;

	if (e == NULL)
		return true;
	switch (e->kind)
	{
		case E_LIT:
			return true;
		case E_FORLOOP:
			/* tablerows are only pre-rendered whole */
			if (e->tablerow)
				return pe->trin > 0;
			/* a loop entered inside the block, or an enclosing one */
			return e->up < inloop || pe_loop_known_at(pe, e->up - inloop);
		case E_RANGE:
			return pe_expr_known(pe, e->lo, inloop) && pe_expr_known(pe, e->hi, inloop);
		case E_VAR:
			if (!e->root_lit && pe->know[e->slot] == SK_UNKNOWN && !pe->bound[e->slot])
				return false;
			for (i = 0; i < e->nsegs; i++)
				if (e->segs[i].kind == SEG_DYN && !pe_expr_known(pe, e->segs[i].dyn, inloop))
					return false;
			return true;
	}
	return false;
}

static bool
pe_filtered_known(Pe *pe, const Filtered *f, int inloop)
{
	int			i;
	int			a;

	if (!pe_expr_known(pe, f->base, inloop))
		return false;
	for (i = 0; i < f->nfilters; i++)
	{
		for (a = 0; a < f->filters[i].nargs; a++)
			if (!pe_expr_known(pe, f->filters[i].args[a], inloop))
				return false;
		if (!pe_expr_known(pe, f->filters[i].allow_false, inloop))
			return false;
	}
	return true;
}

static bool
pe_cond_known(Pe *pe, const Cond *cd, int inloop)
{
	int			i;

	for (i = 0; i < cd->nterms; i++)
		if (!pe_expr_known(pe, cd->terms[i].l, inloop) ||
			!pe_expr_known(pe, cd->terms[i].r, inloop))
			return false;
	return true;
}

static bool
pe_bind(Pe *pe, int slot)
{
	if (pe->bound[slot])
		return true;
	if (pe->nundo == pe->capundo)
	{
		int			ncap = pe->capundo ? pe->capundo * 2 : 64;
		int		   *nu = realloc(pe->undo, sizeof(int) * (size_t) ncap);

		if (nu == NULL)
		{
			pe->nomem = true;
			return false;
		}
		pe->undo = nu;
		pe->capundo = ncap;
	}
	pe->bound[slot] = 1;
	pe->undo[pe->nundo++] = slot;
	return true;
}

static void
pe_unbind(Pe *pe, int mark)
{
	while (pe->nundo > mark)
		pe->bound[pe->undo[--pe->nundo]] = 0;
}

static bool pe_static_block(Pe *pe, const Node *n, int inloop);

/*
 * Does n read only known values?  Slots written earlier in the same
 * straight-line part of the tree count as known; writes in a branch or a
 * loop body are forgotten after it.
 */
static bool
pe_static_node(Pe *pe, const Node *n, int inloop)
{
	const IfBranch *br;
	int			mark = pe->nundo;
	bool		ok = true;

	switch (n->kind)
	{
		case N_TEXT:
		case N_CHUNK:
		case N_BREAK:
		case N_CONTINUE:
			return true;
		case N_BLOCK:
		case N_CYCLE:			/* state of the render: never pre-rendered */
		case N_IFCHANGED:
		case N_COUNTER:
			return false;
		case N_OUTPUT:
			return pe_filtered_known(pe, n->u.out, inloop);
		case N_ASSIGN:
			return pe_filtered_known(pe, n->u.assign.val, inloop) &&
				pe_bind(pe, n->u.assign.slot);
		case N_CAPTURE:
			ok = pe_static_block(pe, n->u.capture.body, inloop);
			pe_unbind(pe, mark);
			return ok && pe_bind(pe, n->u.capture.slot);
		case N_IF:
			for (br = n->u.branches; br && ok; br = br->next)
			{
				ok = (br->cond == NULL || pe_cond_known(pe, br->cond, inloop)) &&
					pe_static_block(pe, br->body, inloop);
				pe_unbind(pe, mark);
			}
			return ok;
		case N_FOR:
			/* offset: continue reads state every loop leaves: keep them all */
			if (pe->t->uses_continue)
				return false;
			ok = pe_expr_known(pe, n->u.loop.coll, inloop) &&
				pe_expr_known(pe, n->u.loop.limit, inloop) &&
				pe_expr_known(pe, n->u.loop.offset, inloop) &&
				pe_expr_known(pe, n->u.loop.cols, inloop) &&
				pe_bind(pe, n->u.loop.slot);
			if (ok && n->u.loop.tablerow)
			{
				/* tablerowloop, not forloop */
				pe->trin++;
				ok = pe_static_block(pe, n->u.loop.body, inloop);
				pe->trin--;
			}
			else if (ok)
				ok = pe_static_block(pe, n->u.loop.body, inloop + 1);
			pe_unbind(pe, mark);
			ok = ok && pe_static_block(pe, n->u.loop.else_body, inloop);
			pe_unbind(pe, mark);
			return ok;
	}
	return false;
}

static bool
pe_static_block(Pe *pe, const Node *n, int inloop)
{
	for (; n; n = n->next)
		if (!pe_static_node(pe, n, inloop))
			return false;
	return true;
}

static bool
pe_is_static(Pe *pe, const Node *n)
{
	int			mark = pe->nundo;
	bool		ok = pe_static_node(pe, n, 0);

	pe_unbind(pe, mark);
	return ok;
}

/* break/continue that would leave a loop whose body is n */
static bool
pe_has_jump(const Node *n)
{
	const IfBranch *br;

	for (; n; n = n->next)
	{
		switch (n->kind)
		{
			case N_BREAK:
			case N_CONTINUE:
				return true;
			case N_IF:
				for (br = n->u.branches; br; br = br->next)
					if (pe_has_jump(br->body))
						return true;
				break;
			case N_CAPTURE:
			case N_IFCHANGED:
				if (pe_has_jump(n->u.capture.body))
					return true;
				break;
			case N_FOR:
				if (pe_has_jump(n->u.loop.else_body))
					return true;
				break;
			default:
				break;
		}
	}
	return false;
}

static bool
pe_writes(const Node *n, int slot)
{
	const IfBranch *br;

	for (; n; n = n->next)
	{
		switch (n->kind)
		{
			case N_ASSIGN:
				if (n->u.assign.slot == slot)
					return true;
				break;
			case N_COUNTER:
				if (n->u.counter.slot == slot)
					return true;
				break;
			case N_CAPTURE:
			case N_IFCHANGED:	/* slot -1 */
				if (n->u.capture.slot == slot || pe_writes(n->u.capture.body, slot))
					return true;
				break;
			case N_FOR:
				if (n->u.loop.slot == slot || pe_writes(n->u.loop.body, slot) ||
					pe_writes(n->u.loop.else_body, slot))
					return true;
				break;
			case N_IF:
				for (br = n->u.branches; br; br = br->next)
					if (pe_writes(br->body, slot))
						return true;
				break;
			default:
				break;
		}
	}
	return false;
}

static Node *
pe_new_node(Pe *pe, NodeKind kind, int line, int col)
{
	Node	   *nd = pe_alloc(pe, sizeof(Node));

	if (nd)
	{
		nd->kind = kind;
		nd->line = line;
		nd->col = col;
	}
	return nd;
}

static void
pe_list_init(PeList *l)
{
	memset(l, 0, sizeof(*l));
	l->tail = &l->head;
	be_buf_init(&l->text);
}

static bool
cost_is_zero(const TmplCost *k)
{
	return k->extra_out == 0 && k->iters == 0 && k->peak_depth == 0 &&
		k->arena_peak == 0 && k->max_req == 0;
}

static void
cost_add(TmplCost *k, const TmplCost *a)
{
	k->extra_out += a->extra_out;
	k->iters += a->iters;
	if (a->peak_depth > k->peak_depth)
		k->peak_depth = a->peak_depth;
	if (a->arena_peak > k->arena_peak)
		k->arena_peak = a->arena_peak;
	if (a->max_req > k->max_req)
		k->max_req = a->max_req;
}

static const TmplCost *
pe_cost_copy(Pe *pe, const TmplCost *k)
{
	TmplCost   *d;

	if (cost_is_zero(k))
		return NULL;
	d = pe_alloc(pe, sizeof(TmplCost));
	if (d)
		*d = *k;
	return d;
}

/* Turn the pending text and cost of l into a node. */
static void
pe_flush(Pe *pe, PeList *l)
{
	Node	   *nd;

	if (l->text.oom)
		pe->nomem = true;
	if (l->text.len == 0 && cost_is_zero(&l->cost))
		return;
	nd = pe_new_node(pe, N_CHUNK, l->line, l->col);
	if (nd == NULL)
		return;
	nd->u.chunk.p = pe_strdup(pe, l->text.data ? l->text.data : "", l->text.len);
	nd->u.chunk.n = l->text.len;
	nd->u.chunk.cost = pe_cost_copy(pe, &l->cost);
	if (!cost_is_zero(&l->cost) && nd->u.chunk.cost == NULL)
		return;
	if (nd->u.chunk.cost == NULL)
		nd->kind = N_TEXT;		/* the renderer's fast path */
	*l->tail = nd;
	l->tail = &nd->next;
	be_buf_reset(&l->text);
	memset(&l->cost, 0, sizeof(l->cost));
}

static void
pe_append(Pe *pe, Node *nd)
{
	if (nd == NULL)
		return;
	pe_flush(pe, pe->cur);
	*pe->cur->tail = nd;
	pe->cur->tail = &nd->next;
}

/* Note the position of the first part of pending text. */
static void
pe_pending_at(Pe *pe, const Node *n)
{
	if (pe->cur->text.len == 0 && cost_is_zero(&pe->cur->cost))
	{
		pe->cur->line = n->line;
		pe->cur->col = n->col;
	}
}

static Expr *
pe_expr(Pe *pe, const Expr *e)
{
	Expr	   *ne;
	int			i;

	if (e == NULL)
		return NULL;
	if ((e->kind == E_FORLOOP && !e->tablerow && pe_loop_known_at(pe, e->up)) ||
		(e->kind == E_VAR && !e->root_lit && pe->know[e->slot] != SK_UNKNOWN))
	{
		bool		dyn = false;
		Value		v;

		for (i = 0; i < e->nsegs; i++)
			dyn |= e->segs[i].kind == SEG_DYN;
		/* dynamic keys allocate at render time: keep them */
		if (!dyn && eval_expr(pe->c, e, &v) == RC_OK)
			return pe_lit(pe, &v);
	}
	ne = pe_alloc(pe, sizeof(Expr));
	if (ne == NULL)
		return NULL;
	*ne = *e;
	switch (e->kind)
	{
		case E_LIT:
			pe_copy_value(pe, &e->lit, &ne->lit);
			break;
		case E_RANGE:
			ne->lo = pe_expr(pe, e->lo);
			ne->hi = pe_expr(pe, e->hi);
			break;
		case E_FORLOOP:
			{
				/*
				 * Loops run here are unrolled in the result: count only
				 * the residual ones between this one and its target.
				 */
				int			target = pe->c->nloops - 1 - e->up;
				int			k;

				if (e->tablerow)
					break;		/* tablerows are never unrolled */
				ne->up = 0;
				for (k = target + 1; k < pe->c->nloops; k++)
					if (!pe->loop_known[k])
						ne->up++;
				break;
			}
		case E_VAR:
			if (e->root_lit)
				pe_copy_value(pe, &e->lit, &ne->lit);
			else if (pe->know[e->slot] != SK_UNKNOWN)
			{
				ne->root_lit = true;
				pe_copy_value(pe, &pe->c->slots[e->slot].v, &ne->lit);
			}
			if (e->nsegs)
			{
				ne->segs = pe_alloc(pe, sizeof(Seg) * (size_t) e->nsegs);
				if (ne->segs == NULL)
					return NULL;
				for (i = 0; i < e->nsegs; i++)
				{
					ne->segs[i] = e->segs[i];
					if (e->segs[i].key)
						ne->segs[i].key = pe_strdup(pe, e->segs[i].key, e->segs[i].keylen);
					if (e->segs[i].kind == SEG_DYN)
						ne->segs[i].dyn = pe_expr(pe, e->segs[i].dyn);
				}
			}
			break;
	}
	return ne;
}

static Filtered *
pe_filtered(Pe *pe, const Filtered *f)
{
	Filtered   *nf = pe_alloc(pe, sizeof(Filtered));
	int			i;
	int			a;

	if (nf == NULL)
		return NULL;
	nf->base = pe_expr(pe, f->base);
	nf->nfilters = f->nfilters;
	if (f->nfilters)
	{
		nf->filters = pe_alloc(pe, sizeof(FilterCall) * (size_t) f->nfilters);
		if (nf->filters == NULL)
			return NULL;
		for (i = 0; i < f->nfilters; i++)
		{
			nf->filters[i] = f->filters[i];
			for (a = 0; a < f->filters[i].nargs; a++)
				nf->filters[i].args[a] = pe_expr(pe, f->filters[i].args[a]);
			nf->filters[i].allow_false = pe_expr(pe, f->filters[i].allow_false);
		}
	}
	return nf;
}

static Cond *
pe_cond(Pe *pe, const Cond *cd)
{
	Cond	   *nc;
	int			i;

	if (cd == NULL)
		return NULL;
	nc = pe_alloc(pe, sizeof(Cond));
	if (nc == NULL)
		return NULL;
	nc->nterms = cd->nterms;
	nc->terms = pe_alloc(pe, sizeof(CondTerm) * (size_t) cd->nterms);
	if (nc->terms == NULL)
		return NULL;
	for (i = 0; i < cd->nterms; i++)
	{
		nc->terms[i] = cd->terms[i];
		nc->terms[i].l = pe_expr(pe, cd->terms[i].l);
		nc->terms[i].r = pe_expr(pe, cd->terms[i].r);
	}
	return nc;
}

/* Give the render-time slot the value known here. */
static void
pe_materialize(Pe *pe, int slot)
{
	Node	   *nd;
	Filtered   *f;

	if (pe->know[slot] != SK_UNMAT)
		return;
	nd = pe_new_node(pe, N_ASSIGN, 0, 0);
	f = pe_alloc(pe, sizeof(Filtered));
	if (nd == NULL || f == NULL)
		return;
	f->base = pe_lit(pe, &pe->c->slots[slot].v);
	nd->u.assign.slot = slot;
	nd->u.assign.val = f;
	pe_append(pe, nd);
	pe->know[slot] = SK_MAT;
}

/*
 * Before a residual construct: materialise what it may write, then
 * forget it (its value after the construct is only known at render time).
 */
static void
pe_snap_slot(Pe *pe, int slot)
{
	if (pe->know[slot] != SK_UNMAT || pe->bound[slot])
		return;
	pe->bound[slot] = 1;
	pe->snap[pe->nsnap] = slot;
	pe_copy_value(pe, &pe->c->slots[slot].v, &pe->snapv[pe->nsnap]);
	pe->nsnap++;
}

/*
 * Save the slots known only here that n may write, so that their values
 * can be put back if n fails to pre-render.
 */
static void
pe_snap(Pe *pe, const Node *n)
{
	const IfBranch *br;

	switch (n->kind)
	{
		case N_ASSIGN:
			pe_snap_slot(pe, n->u.assign.slot);
			break;
		case N_CAPTURE:
		case N_IFCHANGED:
			if (n->u.capture.slot >= 0)
				pe_snap_slot(pe, n->u.capture.slot);
			for (n = n->u.capture.body; n; n = n->next)
				pe_snap(pe, n);
			break;
		case N_FOR:
			{
				const Node *b;

				pe_snap_slot(pe, n->u.loop.slot);
				for (b = n->u.loop.body; b; b = b->next)
					pe_snap(pe, b);
				for (b = n->u.loop.else_body; b; b = b->next)
					pe_snap(pe, b);
				break;
			}
		case N_IF:
			for (br = n->u.branches; br; br = br->next)
			{
				const Node *b;

				for (b = br->body; b; b = b->next)
					pe_snap(pe, b);
			}
			break;
		default:
			break;
	}
}

static void
pe_havoc(Pe *pe, const Node *n, bool materialize)
{
	const IfBranch *br;

	for (; n; n = n->next)
	{
		int			slot = -1;

		switch (n->kind)
		{
			case N_ASSIGN:
				slot = n->u.assign.slot;
				break;
			case N_COUNTER:
				slot = n->u.counter.slot;
				break;
			case N_CAPTURE:
			case N_IFCHANGED:	/* slot -1 */
				slot = n->u.capture.slot;
				pe_havoc(pe, n->u.capture.body, materialize);
				break;
			case N_FOR:
				slot = n->u.loop.slot;
				pe_havoc(pe, n->u.loop.body, materialize);
				pe_havoc(pe, n->u.loop.else_body, materialize);
				break;
			case N_IF:
				for (br = n->u.branches; br; br = br->next)
					pe_havoc(pe, br->body, materialize);
				break;
			default:
				break;
		}
		if (slot >= 0)
		{
			if (materialize)
				pe_materialize(pe, slot);
			pe->know[slot] = SK_UNKNOWN;
		}
	}
}

static void
pe_havoc_node(Pe *pe, const Node *n, bool materialize)
{
	Node		one = *n;

	one.next = NULL;
	pe_havoc(pe, &one, materialize);
}

static int	pe_block(Pe *pe, const Node *n);

/* Render a static node now; PE_FAILED leaves it to render time. */
static int
pe_exec(Pe *pe, const Node *n)
{
	TmplRenderCtx *c = pe->c;
	PeList	   *l = pe->cur;
	size_t		len0 = l->text.len;
	size_t		prod0 = c->produced;
	long		it0 = c->iterations;
	int			depth0 = c->depth;
	int			nloops0 = c->nloops;
	int			ncap0 = c->ncap;
	size_t		base = c->arena.inuse;
	ArenaMark	m = arena_mark(&c->arena);
	TmplCost	k;
	int			rc;
	int			i;

	c->peak_depth = c->depth;
	c->peak_inuse = base;
	c->max_req = 0;
	c->clock_used = false;
	c->zone_used = false;
	memset(c->pe_wr, 0, (size_t) pe->t->nslots);
	pe->nsnap = 0;
	pe_snap(pe, n);
	for (i = 0; i < pe->nsnap; i++)
		pe->bound[pe->snap[i]] = 0;
	if (pe->nomem)
		return RC_ERR;
	c->lim.max_iterations = it0 + pe->iter_budget;
	c->lim.max_output = prod0 + pe->out_budget;
	rc = tmpl_exec_node(c, n);
	arena_release(&c->arena, m);
	c->out = &l->text;
	pe->iter_budget -= c->iterations - it0;
	pe->out_budget -= c->produced - prod0;
	if (l->text.oom)
	{
		pe->nomem = true;
		return RC_ERR;
	}
	if (rc == RC_ERR || c->clock_used || c->zone_used)
	{
		l->text.len = len0;
		if (l->text.data)
			l->text.data[len0] = '\0';
		c->produced = prod0;
		c->iterations = it0;
		c->depth = depth0;
		c->nloops = nloops0;
		c->ncap = ncap0;
		/*
		 * Whatever it wrote is no longer known, except values known only
		 * here, which get their saved value back (render time may still
		 * need them).
		 */
		for (i = 0; i < pe->t->nslots; i++)
			if (c->pe_wr[i] && pe->know[i] != SK_UNMAT)
				pe->know[i] = SK_UNKNOWN;
		for (i = 0; i < pe->nsnap; i++)
		{
			c->slots[pe->snap[i]].v = pe->snapv[i];
			c->slots[pe->snap[i]].set = true;
		}
		return PE_FAILED;
	}
	sink_finish(&l->text);
	memset(&k, 0, sizeof(k));
	k.extra_out = (c->produced - prod0) - (l->text.len - len0);
	k.iters = c->iterations - it0;
	if (c->peak_depth > depth0)
		k.peak_depth = c->peak_depth;
	k.arena_peak = c->peak_inuse - base;
	k.max_req = c->max_req;
	if (len0 == 0 && cost_is_zero(&l->cost))
	{
		l->line = n->line;
		l->col = n->col;
	}
	cost_add(&l->cost, &k);
	for (i = 0; i < pe->t->nslots; i++)
	{
		if (!c->pe_wr[i])
			continue;
		pe->know[i] = SK_UNMAT;
		if (pe->dyn)
			pe_materialize(pe, i);
	}
	return rc;
}

/* Cost of evaluating a tag's own expressions since "base". */
static void
pe_tag_cost(Pe *pe, size_t base, TmplCost *k)
{
	memset(k, 0, sizeof(*k));
	k->arena_peak = pe->c->peak_inuse > base ? pe->c->peak_inuse - base : 0;
	k->max_req = pe->c->max_req;
}

static void
pe_track_from(Pe *pe)
{
	pe->c->peak_inuse = pe->c->arena.inuse;
	pe->c->max_req = 0;
}

/* Specialise body as the block a tag enters; appends an N_BLOCK. */
static int
pe_enter(Pe *pe, const Node *at, const TmplCost *pre, size_t reserve,
		 const Node *body)
{
	PeList		l;
	PeList	   *saved = pe->cur;
	Node	   *nd;
	int			rc;

	pe_list_init(&l);
	pe->cur = &l;
	pe->c->out = &l.text;
	pe->c->depth++;
	rc = pe_block(pe, body);
	pe->c->depth--;
	pe_flush(pe, &l);
	pe->cur = saved;
	pe->c->out = &saved->text;
	be_buf_free(&l.text);
	nd = pe_new_node(pe, N_BLOCK, at->line, at->col);
	if (nd)
	{
		nd->u.block.pre = pe_cost_copy(pe, pre);
		nd->u.block.reserve = reserve;
		nd->u.block.body = l.head;
		pe_append(pe, nd);
	}
	return rc;
}

/* Specialise body into a residual construct's list, in a dynamic region. */
static Node *
pe_sub(Pe *pe, const Node *body, bool dynamic, int *rcp)
{
	PeList		l;
	PeList	   *saved = pe->cur;
	bool		saved_jd = pe->jump_dyn;
	int			rc;

	pe_list_init(&l);
	pe->cur = &l;
	pe->c->out = &l.text;
	pe->c->depth++;
	if (dynamic)
	{
		pe->dyn++;
		pe->jump_dyn = true;
	}
	rc = pe_block(pe, body);
	if (dynamic)
	{
		pe->dyn--;
		pe->jump_dyn = saved_jd;
	}
	pe->c->depth--;
	pe_flush(pe, &l);
	pe->cur = saved;
	pe->c->out = &saved->text;
	be_buf_free(&l.text);
	if (rcp)
		*rcp = rc;
	return l.head;
}

static int
pe_if(Pe *pe, const Node *n, bool force)
{
	TmplRenderCtx *c = pe->c;
	const IfBranch *br = n->u.branches;
	size_t		base = c->arena.inuse;
	IfBranch   *head = NULL;
	IfBranch  **tail = &head;
	Node	   *nd;
	TmplCost	k;

	pe_track_from(pe);
	if (!force)
	{
		for (; br; br = br->next)
		{
			bool		take = true;

			if (br->cond)
			{
				if (!pe_cond_known(pe, br->cond, 0))
					break;
				if (eval_cond(c, br->cond, &take) != RC_OK)
				{
					force = true;
					break;
				}
				if (br->negate)
					take = !take;
			}
			if (!take)
				continue;
			pe_tag_cost(pe, base, &k);
			if (br->body == NULL)
			{
				cost_add(&pe->cur->cost, &k);
				return RC_OK;
			}
			return pe_enter(pe, n, &k, c->arena.inuse - base, br->body);
		}
		if (br == NULL && !force)
		{
			pe_tag_cost(pe, base, &k);
			pe_pending_at(pe, n);
			cost_add(&pe->cur->cost, &k);
			return RC_OK;
		}
		/* dropped conditions must not have held working memory */
		if (c->arena.inuse != base || c->max_req)
			force = true;
	}
	if (force)
		br = n->u.branches;

	/* residual from br on */
	{
		const IfBranch *b;

		for (b = br; b; b = b->next)
			pe_havoc(pe, b->body, true);
		for (b = br; b; b = b->next)
		{
			IfBranch   *nb = pe_alloc(pe, sizeof(IfBranch));

			if (nb == NULL)
				return RC_ERR;
			nb->cond = pe_cond(pe, b->cond);
			nb->negate = b->negate;
			nb->body = pe_sub(pe, b->body, true, NULL);
			pe_havoc(pe, b->body, false);
			*tail = nb;
			tail = &nb->next;
		}
	}
	nd = pe_new_node(pe, N_IF, n->line, n->col);
	if (nd == NULL)
		return RC_ERR;
	nd->u.branches = head;
	pe_append(pe, nd);
	return pe->nomem ? RC_ERR : RC_OK;
}

static int
pe_residual_for(Pe *pe, const Node *n)
{
	Node	   *nd;

	pe_havoc_node(pe, n, true);
	nd = pe_new_node(pe, N_FOR, n->line, n->col);
	if (nd == NULL)
		return RC_ERR;
	nd->u.loop = n->u.loop;
	nd->u.loop.coll = pe_expr(pe, n->u.loop.coll);
	nd->u.loop.limit = pe_expr(pe, n->u.loop.limit);
	nd->u.loop.offset = pe_expr(pe, n->u.loop.offset);
	nd->u.loop.cols = pe_expr(pe, n->u.loop.cols);
	/* a tablerow is no loop for forloop */
	if (!n->u.loop.tablerow)
		pe->loop_known[pe->c->nloops++] = false;
	nd->u.loop.body = pe_sub(pe, n->u.loop.body, true, NULL);
	if (!n->u.loop.tablerow)
		pe->c->nloops--;
	pe_havoc(pe, n->u.loop.body, false);
	nd->u.loop.else_body = pe_sub(pe, n->u.loop.else_body, true, NULL);
	pe_havoc_node(pe, n, false);
	pe_append(pe, nd);
	return pe->nomem ? RC_ERR : RC_OK;
}

static int
pe_for(Pe *pe, const Node *n, bool force)
{
	TmplRenderCtx *c = pe->c;
	size_t		base = c->arena.inuse;
	ForBounds	fb;
	TmplCost	k;
	Slot	   *s = &c->slots[n->u.loop.slot];
	Slot		saved;
	bool		copied;
	uint8_t		saved_know;
	bool		saved_jd;
	PeList		l;
	PeList	   *outer;
	LoopState  *ls;
	Node	   *nd;
	int64_t		i;
	int			rc = RC_OK;

	if (force || pe->t->uses_continue || n->u.loop.tablerow ||
		!pe_expr_known(pe, n->u.loop.coll, 0) ||
		!pe_expr_known(pe, n->u.loop.limit, 0) ||
		!pe_expr_known(pe, n->u.loop.offset, 0))
		return pe_residual_for(pe, n);
	pe_track_from(pe);
	if (for_bounds(c, n, &fb) != RC_OK)
		return pe_residual_for(pe, n);
	if (fb.cnt <= 0)
	{
		pe_tag_cost(pe, base, &k);
		if (n->u.loop.else_body == NULL)
		{
			pe_pending_at(pe, n);
			cost_add(&pe->cur->cost, &k);
			return RC_OK;
		}
		return pe_enter(pe, n, &k, c->arena.inuse - base, n->u.loop.else_body);
	}
	/* unroll only what cannot jump out and leaves its variable alone */
	if (fb.cnt > pe->unroll_budget || fb.cnt > pe->iter_budget ||
		pe_has_jump(n->u.loop.body) ||
		pe_writes(n->u.loop.body, n->u.loop.slot) ||
		c->nloops >= TMPL_MAX_COMPILE_DEPTH)
		return pe_residual_for(pe, n);
	pe->unroll_budget -= fb.cnt;
	pe->iter_budget -= fb.cnt;
	if (for_save_var(c, s, &saved, &copied) != RC_OK)
		return pe_residual_for(pe, n);
	pe_tag_cost(pe, base, &k);
	/* the loop enters a block before saving its variable */
	k.peak_depth = c->depth + 1;

	pe_list_init(&l);
	outer = pe->cur;
	pe->cur = &l;
	c->out = &l.text;
	c->depth++;
	saved_know = pe->know[n->u.loop.slot];
	saved_jd = pe->jump_dyn;
	pe->jump_dyn = false;
	pe->loop_known[c->nloops] = true;
	ls = &c->loops[c->nloops++];
	ls->length = fb.cnt;
	ls->name_idx = n->u.loop.name_idx;
	for (i = 0; i < fb.cnt; i++)
	{
		pe_pending_at(pe, n);
		l.cost.iters++;
		for_item(n, &fb, i, &s->v);
		s->set = true;
		pe->know[n->u.loop.slot] = SK_UNMAT;
		ls->index0 = i;
		rc = pe_block(pe, n->u.loop.body);
		if (rc == RC_ERR || rc == RC_BREAK)
			break;
		rc = RC_OK;
	}
	c->nloops--;
	for_restore_var(s, &saved, copied);
	pe->know[n->u.loop.slot] = saved_know;
	pe->jump_dyn = saved_jd;
	c->depth--;
	pe_flush(pe, &l);
	pe->cur = outer;
	c->out = &outer->text;
	be_buf_free(&l.text);
	if (rc == RC_ERR)
		return RC_ERR;
	nd = pe_new_node(pe, N_BLOCK, n->line, n->col);
	if (nd == NULL)
		return RC_ERR;
	nd->u.block.pre = pe_cost_copy(pe, &k);
	nd->u.block.reserve = c->arena.inuse - base;
	nd->u.block.body = l.head;
	pe_append(pe, nd);
	return pe->nomem ? RC_ERR : RC_OK;
}

static int
pe_capture(Pe *pe, const Node *n)
{
	Node	   *nd = pe_new_node(pe, N_CAPTURE, n->line, n->col);
	int			rc;

	if (nd == NULL)
		return RC_ERR;
	/* the body runs once, in order: not a dynamic region */
	nd->u.capture.slot = n->u.capture.slot;
	nd->u.capture.body = pe_sub(pe, n->u.capture.body, false, &rc);
	pe->know[n->u.capture.slot] = SK_UNKNOWN;
	pe_append(pe, nd);
	return pe->nomem ? RC_ERR : rc;
}

static int
pe_node(Pe *pe, const Node *n)
{
	Node	   *nd;
	bool		force = false;

	if (pe->nomem)
		return RC_ERR;
	if (n->kind == N_TEXT)
	{
		pe_pending_at(pe, n);
		if (!be_buf_append(&pe->cur->text, n->u.text.p, n->u.text.n))
			pe->nomem = true;
		return pe->nomem ? RC_ERR : RC_OK;
	}
	if (pe_is_static(pe, n))
	{
		int			rc = pe_exec(pe, n);

		if (rc != PE_FAILED)
		{
			if ((rc == RC_BREAK || rc == RC_CONTINUE) && pe->jump_dyn)
				pe_append(pe, pe_new_node(pe, rc == RC_BREAK ? N_BREAK : N_CONTINUE,
										  n->line, n->col));
			return pe->nomem ? RC_ERR : rc;
		}
		force = true;
	}
	if (pe->nomem)
		return RC_ERR;
	switch (n->kind)
	{
		case N_OUTPUT:
			nd = pe_new_node(pe, N_OUTPUT, n->line, n->col);
			if (nd == NULL)
				return RC_ERR;
			nd->u.out = pe_filtered(pe, n->u.out);
			pe_append(pe, nd);
			break;
		case N_ASSIGN:
			nd = pe_new_node(pe, N_ASSIGN, n->line, n->col);
			if (nd == NULL)
				return RC_ERR;
			nd->u.assign.slot = n->u.assign.slot;
			nd->u.assign.val = pe_filtered(pe, n->u.assign.val);
			pe->know[n->u.assign.slot] = SK_UNKNOWN;
			pe_append(pe, nd);
			break;
		case N_IF:
			return pe_if(pe, n, force);
		case N_FOR:
			return pe_for(pe, n, force);
		case N_CAPTURE:
			return pe_capture(pe, n);
		case N_IFCHANGED:
			{
				int			rc;

				nd = pe_new_node(pe, N_IFCHANGED, n->line, n->col);
				if (nd == NULL)
					return RC_ERR;
				/* the body runs once, in order, like a capture's */
				nd->u.capture.slot = -1;
				nd->u.capture.body = pe_sub(pe, n->u.capture.body, false, &rc);
				pe_append(pe, nd);
				return pe->nomem ? RC_ERR : rc;
			}
		case N_COUNTER:
			/* render state too: the slot is unknown afterwards */
			pe_havoc_node(pe, n, true);
			nd = pe_new_node(pe, N_COUNTER, n->line, n->col);
			if (nd == NULL)
				return RC_ERR;
			nd->u.counter = n->u.counter;
			pe_append(pe, nd);
			break;
		case N_CYCLE:
			{
				/* its group state lives in the render: always residual */
				Expr	  **vals = pe_alloc(pe, sizeof(Expr *) * (size_t) n->u.cycle.nvals);
				int			i;

				nd = pe_new_node(pe, N_CYCLE, n->line, n->col);
				if (nd == NULL || vals == NULL)
					return RC_ERR;
				nd->u.cycle = n->u.cycle;
				nd->u.cycle.markup = pe_strdup(pe, n->u.cycle.markup, n->u.cycle.markuplen);
				nd->u.cycle.group = n->u.cycle.group ? pe_expr(pe, n->u.cycle.group) : NULL;
				for (i = 0; i < n->u.cycle.nvals; i++)
					vals[i] = pe_expr(pe, n->u.cycle.vals[i]);
				nd->u.cycle.vals = vals;
				pe_append(pe, nd);
				break;
			}
		default:
			/* text, break and continue are always static */
			break;
	}
	return pe->nomem ? RC_ERR : RC_OK;
}

static int
pe_block(Pe *pe, const Node *n)
{
	for (; n; n = n->next)
	{
		ArenaMark	m = arena_mark(&pe->c->arena);
		int			rc = pe_node(pe, n);

		/* temporaries of a statement die with it, as when rendering */
		arena_release(&pe->c->arena, m);
		if (rc != RC_OK)
			return rc;
	}
	return RC_OK;
}

Template *
tmpl_specialize(const Template *t, struct json_object *constant_data, TmplError *err)
{
	Pe			pe;
	TmplLimits	lim;
	Template   *nt;
	PeList		top;
	BeBuf		dummy;
	TmplError	scratch;
	Value	   *init = NULL;
	bool	   *init_set = NULL;
	int			rc;
	int			i;

	memset(err, 0, sizeof(*err));
	if (t->slot_init)
	{
		set_error(err, TMPL_ERR_RUNTIME, 0, 0, "template is already specialised");
		return NULL;
	}
	memset(&pe, 0, sizeof(pe));
	pe_list_init(&top);
	be_buf_init(&dummy);
	if (constant_data && !json_object_is_type(constant_data, json_type_object))
		constant_data = NULL;
	nt = calloc(1, sizeof(Template));
	pe.c = tmpl_ctx_create();
	if (nt == NULL || pe.c == NULL || (nt->src = malloc(t->len + 1)) == NULL)
		goto nomem;
	memcpy(nt->src, t->src, t->len + 1);
	nt->len = t->len;
	arena_init(&nt->arena);
	nt->nslots = t->nslots;
	nt->ncache = t->ncache;
	nt->nkeys = t->nkeys;
	nt->nfornames = t->nfornames;
	nt->uses_continue = t->uses_continue;
	{
		static uint64_t next_id = UINT64_MAX / 2;

		nt->id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
	}
	pe.t = t;
	pe.nt = nt;
	pe.unroll_budget = PE_MAX_UNROLL;
	pe.iter_budget = PE_MAX_ITERATIONS;
	pe.out_budget = PE_MAX_OUTPUT;
	pe.cur = &top;
	/* one spare byte: never a zero-sized allocation */
	pe.know = calloc((size_t) t->nslots + 1, 1);
	pe.bound = calloc((size_t) t->nslots + 1, 1);
	pe.c->pe_wr = calloc((size_t) t->nslots + 1, 1);
	pe.snap = calloc((size_t) t->nslots + 1, sizeof(int));
	pe.snapv = calloc((size_t) t->nslots + 1, sizeof(Value));
	if (pe.know == NULL || pe.bound == NULL || pe.c->pe_wr == NULL ||
		pe.snap == NULL || pe.snapv == NULL)
		goto nomem;
	if (t->nslots)
	{
		const char **names = NULL;

		names = pe_alloc(&pe, sizeof(char *) * (size_t) t->nslots);
		init = pe_alloc(&pe, sizeof(Value) * (size_t) t->nslots);
		init_set = pe_alloc(&pe, sizeof(bool) * (size_t) t->nslots);
		if (names == NULL || init == NULL || init_set == NULL)
			goto nomem;
		for (i = 0; i < t->nslots; i++)
			if ((names[i] = pe_strdup(&pe, t->slot_names[i], strlen(t->slot_names[i]))) == NULL)
				goto nomem;
		nt->slot_names = names;
	}
	if (t->nfornames)
	{
		const char **fn = pe_alloc(&pe, sizeof(char *) * (size_t) t->nfornames);

		if (fn == NULL)
			goto nomem;
		for (i = 0; i < t->nfornames; i++)
			if ((fn[i] = pe_strdup(&pe, t->fornames[i], strlen(t->fornames[i]))) == NULL)
				goto nomem;
		nt->fornames = fn;
	}
	if (t->nsnippos)
	{
		SnipPos    *sp = pe_alloc(&pe, sizeof(SnipPos) * (size_t) t->nsnippos);

		if (sp == NULL)
			goto nomem;
		for (i = 0; i < t->nsnippos; i++)
		{
			sp[i] = t->snippos[i];
			if ((sp[i].name = pe_strdup(&pe, sp[i].name, strlen(sp[i].name))) == NULL)
				goto nomem;
		}
		nt->snippos = sp;
		nt->nsnippos = t->nsnippos;
	}

	lim.max_output = PE_MAX_OUTPUT;
	lim.max_iterations = PE_MAX_ITERATIONS;
	lim.max_depth = TMPL_MAX_COMPILE_DEPTH;
	if (ctx_begin(t, pe.c, constant_data, &lim, &dummy, &scratch) != RC_OK)
		goto nomem;
	pe.c->out = &top.text;
	for (i = 0; i < t->nslots; i++)
	{
		struct json_object *j;
		Slot	   *s = &pe.c->slots[i];

		s->set = true;
		s->v.t = V_NIL;
		if (constant_data && json_object_object_get_ex(constant_data, t->slot_names[i], &j))
		{
			/* constant root: known, and set at render time */
			json_to_value(j, &s->v);
			init[i] = s->v;
			init_set[i] = true;
			pe.know[i] = SK_MAT;
		}
	}

	rc = pe_block(&pe, t->root);
	pe_flush(&pe, &top);
	if (rc == RC_ERR || pe.nomem)
		goto nomem;
	nt->root = top.head;
	if (constant_data)
		nt->const_data = json_object_get(constant_data);
	if (t->nslots)
	{
		nt->slot_init = init;
		nt->slot_init_set = init_set;
	}
	be_buf_free(&top.text);
	be_buf_free(&dummy);
	free(pe.know);
	free(pe.bound);
	free(pe.undo);
	free(pe.snap);
	free(pe.snapv);
	free(pe.c->pe_wr);
	pe.c->pe_wr = NULL;
	tmpl_ctx_free(pe.c);
	return nt;

nomem:
	be_buf_free(&top.text);
	be_buf_free(&dummy);
	free(pe.know);
	free(pe.bound);
	free(pe.undo);
	free(pe.snap);
	free(pe.snapv);
	if (pe.c)
	{
		free(pe.c->pe_wr);
		pe.c->pe_wr = NULL;
		tmpl_ctx_free(pe.c);
	}
	tmpl_free(nt);
	set_error(err, TMPL_ERR_NOMEM, 0, 0, "out of memory");
	return NULL;
}
