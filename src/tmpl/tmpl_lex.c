/*-------------------------------------------------------------------------
 *
 * tmpl_lex.c
 *	  Compiler: template-level scanner, slot interning and the
 *	  expression lexer.
 *
 * See src/tmpl/tmpl_int.h for the shared types and the design.
 *
 *-------------------------------------------------------------------------
 */
#include "tmpl_int.h"

static inline bool
is_ident_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static inline bool
is_ident_char(char c)
{
	return is_ident_start(c) || (c >= '0' && c <= '9') || c == '-';
}

void
pos_of(Parser *ps, const char *at, int *line, int *col)
{
	size_t		off = (size_t) (at - ps->src);
	size_t		i;

	if (off < ps->pc_off)
	{
		ps->pc_off = 0;
		ps->pc_line = 1;
		ps->pc_col = 1;
	}
	for (i = ps->pc_off; i < off; i++)
	{
		if (ps->src[i] == '\n')
		{
			ps->pc_line++;
			ps->pc_col = 1;
		}
		else
			ps->pc_col++;
	}
	ps->pc_off = off;
	*line = ps->pc_line;
	*col = ps->pc_col;
}

/*
 * Position of a node or filter: pos_of, except inside a snippet, where it
 * is recorded in ps->snippos and stands as line -(index + 1), column 0, so
 * that a render error there can name the snippet (tmpl_error_locate).
 */
void
node_pos(Parser *ps, const char *at, int *line, int *col)
{
	SnipPos    *sp;

	pos_of(ps, at, line, col);
	if (ps->snip_depth == 0 || ps->failed)
		return;
	if (ps->nsnippos == ps->capsnippos)
	{
		int			ncap = ps->capsnippos ? ps->capsnippos * 2 : 64;
		SnipPos    *np = ncap < INT_MAX / 2 ?
			realloc(ps->snippos, sizeof(SnipPos) * (size_t) ncap) : NULL;

		if (np == NULL)
		{
			ps->failed = true;
			set_error(ps->err, TMPL_ERR_NOMEM, 0, 0, "out of memory");
			return;
		}
		ps->snippos = np;
		ps->capsnippos = ncap;
	}
	sp = &ps->snippos[ps->nsnippos++];
	sp->name = ps->snip_name;
	sp->line = *line;
	sp->col = *col;
	sp->top_line = ps->snip_top_line;
	sp->top_col = ps->snip_top_col;
	*line = -ps->nsnippos;
	*col = 0;
}

void
perr(Parser *ps, const char *at, const char *fmt,...)
{
	va_list		ap;
	int			line;
	int			col;

	if (ps->failed)
		return;
	ps->failed = true;
	pos_of(ps, at, &line, &col);
	ps->err->kind = TMPL_ERR_SYNTAX;
	ps->err->line = line;
	ps->err->column = col;
	va_start(ap, fmt);
	vsnprintf(ps->err->message, sizeof(ps->err->message), fmt, ap);
	va_end(ap);
}

void *
ps_alloc(Parser *ps, size_t n)
{
	void	   *p = arena_alloc(&ps->t->arena, n);

	if (p == NULL)
	{
		if (!ps->failed)
		{
			ps->failed = true;
			set_error(ps->err, TMPL_ERR_NOMEM, 0, 0, "out of memory");
		}
		return NULL;
	}
	memset(p, 0, n);
	return p;
}

