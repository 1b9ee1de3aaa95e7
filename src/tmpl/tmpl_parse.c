/*-------------------------------------------------------------------------
 *
 * tmpl_parse.c
 *	  Compiler: expressions, filter chains, conditions and tags.
 *
 * See src/tmpl/tmpl_int.h for the shared types and the design.
 *
 *-------------------------------------------------------------------------
 */
#include "tmpl_int.h"

/* ----------------------------------------------------------------
 * Compiler: expressions, filters, conditions
 * ----------------------------------------------------------------
 */
#define MAX_PATH_SEGS 32

static Expr *
new_lit(Parser *ps, VType t)
{
	Expr	   *e = ps_alloc(ps, sizeof(Expr));

	if (e)
	{
		e->kind = E_LIT;
		e->lit.t = t;
	}
	return e;
}


static Expr *
parse_path(Lex *lx, int depth, const char *root, size_t rootlen)
{
	Parser	   *ps = lx->ps;
	Seg			segs[MAX_PATH_SEGS];
	int			nsegs = 0;
	Expr	   *e;

	memset(segs, 0, sizeof(segs));
	for (;;)
	{
		Seg		   *sg = &segs[nsegs];

		if (lx->tok.k != K_DOT && lx->tok.k != K_LBRACK)
			break;
		if (nsegs == MAX_PATH_SEGS)
		{
			perr(ps, lx->tok.at, "variable path has more than %d parts", MAX_PATH_SEGS);
			return NULL;
		}
		if (lx->tok.k == K_DOT)
		{
			if (!lex_next(lx))
				return NULL;
			if (lx->tok.k != K_IDENT)
			{
				unexpected_tok(lx, "a property name");
				return NULL;
			}
			sg->kind = SEG_KEY;
			sg->key_id = ps->nkeys++;
			sg->key = ps_strdup(ps, lx->tok.p, lx->tok.n);
			sg->keylen = lx->tok.n;
			if (!sg->key || !lex_next(lx))
				return NULL;
		}
		else
		{
			Expr	   *ix;

			if (!lex_next(lx))
				return NULL;
			ix = parse_primary(lx, depth + 1);
			if (ix == NULL)
				return NULL;
			if (ix->kind == E_LIT && ix->lit.t == V_STR)
			{
				sg->kind = SEG_KEY;
				sg->key_id = ps->nkeys++;
				sg->key = ps_strdup(ps, ix->lit.u.s.p, ix->lit.u.s.n);
				sg->keylen = ix->lit.u.s.n;
				if (!sg->key)
					return NULL;
			}
			else if (ix->kind == E_LIT && ix->lit.t == V_INT)
			{
				sg->kind = SEG_INDEX;
				sg->idx = ix->lit.u.i;
			}
			else
			{
				sg->kind = SEG_DYN;
				sg->dyn = ix;
			}
			if (lx->tok.k != K_RBRACK)
			{
				unexpected_tok(lx, "\"]\"");
				return NULL;
			}
			if (!lex_next(lx))
				return NULL;
		}
		nsegs++;
	}

	e = ps_alloc(ps, sizeof(Expr));
	if (e == NULL)
		return NULL;

	/*
	 * forloop[.parentloop...].<prop> is served from the loop stack, not from
	 * a slot: "up" counts the parentloop steps.
	 */
	if (name_is(root, rootlen, "forloop") && nsegs >= 1 &&
		segs[nsegs - 1].kind == SEG_KEY)
	{
		static const char *const props[] = {
			"index", "index0", "rindex", "rindex0", "first", "last", "length", "name"
		};
		int			i;
		int			up = 0;

		while (up < nsegs - 1 && segs[up].kind == SEG_KEY &&
			   strcmp(segs[up].key, "parentloop") == 0)
			up++;
		for (i = 0; i <= LP_NAME && up == nsegs - 1; i++)
			if (strcmp(segs[up].key, props[i]) == 0)
			{
				e->kind = E_FORLOOP;
				e->prop = (LoopProp) i;
				e->up = up;

				/*
				 * Inside "render" only the snippet's own loops exist, and
				 * the loop of "render ... for" only as the innermost.
				 */
				if (ps->isolated && up >= ps->loops_open &&
					!(ps->region_for && up == 0 && ps->loops_open == 0))
				{
					e->kind = E_LIT;
					e->lit.t = V_NIL;
					e->cache_idx = -1;
				}
				return e;
			}
	}

	/* tablerowloop.<prop>: the innermost tablerow (it has no parentloop) */
	if (name_is(root, rootlen, "tablerowloop") && nsegs == 1 && segs[0].kind == SEG_KEY)
	{
		static const char *const props[] = {
			"index", "index0", "rindex", "rindex0", "first", "last", "length", NULL,
			"col", "col0", "col_first", "col_last", "row"
		};
		int			i;

		for (i = 0; i <= LP_ROW; i++)
			if (props[i] && strcmp(segs[0].key, props[i]) == 0)
			{
				e->kind = E_FORLOOP;
				e->prop = (LoopProp) i;
				e->tablerow = true;
				if (ps->isolated && ps->trs_open == 0)
				{
					e->kind = E_LIT;
					e->lit.t = V_NIL;
					e->cache_idx = -1;
				}
				return e;
			}
	}
	e->kind = E_VAR;
	e->slot = read_slot(ps, root, rootlen);
	if (e->slot < 0)
		return NULL;
	e->nsegs = nsegs;
	e->cache_idx = -1;
	if (nsegs)
	{
		int			i;

		/* paths without dynamic parts resolve the same for the same root */
		e->cache_idx = ps->ncache++;
		for (i = 0; i < nsegs; i++)
			if (segs[i].kind == SEG_DYN)
				e->cache_idx = -1;
		e->segs = ps_alloc(ps, sizeof(Seg) * (size_t) nsegs);
		if (e->segs == NULL)
			return NULL;
		memcpy(e->segs, segs, sizeof(Seg) * (size_t) nsegs);
	}
	return e;
}

