/*-------------------------------------------------------------------------
 *
 * tmpl_snippet.c
 *	  {% render 'name' %} and {% include 'name' %}: another template,
 *	  obtained through the caller's resolver and compiled into this one.
 *
 * A snippet is expanded at compile time into nodes the renderer already
 * knows (assign, for, and the snippet's own nodes), so rendering and
 * tmpl_specialize need nothing new, and a compiled template never changes
 * when a snippet is edited afterwards (the caller pins the versions it
 * resolved).  Shopify's semantics:
 *
 *	include 'x'				shares the caller's variables;
 *	render 'x'				has its own: only the arguments and the data's
 *							top-level objects are visible, and what it assigns
 *							does not leak out;
 *	... with v [as a]		a (default: the snippet's name) = v;
 *	... for c [as a]		the snippet once per item of c, a = the item;
 *	..., k: v, k2: v2		named arguments.
 *
 * "render" gets a fresh variable scope (slots are interned per scope), and
 * every variable the snippet writes is reset to nil each time it runs, as
 * Shopify starts each render with an empty scope.  Expansion is bounded:
 * TMPL_MAX_SNIPPET_DEPTH nested snippets, TMPL_MAX_SNIPPET_BYTES of
 * snippet source in all, a snippet that includes itself (directly or
 * not) is an error, and block nesting stays under TMPL_MAX_COMPILE_DEPTH.
 *
 *-------------------------------------------------------------------------
 */
#include "tmpl_int.h"

#define MAX_SNIPPET_ARGS 32
_Static_assert(MAX_SNIPPET_ARGS + 1 <= TMPL_MAX_INCLUDE_NAMES / TMPL_MAX_SNIPPET_DEPTH,
				 "include overlay too small");

/*
 * The slot a variable read stands for: inside include, the arguments and
 * the with/for variable shadow the caller's names (Liquid sets them in a
 * scope pushed for the include), while assign still writes the caller's.
 */
int
read_slot(Parser *ps, const char *name, size_t n)
{
	int			i;

	for (i = ps->novl - 1; i >= 0; i--)
		if (ps->ovl[i].n == n && memcmp(ps->ovl[i].p, name, n) == 0)
			return ps->ovl[i].slot;
	return intern_slot(ps, name, n);
}

/* ps->assigned: bit 1, written by assign/capture/for; bit 2, a counter */
void
mark_assigned(Parser *ps, int slot)
{
	if (slot >= 0 && slot < ps->nnames)
		ps->assigned[slot] |= 1;
}

void
mark_counter(Parser *ps, int slot)
{
	if (slot >= 0 && slot < ps->nnames)
		ps->assigned[slot] |= 2;
}

static Expr *
nil_expr(Parser *ps)
{
	Expr	   *e = ps_alloc(ps, sizeof(Expr));

	if (e)
	{
		memset(e, 0, sizeof(Expr));
		e->kind = E_LIT;
		e->lit.t = V_NIL;
		e->cache_idx = -1;
	}
	return e;
}

/* slot = e, as an assign node at "at" */
static Node *
assign_node(Parser *ps, const char *at, int slot, Expr *e)
{
	Node	   *n = new_node(ps, N_ASSIGN, at);
	Filtered   *f = ps_alloc(ps, sizeof(Filtered));

	if (n == NULL || f == NULL || e == NULL)
		return NULL;
	memset(f, 0, sizeof(Filtered));
	f->base = e;
	n->u.assign.slot = slot;
	n->u.assign.val = f;
	return n;
}

/*
 * Compile the snippet's source into *body, as if it stood in place of the
 * tag, then return to the caller's source.
 */
