/*-------------------------------------------------------------------------
 *
 * tmpl_state.c
 *	  Tags whose output depends on what earlier tags of the same render
 *	  did: cycle and ifchanged.
 *
 * Their state lives in the render context and is reset by ctx_begin.  The
 * specialiser never pre-renders these tags (it copies them as they are),
 * so the state evolves at render time in the same order as in a plain
 * render, and the specialised output stays byte-identical.
 *
 * Bounded storage: a cycle group is created once per distinct key in the
 * list arena; it counts as one iteration and its key's bytes as output,
 * like the items of a built array (tmpl_filter_arr.c).
 *
 *-------------------------------------------------------------------------
 */
#include "tmpl_int.h"

typedef struct CycleState
{
	struct CycleState *next;
	bool		named;			/* key: the group's value, else the markup */
	const char *key;
	size_t		keylen;
	int64_t		pos;			/* times this group has cycled */
} CycleState;

/*
 * cycle: the group is the evaluated name, or for an unnamed cycle the
 * markup of its values (so identical unnamed cycles share one), as Liquid.
 */
int
tmpl_render_cycle(TmplRenderCtx *c, const Node *n)
{
	const char *key = n->u.cycle.markup;
	size_t		keylen = n->u.cycle.markuplen;
	bool		named = n->u.cycle.group != NULL;
	CycleState *cs;
	Value		v;

	c->line = n->line;
	c->col = n->col;
	if (named)
	{
		Value		g;

		if (eval_expr(c, n->u.cycle.group, &g) != RC_OK || str_of(c, &g, &key, &keylen) != RC_OK)
			return RC_ERR;
	}
	for (cs = c->cycles; cs; cs = cs->next)
		if (cs->named == named && cs->keylen == keylen &&
			(keylen == 0 || memcmp(cs->key, key, keylen) == 0))
			break;
	if (cs == NULL)
	{
		char	   *k;

		if (++c->iterations > c->lim.max_iterations)
			return err_iteration_limit(c);
		if (keylen > c->lim.max_output - c->produced)
			return err_output_limit(c);
		c->produced += keylen;
		cs = arena_alloc(&c->lists, sizeof(CycleState));
		k = arena_alloc(&c->lists, keylen + 1);
		if (cs == NULL || k == NULL)
			return rerr(c, TMPL_ERR_NOMEM, "out of memory");
		if (keylen)
			memcpy(k, key, keylen);
		k[keylen] = '\0';
		cs->named = named;
		cs->key = k;
		cs->keylen = keylen;
		cs->pos = 0;
		cs->next = c->cycles;
		c->cycles = cs;
	}
	/* Liquid keeps the position when a group changes its values: past the
	 * end it renders nothing once, then starts over */
	v.t = V_NIL;
	if (cs->pos < n->u.cycle.nvals &&
		eval_expr(c, n->u.cycle.vals[cs->pos], &v) != RC_OK)
		return RC_ERR;
	cs->pos = cs->pos + 1 >= n->u.cycle.nvals ? 0 : cs->pos + 1;
	return emit_value(c, &v);
}

/*
 * ifchanged: its body was rendered into a capture buffer (its bytes are
 * counted as output there, as a capture's); it is output only when it
 * differs from what the last ifchanged of this render rendered.  The copy
 * kept for the comparison is bounded by those counted bytes.
 */
int
tmpl_ifchanged_emit(TmplRenderCtx *c, BeBuf *out, const BeBuf *body)
{
	const char *p = body->data ? body->data : "";
	size_t		n = body->len;
	char	   *copy;

	if (c->ifchanged_last && c->ifchanged_len == n &&
		(n == 0 || memcmp(c->ifchanged_last, p, n) == 0))
		return RC_OK;
	if ((copy = arena_alloc(&c->lists, n + 1)) == NULL)
		return rerr(c, TMPL_ERR_NOMEM, "out of memory");
	if (n)
		memcpy(copy, p, n);
	copy[n] = '\0';
	c->ifchanged_last = copy;
	c->ifchanged_len = n;
	if (n && !be_buf_append(out, p, n))
		return rerr(c, TMPL_ERR_NOMEM, "out of memory");
	return RC_OK;
}