Expr *
parse_primary(Lex *lx, int depth)
{
	Parser	   *ps = lx->ps;
	Tok			t = lx->tok;
	Expr	   *e;

	if (depth > TMPL_MAX_COMPILE_DEPTH)
	{
		perr(ps, t.at, "expression is nested too deeply");
		return NULL;
	}
	switch (t.k)
	{
		case K_STR:
			if ((e = new_lit(ps, V_STR)) == NULL)
				return NULL;
			e->lit.u.s.p = t.p;
			e->lit.u.s.n = t.n;
			return lex_next(lx) ? e : NULL;
		case K_INT:
			if ((e = new_lit(ps, V_INT)) == NULL)
				return NULL;
			e->lit.u.i = t.i;
			return lex_next(lx) ? e : NULL;
		case K_DBL:
			if ((e = new_lit(ps, V_DBL)) == NULL)
				return NULL;
			e->lit.u.d = t.d;
			return lex_next(lx) ? e : NULL;
		case K_LPAREN:
			if ((e = ps_alloc(ps, sizeof(Expr))) == NULL || !lex_next(lx))
				return NULL;
			e->kind = E_RANGE;
			if ((e->lo = parse_primary(lx, depth + 1)) == NULL)
				return NULL;
			if (lx->tok.k != K_DOTDOT)
			{
				unexpected_tok(lx, "\"..\"");
				return NULL;
			}
			if (!lex_next(lx) || (e->hi = parse_primary(lx, depth + 1)) == NULL)
				return NULL;
			if (lx->tok.k != K_RPAREN)
			{
				unexpected_tok(lx, "\")\"");
				return NULL;
			}
			return lex_next(lx) ? e : NULL;
		case K_LBRACK:
			/* ["name"] at the root: only a string literal makes sense */
			if (!lex_next(lx))
				return NULL;
			if (lx->tok.k != K_STR)
			{
				unexpected_tok(lx, "a quoted variable name");
				return NULL;
			}
			t = lx->tok;
			if (!lex_next(lx))
				return NULL;
			if (lx->tok.k != K_RBRACK)
			{
				unexpected_tok(lx, "\"]\"");
				return NULL;
			}
			if (!lex_next(lx))
				return NULL;
			return parse_path(lx, depth, t.p, t.n);
		case K_IDENT:
			if (!lex_next(lx))
				return NULL;
			if (lx->tok.k != K_DOT && lx->tok.k != K_LBRACK)
			{
				if (name_is(t.p, t.n, "true") || name_is(t.p, t.n, "false"))
				{
					if ((e = new_lit(ps, V_BOOL)) != NULL)
						e->lit.u.b = (t.p[0] == 't');
					return e;
				}
				if (name_is(t.p, t.n, "nil") || name_is(t.p, t.n, "null"))
					return new_lit(ps, V_NIL);
				if (name_is(t.p, t.n, "empty"))
					return new_lit(ps, V_EMPTY);
				if (name_is(t.p, t.n, "blank"))
					return new_lit(ps, V_BLANK);
			}
			return parse_path(lx, depth, t.p, t.n);
		default:
			unexpected_tok(lx, "a value");
			return NULL;
	}
}

static const FilterDef *
lookup_filter(const char *name, size_t n)
{
	const FilterDef *f;

	for (f = filter_defs; f->name; f++)
		if (name_is(name, n, f->name))
			return f;
	return NULL;
}