static bool
compile_snippet(Parser *ps, const TTok *tk, const char *name, size_t namelen,
				int depth, Node **body)
{
	const char *src;
	size_t		srclen;
	char	   *copy;
	TTok		term;
	int			i;
	bool		ok;

	/* saved position in the caller's source */
	const char *s_src = ps->src;
	const char *s_end = ps->end;
	size_t		s_pos = ps->pos;
	bool		s_trim = ps->trim_next;
	size_t		s_pc_off = ps->pc_off;
	int			s_pc_line = ps->pc_line;
	int			s_pc_col = ps->pc_col;
	const char *s_lq_p = ps->lq_p;
	const char *s_lq_end = ps->lq_end;
	int			s_lq_group = ps->lq_group;
	int			s_last_group = ps->last_group;
	const char *s_name = ps->snip_name;
	char	   *namecopy;

	for (i = 0; i < ps->snip_depth; i++)
		if (ps->snip_stack_len[i] == namelen &&
			memcmp(ps->snip_stack[i], name, namelen) == 0)
		{
			perr(ps, tk->start, "snippet \"%.*s\" includes itself", (int) namelen, name);
			return false;
		}
	if (ps->snip_depth >= TMPL_MAX_SNIPPET_DEPTH)
	{
		perr(ps, tk->start, "snippets are nested more than %d levels deep",
			 TMPL_MAX_SNIPPET_DEPTH);
		return false;
	}
	if (ps->snip_fn == NULL || !ps->snip_fn(ps->snip_arg, name, namelen, &src, &srclen))
	{
		perr(ps, tk->start, "snippet \"%.*s\" does not exist", (int) namelen, name);
		return false;
	}
	if (srclen > TMPL_MAX_SNIPPET_BYTES - ps->snip_bytes)
	{
		perr(ps, tk->start, "snippets add up to more than %d bytes of source",
			 TMPL_MAX_SNIPPET_BYTES);
		return false;
	}
	ps->snip_bytes += srclen;
	/* render errors inside name it and point at the outermost tag */
	if ((namecopy = ps_strdup(ps, name, namelen)) == NULL)
		return false;
	if (ps->snip_depth == 0)
		pos_of(ps, tk->start, &ps->snip_top_line, &ps->snip_top_col);
	/* text nodes point into the source: it lives as long as the template */
	if ((copy = ps_alloc(ps, srclen + 1)) == NULL)
		return false;
	if (srclen)
		memcpy(copy, src, srclen);
	copy[srclen] = '\0';

	ps->snip_stack[ps->snip_depth] = name;
	ps->snip_stack_len[ps->snip_depth] = namelen;
	ps->snip_depth++;
	ps->snip_name = namecopy;
	ps->src = copy;
	ps->end = copy + srclen;
	ps->pos = 0;
	ps->trim_next = false;
	ps->pc_off = 0;
	ps->pc_line = 1;
	ps->pc_col = 1;
	ps->lq_p = NULL;
	ps->lq_end = NULL;

	ok = parse_block(ps, depth, body, &term);
	if (ok && term.kind != TT_EOF)
	{
		err_unexpected_tag(ps, &term);
		ok = false;
	}
	if (!ok && ps->err->kind == TMPL_ERR_SYNTAX &&
		strncmp(ps->err->message, "in snippet", 10) != 0)
	{
		char		msg[sizeof(ps->err->message) + 80];

		/* positions are the snippet's own: say which one */
		snprintf(msg, sizeof(msg), "in snippet \"%.*s\": %s",
				 (int) (namelen > 64 ? 64 : namelen), name, ps->err->message);
		msg[sizeof(ps->err->message) - 1] = '\0';
		memcpy(ps->err->message, msg, sizeof(ps->err->message));
	}

	ps->snip_depth--;
	ps->snip_name = s_name;
	ps->src = s_src;
	ps->end = s_end;
	ps->pos = s_pos;
	ps->trim_next = s_trim;
	ps->pc_off = s_pc_off;
	ps->pc_line = s_pc_line;
	ps->pc_col = s_pc_col;
	ps->lq_p = s_lq_p;
	ps->lq_end = s_lq_end;
	/* the caller's liquid tag goes on: its blocks close in it */
	ps->lq_group = s_lq_group;
	ps->last_group = s_last_group;
	return ok;
}