char *
ps_strdup(Parser *ps, const char *s, size_t n)
{
	char	   *p = ps_alloc(ps, n + 1);

	if (p)
	{
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

/* Find the two-character sequence c1 c2 in [s, end). */
static const char *
find2(const char *s, const char *end, char c1, char c2)
{
	while (s + 1 < end)
	{
		const char *q = memchr(s, c1, (size_t) (end - s - 1));

		if (q == NULL)
			return NULL;
		if (q[1] == c2)
			return q;
		s = q + 1;
	}
	return NULL;
}

/* Next "{{" or "{%" at or after s, or end. */
static const char *
find_open(const char *s, const char *end)
{
	while (s + 1 < end)
	{
		const char *q = memchr(s, '{', (size_t) (end - s - 1));

		if (q == NULL)
			return end;
		if (q[1] == '{' || q[1] == '%')
			return q;
		s = q + 1;
	}
	return end;
}

/*
 * Body of {% raw %}: everything up to the matching {% endraw %}, as text.
 * With doc, the same for {% doc %} ... {% enddoc %}, but the body is
 * dropped (an empty text token) and a nested {% doc %} is an error.
 */
static bool
scan_raw(Parser *ps, TTok *tk, const char *body, bool trim_body_start, bool doc)
{
	const char *end = ps->end;
	const char *scan = body;
	const char *endname = doc ? "enddoc" : "endraw";
	size_t		endlen = strlen(endname);

	for (;;)
	{
		const char *o = find2(scan, end, '{', '%');
		const char *x;
		bool		tl = false;

		if (o == NULL)
		{
			perr(ps, tk->start, "\"%s\" tag was never closed", doc ? "doc" : "raw");
			return false;
		}
		x = o + 2;
		if (x < end && *x == '-')
		{
			x++;
			tl = true;
		}
		while (x < end && is_ws(*x))
			x++;
		if (doc && end - x >= 3 && memcmp(x, "doc", 3) == 0 &&
			(end - x == 3 || is_ws(x[3]) || x[3] == '-' || x[3] == '%'))
		{
			perr(ps, o, "\"doc\" tags cannot be nested");
			return false;
		}
		if ((size_t) (end - x) >= endlen && memcmp(x, endname, endlen) == 0)
		{
			bool		tr = false;

			x += endlen;
			while (x < end && is_ws(*x))
				x++;
			if (x < end && *x == '-')
			{
				x++;
				tr = true;
			}
			if (end - x >= 2 && x[0] == '%' && x[1] == '}')
			{
				const char *a = body;
				const char *b = o;

				if (trim_body_start)
					while (a < b && is_ws(*a))
						a++;
				if (tl)
					while (b > a && is_ws(b[-1]))
						b--;
				ps->pos = (size_t) (x + 2 - ps->src);
				ps->trim_next = tr;
				tk->kind = TT_TEXT;
				tk->p = a;
				tk->n = doc ? 0 : (size_t) (b - a);
				return true;
			}
		}
		scan = o + 2;
	}
}

static bool
scan_tag(Parser *ps, TTok *tk)
{
	const char *s = ps->src + ps->pos;
	const char *end = ps->end;
	bool		is_out = (s[1] == '{');
	const char *close;
	const char *a;
	const char *b;
	const char *nm;
	bool		trim_right = false;

	tk->start = s;
	close = find2(s + 2, end, is_out ? '}' : '%', '}');
	if (close == NULL)
	{
		perr(ps, s, is_out ? "\"{{\" was never closed" : "\"{%%\" was never closed");
		return false;
	}
	a = s + 2;
	b = close;
	if (a < b && *a == '-')
		a++;
	if (b > a && b[-1] == '-')
	{
		b--;
		trim_right = true;
	}
	ps->pos = (size_t) (close + 2 - ps->src);
	ps->trim_next = trim_right;
	while (a < b && is_ws(*a))
		a++;
	while (b > a && is_ws(b[-1]))
		b--;
	if (is_out)
	{
		tk->kind = TT_OUT;
		tk->p = a;
		tk->n = (size_t) (b - a);
		return true;
	}
	tk->kind = TT_TAG;
	nm = a;
	if (a < b && *a == '#')
		a++;
	else
		while (a < b && (is_ident_start(*a) || (*a >= '0' && *a <= '9')))
			a++;
	tk->name = nm;
	tk->namelen = (size_t) (a - nm);
	if (tk->namelen == 0)
	{
		perr(ps, a < b ? nm : s, a < b ? "tag name expected" : "empty tag");
		return false;
	}
	while (a < b && is_ws(*a))
		a++;
	tk->args = a;
	tk->argslen = (size_t) (b - a);
	if (name_is(tk->name, tk->namelen, "raw"))
		return scan_raw(ps, tk, ps->src + ps->pos, trim_right, false);
	if (name_is(tk->name, tk->namelen, "doc"))
	{
		if (tk->argslen)
		{
			perr(ps, tk->args, "\"doc\" takes no arguments");
			return false;
		}
		return scan_raw(ps, tk, ps->src + ps->pos, trim_right, true);
	}
	return true;
}

/*
 * The next line of a {% liquid %} tag as a tag token: each non-blank line
 * is one tag without its delimiters ("assign x = 1", "echo x", "# note").
 * False when the tag has no line left.
 */
static bool
liquid_line(Parser *ps, TTok *tk)
{
	while (ps->lq_p < ps->lq_end)
	{
		const char *a = ps->lq_p;
		const char *b = memchr(a, '\n', (size_t) (ps->lq_end - a));
		const char *nm;

		if (b == NULL)
			b = ps->lq_end;
		ps->lq_p = b < ps->lq_end ? b + 1 : ps->lq_end;
		while (a < b && is_ws(*a))
			a++;
		while (b > a && is_ws(b[-1]))
			b--;
		if (a == b)
			continue;
		tk->kind = TT_TAG;
		tk->start = a;
		for (;;)
		{
			nm = a;
			if (*a == '#')
				a++;
			else
				while (a < b && (is_ident_start(*a) || (*a >= '0' && *a <= '9')))
					a++;
			/* "liquid" inside liquid: the rest of the line is the tag */
			if (!name_is(nm, (size_t) (a - nm), "liquid"))
				break;
			while (a < b && is_ws(*a))
				a++;
			if (a == b)
				break;
		}
		if (a == b && name_is(nm, (size_t) (a - nm), "liquid"))
			continue;
		tk->start = nm;
		tk->name = nm;
		tk->namelen = (size_t) (a - nm);
		if (tk->namelen == 0)
		{
			perr(ps, nm, "tag name expected");
			return true;
		}
		if (name_is(nm, tk->namelen, "raw") || name_is(nm, tk->namelen, "doc"))
		{
			perr(ps, nm, "\"%.*s\" is not allowed inside a \"liquid\" tag",
				 (int) tk->namelen, nm);
			return true;
		}
		while (a < b && is_ws(*a))
			a++;
		tk->args = a;
		tk->argslen = (size_t) (b - a);
		return true;
	}
	ps->lq_p = NULL;
	return false;
}

bool
next_ttok(Parser *ps, TTok *tk)
{
	memset(tk, 0, sizeof(*tk));
	for (;;)
	{
		const char *s;
		const char *q;
		const char *a;
		const char *b;

		if (ps->failed)
			return false;
		if (ps->lq_p)
		{
			if (liquid_line(ps, tk))
			{
				ps->last_group = ps->lq_group;
				return !ps->failed;
			}
			continue;
		}
		ps->lq_group = 0;
		ps->last_group = 0;
		s = ps->src + ps->pos;
		if (s >= ps->end)
		{
			tk->kind = TT_EOF;
			tk->start = ps->end;
			return true;
		}
		if (s[0] == '{' && s + 1 < ps->end && (s[1] == '{' || s[1] == '%'))
		{
			if (!scan_tag(ps, tk))
				return false;
			if (tk->kind == TT_TAG && name_is(tk->name, tk->namelen, "liquid"))
			{
				/* its lines come next, one tag each */
				ps->lq_p = tk->args;
				ps->lq_end = tk->args + tk->argslen;
				ps->lq_group = ++ps->lq_count;
				memset(tk, 0, sizeof(*tk));
				continue;
			}
			return true;
		}
		q = find_open(s, ps->end);
		a = s;
		b = q;
		if (ps->trim_next)
			while (a < b && is_ws(*a))
				a++;
		ps->trim_next = false;
		if (q + 2 < ps->end && q[2] == '-')
			while (b > a && is_ws(b[-1]))
				b--;
		ps->pos = (size_t) (q - ps->src);
		if (b > a)
		{
			tk->kind = TT_TEXT;
			tk->start = s;
			tk->p = a;
			tk->n = (size_t) (b - a);
			return true;
		}
	}
}

/* ----------------------------------------------------------------
 * Compiler: slots
 * ----------------------------------------------------------------
 */
static uint32_t
hash_name(const char *s, size_t n)
{
	uint32_t	h = 2166136261u;

	while (n--)
		h = (h ^ (unsigned char) *s++) * 16777619u;
	return h;
}

int
intern_slot(Parser *ps, const char *name, size_t n)
{
	uint32_t	h = hash_name(name, n) ^ (uint32_t) ps->scope * 2654435761u;
	int			i;

	if (ps->nnames * 2 >= ps->hcap)
	{
		int			ncap = ps->hcap ? ps->hcap * 2 : 64;
		int		   *nh = calloc((size_t) ncap, sizeof(int));

		if (nh == NULL)
			goto oom;
		for (i = 0; i < ps->nnames; i++)
		{
			uint32_t	k = (hash_name(ps->names[i], ps->namelens[i]) ^
							 (uint32_t) ps->scopes[i] * 2654435761u) & (uint32_t) (ncap - 1);

			while (nh[k])
				k = (k + 1) & (uint32_t) (ncap - 1);
			nh[k] = i + 1;
		}
		free(ps->hash);
		ps->hash = nh;
		ps->hcap = ncap;
	}
	for (i = (int) (h & (uint32_t) (ps->hcap - 1)); ps->hash[i]; i = (i + 1) & (ps->hcap - 1))
	{
		int			s = ps->hash[i] - 1;

		if (ps->namelens[s] == n && ps->scopes[s] == ps->scope &&
			memcmp(ps->names[s], name, n) == 0)
			return s;
	}
	if (ps->nnames == ps->namecap)
	{
		int			ncap = ps->namecap ? ps->namecap * 2 : 32;
		const char **nn = realloc(ps->names, sizeof(char *) * (size_t) ncap);

		if (nn == NULL)
			goto oom;
		ps->names = nn;
		{
			size_t	   *nl = realloc(ps->namelens, sizeof(size_t) * (size_t) ncap);

			if (nl == NULL)
				goto oom;
			ps->namelens = nl;
		}
		{
			int		   *sc = realloc(ps->scopes, sizeof(int) * (size_t) ncap);

			if (sc == NULL)
				goto oom;
			ps->scopes = sc;
		}
		{
			uint8_t    *as = realloc(ps->assigned, (size_t) ncap);

			if (as == NULL)
				goto oom;
			ps->assigned = as;
		}
		ps->namecap = ncap;
	}
	ps->names[ps->nnames] = ps_strdup(ps, name, n);
	if (ps->names[ps->nnames] == NULL)
		return -1;
	ps->namelens[ps->nnames] = n;
	ps->scopes[ps->nnames] = ps->scope;
	ps->assigned[ps->nnames] = 0;
	ps->hash[i] = ps->nnames + 1;
	return ps->nnames++;

oom:
	if (!ps->failed)
	{
		ps->failed = true;
		set_error(ps->err, TMPL_ERR_NOMEM, 0, 0, "out of memory");
	}
	return -1;
}

bool
lex_next(Lex *lx)
{
	const char *p = lx->p;
	const char *end = lx->end;
	Tok		   *t = &lx->tok;

	while (p < end && is_ws(*p))
		p++;
	memset(t, 0, sizeof(*t));
	t->at = p;
	t->p = p;
	if (p >= end)
	{
		t->k = K_END;
		lx->p = p;
		return true;
	}
	if (is_ident_start(*p))
	{
		while (p < end && is_ident_char(*p))
			p++;
		if (p < end && *p == '?')
			p++;
		t->k = K_IDENT;
		t->n = (size_t) (p - t->p);
	}
	else if (*p == '"' || *p == '\'')
	{
		const char *q = memchr(p + 1, *p, (size_t) (end - p - 1));

		if (q == NULL)
		{
			perr(lx->ps, p, "unterminated string literal");
			return false;
		}
		t->k = K_STR;
		t->p = p + 1;
		t->n = (size_t) (q - p - 1);
		p = q + 1;
	}
	else if ((*p >= '0' && *p <= '9') ||
			 (*p == '-' && p + 1 < end && p[1] >= '0' && p[1] <= '9'))
	{
		const char *s = p;
		char		buf[64];
		size_t		n;
		bool		is_dbl = false;

		if (*p == '-')
			p++;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
		if (p + 1 < end && *p == '.' && p[1] >= '0' && p[1] <= '9')
		{
			is_dbl = true;
			p++;
			while (p < end && *p >= '0' && *p <= '9')
				p++;
		}
		n = (size_t) (p - s);
		if (n >= sizeof(buf))
		{
			perr(lx->ps, s, "number literal is too long");
			return false;
		}
		memcpy(buf, s, n);
		buf[n] = '\0';
		t->n = n;
		if (!is_dbl)
		{
			char	   *e;
			long long	v;

			errno = 0;
			v = strtoll(buf, &e, 10);
			if (errno == 0)
			{
				t->k = K_INT;
				t->i = v;
			}
			else
				is_dbl = true;
		}
		if (is_dbl)
		{
			t->k = K_DBL;
			t->d = strtod(buf, NULL);
		}
	}
	else
	{
		char		c = *p;
		char		c2 = p + 1 < end ? p[1] : '\0';

		t->n = 1;
		switch (c)
		{
			case '.':
				if (c2 == '.')
				{
					t->k = K_DOTDOT;
					t->n = 2;
				}
				else
					t->k = K_DOT;
				break;
			case '[':
				t->k = K_LBRACK;
				break;
			case ']':
				t->k = K_RBRACK;
				break;
			case '(':
				t->k = K_LPAREN;
				break;
			case ')':
				t->k = K_RPAREN;
				break;
			case '|':
				t->k = K_PIPE;
				break;
			case ':':
				t->k = K_COLON;
				break;
			case ',':
				t->k = K_COMMA;
				break;
			case '=':
				if (c2 == '=')
				{
					t->k = K_CMP;
					t->op = OP_EQ;
					t->n = 2;
				}
				else
					t->k = K_ASSIGN;
				break;
			case '!':
				if (c2 != '=')
					goto bad;
				t->k = K_CMP;
				t->op = OP_NE;
				t->n = 2;
				break;
			case '<':
				t->k = K_CMP;
				if (c2 == '=')
				{
					t->op = OP_LE;
					t->n = 2;
				}
				else if (c2 == '>')
				{
					t->op = OP_NE;
					t->n = 2;
				}
				else
					t->op = OP_LT;
				break;
			case '>':
				t->k = K_CMP;
				if (c2 == '=')
				{
					t->op = OP_GE;
					t->n = 2;
				}
				else
					t->op = OP_GT;
				break;
			default:
				goto bad;
		}
		p += t->n;
	}
	lx->p = p;
	return true;

bad:
	if ((unsigned char) *p >= 0x20 && (unsigned char) *p < 0x7f)
		perr(lx->ps, p, "unexpected character \"%c\"", *p);
	else
		perr(lx->ps, p, "unexpected byte 0x%02x", (unsigned char) *p);
	return false;
}

bool
lex_init(Lex *lx, Parser *ps, const char *p, size_t n)
{
	lx->ps = ps;
	lx->p = p;
	lx->end = p + n;
	return lex_next(lx);
}

bool
tok_is_word(const Tok *t, const char *w)
{
	return t->k == K_IDENT && name_is(t->p, t->n, w);
}

void
unexpected_tok(Lex *lx, const char *expected)
{
	const Tok  *t = &lx->tok;

	if (t->k == K_END)
		perr(lx->ps, t->at, "expected %s but the tag ended", expected);
	else
	{
		/* show the raw token text, quotes included, at most 40 bytes */
		const char *s = t->at;
		const char *e = t->k == K_STR ? t->p + t->n + 1 : t->p + t->n;
		int			len = (int) (e - s);

		if (len > 40)
			len = 40;
		perr(lx->ps, t->at, "expected %s but found \"%.*s\"", expected, len, s);
	}
}

bool
expect_end(Lex *lx)
{
	if (lx->tok.k != K_END)
	{
		unexpected_tok(lx, "end of tag");
		return false;
	}
	return true;
}