/* value ( "|" filter [ ":" arg ("," arg)* ] )* */
static Filtered *
parse_filtered(Lex *lx)
{
	Parser	   *ps = lx->ps;
	Filtered   *fe = ps_alloc(ps, sizeof(Filtered));
	int			cap = 0;

	if (fe == NULL || (fe->base = parse_primary(lx, 0)) == NULL)
		return NULL;
	while (lx->tok.k == K_PIPE)
	{
		const FilterDef *def;
		FilterCall *fc;
		Tok			nametok;
		int			given = 0;

		if (!lex_next(lx))
			return NULL;
		if (lx->tok.k != K_IDENT)
		{
			unexpected_tok(lx, "a filter name");
			return NULL;
		}
		nametok = lx->tok;
		def = lookup_filter(nametok.p, nametok.n);
		if (def == NULL)
		{
			const char *near = tmpl_nearest_name(nametok.p, nametok.n, &filter_defs[0].name,
												 sizeof(FilterDef));

			perr(ps, nametok.at, "unknown filter \"%.*s\"%s%s%s",
				 (int) (nametok.n > 64 ? 64 : nametok.n), nametok.p,
				 near ? ", did you mean \"" : "", near ? near : "", near ? "\"?" : "");
			return NULL;
		}
		if (fe->nfilters == cap)
		{
			/* grow inside the arena; the old array is simply abandoned */
			int			ncap = cap ? cap * 2 : 4;
			FilterCall *nf = ps_alloc(ps, sizeof(FilterCall) * (size_t) ncap);

			if (nf == NULL)
				return NULL;
			if (cap)
				memcpy(nf, fe->filters, sizeof(FilterCall) * (size_t) cap);
			fe->filters = nf;
			cap = ncap;
		}
		fc = &fe->filters[fe->nfilters++];
		fc->id = def->id;
		fc->def = def;
		node_pos(ps, nametok.at, &fc->line, &fc->col);
		if (!lex_next(lx))
			return NULL;
		if (lx->tok.k == K_COLON)
		{
			if (!lex_next(lx))
				return NULL;
			for (;;)
			{
				Expr	   *arg;
				Lex			save = *lx;

				/* keyword argument "name: value"? */
				if (lx->tok.k == K_IDENT)
				{
					Tok			kw = lx->tok;

					if (!lex_next(lx))
						return NULL;
					if (lx->tok.k == K_COLON)
					{
						if (def->id != F_DEFAULT || !name_is(kw.p, kw.n, "allow_false"))
						{
							perr(ps, kw.at, "unknown argument \"%.*s\" for filter \"%s\"",
								 (int) (kw.n > 64 ? 64 : kw.n), kw.p, def->name);
							return NULL;
						}
						if (!lex_next(lx) || (arg = parse_primary(lx, 0)) == NULL)
							return NULL;
						fc->allow_false = arg;
						goto next_arg;
					}
					*lx = save;
				}
				if ((arg = parse_primary(lx, 0)) == NULL)
					return NULL;
				if (given < MAX_FILTER_ARGS)
					fc->args[given] = arg;
				given++;
		next_arg:
				if (lx->tok.k != K_COMMA)
					break;
				if (!lex_next(lx))
					return NULL;
			}
		}
		if (given < def->min_args || given > def->max_args)
		{
			if (def->min_args == def->max_args)
				perr(ps, nametok.at,
					 "wrong number of arguments for filter \"%s\" (given %d, expected %d)",
					 def->name, given, def->min_args);
			else
				perr(ps, nametok.at,
					 "wrong number of arguments for filter \"%s\" (given %d, expected %d to %d)",
					 def->name, given, def->min_args, def->max_args);
			return NULL;
		}
		fc->nargs = given;
	}
	return fe;
}

/* term ( (and|or) term )*, each term "value [op value]" */
static Cond *
parse_cond(Lex *lx)
{
	Parser	   *ps = lx->ps;
	Cond	   *c = ps_alloc(ps, sizeof(Cond));
	int			cap = 0;

	if (c == NULL)
		return NULL;
	for (;;)
	{
		CondTerm   *t;

		if (c->nterms == cap)
		{
			int			ncap = cap ? cap * 2 : 4;
			CondTerm   *nt = ps_alloc(ps, sizeof(CondTerm) * (size_t) ncap);

			if (nt == NULL)
				return NULL;
			if (cap)
				memcpy(nt, c->terms, sizeof(CondTerm) * (size_t) cap);
			c->terms = nt;
			cap = ncap;
		}
		t = &c->terms[c->nterms++];
		if ((t->l = parse_primary(lx, 0)) == NULL)
			return NULL;
		if (lx->tok.k == K_CMP || tok_is_word(&lx->tok, "contains"))
		{
			t->op = lx->tok.k == K_CMP ? lx->tok.op : OP_CONTAINS;
			if (!lex_next(lx) || (t->r = parse_primary(lx, 0)) == NULL)
				return NULL;
		}
		if (tok_is_word(&lx->tok, "and") || tok_is_word(&lx->tok, "or"))
		{
			t->or_next = (lx->tok.p[0] == 'o');
			if (!lex_next(lx))
				return NULL;
			continue;
		}
		break;
	}
	if (!expect_end(lx))
		return NULL;
	return c;
}

static Cond *
parse_cond_str(Parser *ps, const char *p, size_t n)
{
	Lex			lx;

	if (!lex_init(&lx, ps, p, n))
		return NULL;
	if (lx.tok.k == K_END)
	{
		unexpected_tok(&lx, "a condition");
		return NULL;
	}
	return parse_cond(&lx);
}

static Filtered *
parse_filtered_str(Parser *ps, const char *p, size_t n)
{
	Lex			lx;
	Filtered   *f;

	if (!lex_init(&lx, ps, p, n))
		return NULL;
	if ((f = parse_filtered(&lx)) == NULL || !expect_end(&lx))
		return NULL;
	return f;
}

/* ----------------------------------------------------------------
 * Compiler: tags and blocks
 * ----------------------------------------------------------------
 */
Node *
new_node(Parser *ps, NodeKind kind, const char *at)
{
	Node	   *n = ps_alloc(ps, sizeof(Node));

	if (n)
	{
		n->kind = kind;
		node_pos(ps, at, &n->line, &n->col);
	}
	return n;
}

static bool
tag_is(const TTok *tk, const char *name)
{
	return tk->kind == TT_TAG && name_is(tk->name, tk->namelen, name);
}

void
err_unexpected_tag(Parser *ps, const TTok *tk)
{
	perr(ps, tk->start, "unexpected \"%.*s\"",
		 (int) (tk->namelen > 64 ? 64 : tk->namelen), tk->name);
}

static bool
check_depth(Parser *ps, const TTok *tk, int depth)
{
	if (depth >= TMPL_MAX_COMPILE_DEPTH)
	{
		perr(ps, tk->start, "blocks are nested more than %d levels deep",
			 TMPL_MAX_COMPILE_DEPTH);
		return false;
	}
	return true;
}