/*
 * {% render|include 'name' [with|for expr [as alias]] [,] [k: v, ...] %}:
 * returns the first of the nodes it expands to, *last the last one.
 */
Node *
parse_snippet_tag(Parser *ps, const TTok *tk, int depth, Node **last)
{
	bool		isolated = tk->name[0] == 'r';
	Lex			lx;
	const char *name;
	size_t		namelen;
	int			mode = 0;		/* 0: plain, 'w': with, 'f': for */
	Expr	   *val = NULL;
	const char *alias;
	size_t		aliaslen;
	const char *argk[MAX_SNIPPET_ARGS];
	size_t		argkl[MAX_SNIPPET_ARGS];
	Expr	   *argv[MAX_SNIPPET_ARGS];
	int			nargs = 0;
	int			scope0 = ps->scope;
	bool		s_isolated = ps->isolated;
	bool		s_region_for = ps->region_for;
	int			s_loops_open = ps->loops_open;
	int			s_trs_open = ps->trs_open;
	int			s_novl = ps->novl;
	bool		ok;
	int			slot0;
	int			target;
	Node	   *body = NULL;
	Node	   *head = NULL;
	Node	  **tail = &head;
	Node	   *n;
	int			i;

	if (depth >= TMPL_MAX_COMPILE_DEPTH)
	{
		perr(ps, tk->start, "blocks are nested more than %d levels deep",
			 TMPL_MAX_COMPILE_DEPTH);
		return NULL;
	}
	if (!lex_init(&lx, ps, tk->args, tk->argslen))
		return NULL;
	if (lx.tok.k != K_STR)
	{
		unexpected_tok(&lx, "the snippet's name as a quoted string");
		return NULL;
	}
	name = lx.tok.p;
	namelen = lx.tok.n;
	alias = name;
	aliaslen = namelen;
	if (!lex_next(&lx))
		return NULL;

	/* values are expressions of the caller's scope */
	if (tok_is_word(&lx.tok, "with") || tok_is_word(&lx.tok, "for"))
	{
		mode = lx.tok.p[0] == 'w' ? 'w' : 'f';
		if (!lex_next(&lx) || (val = parse_primary(&lx, depth + 1)) == NULL)
			return NULL;
		if (tok_is_word(&lx.tok, "as"))
		{
			if (!lex_next(&lx))
				return NULL;
			if (lx.tok.k != K_IDENT)
			{
				unexpected_tok(&lx, "a variable name");
				return NULL;
			}
			alias = lx.tok.p;
			aliaslen = lx.tok.n;
			if (!lex_next(&lx))
				return NULL;
		}
	}
	while (lx.tok.k != K_END)
	{
		if (lx.tok.k == K_COMMA && !lex_next(&lx))
			return NULL;
		if (lx.tok.k != K_IDENT)
		{
			unexpected_tok(&lx, "an argument name");
			return NULL;
		}
		if (nargs == MAX_SNIPPET_ARGS)
		{
			perr(ps, lx.tok.at, "more than %d snippet arguments", MAX_SNIPPET_ARGS);
			return NULL;
		}
		argk[nargs] = lx.tok.p;
		argkl[nargs] = lx.tok.n;
		if (!lex_next(&lx))
			return NULL;
		if (lx.tok.k != K_COLON)
		{
			unexpected_tok(&lx, "\":\"");
			return NULL;
		}
		if (!lex_next(&lx) || (argv[nargs] = parse_primary(&lx, depth + 1)) == NULL)
			return NULL;
		nargs++;
	}

	/*
	 * render: the snippet's names live in a scope of their own; include:
	 * only its arguments do, shadowing the caller's names while it runs.
	 */
	if (isolated || nargs || mode)
		ps->scope = ++ps->nscopes;
	slot0 = ps->nnames;
	for (i = 0; i < nargs; i++)
	{
		int			s = intern_slot(ps, argk[i], argkl[i]);

		if (s < 0 || (n = assign_node(ps, tk->start, s, argv[i])) == NULL)
			goto fail;
		*tail = n;
		tail = &n->next;
		if (!isolated)
		{
			Assert(ps->novl < TMPL_MAX_INCLUDE_NAMES);
			ps->ovl[ps->novl].p = argk[i];
			ps->ovl[ps->novl].n = argkl[i];
			ps->ovl[ps->novl++].slot = s;
		}
	}
	target = -1;
	if (mode && (target = intern_slot(ps, alias, aliaslen)) < 0)
		goto fail;
	if (mode && !isolated)
	{
		ps->ovl[ps->novl].p = alias;
		ps->ovl[ps->novl].n = aliaslen;
		ps->ovl[ps->novl++].slot = target;
	}
	if (!isolated)
		ps->scope = scope0;
	else
		ps->novl = 0;			/* render sees none of the caller's names */
	/* forloop and tablerowloop: see parse_path */
	if (isolated)
	{
		ps->isolated = true;
		ps->region_for = mode == 'f';
		ps->loops_open = 0;
		ps->trs_open = 0;
	}
	else if (mode == 'f')
		ps->loops_open++;
	ok = compile_snippet(ps, tk, name, namelen, depth + 1, &body);
	ps->isolated = s_isolated;
	ps->region_for = s_region_for;
	ps->loops_open = s_loops_open;
	ps->trs_open = s_trs_open;
	ps->novl = s_novl;
	if (!ok)
		goto fail;

	if (isolated)
	{
		Node	   *resets = NULL;
		Node	  **rt = &resets;
		int			s;

		/*
		 * Each run starts with what it assigns unset (nil), like a new
		 * scope, and with new counters (the name then shows the data).
		 */
		for (s = slot0; s < ps->nnames; s++)
		{
			bool		is_arg = false;

			if (!ps->assigned[s] || ps->scopes[s] == scope0 || s == target)
				continue;
			for (i = 0; i < nargs; i++)
				if (ps->namelens[s] == argkl[i] && memcmp(ps->names[s], argk[i], argkl[i]) == 0)
					is_arg = true;
			if (is_arg)
				continue;
			if (ps->assigned[s] & 2)
			{
				if ((n = new_node(ps, N_COUNTER, tk->start)) == NULL)
					goto fail;
				n->u.counter.slot = s;
				n->u.counter.step = 0;
			}
			else if ((n = assign_node(ps, tk->start, s, nil_expr(ps))) == NULL)
				goto fail;
			*rt = n;
			rt = &n->next;
		}
		if (resets)
		{
			*rt = head;
			if (head == NULL)
				tail = rt;
			head = resets;
		}
		ps->scope = scope0;
	}

	if (mode == 'f')
	{
		if ((n = new_node(ps, N_FOR, tk->start)) == NULL)
			return NULL;
		n->u.loop.slot = target;
		n->u.loop.coll = val;
		n->u.loop.body = body;
		/* Liquid names the loop after the snippet */
		if ((n->u.loop.name_idx = intern_forname(ps, name, namelen, NULL, 0)) < 0)
			return NULL;
		*tail = n;
		tail = &n->next;
	}
	else
	{
		if (mode == 'w')
		{
			if ((n = assign_node(ps, tk->start, target, val)) == NULL)
				return NULL;
			*tail = n;
			tail = &n->next;
		}
		*tail = body;
		while (*tail)
			tail = &(*tail)->next;
	}
	if (head == NULL)
	{
		/* an empty snippet: an empty text node stands for it */
		if ((head = new_node(ps, N_TEXT, tk->start)) == NULL)
			return NULL;
		head->u.text.p = "";
		head->u.text.n = 0;
		*last = head;
		return head;
	}
	for (n = head; n->next; n = n->next)
		;
	*last = n;
	return head;

fail:
	ps->scope = scope0;
	ps->novl = s_novl;
	return NULL;
}