/*
 * Liquid's "blank" blocks: a body holding only whitespace text and tags
 * that output nothing (assign, capture, comments, blank blocks) renders
 * nothing at all.  Shopify Liquid drops the whitespace text of if, unless,
 * case and for bodies when all the bodies of the tag are blank; so do we,
 * at compile time.
 */
static bool
body_blank(const Node *n)
{
	for (; n; n = n->next)
	{
		switch (n->kind)
		{
			case N_TEXT:
				{
					size_t		i;

					for (i = 0; i < n->u.text.n; i++)
						if (!is_ws(n->u.text.p[i]))
							return false;
					break;
				}
			case N_ASSIGN:
			case N_CAPTURE:
				break;
			case N_IF:
				{
					const IfBranch *br;

					for (br = n->u.branches; br; br = br->next)
						if (!body_blank(br->body))
							return false;
					break;
				}
			case N_FOR:
				if (n->u.loop.tablerow ||
					!body_blank(n->u.loop.body) || !body_blank(n->u.loop.else_body))
					return false;
				break;
			default:
				return false;
		}
	}
	return true;
}

static void
strip_blank_text(Node **head)
{
	while (*head)
	{
		if ((*head)->kind == N_TEXT)
			*head = (*head)->next;
		else
			head = &(*head)->next;
	}
}

static Node *
parse_if(Parser *ps, const TTok *open, int depth, bool negate)
{
	Node	   *n = new_node(ps, N_IF, open->start);
	IfBranch  **tail;
	IfBranch   *br;
	bool		seen_else = false;
	const char *endname = negate ? "endunless" : "endif";

	if (n == NULL || !check_depth(ps, open, depth))
		return NULL;
	tail = &n->u.branches;
	br = ps_alloc(ps, sizeof(IfBranch));
	if (br == NULL)
		return NULL;
	br->negate = negate;
	if ((br->cond = parse_cond_str(ps, open->args, open->argslen)) == NULL)
		return NULL;
	for (;;)
	{
		TTok		term;

		*tail = br;
		tail = &br->next;
		if (!parse_block(ps, depth + 1, &br->body, &term))
			return NULL;
		if (term.kind == TT_EOF)
		{
			perr(ps, open->start, "\"%s\" tag was never closed", negate ? "unless" : "if");
			return NULL;
		}
		if (tag_is(&term, endname))
		{
			for (br = n->u.branches; br && body_blank(br->body); br = br->next)
				;
			if (br == NULL)
				for (br = n->u.branches; br; br = br->next)
					strip_blank_text(&br->body);
			return n;
		}
		if (seen_else || (!tag_is(&term, "elsif") && !tag_is(&term, "else")))
		{
			err_unexpected_tag(ps, &term);
			return NULL;
		}
		if ((br = ps_alloc(ps, sizeof(IfBranch))) == NULL)
			return NULL;
		if (tag_is(&term, "else"))
			seen_else = true;
		else if ((br->cond = parse_cond_str(ps, term.args, term.argslen)) == NULL)
			return NULL;
	}
}

/* Appends "subject == value" to cond, or-joined to the term before it. */
static bool
case_term(Parser *ps, Cond *cd, int *cap, Expr *subject, Expr *value)
{
	CondTerm   *t;

	if (cd->nterms == *cap)
	{
		int			ncap = *cap ? *cap * 2 : 4;
		CondTerm   *nt = ps_alloc(ps, sizeof(CondTerm) * (size_t) ncap);

		if (nt == NULL)
			return false;
		if (*cap)
			memcpy(nt, cd->terms, sizeof(CondTerm) * (size_t) *cap);
		cd->terms = nt;
		*cap = ncap;
	}
	if (cd->nterms > 0)
		cd->terms[cd->nterms - 1].or_next = true;
	t = &cd->terms[cd->nterms++];
	memset(t, 0, sizeof(*t));
	t->l = subject;
	t->op = OP_EQ;
	t->r = value;
	return true;
}

/*
 * case/when, rewritten at compile time into the nodes that already exist,
 * so rendering and specialisation need nothing new.  As in Shopify Liquid
 * every "when" whose values match renders (not only the first), and "else"
 * renders when none does:
 *
 *	{% case x %}{% when a, b %}A{% when c or d %}C{% else %}E{% endcase %}
 *
 * becomes (each value is a test of its own, so A renders twice when both
 * a and b equal x, as in Liquid)
 *
 *	{% if x == a %}A{% endif %}{% if x == b %}A{% endif %}
 *	{% if x == c %}C{% endif %}{% if x == d %}C{% endif %}
 *	{% unless x == a or x == b or x == c or x == d %}E{% endunless %}
 *
 * The subject is evaluated again for each test; it differs from Liquid's
 * single pass only if a "when" body assigns the subject itself.  Text
 * before the first "when" is dropped, as Liquid does.
 */
static Node *
parse_case(Parser *ps, const TTok *open, int depth, Node **last)
{
	Lex			lx;
	Expr	   *subject;
	Node	   *head = NULL;
	Node	  **tail = &head;
	Cond	   *all = ps_alloc(ps, sizeof(Cond));
	int			allcap = 0;
	bool		seen_else = false;
	TTok		term;
	Node	   *ignored;

	if (all == NULL || !check_depth(ps, open, depth) ||
		!lex_init(&lx, ps, open->args, open->argslen) ||
		(subject = parse_primary(&lx, 0)) == NULL || !expect_end(&lx))
		return NULL;
	if (!parse_block(ps, depth + 1, &ignored, &term))
		return NULL;
	for (;;)
	{
		Node	   *n;
		IfBranch   *br;

		if (term.kind == TT_EOF)
		{
			perr(ps, open->start, "\"case\" tag was never closed");
			return NULL;
		}
		if (tag_is(&term, "endcase"))
			break;
		if (seen_else || (!tag_is(&term, "when") && !tag_is(&term, "else")))
		{
			err_unexpected_tag(ps, &term);
			return NULL;
		}
		if (tag_is(&term, "else"))
		{
			seen_else = true;
			if ((n = new_node(ps, N_IF, term.start)) == NULL ||
				(br = ps_alloc(ps, sizeof(IfBranch))) == NULL)
				return NULL;
			n->u.branches = br;
			/* "else" with no "when": always */
			if (all->nterms > 0)
			{
				br->negate = true;
				br->cond = all;
			}
			if (!parse_block(ps, depth + 1, &br->body, &term))
				return NULL;
			*tail = n;
			tail = &n->next;
			continue;
		}
		else
		{
			/* one test per value, all sharing the body */
			Node	   *first = NULL;
			Node	   *body;

			if (!lex_init(&lx, ps, term.args, term.argslen))
				return NULL;
			for (;;)
			{
				Expr	   *v = parse_primary(&lx, 0);
				Cond	   *cd = ps_alloc(ps, sizeof(Cond));
				int			cap = 0;

				if (v == NULL || cd == NULL ||
					(n = new_node(ps, N_IF, term.start)) == NULL ||
					(br = ps_alloc(ps, sizeof(IfBranch))) == NULL ||
					!case_term(ps, cd, &cap, subject, v) ||
					!case_term(ps, all, &allcap, subject, v))
					return NULL;
				br->cond = cd;
				n->u.branches = br;
				if (first == NULL)
					first = n;
				*tail = n;
				tail = &n->next;
				if (lx.tok.k == K_COMMA || tok_is_word(&lx.tok, "or"))
				{
					if (!lex_next(&lx))
						return NULL;
					continue;
				}
				if (!expect_end(&lx))
					return NULL;
				break;
			}
			if (!parse_block(ps, depth + 1, &body, &term))
				return NULL;
			for (n = first; n; n = n->next)
				n->u.branches->body = body;
		}
	}
	/* blank as a whole: every body, shared or not, loses its whitespace */
	{
		Node	   *n;

		for (n = head; n && body_blank(n->u.branches->body); n = n->next)
			;
		if (n == NULL)
			for (n = head; n; n = n->next)
				strip_blank_text(&n->u.branches->body);
	}
	if (head == NULL)
	{
		/* no branch: nothing to render, but keep a node for the list */
		if ((head = new_node(ps, N_TEXT, open->start)) == NULL)
			return NULL;
		head->u.text.p = "";
		head->u.text.n = 0;
	}
	for (*last = head; (*last)->next; *last = (*last)->next)
		;
	return head;
}

/*
 * Index of the loop name "a-b" (just "a" when b is NULL), for offset:
 * continue and forloop.name; -1 when out of memory.
 */
int
intern_forname(Parser *ps, const char *a, size_t an, const char *b, size_t bn)
{
	size_t		len = an + (b ? 1 + bn : 0);
	ForName    *fn;
	char	   *nm;
	int			idx = ps->nfornames - 1;

	for (fn = ps->fornames; fn; fn = fn->next, idx--)
		if (fn->n == len && memcmp(fn->p, a, an) == 0 &&
			(b == NULL || memcmp(fn->p + an + 1, b, bn) == 0))
			return idx;
	if ((fn = ps_alloc(ps, sizeof(ForName))) == NULL ||
		(nm = ps_alloc(ps, len + 1)) == NULL)
		return -1;
	memcpy(nm, a, an);
	if (b)
	{
		nm[an] = '-';
		memcpy(nm + an + 1, b, bn);
	}
	nm[len] = '\0';
	fn->p = nm;
	fn->n = len;
	fn->next = ps->fornames;
	ps->fornames = fn;
	return ps->nfornames++;
}

/*
 * for, and tablerow (tablerow = true): the same loop with cells around each
 * item (tmpl_tags.c), a "cols" attribute and neither "reversed", "offset:
 * continue" nor "else", as in Shopify Liquid.
 */
static Node *
parse_for(Parser *ps, const TTok *open, int depth, bool tablerow)
{
	Node	   *n = new_node(ps, N_FOR, open->start);
	const char *tag = tablerow ? "tablerow" : "for";
	Lex			lx;
	TTok		term;
	bool		ok;

	if (n == NULL || !check_depth(ps, open, depth))
		return NULL;
	n->u.loop.tablerow = tablerow;
	if (!lex_init(&lx, ps, open->args, open->argslen))
		return NULL;
	if (lx.tok.k != K_IDENT)
	{
		unexpected_tok(&lx, "a loop variable name");
		return NULL;
	}
	if ((n->u.loop.slot = intern_slot(ps, lx.tok.p, lx.tok.n)) < 0)
		return NULL;
	mark_assigned(ps, n->u.loop.slot);
	if (!lex_next(&lx))
		return NULL;
	if (!tok_is_word(&lx.tok, "in"))
	{
		unexpected_tok(&lx, "\"in\"");
		return NULL;
	}
	if (!lex_next(&lx))
		return NULL;
	{
		/* Liquid's loop name, "variable-collection markup": continue state */
		const char *cp = lx.tok.at;
		const char *ce;

		if ((n->u.loop.coll = parse_primary(&lx, 0)) == NULL)
			return NULL;
		ce = lx.tok.k == K_END ? lx.end : lx.tok.at;
		while (ce > cp && is_ws(ce[-1]))
			ce--;
		n->u.loop.name_idx = intern_forname(ps, ps->names[n->u.loop.slot],
											ps->namelens[n->u.loop.slot],
											cp, (size_t) (ce - cp));
		if (n->u.loop.name_idx < 0)
			return NULL;
	}
	while (lx.tok.k != K_END)
	{
		if (tablerow && tok_is_word(&lx.tok, "cols"))
		{
			if (!lex_next(&lx))
				return NULL;
			if (lx.tok.k != K_COLON)
			{
				unexpected_tok(&lx, "\":\"");
				return NULL;
			}
			if (!lex_next(&lx) || (n->u.loop.cols = parse_primary(&lx, 0)) == NULL)
				return NULL;
		}
		else if (!tablerow && tok_is_word(&lx.tok, "reversed"))
		{
			n->u.loop.reversed = true;
			if (!lex_next(&lx))
				return NULL;
		}
		else if (tok_is_word(&lx.tok, "limit") || tok_is_word(&lx.tok, "offset"))
		{
			Expr	  **dst = lx.tok.p[0] == 'l' ? &n->u.loop.limit : &n->u.loop.offset;

			if (!lex_next(&lx))
				return NULL;
			if (lx.tok.k != K_COLON)
			{
				unexpected_tok(&lx, "\":\"");
				return NULL;
			}
			if (!lex_next(&lx))
				return NULL;
			if (!tablerow && dst == &n->u.loop.offset && tok_is_word(&lx.tok, "continue"))
			{
				/* where the last loop of the same name stopped */
				n->u.loop.offset_continue = true;
				n->u.loop.offset = NULL;
				ps->t->uses_continue = true;
				if (!lex_next(&lx))
					return NULL;
				continue;
			}
			n->u.loop.offset_continue = false;
			if ((*dst = parse_primary(&lx, 0)) == NULL)
				return NULL;
		}
		else if (lx.tok.k == K_COMMA)
		{
			if (!lex_next(&lx))
				return NULL;
		}
		else
		{
			unexpected_tok(&lx, tablerow ? "\"cols\", \"limit\" or \"offset\"" :
						   "\"limit\", \"offset\" or \"reversed\"");
			return NULL;
		}
	}
	if (tablerow)
		ps->trs_open++;
	else
		ps->loops_open++;
	ok = parse_block(ps, depth + 1, &n->u.loop.body, &term);
	if (tablerow)
		ps->trs_open--;
	else
		ps->loops_open--;
	if (!ok)
		return NULL;
	if (!tablerow && tag_is(&term, "else"))
	{
		if (!parse_block(ps, depth + 1, &n->u.loop.else_body, &term))
			return NULL;
	}
	if (term.kind == TT_EOF)
	{
		perr(ps, open->start, "\"%s\" tag was never closed", tag);
		return NULL;
	}
	if (!tag_is(&term, tablerow ? "endtablerow" : "endfor"))
	{
		err_unexpected_tag(ps, &term);
		return NULL;
	}
	/* a tablerow always outputs its rows */
	if (!tablerow && body_blank(n->u.loop.body) && body_blank(n->u.loop.else_body))
	{
		strip_blank_text(&n->u.loop.body);
		strip_blank_text(&n->u.loop.else_body);
	}
	return n;
}

static Node *
parse_assign(Parser *ps, const TTok *open)
{
	Node	   *n = new_node(ps, N_ASSIGN, open->start);
	Lex			lx;

	if (n == NULL || !lex_init(&lx, ps, open->args, open->argslen))
		return NULL;
	/* Liquid reads a trailing "?" in a name, but never assigns one */
	if (lx.tok.k != K_IDENT || lx.tok.p[lx.tok.n - 1] == '?')
	{
		unexpected_tok(&lx, "a variable name");
		return NULL;
	}
	if ((n->u.assign.slot = intern_slot(ps, lx.tok.p, lx.tok.n)) < 0 || !lex_next(&lx))
		return NULL;
	mark_assigned(ps, n->u.assign.slot);
	if (lx.tok.k != K_ASSIGN)
	{
		unexpected_tok(&lx, "\"=\"");
		return NULL;
	}
	if (!lex_next(&lx) || (n->u.assign.val = parse_filtered(&lx)) == NULL || !expect_end(&lx))
		return NULL;
	return n;
}

/* ifchanged ... endifchanged: a capture without a variable */
static Node *
parse_ifchanged(Parser *ps, const TTok *open, int depth)
{
	Node	   *n = new_node(ps, N_IFCHANGED, open->start);
	Lex			lx;
	TTok		term;

	if (n == NULL || !check_depth(ps, open, depth) ||
		!lex_init(&lx, ps, open->args, open->argslen) || !expect_end(&lx))
		return NULL;
	n->u.capture.slot = -1;
	if (!parse_block(ps, depth + 1, &n->u.capture.body, &term))
		return NULL;
	if (term.kind == TT_EOF)
	{
		perr(ps, open->start, "\"ifchanged\" tag was never closed");
		return NULL;
	}
	if (!tag_is(&term, "endifchanged"))
	{
		err_unexpected_tag(ps, &term);
		return NULL;
	}
	return n;
}

static Node *
parse_capture(Parser *ps, const TTok *open, int depth)
{
	Node	   *n = new_node(ps, N_CAPTURE, open->start);
	Lex			lx;
	TTok		term;

	if (n == NULL || !check_depth(ps, open, depth) ||
		!lex_init(&lx, ps, open->args, open->argslen))
		return NULL;
	if (lx.tok.k != K_IDENT && lx.tok.k != K_STR)
	{
		unexpected_tok(&lx, "a variable name");
		return NULL;
	}
	if ((n->u.capture.slot = intern_slot(ps, lx.tok.p, lx.tok.n)) < 0 || !lex_next(&lx) ||
		!expect_end(&lx))
		return NULL;
	mark_assigned(ps, n->u.capture.slot);
	if (!parse_block(ps, depth + 1, &n->u.capture.body, &term))
		return NULL;
	if (term.kind == TT_EOF)
	{
		perr(ps, open->start, "\"capture\" tag was never closed");
		return NULL;
	}
	if (!tag_is(&term, "endcapture"))
	{
		err_unexpected_tag(ps, &term);
		return NULL;
	}
	return n;
}

/* Skip to the matching endcomment; nested comments are counted. */
static bool
skip_comment(Parser *ps, const TTok *open)
{
	int			nest = 1;

	for (;;)
	{
		TTok		tk;

		if (!next_ttok(ps, &tk))
			return false;
		if (tk.kind == TT_EOF)
		{
			perr(ps, open->start, "\"comment\" tag was never closed");
			return false;
		}
		if (tag_is(&tk, "comment"))
			nest++;
		else if (tag_is(&tk, "endcomment") && --nest == 0)
			return true;
	}
}

static bool
is_terminator(const TTok *tk)
{
	return (tk->namelen >= 3 && memcmp(tk->name, "end", 3) == 0) ||
		tag_is(tk, "else") || tag_is(tk, "elsif") || tag_is(tk, "when");
}

/* Every tag name the parser knows, for "did you mean" hints. */
static const char *const known_tags[] = {
	"assign", "break", "capture", "case", "comment", "continue", "cycle", "decrement",
	"doc", "echo", "else", "elsif", "endcapture", "endcase", "endcomment", "enddoc",
	"endfor", "endif", "endifchanged", "endraw", "endtablerow", "endunless", "for", "if",
	"ifchanged", "include", "increment", "liquid", "raw", "render", "tablerow",
	"unless", "when", NULL
};

/*
 * Parse nodes until end of input or a terminator tag (else, elsif, end*),
 * which is returned in *term for the caller to check.
 */
bool
parse_block(Parser *ps, int depth, Node **head, TTok *term)
{
	Node	  **tail = head;
	/* the tag that opened this block: its end must be in the same liquid tag */
	int			group = ps->last_group;

	*head = NULL;
	for (;;)
	{
		TTok		tk;
		Node	   *n = NULL;

		if (!next_ttok(ps, &tk))
			return false;
		if (tk.kind == TT_EOF)
		{
			*term = tk;
			return true;
		}
		if (tk.kind == TT_TEXT)
		{
			if (tk.n == 0)
				continue;
			if ((n = new_node(ps, N_TEXT, tk.start)) == NULL)
				return false;
			n->u.text.p = tk.p;
			n->u.text.n = tk.n;
		}
		else if (tk.kind == TT_OUT || tag_is(&tk, "echo"))
		{
			const char *p = tk.kind == TT_OUT ? tk.p : tk.args;
			size_t		len = tk.kind == TT_OUT ? tk.n : tk.argslen;

			if (len == 0)
				continue;
			if ((n = new_node(ps, N_OUTPUT, tk.start)) == NULL ||
				(n->u.out = parse_filtered_str(ps, p, len)) == NULL)
				return false;
		}
		else if (tag_is(&tk, "if") || tag_is(&tk, "unless"))
			n = parse_if(ps, &tk, depth, tk.name[0] == 'u');
		else if (tag_is(&tk, "for") || tag_is(&tk, "tablerow"))
			n = parse_for(ps, &tk, depth, tk.name[0] == 't');
		else if (tag_is(&tk, "case"))
		{
			Node	   *last;

			if ((n = parse_case(ps, &tk, depth, &last)) == NULL)
				return false;
			*tail = n;
			tail = &last->next;
			continue;
		}
		else if (tag_is(&tk, "render") || tag_is(&tk, "include"))
		{
			Node	   *last;

			if ((n = parse_snippet_tag(ps, &tk, depth, &last)) == NULL)
				return false;
			*tail = n;
			tail = &last->next;
			continue;
		}
		else if (tag_is(&tk, "assign"))
			n = parse_assign(ps, &tk);
		else if (tag_is(&tk, "capture"))
			n = parse_capture(ps, &tk, depth);
		else if (tag_is(&tk, "cycle"))
			n = parse_cycle(ps, &tk);
		else if (tag_is(&tk, "increment") || tag_is(&tk, "decrement"))
			n = parse_counter(ps, &tk, tk.name[0] == 'i' ? 1 : -1);
		else if (tag_is(&tk, "ifchanged"))
			n = parse_ifchanged(ps, &tk, depth);
		else if (tag_is(&tk, "break") || tag_is(&tk, "continue"))
			n = new_node(ps, tk.name[0] == 'b' ? N_BREAK : N_CONTINUE, tk.start);
		else if (tag_is(&tk, "comment"))
		{
			if (!skip_comment(ps, &tk))
				return false;
			continue;
		}
		else if (tag_is(&tk, "#"))
		{
			/* a comment over several lines needs a "#" on each */
			const char *p = tk.args;
			const char *end = tk.args + tk.argslen;

			while ((p = memchr(p, '\n', (size_t) (end - p))) != NULL)
			{
				while (p < end && is_ws(*p))
					p++;
				if (p < end && *p != '#')
				{
					perr(ps, p, "every line of an inline comment must start with \"#\"");
					return false;
				}
			}
			continue;
		}
		else if (is_terminator(&tk))
		{
			if (ps->last_group != group)
			{
				perr(ps, tk.start, "\"%.*s\" cannot close a block opened %s a \"liquid\" tag",
					 (int) tk.namelen, tk.name, group ? "inside" : "outside");
				return false;
			}
			*term = tk;
			return true;
		}
		else
		{
			const char *near = tmpl_nearest_name(tk.name, tk.namelen, known_tags,
												 sizeof(known_tags[0]));

			perr(ps, tk.start, "unknown tag \"%.*s\"%s%s%s",
				 (int) (tk.namelen > 64 ? 64 : tk.namelen), tk.name,
				 near ? ", did you mean \"" : "", near ? near : "", near ? "\"?" : "");
			return false;
		}
		if (n == NULL)
			return false;
		*tail = n;
		tail = &n->next;
	}
}

Template *
tmpl_compile(const char *src, size_t len, TmplError *err)
{
	return tmpl_compile_ex(src, len, NULL, NULL, err);
}

Template *
tmpl_compile_ex(const char *src, size_t len, TmplSnippetResolver fn, void *arg,
				TmplError *err)
{
	Template   *t;
	Parser		ps;
	TTok		term;
	bool		ok;

	memset(err, 0, sizeof(*err));
	t = calloc(1, sizeof(Template));
	if (t == NULL || (t->src = malloc(len + 1)) == NULL)
	{
		free(t);
		set_error(err, TMPL_ERR_NOMEM, 0, 0, "out of memory");
		return NULL;
	}
	if (len)
		memcpy(t->src, src, len);
	t->src[len] = '\0';
	t->len = len;
	arena_init(&t->arena);

	memset(&ps, 0, sizeof(ps));
	ps.t = t;
	ps.src = t->src;
	ps.end = t->src + len;
	ps.err = err;
	ps.pc_line = 1;
	ps.pc_col = 1;
	ps.snip_fn = fn;
	ps.snip_arg = arg;

	ok = parse_block(&ps, 0, &t->root, &term);
	if (ok && term.kind != TT_EOF)
	{
		err_unexpected_tag(&ps, &term);
		ok = false;
	}
	if (ok && ps.nnames)
	{
		t->slot_names = ps_alloc(&ps, sizeof(char *) * (size_t) ps.nnames);
		if (t->slot_names)
			memcpy(t->slot_names, ps.names, sizeof(char *) * (size_t) ps.nnames);
		else
			ok = false;
	}
	if (ok && ps.nfornames)
	{
		ForName    *fn;
		int			i = ps.nfornames;

		t->fornames = ps_alloc(&ps, sizeof(char *) * (size_t) ps.nfornames);
		if (t->fornames)
			for (fn = ps.fornames; fn; fn = fn->next)
				t->fornames[--i] = fn->p;
		else
			ok = false;
	}
	if (ok && ps.nsnippos)
	{
		SnipPos    *sp = ps_alloc(&ps, sizeof(SnipPos) * (size_t) ps.nsnippos);

		if (sp)
			memcpy(sp, ps.snippos, sizeof(SnipPos) * (size_t) ps.nsnippos);
		else
			ok = false;
		t->snippos = sp;
		t->nsnippos = ps.nsnippos;
	}
	t->nslots = ps.nnames;
	t->ncache = ps.ncache;
	t->nkeys = ps.nkeys;
	t->nfornames = ps.nfornames;
	{
		/* key ids are per template: contexts reset their hash cache on a change */
		static uint64_t next_id;

		t->id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
	}
	free(ps.hash);
	free(ps.names);
	free(ps.namelens);
	free(ps.scopes);
	free(ps.assigned);
	free(ps.snippos);
	if (!ok || ps.failed)
	{
		if (!ps.failed)
			set_error(err, TMPL_ERR_SYNTAX, 1, 1, "invalid template");
		tmpl_free(t);
		return NULL;
	}
	return t;
}

void
tmpl_free(Template *t)
{
	if (t == NULL)
		return;
	arena_free(&t->arena);
	if (t->const_data)
		json_object_put(t->const_data);
	free(t->src);
	free(t);
}


/*
 * The filters or the tags (without their end tags) the compiler knows, as
 * "a, b, c", for error hints; truncated to fit "cap" bytes.
 */
void
tmpl_list_names(bool filters, char *buf, size_t cap)
{
	size_t		len = 0;
	int			i;

	Assert(cap > 0);
	buf[0] = '\0';
	for (i = 0;; i++)
	{
		const char *name = filters ? filter_defs[i].name : known_tags[i];
		int			w;

		if (name == NULL)
			break;
		if (!filters && strncmp(name, "end", 3) == 0)
			continue;
		w = snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", name);
		if (w < 0 || (size_t) w >= cap - len)
		{
			buf[len] = '\0';
			break;
		}
		len += (size_t) w;
	}
}
