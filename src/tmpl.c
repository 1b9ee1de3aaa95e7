/*-------------------------------------------------------------------------
 *
 * tmpl.c
 *	  Liquid-compatible template engine: compiler and renderer.
 *
 * The source is copied once and compiled into a tree of nodes allocated in
 * an arena owned by the Template; literal text and string literals stay as
 * pointers into the copy.  Variable roots are interned into "slots" at
 * compile time so that rendering never searches a symbol table: a slot is
 * either set by assign/capture/for, or lazily filled from the json data on
 * first use and then cached for the rest of the render.
 *
 * Rendering keeps all per-render state in a caller-owned TmplRenderCtx: a
 * bump arena for intermediate strings (reset to a mark after each
 * statement, so memory stays bounded by one statement's temporaries), slot
 * buffers for assigned strings, and capture buffers.  After warm-up a
 * render performs no malloc at all.
 *
 * Every recursion (nested blocks, dynamic index expressions) is bounded by
 * TMPL_MAX_COMPILE_DEPTH at compile time; conditions and filter chains are
 * evaluated iteratively.
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <json.h>

#include "tmpl.h"

#define ARENA_CHUNK 8192
#define ARENA_ALIGN 8

/* ----------------------------------------------------------------
 * Arena
 * ----------------------------------------------------------------
 */
typedef struct ArenaChunk
{
	struct ArenaChunk *next;
	size_t		size;
	size_t		used;
	char		data[];
} ArenaChunk;

typedef struct Arena
{
	ArenaChunk *first;
	ArenaChunk *cur;
	size_t		inuse;			/* bytes handed out since the last reset */
	size_t		limit;			/* 0 = unlimited */
	bool		over_limit;		/* last failure was the limit, not malloc */
} Arena;

typedef struct ArenaMark
{
	ArenaChunk *cur;
	size_t		used;
	size_t		inuse;
} ArenaMark;

static void
arena_init(Arena *a)
{
	memset(a, 0, sizeof(*a));
}

static void
arena_free(Arena *a)
{
	ArenaChunk *c = a->first;

	while (c)
	{
		ArenaChunk *n = c->next;

		free(c);
		c = n;
	}
	arena_init(a);
}

static void *
arena_alloc(Arena *a, size_t n)
{
	ArenaChunk *c;
	void	   *p;

	n = (n + ARENA_ALIGN - 1) & ~(size_t) (ARENA_ALIGN - 1);
	if (n == 0)
		n = ARENA_ALIGN;
	if (a->limit && (n > a->limit || a->inuse > a->limit - n))
	{
		a->over_limit = true;
		return NULL;
	}
	c = a->cur;
	if (c == NULL || c->size - c->used < n)
	{
		/* reuse a chunk kept from an earlier render if it fits */
		if (c && c->next && c->next->size >= n)
		{
			c = c->next;
			c->used = 0;
		}
		else
		{
			size_t		sz = n > ARENA_CHUNK ? n : ARENA_CHUNK;
			ArenaChunk *nc = malloc(sizeof(ArenaChunk) + sz);

			if (nc == NULL)
			{
				a->over_limit = false;
				return NULL;
			}
			nc->size = sz;
			nc->used = 0;
			if (c == NULL)
			{
				nc->next = a->first;
				a->first = nc;
			}
			else
			{
				nc->next = c->next;
				c->next = nc;
			}
			c = nc;
		}
		a->cur = c;
	}
	p = c->data + c->used;
	c->used += n;
	a->inuse += n;
	return p;
}

static inline ArenaMark
arena_mark(Arena *a)
{
	ArenaMark	m;

	m.cur = a->cur;
	m.used = a->cur ? a->cur->used : 0;
	m.inuse = a->inuse;
	return m;
}

static inline void
arena_release(Arena *a, ArenaMark m)
{
	if (m.cur == NULL)
	{
		a->cur = a->first;
		if (a->cur)
			a->cur->used = 0;
	}
	else
	{
		a->cur = m.cur;
		a->cur->used = m.used;
	}
	a->inuse = m.inuse;
}

/* ----------------------------------------------------------------
 * Values and the compiled tree
 * ----------------------------------------------------------------
 */
typedef enum VType
{
	V_NIL,
	V_BOOL,
	V_INT,
	V_DBL,
	V_STR,
	V_ARR,
	V_OBJ,
	V_EMPTY,					/* the "empty" literal */
	V_BLANK						/* the "blank" literal */
} VType;

typedef struct Value
{
	VType		t;
	union
	{
		bool		b;
		int64_t		i;
		double		d;
		struct
		{
			const char *p;
			size_t		n;
		}			s;
		struct json_object *j;
	}			u;
} Value;

typedef struct Expr Expr;

typedef enum SegKind
{
	SEG_KEY,
	SEG_INDEX,
	SEG_DYN
} SegKind;

typedef struct Seg
{
	SegKind		kind;
	const char *key;			/* NUL-terminated copy */
	size_t		keylen;
	int			key_id;			/* index of the key's cached json-c hash */
	int64_t		idx;
	Expr	   *dyn;
} Seg;

typedef enum ExprKind
{
	E_LIT,
	E_VAR,
	E_RANGE,
	E_FORLOOP
} ExprKind;

typedef enum LoopProp
{
	LP_INDEX,
	LP_INDEX0,
	LP_RINDEX,
	LP_RINDEX0,
	LP_FIRST,
	LP_LAST,
	LP_LENGTH
} LoopProp;

struct Expr
{
	ExprKind	kind;
	Value		lit;			/* E_LIT */
	int			slot;			/* E_VAR */
	bool		root_lit;		/* E_VAR: root is "lit", not the slot */
	int			cache_idx;		/* E_VAR: result cache entry, or -1 */
	int			nsegs;
	Seg		   *segs;
	Expr	   *lo;				/* E_RANGE */
	Expr	   *hi;
	LoopProp	prop;			/* E_FORLOOP */
};

typedef enum FilterId
{
	F_DEFAULT,
	F_UPCASE,
	F_DOWNCASE,
	F_CAPITALIZE,
	F_ESCAPE,
	F_ESCAPE_ONCE,
	F_URL_ENCODE,
	F_STRIP,
	F_LSTRIP,
	F_RSTRIP,
	F_STRIP_NEWLINES,
	F_NEWLINE_TO_BR,
	F_TRUNCATE,
	F_TRUNCATEWORDS,
	F_APPEND,
	F_PREPEND,
	F_REPLACE,
	F_REPLACE_FIRST,
	F_REMOVE,
	F_REMOVE_FIRST,
	F_DATE,
	F_SIZE,
	F_FIRST,
	F_LAST,
	F_JOIN,
	F_PLUS,
	F_MINUS,
	F_TIMES,
	F_DIVIDED_BY,
	F_MODULO
} FilterId;

typedef struct FilterDef
{
	const char *name;
	FilterId	id;
	int			min_args;
	int			max_args;
} FilterDef;

static const FilterDef filter_defs[] = {
	{"default", F_DEFAULT, 1, 1},
	{"upcase", F_UPCASE, 0, 0},
	{"downcase", F_DOWNCASE, 0, 0},
	{"capitalize", F_CAPITALIZE, 0, 0},
	{"escape", F_ESCAPE, 0, 0},
	{"h", F_ESCAPE, 0, 0},
	{"escape_once", F_ESCAPE_ONCE, 0, 0},
	{"url_encode", F_URL_ENCODE, 0, 0},
	{"strip", F_STRIP, 0, 0},
	{"lstrip", F_LSTRIP, 0, 0},
	{"rstrip", F_RSTRIP, 0, 0},
	{"strip_newlines", F_STRIP_NEWLINES, 0, 0},
	{"newline_to_br", F_NEWLINE_TO_BR, 0, 0},
	{"truncate", F_TRUNCATE, 0, 2},
	{"truncatewords", F_TRUNCATEWORDS, 0, 2},
	{"append", F_APPEND, 1, 1},
	{"prepend", F_PREPEND, 1, 1},
	{"replace", F_REPLACE, 1, 2},
	{"replace_first", F_REPLACE_FIRST, 1, 2},
	{"remove", F_REMOVE, 1, 1},
	{"remove_first", F_REMOVE_FIRST, 1, 1},
	{"date", F_DATE, 1, 1},
	{"size", F_SIZE, 0, 0},
	{"first", F_FIRST, 0, 0},
	{"last", F_LAST, 0, 0},
	{"join", F_JOIN, 0, 1},
	{"plus", F_PLUS, 1, 1},
	{"minus", F_MINUS, 1, 1},
	{"times", F_TIMES, 1, 1},
	{"divided_by", F_DIVIDED_BY, 1, 1},
	{"modulo", F_MODULO, 1, 1},
	{NULL, 0, 0, 0}
};

#define MAX_FILTER_ARGS 2

typedef struct FilterCall
{
	FilterId	id;
	int			nargs;
	Expr	   *args[MAX_FILTER_ARGS];
	Expr	   *allow_false;	/* default: allow_false: ... */
	int			line;
	int			col;
} FilterCall;

typedef struct Filtered
{
	Expr	   *base;
	int			nfilters;
	FilterCall *filters;
} Filtered;

typedef enum CmpOp
{
	OP_NONE,
	OP_EQ,
	OP_NE,
	OP_LT,
	OP_GT,
	OP_LE,
	OP_GE,
	OP_CONTAINS
} CmpOp;

typedef struct CondTerm
{
	Expr	   *l;
	CmpOp		op;
	Expr	   *r;
	bool		or_next;		/* joiner to the next term: or (else and) */
} CondTerm;

typedef struct Cond
{
	int			nterms;
	CondTerm   *terms;
} Cond;

typedef enum NodeKind
{
	N_TEXT,
	N_OUTPUT,
	N_IF,
	N_FOR,
	N_BREAK,
	N_CONTINUE,
	N_ASSIGN,
	N_CAPTURE,
	N_CHUNK,					/* specialised: pre-rendered text + its cost */
	N_BLOCK						/* specialised: entered block of a pre-run tag */
} NodeKind;

/*
 * What a pre-rendered part of a specialised template consumed when it ran
 * at specialisation time, charged again on every render so that limits
 * fail exactly as they would on the original template.
 */
typedef struct TmplCost
{
	size_t		extra_out;		/* bytes produced but not in the text (captures) */
	long		iters;			/* loop iterations */
	int			peak_depth;		/* deepest block nesting reached (absolute) */
	size_t		arena_peak;		/* working memory peak above the start */
	size_t		max_req;		/* largest single working-memory request */
} TmplCost;

typedef struct Node Node;

typedef struct IfBranch
{
	Cond	   *cond;			/* NULL for else */
	bool		negate;			/* unless */
	Node	   *body;
	struct IfBranch *next;
} IfBranch;

struct Node
{
	NodeKind	kind;
	int			line;
	int			col;
	Node	   *next;
	union
	{
		struct
		{
			const char *p;
			size_t		n;
		}			text;
		Filtered   *out;
		IfBranch   *branches;
		struct
		{
			int			slot;
			Expr	   *coll;
			Expr	   *limit;
			Expr	   *offset;
			bool		reversed;
			Node	   *body;
			Node	   *else_body;
		}			loop;
		struct
		{
			int			slot;
			Filtered   *val;
		}			assign;
		struct
		{
			int			slot;
			Node	   *body;
		}			capture;
		struct
		{
			const char *p;
			size_t		n;
			const TmplCost *cost;	/* NULL: nothing to charge */
		}			chunk;
		struct
		{
			const TmplCost *pre;	/* charged before entering */
			size_t		reserve;	/* working memory the tag held */
			Node	   *body;
		}			block;
	}			u;
};

struct Template
{
	char	   *src;			/* NUL-terminated private copy */
	size_t		len;
	Arena		arena;
	Node	   *root;
	int			nslots;
	int			ncache;			/* cacheable variable paths */
	int			nkeys;			/* constant keys (SEG_KEY) */
	uint64_t	id;				/* unique per compiled template */
	const char **slot_names;	/* NUL-terminated, for data lookups */
	/* specialised templates only */
	struct json_object *const_data; /* referenced; values point into it */
	const Value *slot_init;		/* per slot: value of a constant root */
	const bool *slot_init_set;
};

/* ----------------------------------------------------------------
 * Errors and positions
 * ----------------------------------------------------------------
 */
static void
set_error(TmplError *err, TmplErrorKind kind, int line, int col,
		  const char *fmt,...)
__attribute__((format(printf, 5, 6)));

static void
set_error(TmplError *err, TmplErrorKind kind, int line, int col,
		  const char *fmt,...)
{
	va_list		ap;

	if (err == NULL)
		return;
	err->kind = kind;
	err->line = line;
	err->column = col;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

void
tmpl_default_limits(TmplLimits *lim)
{
	lim->max_output = 1024 * 1024;
	lim->max_iterations = 100000;
	lim->max_depth = 32;
}

/* ----------------------------------------------------------------
 * Compiler: template-level scanner
 * ----------------------------------------------------------------
 */
typedef struct Parser
{
	Template   *t;
	const char *src;
	const char *end;
	size_t		pos;
	bool		trim_next;		/* previous tag ended with "-}}" / "-%}" */
	TmplError  *err;
	bool		failed;
	/* incremental offset -> line/column conversion */
	size_t		pc_off;
	int			pc_line;
	int			pc_col;
	/* slot interning: open addressing over slot numbers + 1 */
	int		   *hash;
	int			hcap;
	const char **names;
	size_t	   *namelens;
	int			nnames;
	int			namecap;
	int			ncache;
	int			nkeys;
} Parser;

typedef enum TTKind
{
	TT_EOF,
	TT_TEXT,
	TT_OUT,
	TT_TAG
} TTKind;

typedef struct TTok
{
	TTKind		kind;
	const char *start;			/* the opening brace, for positions */
	const char *p;				/* text, or markup of an output tag */
	size_t		n;
	const char *name;			/* tag name */
	size_t		namelen;
	const char *args;			/* tag arguments */
	size_t		argslen;
} TTok;

static inline bool
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

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

static inline bool
name_is(const char *p, size_t n, const char *lit)
{
	size_t		l = strlen(lit);

	return n == l && memcmp(p, lit, l) == 0;
}

static void
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

static void
perr(Parser *ps, const char *at, const char *fmt,...)
__attribute__((format(printf, 3, 4)));

static void
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

static void *
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

static char *
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

/* Body of {% raw %}: everything up to the matching {% endraw %}. */
static bool
scan_raw(Parser *ps, TTok *tk, const char *body, bool trim_body_start)
{
	const char *end = ps->end;
	const char *scan = body;

	for (;;)
	{
		const char *o = find2(scan, end, '{', '%');
		const char *x;
		bool		tl = false;

		if (o == NULL)
		{
			perr(ps, tk->start, "\"raw\" tag was never closed");
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
		if (end - x >= 6 && memcmp(x, "endraw", 6) == 0)
		{
			bool		tr = false;

			x += 6;
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
				tk->n = (size_t) (b - a);
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
		return scan_raw(ps, tk, ps->src + ps->pos, trim_right);
	return true;
}

static bool
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
		s = ps->src + ps->pos;
		if (s >= ps->end)
		{
			tk->kind = TT_EOF;
			tk->start = ps->end;
			return true;
		}
		if (s[0] == '{' && s + 1 < ps->end && (s[1] == '{' || s[1] == '%'))
			return scan_tag(ps, tk);
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

static int
intern_slot(Parser *ps, const char *name, size_t n)
{
	uint32_t	h = hash_name(name, n);
	int			i;

	if (ps->nnames * 2 >= ps->hcap)
	{
		int			ncap = ps->hcap ? ps->hcap * 2 : 64;
		int		   *nh = calloc((size_t) ncap, sizeof(int));

		if (nh == NULL)
			goto oom;
		for (i = 0; i < ps->nnames; i++)
		{
			uint32_t	k = hash_name(ps->names[i], ps->namelens[i]) & (uint32_t) (ncap - 1);

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

		if (ps->namelens[s] == n && memcmp(ps->names[s], name, n) == 0)
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
		ps->namecap = ncap;
	}
	ps->names[ps->nnames] = ps_strdup(ps, name, n);
	if (ps->names[ps->nnames] == NULL)
		return -1;
	ps->namelens[ps->nnames] = n;
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

/* ----------------------------------------------------------------
 * Compiler: expression lexer
 * ----------------------------------------------------------------
 */
typedef enum TokKind
{
	K_END,
	K_IDENT,
	K_STR,
	K_INT,
	K_DBL,
	K_DOT,
	K_DOTDOT,
	K_LBRACK,
	K_RBRACK,
	K_LPAREN,
	K_RPAREN,
	K_PIPE,
	K_COLON,
	K_COMMA,
	K_CMP,
	K_ASSIGN
} TokKind;

typedef struct Tok
{
	TokKind		k;
	const char *p;				/* token start (for strings: contents) */
	size_t		n;
	const char *at;				/* position for errors */
	int64_t		i;
	double		d;
	CmpOp		op;
} Tok;

typedef struct Lex
{
	Parser	   *ps;
	const char *p;
	const char *end;
	Tok			tok;
} Lex;

static bool
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

static bool
lex_init(Lex *lx, Parser *ps, const char *p, size_t n)
{
	lx->ps = ps;
	lx->p = p;
	lx->end = p + n;
	return lex_next(lx);
}

static bool
tok_is_word(const Tok *t, const char *w)
{
	return t->k == K_IDENT && name_is(t->p, t->n, w);
}

static void
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

static bool
expect_end(Lex *lx)
{
	if (lx->tok.k != K_END)
	{
		unexpected_tok(lx, "end of tag");
		return false;
	}
	return true;
}

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

static Expr *parse_primary(Lex *lx, int depth);

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

	/* forloop.<prop> is served from the loop stack, not from a slot */
	if (name_is(root, rootlen, "forloop") && nsegs == 1 && segs[0].kind == SEG_KEY)
	{
		static const char *const props[] = {
			"index", "index0", "rindex", "rindex0", "first", "last", "length"
		};
		int			i;

		for (i = 0; i < 7; i++)
			if (strcmp(segs[0].key, props[i]) == 0)
			{
				e->kind = E_FORLOOP;
				e->prop = (LoopProp) i;
				return e;
			}
	}
	e->kind = E_VAR;
	e->slot = intern_slot(ps, root, rootlen);
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

static Expr *
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
			perr(ps, nametok.at, "unknown filter \"%.*s\"",
				 (int) (nametok.n > 64 ? 64 : nametok.n), nametok.p);
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
		pos_of(ps, nametok.at, &fc->line, &fc->col);
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
static bool parse_block(Parser *ps, int depth, Node **head, TTok *term);

static Node *
new_node(Parser *ps, NodeKind kind, const char *at)
{
	Node	   *n = ps_alloc(ps, sizeof(Node));

	if (n)
	{
		n->kind = kind;
		pos_of(ps, at, &n->line, &n->col);
	}
	return n;
}

static bool
tag_is(const TTok *tk, const char *name)
{
	return tk->kind == TT_TAG && name_is(tk->name, tk->namelen, name);
}

static void
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
			return n;
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

static Node *
parse_for(Parser *ps, const TTok *open, int depth)
{
	Node	   *n = new_node(ps, N_FOR, open->start);
	Lex			lx;
	TTok		term;

	if (n == NULL || !check_depth(ps, open, depth))
		return NULL;
	if (!lex_init(&lx, ps, open->args, open->argslen))
		return NULL;
	if (lx.tok.k != K_IDENT)
	{
		unexpected_tok(&lx, "a loop variable name");
		return NULL;
	}
	if ((n->u.loop.slot = intern_slot(ps, lx.tok.p, lx.tok.n)) < 0 || !lex_next(&lx))
		return NULL;
	if (!tok_is_word(&lx.tok, "in"))
	{
		unexpected_tok(&lx, "\"in\"");
		return NULL;
	}
	if (!lex_next(&lx) || (n->u.loop.coll = parse_primary(&lx, 0)) == NULL)
		return NULL;
	while (lx.tok.k != K_END)
	{
		if (tok_is_word(&lx.tok, "reversed"))
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
			if (!lex_next(&lx) || (*dst = parse_primary(&lx, 0)) == NULL)
				return NULL;
		}
		else if (lx.tok.k == K_COMMA)
		{
			if (!lex_next(&lx))
				return NULL;
		}
		else
		{
			unexpected_tok(&lx, "\"limit\", \"offset\" or \"reversed\"");
			return NULL;
		}
	}
	if (!parse_block(ps, depth + 1, &n->u.loop.body, &term))
		return NULL;
	if (tag_is(&term, "else"))
	{
		if (!parse_block(ps, depth + 1, &n->u.loop.else_body, &term))
			return NULL;
	}
	if (term.kind == TT_EOF)
	{
		perr(ps, open->start, "\"for\" tag was never closed");
		return NULL;
	}
	if (!tag_is(&term, "endfor"))
	{
		err_unexpected_tag(ps, &term);
		return NULL;
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
	if (lx.tok.k != K_IDENT)
	{
		unexpected_tok(&lx, "a variable name");
		return NULL;
	}
	if ((n->u.assign.slot = intern_slot(ps, lx.tok.p, lx.tok.n)) < 0 || !lex_next(&lx))
		return NULL;
	if (lx.tok.k != K_ASSIGN)
	{
		unexpected_tok(&lx, "\"=\"");
		return NULL;
	}
	if (!lex_next(&lx) || (n->u.assign.val = parse_filtered(&lx)) == NULL || !expect_end(&lx))
		return NULL;
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

/*
 * Parse nodes until end of input or a terminator tag (else, elsif, end*),
 * which is returned in *term for the caller to check.
 */
static bool
parse_block(Parser *ps, int depth, Node **head, TTok *term)
{
	Node	  **tail = head;

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
		else if (tag_is(&tk, "for"))
			n = parse_for(ps, &tk, depth);
		else if (tag_is(&tk, "assign"))
			n = parse_assign(ps, &tk);
		else if (tag_is(&tk, "capture"))
			n = parse_capture(ps, &tk, depth);
		else if (tag_is(&tk, "break") || tag_is(&tk, "continue"))
			n = new_node(ps, tk.name[0] == 'b' ? N_BREAK : N_CONTINUE, tk.start);
		else if (tag_is(&tk, "comment"))
		{
			if (!skip_comment(ps, &tk))
				return false;
			continue;
		}
		else if (tag_is(&tk, "#"))
			continue;
		else if (is_terminator(&tk))
		{
			*term = tk;
			return true;
		}
		else
		{
			perr(ps, tk.start, "unknown tag \"%.*s\"",
				 (int) (tk.namelen > 64 ? 64 : tk.namelen), tk.name);
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
	t->nslots = ps.nnames;
	t->ncache = ps.ncache;
	t->nkeys = ps.nkeys;
	{
		/* key ids are per template: contexts reset their hash cache on a change */
		static uint64_t next_id;

		t->id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
	}
	free(ps.hash);
	free(ps.names);
	free(ps.namelens);
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

/* ----------------------------------------------------------------
 * Renderer: context and helpers
 * ----------------------------------------------------------------
 */
typedef struct Slot
{
	Value		v;
	bool		set;			/* false: not yet looked up in the data */
	char	   *buf;			/* owns assigned/captured strings */
	size_t		cap;
} Slot;

/*
 * Resolved value of a variable path, valid for one render while the root
 * is the same json container (the data never changes during a render).
 */
typedef struct PathCache
{
	uint32_t	gen;
	const void *root;
	Value		v;
} PathCache;

/*
 * json-c hash of a constant key.  It depends only on the key and on the
 * process-wide hash function, which is remembered to detect a change.
 */
typedef struct KeyHash
{
	lh_hash_fn *fn;
	unsigned long h;
} KeyHash;

typedef struct LoopState
{
	int64_t		index0;
	int64_t		length;
} LoopState;

struct TmplRenderCtx
{
	Arena		arena;
	Slot	   *slots;
	int			nslots;
	LoopState	loops[TMPL_MAX_COMPILE_DEPTH + 1];
	int			nloops;
	BeBuf		capbufs[TMPL_MAX_COMPILE_DEPTH + 1];
	int			ncap;
	PathCache  *cache;
	int			ncache;
	KeyHash    *khash;
	int			nkhash;
	uint64_t	khash_owner;	/* Template.id the hashes belong to */
	uint32_t	gen;			/* render generation, validates cache */
	/* resource tracking, read by tmpl_specialize */
	int			peak_depth;
	size_t		peak_inuse;
	size_t		max_req;
	uint8_t    *pe_wr;			/* per slot: stored since the last reset */
	bool		clock_used;		/* "now"/"today" was read */
	/* per render */
	const Template *t;
	struct json_object *data;
	TmplLimits	lim;
	BeBuf	   *out;			/* current sink: the output or a capture */
	size_t		produced;
	long		iterations;
	int			depth;
	int			line;			/* position of the node being rendered */
	int			col;
	TmplError  *err;
};

#define RC_OK		0
#define RC_ERR		(-1)
#define RC_BREAK	1
#define RC_CONTINUE 2

static int
rerr(TmplRenderCtx *c, TmplErrorKind kind, const char *fmt,...)
__attribute__((format(printf, 3, 4)));

static int
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

static int
err_output_limit(TmplRenderCtx *c)
{
	return rerr(c, TMPL_ERR_LIMIT, "template output exceeds the limit of %zu bytes",
				c->lim.max_output);
}

static char *
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

static inline int
emit(TmplRenderCtx *c, const char *p, size_t n)
{
	BeBuf	   *b = c->out;

	if (n > c->lim.max_output - c->produced)
		return err_output_limit(c);
	c->produced += n;
	/* fast path: the terminator is written when the sink is finished */
	if (b->len + n < b->cap)
	{
		memcpy(b->data + b->len, p, n);
		b->len += n;
		return RC_OK;
	}
	if (!be_buf_append(c->out, p, n))
		return rerr(c, TMPL_ERR_NOMEM, "out of memory");
	return RC_OK;
}

/* Restore BeBuf's NUL-termination after fast-path appends. */
static inline void
sink_finish(BeBuf *b)
{
	if (b->data && b->len < b->cap)
		b->data[b->len] = '\0';
}

static inline void
json_to_value(struct json_object *j, Value *v)
{
	switch (json_object_get_type(j))
	{
		case json_type_boolean:
			v->t = V_BOOL;
			v->u.b = json_object_get_boolean(j);
			break;
		case json_type_int:
			v->t = V_INT;
			v->u.i = json_object_get_int64(j);
			break;
		case json_type_double:
			v->t = V_DBL;
			v->u.d = json_object_get_double(j);
			break;
		case json_type_string:
			v->t = V_STR;
			v->u.s.p = json_object_get_string(j);
			v->u.s.n = (size_t) json_object_get_string_len(j);
			break;
		case json_type_array:
			v->t = V_ARR;
			v->u.j = j;
			break;
		case json_type_object:
			v->t = V_OBJ;
			v->u.j = j;
			break;
		default:
			v->t = V_NIL;
			break;
	}
}

static inline bool
truthy(const Value *v)
{
	return !(v->t == V_NIL || (v->t == V_BOOL && !v->u.b));
}

static inline void
set_str(Value *v, const char *p, size_t n)
{
	v->t = V_STR;
	v->u.s.p = p;
	v->u.s.n = n;
}

/* Characters in UTF-8 text: bytes minus continuation bytes, 8 at a time. */
static size_t
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
static size_t
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

static int
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
	for (prec = 1; prec <= 17; prec++)
	{
		snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	neg = tmp[0] == '-';
	e = strchr(tmp, 'e');
	exp = atoi(e + 1);
	for (s = tmp + (neg ? 1 : 0); s < e; s++)
		if (*s >= '0' && *s <= '9')
			digits[nd++] = *s;
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
static bool
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
			{
				size_t		i;
				size_t		len = json_object_array_length(v->u.j);

				if (depth >= MAX_STR_DEPTH)
					return true;
				for (i = 0; i < len; i++)
				{
					Value		e;

					json_to_value(json_object_array_get_idx(v->u.j, i), &e);
					if (!append_value(b, &e, depth + 1, cap))
						return false;
				}
				return true;
			}
		case V_OBJ:
			return be_buf_puts(b, json_object_to_json_string_ext(v->u.j, JSON_C_TO_STRING_PLAIN));
		default:
			return true;
	}
}

/*
 * Text form of a value.  Strings are returned as they are; other values
 * are formatted into the arena.
 */
static int
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
		case V_ARR:
		case V_OBJ:
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

static int
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

/* Liquid's to_number: ints stay ints, "1.5" becomes a float */
static void
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

static int64_t
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

/* ----------------------------------------------------------------
 * Renderer: dates
 * ----------------------------------------------------------------
 */
#define MIN_EPOCH	(-62167219200LL)	/* 0000-01-01 */
#define MAX_EPOCH	253402300799LL	/* 9999-12-31 23:59:59 */

static const char *const month_names[] = {
	"January", "February", "March", "April", "May", "June", "July",
	"August", "September", "October", "November", "December"
};
static const char *const day_names[] = {
	"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"
};

static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t		era;
	int64_t		yoe;
	int64_t		doy;
	int64_t		doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t		era;
	int64_t		doe;
	int64_t		yoe;
	int64_t		doy;
	int64_t		mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int) (doy - (153 * mp + 2) / 5 + 1);
	*m = (int) (mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int
days_in_month(int64_t y, int m)
{
	static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dm[m - 1];
}

static bool
take_digits(const char **pp, const char *end, int n, int *out)
{
	const char *p = *pp;
	int			v = 0;
	int			i;

	if (end - p < n)
		return false;
	for (i = 0; i < n; i++)
	{
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (p[i] - '0');
	}
	*pp = p + n;
	*out = v;
	return true;
}

/* ISO 8601 / PostgreSQL timestamptz text to unix seconds */
static bool
parse_iso(const char *p, const char *end, int64_t *secs)
{
	int			y,
				mo,
				d,
				h = 0,
				mi = 0,
				s = 0,
				oh = 0,
				om = 0;
	int			sign = 1;

	if (!take_digits(&p, end, 4, &y) || p >= end || *p++ != '-' ||
		!take_digits(&p, end, 2, &mo) || p >= end || *p++ != '-' ||
		!take_digits(&p, end, 2, &d))
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
		return false;
	if (p < end && (*p == 'T' || *p == 't' || *p == ' '))
	{
		p++;
		if (!take_digits(&p, end, 2, &h) || p >= end || *p++ != ':' ||
			!take_digits(&p, end, 2, &mi))
			return false;
		if (p < end && *p == ':')
		{
			p++;
			if (!take_digits(&p, end, 2, &s))
				return false;
			if (p < end && (*p == '.' || *p == ','))
			{
				p++;
				while (p < end && *p >= '0' && *p <= '9')
					p++;
			}
		}
		if (h > 23 || mi > 59 || s > 60)
			return false;
		while (p < end && *p == ' ')
			p++;
		if (p < end && (*p == 'Z' || *p == 'z'))
			p++;
		else if (end - p >= 3 && memcmp(p, "UTC", 3) == 0)
			p += 3;
		else if (p < end && (*p == '+' || *p == '-'))
		{
			sign = *p++ == '-' ? -1 : 1;
			if (!take_digits(&p, end, 2, &oh))
				return false;
			if (p < end && *p == ':')
				p++;
			if (p < end && *p >= '0' && *p <= '9' && !take_digits(&p, end, 2, &om))
				return false;
			if (oh > 23 || om > 59)
				return false;
		}
	}
	if (p != end)
		return false;
	*secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s -
		sign * (oh * 3600 + om * 60);
	return true;
}

static bool
value_to_time(TmplRenderCtx *c, const Value *v, int64_t *secs)
{
	if (v->t == V_INT)
		*secs = v->u.i;
	else if (v->t == V_DBL)
	{
		if (!(v->u.d > (double) MIN_EPOCH && v->u.d < (double) MAX_EPOCH))
			return false;
		*secs = (int64_t) floor(v->u.d);
	}
	else if (v->t == V_STR)
	{
		const char *p = v->u.s.p;
		const char *end = p + v->u.s.n;
		const char *q;

		while (p < end && is_ws(*p))
			p++;
		while (end > p && is_ws(end[-1]))
			end--;
		if (name_is(p, (size_t) (end - p), "now") || name_is(p, (size_t) (end - p), "today"))
		{
			c->clock_used = true;
			*secs = (int64_t) time(NULL);
		}
		else
		{
			q = p;
			if (q < end && *q == '-')
				q++;
			if (q < end && end - q <= 15)
			{
				const char *r = q;

				while (r < end && *r >= '0' && *r <= '9')
					r++;
				if (r == end)
				{
					char		buf[20];

					memcpy(buf, p, (size_t) (end - p));
					buf[end - p] = '\0';
					*secs = strtoll(buf, NULL, 10);
					goto range;
				}
			}
			if (!parse_iso(p, end, secs))
				return false;
		}
	}
	else
		return false;
range:
	return *secs >= MIN_EPOCH && *secs <= MAX_EPOCH;
}

/* strftime subset, locale-free, always UTC */
static size_t
format_time(char *out, size_t cap, const char *f, size_t fn, int64_t secs)
{
	int64_t		days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
	int64_t		rem = secs - days * 86400;
	int64_t		y;
	int			m,
				d;
	int			hh = (int) (rem / 3600);
	int			mi = (int) (rem / 60 % 60);
	int			ss = (int) (rem % 60);
	int			wday = (int) (((days % 7) + 11) % 7);	/* 1970-01-01 was a Thursday */
	int			yday;
	size_t		k = 0;
	size_t		i;

	civil_from_days(days, &y, &m, &d);
	yday = (int) (days - days_from_civil(y, 1, 1)) + 1;
	for (i = 0; i < fn; i++)
	{
		char		tmp[32];
		int			n;
		bool		nopad = false;
		char		cv;

		if (f[i] != '%' || i + 1 >= fn)
		{
			if (k + 1 >= cap)
				break;
			out[k++] = f[i];
			continue;
		}
		i++;
		if (f[i] == '-' && i + 1 < fn)
		{
			nopad = true;
			i++;
		}
		cv = f[i];
#define NUM(width, val) \
	snprintf(tmp, sizeof(tmp), nopad ? "%d" : (width) == 3 ? "%03d" : "%02d", (int) (val))
		switch (cv)
		{
			case 'Y':
				n = snprintf(tmp, sizeof(tmp), "%lld", (long long) y);
				break;
			case 'y':
				n = NUM(2, y % 100);
				break;
			case 'm':
				n = NUM(2, m);
				break;
			case 'd':
				n = NUM(2, d);
				break;
			case 'e':
				n = snprintf(tmp, sizeof(tmp), nopad ? "%d" : "%2d", d);
				break;
			case 'j':
				n = NUM(3, yday);
				break;
			case 'H':
				n = NUM(2, hh);
				break;
			case 'I':
				n = NUM(2, hh % 12 == 0 ? 12 : hh % 12);
				break;
			case 'l':
				n = snprintf(tmp, sizeof(tmp), nopad ? "%d" : "%2d", hh % 12 == 0 ? 12 : hh % 12);
				break;
			case 'M':
				n = NUM(2, mi);
				break;
			case 'S':
				n = NUM(2, ss);
				break;
			case 'p':
				n = snprintf(tmp, sizeof(tmp), "%s", hh < 12 ? "AM" : "PM");
				break;
			case 'P':
				n = snprintf(tmp, sizeof(tmp), "%s", hh < 12 ? "am" : "pm");
				break;
			case 'b':
			case 'h':
				n = snprintf(tmp, sizeof(tmp), "%.3s", month_names[m - 1]);
				break;
			case 'B':
				n = snprintf(tmp, sizeof(tmp), "%s", month_names[m - 1]);
				break;
			case 'a':
				n = snprintf(tmp, sizeof(tmp), "%.3s", day_names[wday]);
				break;
			case 'A':
				n = snprintf(tmp, sizeof(tmp), "%s", day_names[wday]);
				break;
			case 'u':
				n = snprintf(tmp, sizeof(tmp), "%d", wday == 0 ? 7 : wday);
				break;
			case 'w':
				n = snprintf(tmp, sizeof(tmp), "%d", wday);
				break;
			case 'Z':
				n = snprintf(tmp, sizeof(tmp), "UTC");
				break;
			case 'z':
				n = snprintf(tmp, sizeof(tmp), "+0000");
				break;
			case 's':
				n = snprintf(tmp, sizeof(tmp), "%lld", (long long) secs);
				break;
			case 'F':
				n = snprintf(tmp, sizeof(tmp), "%04lld-%02d-%02d", (long long) y, m, d);
				break;
			case 'T':
				n = snprintf(tmp, sizeof(tmp), "%02d:%02d:%02d", hh, mi, ss);
				break;
			case '%':
				n = snprintf(tmp, sizeof(tmp), "%%");
				break;
			default:
				/* unknown conversion: keep it as written */
				n = snprintf(tmp, sizeof(tmp), "%%%s%c", nopad ? "-" : "", cv);
				break;
		}
#undef NUM
		if (n < 0 || k + (size_t) n >= cap)
			break;
		memcpy(out + k, tmp, (size_t) n);
		k += (size_t) n;
	}
	out[k] = '\0';
	return k;
}

/* ----------------------------------------------------------------
 * Renderer: filters
 * ----------------------------------------------------------------
 */
static bool
values_equal(const Value *a, const Value *b);

static bool
is_empty_value(const Value *v)
{
	switch (v->t)
	{
		case V_STR:
			return v->u.s.n == 0;
		case V_ARR:
			return json_object_array_length(v->u.j) == 0;
		case V_OBJ:
			return json_object_object_length(v->u.j) == 0;
		case V_EMPTY:
		case V_BLANK:
			return true;
		default:
			return false;
	}
}

static bool
is_blank_value(const Value *v)
{
	size_t		i;

	switch (v->t)
	{
		case V_NIL:
			return true;
		case V_BOOL:
			return !v->u.b;
		case V_STR:
			for (i = 0; i < v->u.s.n; i++)
				if (!is_ws(v->u.s.p[i]))
					return false;
			return true;
		default:
			return is_empty_value(v);
	}
}

static inline bool
is_num(const Value *v)
{
	return v->t == V_INT || v->t == V_DBL;
}

static inline double
num_dbl(const Value *v)
{
	return v->t == V_INT ? (double) v->u.i : v->u.d;
}

static bool
values_equal(const Value *a, const Value *b)
{
	if (b->t == V_EMPTY)
		return is_empty_value(a);
	if (a->t == V_EMPTY)
		return is_empty_value(b);
	if (b->t == V_BLANK)
		return is_blank_value(a);
	if (a->t == V_BLANK)
		return is_blank_value(b);
	if (is_num(a) && is_num(b))
	{
		if (a->t == V_INT && b->t == V_INT)
			return a->u.i == b->u.i;
		return num_dbl(a) == num_dbl(b);
	}
	if (a->t != b->t)
		return false;
	switch (a->t)
	{
		case V_NIL:
			return true;
		case V_BOOL:
			return a->u.b == b->u.b;
		case V_STR:
			return a->u.s.n == b->u.s.n && memcmp(a->u.s.p, b->u.s.p, a->u.s.n) == 0;
		case V_ARR:
		case V_OBJ:
			return json_object_equal(a->u.j, b->u.j) != 0;
		default:
			return false;
	}
}

/* memmem without relying on _GNU_SOURCE */
static const char *
find_sub(const char *h, size_t hn, const char *nd, size_t nn)
{
	const char *end;

	if (nn == 0)
		return h;
	if (nn > hn)
		return NULL;
	end = h + hn - nn;
	while (h <= end)
	{
		const char *q = memchr(h, nd[0], (size_t) (end - h) + 1);

		if (q == NULL)
			return NULL;
		if (memcmp(q, nd, nn) == 0)
			return q;
		h = q + 1;
	}
	return NULL;
}

static int
concat(TmplRenderCtx *c, const char *a, size_t an, const char *b, size_t bn, Value *out)
{
	char	   *d;

	if (an + bn > c->lim.max_output)
		return err_output_limit(c);
	if ((d = ralloc(c, an + bn + 1)) == NULL)
		return RC_ERR;
	if (an)
		memcpy(d, a, an);
	if (bn)
		memcpy(d + an, b, bn);
	d[an + bn] = '\0';
	set_str(out, d, an + bn);
	return RC_OK;
}

static int
replace_str(TmplRenderCtx *c, const char *s, size_t n, const char *pat, size_t pn,
			const char *rep, size_t rn, bool first_only, Value *out)
{
	size_t		count = 0;
	size_t		total;
	const char *q;
	const char *p;
	char	   *d;
	size_t		k = 0;

	if (pn == 0)
	{
		set_str(out, s, n);
		return RC_OK;
	}
	for (p = s; (q = find_sub(p, n - (size_t) (p - s), pat, pn)) != NULL; p = q + pn)
	{
		count++;
		if (first_only)
			break;
	}
	if (count == 0)
	{
		set_str(out, s, n);
		return RC_OK;
	}
	/* n - count*pn + count*rn, guarding against overflow */
	if (rn > pn && count > (c->lim.max_output + n) / (rn - pn + 1) + 1)
		return err_output_limit(c);
	total = n - count * pn + count * rn;
	if (total > c->lim.max_output)
		return err_output_limit(c);
	if ((d = ralloc(c, total + 1)) == NULL)
		return RC_ERR;
	p = s;
	while (count-- > 0)
	{
		q = find_sub(p, n - (size_t) (p - s), pat, pn);
		memcpy(d + k, p, (size_t) (q - p));
		k += (size_t) (q - p);
		memcpy(d + k, rep, rn);
		k += rn;
		p = q + pn;
	}
	memcpy(d + k, p, n - (size_t) (p - s));
	k += n - (size_t) (p - s);
	d[k] = '\0';
	set_str(out, d, k);
	return RC_OK;
}

static bool
entity_at(const char *p, const char *end)
{
	const char *q = p + 1;

	if (q < end && *q == '#')
	{
		q++;
		if (q < end && (*q == 'x' || *q == 'X'))
		{
			q++;
			if (q >= end || !isxdigit((unsigned char) *q))
				return false;
			while (q < end && isxdigit((unsigned char) *q))
				q++;
		}
		else
		{
			if (q >= end || !isdigit((unsigned char) *q))
				return false;
			while (q < end && isdigit((unsigned char) *q))
				q++;
		}
	}
	else
	{
		if (q >= end || !isalpha((unsigned char) *q))
			return false;
		while (q < end && isalnum((unsigned char) *q))
			q++;
	}
	return q < end && *q == ';';
}

/* Bytes that need escaping: & < > " ' */
static const unsigned char html_special[256] = {
	['&'] = 1,['<'] = 1,['>'] = 1,['"'] = 1,['\''] = 1
};

#ifndef __SSE2__
static inline uint64_t
swar_eq(uint64_t x, unsigned char ch)
{
	uint64_t	y = x ^ (0x0101010101010101ULL * ch);

	return (y - 0x0101010101010101ULL) & ~y & 0x8080808080808080ULL;
}
#endif

/* Offset of the first byte needing HTML escaping, or n. */
static size_t
find_html_special(const char *s, size_t n)
{
	size_t		i = 0;

#ifdef __SSE2__
	/* 16 bytes per step; this scan runs over most of every email */
	const __m128i amp = _mm_set1_epi8('&');
	const __m128i lt = _mm_set1_epi8('<');
	const __m128i gt = _mm_set1_epi8('>');
	const __m128i dq = _mm_set1_epi8('"');
	const __m128i sq = _mm_set1_epi8('\'');

	for (; i + 16 <= n; i += 16)
	{
		__m128i		x = _mm_loadu_si128((const __m128i *) (s + i));
		__m128i		m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, amp), _mm_cmpeq_epi8(x, lt)),
									 _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, gt),
															   _mm_cmpeq_epi8(x, dq)),
												  _mm_cmpeq_epi8(x, sq)));
		int			bits = _mm_movemask_epi8(m);

		if (bits)
			return i + (size_t) __builtin_ctz((unsigned) bits);
	}
#else
	for (; i + 8 <= n; i += 8)
	{
		uint64_t	x;

		memcpy(&x, s + i, 8);
		if (swar_eq(x, '&') | swar_eq(x, '<') | swar_eq(x, '>') |
			swar_eq(x, '"') | swar_eq(x, '\''))
			break;
	}
#endif
	for (; i < n; i++)
		if (html_special[(unsigned char) s[i]])
			return i;
	return n;
}

static const char *
html_entity(char ch)
{
	switch (ch)
	{
		case '&':
			return "&amp;";
		case '<':
			return "&lt;";
		case '>':
			return "&gt;";
		case '"':
			return "&quot;";
		default:
			return "&#39;";
	}
}

/* The escape filter as the last filter of an output: write straight out. */
static int
emit_escaped(TmplRenderCtx *c, const char *s, size_t n)
{
	while (n > 0)
	{
		size_t		k = find_html_special(s, n);
		const char *e;

		if (k > 0 && emit(c, s, k) != RC_OK)
			return RC_ERR;
		if (k == n)
			break;
		e = html_entity(s[k]);
		if (emit(c, e, strlen(e)) != RC_OK)
			return RC_ERR;
		s += k + 1;
		n -= k + 1;
	}
	return RC_OK;
}

static int
html_escape(TmplRenderCtx *c, const char *s, size_t n, bool once, Value *out)
{
	size_t		extra = 0;
	size_t		i;
	char	   *d;
	size_t		k = 0;
	size_t		first = find_html_special(s, n);

	if (first == n)
	{
		set_str(out, s, n);
		return RC_OK;
	}
	for (i = first; i < n; i++)
	{
		switch (s[i])
		{
			case '&':
				if (!(once && entity_at(s + i, s + n)))
					extra += 4;
				break;
			case '<':
			case '>':
				extra += 3;
				break;
			case '"':
			case '\'':
				extra += 4;
				break;
		}
	}
	if (extra == 0)
	{
		set_str(out, s, n);
		return RC_OK;
	}
	if ((d = ralloc(c, n + extra + 1)) == NULL)
		return RC_ERR;
	for (i = 0; i < n; i++)
	{
		const char *r = NULL;

		switch (s[i])
		{
			case '&':
				if (!(once && entity_at(s + i, s + n)))
					r = "&amp;";
				break;
			case '<':
				r = "&lt;";
				break;
			case '>':
				r = "&gt;";
				break;
			case '"':
				r = "&quot;";
				break;
			case '\'':
				r = "&#39;";
				break;
		}
		if (r)
		{
			size_t		rl = strlen(r);

			memcpy(d + k, r, rl);
			k += rl;
		}
		else
			d[k++] = s[i];
	}
	d[k] = '\0';
	set_str(out, d, k);
	return RC_OK;
}

static int
url_encode(TmplRenderCtx *c, const char *s, size_t n, Value *out)
{
	static const char hex[] = "0123456789ABCDEF";
	char	   *d;
	size_t		i;
	size_t		k = 0;

	if ((d = ralloc(c, n * 3 + 1)) == NULL)
		return RC_ERR;
	for (i = 0; i < n; i++)
	{
		unsigned char ch = (unsigned char) s[i];

		if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~')
			d[k++] = (char) ch;
		else if (ch == ' ')
			d[k++] = '+';
		else
		{
			d[k++] = '%';
			d[k++] = hex[ch >> 4];
			d[k++] = hex[ch & 15];
		}
	}
	d[k] = '\0';
	set_str(out, d, k);
	return RC_OK;
}

static int
arith(TmplRenderCtx *c, FilterId id, const Value *in, const Value *arg, Value *out)
{
	Value		a;
	Value		b;

	to_number(in, &a);
	to_number(arg, &b);
	if ((id == F_DIVIDED_BY || id == F_MODULO) &&
		((b.t == V_INT && b.u.i == 0) || (b.t == V_DBL && b.u.d == 0)))
		return rerr(c, TMPL_ERR_RUNTIME, "divided by 0");
	if (a.t == V_INT && b.t == V_INT)
	{
		int64_t		x = a.u.i;
		int64_t		y = b.u.i;
		int64_t		r = 0;
		bool		ovf = false;

		switch (id)
		{
			case F_PLUS:
				ovf = __builtin_add_overflow(x, y, &r);
				break;
			case F_MINUS:
				ovf = __builtin_sub_overflow(x, y, &r);
				break;
			case F_TIMES:
				ovf = __builtin_mul_overflow(x, y, &r);
				break;
			case F_DIVIDED_BY:
				if (x == INT64_MIN && y == -1)
					ovf = true;
				else
				{
					/* Ruby integer division floors */
					r = x / y;
					if (x % y != 0 && ((x < 0) != (y < 0)))
						r--;
				}
				break;
			default:			/* F_MODULO */
				if (y == -1)
					r = 0;
				else
				{
					r = x % y;
					if (r != 0 && ((r < 0) != (y < 0)))
						r += y;
				}
				break;
		}
		if (!ovf)
		{
			out->t = V_INT;
			out->u.i = r;
			return RC_OK;
		}
	}
	{
		double		x = num_dbl(&a);
		double		y = num_dbl(&b);
		double		r;

		switch (id)
		{
			case F_PLUS:
				r = x + y;
				break;
			case F_MINUS:
				r = x - y;
				break;
			case F_TIMES:
				r = x * y;
				break;
			case F_DIVIDED_BY:
				r = x / y;
				break;
			default:
				r = fmod(x, y);
				if (r != 0 && ((r < 0) != (y < 0)))
					r += y;
				break;
		}
		out->t = V_DBL;
		out->u.d = r;
	}
	return RC_OK;
}

static int
apply_filter(TmplRenderCtx *c, const FilterCall *fc, const Value *in,
			 const Value *args, Value *out)
{
	const char *s;
	size_t		n;
	char	   *d;
	size_t		i;

	switch (fc->id)
	{
		case F_DEFAULT:
			{
				bool		use;

				if (in->t == V_BOOL && !in->u.b)
				{
					/* args[MAX_FILTER_ARGS] holds allow_false when given */
					use = !(fc->allow_false && truthy(&args[MAX_FILTER_ARGS]));
				}
				else
					use = in->t == V_NIL || (is_empty_value(in) && in->t != V_BLANK && in->t != V_EMPTY);
				*out = use ? args[0] : *in;
				return RC_OK;
			}
		case F_SIZE:
			out->t = V_INT;
			if (in->t == V_STR)
				out->u.i = (int64_t) utf8_len(in->u.s.p, in->u.s.n);
			else if (in->t == V_ARR)
				out->u.i = (int64_t) json_object_array_length(in->u.j);
			else if (in->t == V_OBJ)
				out->u.i = json_object_object_length(in->u.j);
			else
				out->u.i = 0;
			return RC_OK;
		case F_FIRST:
		case F_LAST:
			out->t = V_NIL;
			if (in->t == V_ARR)
			{
				size_t		len = json_object_array_length(in->u.j);

				if (len)
					json_to_value(json_object_array_get_idx(in->u.j,
															fc->id == F_FIRST ? 0 : len - 1), out);
			}
			return RC_OK;
		case F_PLUS:
		case F_MINUS:
		case F_TIMES:
		case F_DIVIDED_BY:
		case F_MODULO:
			return arith(c, fc->id, in, &args[0], out);
		case F_JOIN:
			if (in->t == V_ARR)
			{
				BeBuf		tmp;
				const char *sep = " ";
				size_t		sn = 1;
				size_t		len = json_object_array_length(in->u.j);
				bool		ok = true;

				if (fc->nargs > 0 && str_of(c, &args[0], &sep, &sn) != RC_OK)
					return RC_ERR;
				be_buf_init(&tmp);
				for (i = 0; i < len && ok; i++)
				{
					Value		e;

					json_to_value(json_object_array_get_idx(in->u.j, i), &e);
					if (i > 0)
						ok = be_buf_append(&tmp, sep, sn);
					ok = ok && append_value(&tmp, &e, 1, c->lim.max_output) &&
						tmp.len <= c->lim.max_output;
				}
				if (!ok)
				{
					bool		oom = tmp.oom;

					be_buf_free(&tmp);
					return oom ? rerr(c, TMPL_ERR_NOMEM, "out of memory") : err_output_limit(c);
				}
				if ((d = ralloc(c, tmp.len + 1)) != NULL)
				{
					if (tmp.len)
						memcpy(d, tmp.data, tmp.len);
					d[tmp.len] = '\0';
					set_str(out, d, tmp.len);
				}
				be_buf_free(&tmp);
				return d ? RC_OK : RC_ERR;
			}
			*out = *in;
			return RC_OK;
		case F_DATE:
			{
				int64_t		secs;
				const char *f;
				size_t		fn;

				if (in->t == V_NIL || (in->t == V_STR && in->u.s.n == 0) ||
					!value_to_time(c, in, &secs))
				{
					*out = *in;
					return RC_OK;
				}
				if (str_of(c, &args[0], &f, &fn) != RC_OK)
					return RC_ERR;
				if (fn == 0)
				{
					*out = *in;
					return RC_OK;
				}
				if ((d = ralloc(c, fn * 12 + 32)) == NULL)
					return RC_ERR;
				n = format_time(d, fn * 12 + 32, f, fn, secs);
				set_str(out, d, n);
				return RC_OK;
			}
		default:
			break;
	}

	/* the remaining filters work on the text form of the input */
	if (str_of(c, in, &s, &n) != RC_OK)
		return RC_ERR;
	switch (fc->id)
	{
		case F_UPCASE:
		case F_DOWNCASE:
		case F_CAPITALIZE:
			if ((d = ralloc(c, n + 1)) == NULL)
				return RC_ERR;
			for (i = 0; i < n; i++)
			{
				char		ch = s[i];
				bool		up = fc->id == F_UPCASE || (fc->id == F_CAPITALIZE && i == 0);

				if (up && ch >= 'a' && ch <= 'z')
					ch -= 32;
				else if (!up && ch >= 'A' && ch <= 'Z')
					ch += 32;
				d[i] = ch;
			}
			d[n] = '\0';
			set_str(out, d, n);
			return RC_OK;
		case F_ESCAPE:
		case F_ESCAPE_ONCE:
			return html_escape(c, s, n, fc->id == F_ESCAPE_ONCE, out);
		case F_URL_ENCODE:
			return url_encode(c, s, n, out);
		case F_STRIP:
		case F_LSTRIP:
		case F_RSTRIP:
			if (fc->id != F_RSTRIP)
				while (n > 0 && is_ws(*s))
					s++, n--;
			if (fc->id != F_LSTRIP)
				while (n > 0 && is_ws(s[n - 1]))
					n--;
			set_str(out, s, n);
			return RC_OK;
		case F_STRIP_NEWLINES:
			return replace_str(c, s, n, "\n", 1, "", 0, false, out) != RC_OK ? RC_ERR :
				replace_str(c, out->u.s.p, out->u.s.n, "\r", 1, "", 0, false, out);
		case F_NEWLINE_TO_BR:
			if (replace_str(c, s, n, "\r\n", 2, "\n", 1, false, out) != RC_OK)
				return RC_ERR;
			return replace_str(c, out->u.s.p, out->u.s.n, "\n", 1, "<br />\n", 7, false, out);
		case F_TRUNCATE:
			{
				int64_t		len = fc->nargs > 0 ? to_int(&args[0]) : 50;
				const char *ell = "...";
				size_t		elln = 3;
				size_t		ellc;
				int64_t		keep;

				if (fc->nargs > 1 && str_of(c, &args[1], &ell, &elln) != RC_OK)
					return RC_ERR;
				if (len < 0)
					len = 0;
				/* at most "len" characters: unchanged */
				if ((uint64_t) len >= n || utf8_prefix(s, n, (size_t) len) == n)
				{
					set_str(out, s, n);
					return RC_OK;
				}
				ellc = utf8_len(ell, elln);
				keep = len - (int64_t) ellc;
				if (keep < 0)
					keep = 0;
				return concat(c, s, utf8_prefix(s, n, (size_t) keep), ell, elln, out);
			}
		case F_TRUNCATEWORDS:
			{
				int64_t		words = fc->nargs > 0 ? to_int(&args[0]) : 15;
				const char *ell = "...";
				size_t		elln = 3;
				int64_t		count = 0;
				size_t		k = 0;

				if (fc->nargs > 1 && str_of(c, &args[1], &ell, &elln) != RC_OK)
					return RC_ERR;
				if (words <= 0)
					words = 1;
				/* count words; stop once we know there are more than "words" */
				for (i = 0; i < n && count <= words;)
				{
					while (i < n && is_ws(s[i]))
						i++;
					if (i < n)
						count++;
					while (i < n && !is_ws(s[i]))
						i++;
				}
				if (count <= words)
				{
					set_str(out, s, n);
					return RC_OK;
				}
				if ((d = ralloc(c, n + elln + 1)) == NULL)
					return RC_ERR;
				count = 0;
				for (i = 0; i < n && count < words;)
				{
					while (i < n && is_ws(s[i]))
						i++;
					if (count > 0)
						d[k++] = ' ';
					while (i < n && !is_ws(s[i]))
						d[k++] = s[i++];
					count++;
				}
				memcpy(d + k, ell, elln);
				k += elln;
				d[k] = '\0';
				set_str(out, d, k);
				return RC_OK;
			}
		case F_APPEND:
		case F_PREPEND:
			{
				const char *a;
				size_t		an;

				if (str_of(c, &args[0], &a, &an) != RC_OK)
					return RC_ERR;
				if (fc->id == F_APPEND)
					return concat(c, s, n, a, an, out);
				return concat(c, a, an, s, n, out);
			}
		case F_REPLACE:
		case F_REPLACE_FIRST:
		case F_REMOVE:
		case F_REMOVE_FIRST:
			{
				const char *pat;
				size_t		pn;
				const char *rep = "";
				size_t		rn = 0;

				if (str_of(c, &args[0], &pat, &pn) != RC_OK)
					return RC_ERR;
				if ((fc->id == F_REPLACE || fc->id == F_REPLACE_FIRST) && fc->nargs > 1 &&
					str_of(c, &args[1], &rep, &rn) != RC_OK)
					return RC_ERR;
				return replace_str(c, s, n, pat, pn, rep, rn,
								   fc->id == F_REPLACE_FIRST || fc->id == F_REMOVE_FIRST, out);
			}
		default:
			set_str(out, s, n);
			return RC_OK;
	}
}

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
	}
	else if (cur->t == V_ARR)
	{
		size_t		len = json_object_array_length(cur->u.j);

		if (name_is(key, keylen, "size"))
		{
			out->t = V_INT;
			out->u.i = (int64_t) len;
			return RC_OK;
		}
		if (len && (name_is(key, keylen, "first") || name_is(key, keylen, "last")))
		{
			json_to_value(json_object_array_get_idx(cur->u.j, key[0] == 'f' ? 0 : len - 1), out);
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
	if (cur->t == V_ARR)
	{
		int64_t		len = (int64_t) json_object_array_length(cur->u.j);

		if (idx < 0)
			idx += len;
		if (idx >= 0 && idx < len)
			json_to_value(json_object_array_get_idx(cur->u.j, (size_t) idx), out);
	}
}

static int
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

				if (c->nloops == 0)
				{
					out->t = V_NIL;
					return RC_OK;
				}
				ls = &c->loops[c->nloops - 1];
				out->t = V_INT;
				switch (e->prop)
				{
					case LP_INDEX:
						out->u.i = ls->index0 + 1;
						break;
					case LP_INDEX0:
						out->u.i = ls->index0;
						break;
					case LP_RINDEX:
						out->u.i = ls->length - ls->index0;
						break;
					case LP_RINDEX0:
						out->u.i = ls->length - ls->index0 - 1;
						break;
					case LP_LENGTH:
						out->u.i = ls->length;
						break;
					case LP_FIRST:
						out->t = V_BOOL;
						out->u.b = ls->index0 == 0;
						break;
					case LP_LAST:
						out->t = V_BOOL;
						out->u.b = ls->index0 == ls->length - 1;
						break;
				}
				return RC_OK;
			}
		case E_RANGE:
			out->t = V_NIL;
			return RC_OK;
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
			if (eval_expr(c, fc->args[a], &args[a]) != RC_OK)
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
			else if (a->t == V_ARR)
			{
				size_t		i;
				size_t		len = json_object_array_length(a->u.j);

				for (i = 0; i < len && !*res; i++)
				{
					Value		e;

					json_to_value(json_object_array_get_idx(a->u.j, i), &e);
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
static int
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
			if (eval_expr(c, t->r, &r) != RC_OK || compare(c, t->op, &l, &r, &v) != RC_OK)
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

/* Collection and bounds of a "for" loop, shared with tmpl_specialize. */
typedef struct ForBounds
{
	Value		coll;			/* V_INT for a range */
	int64_t		lo;				/* first value of a range */
	int64_t		from;
	int64_t		cnt;			/* iterations, <= 0 for none */
} ForBounds;

static int __attribute__((noinline))
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
		/* lengths beyond the iteration limit are cut below anyway */
		if (hi >= fb->lo)
		{
			uint64_t	span = (uint64_t) hi - (uint64_t) fb->lo;

			len = span >= INT64_MAX / 2 ? INT64_MAX / 2 : (int64_t) span + 1;
		}
		fb->coll.t = V_INT;
	}
	else
	{
		if (eval_expr(c, n->u.loop.coll, &fb->coll) != RC_OK)
			return RC_ERR;
		if (fb->coll.t == V_ARR)
			len = (int64_t) json_object_array_length(fb->coll.u.j);
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
	if (n->u.loop.offset)
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
	return RC_OK;
}

/*
 * Save the loop variable.  A string held in the slot's own buffer must
 * survive reassignment in the body; it is copied aside and put back into
 * the buffer by for_restore_var (the copy dies with the statement).
 */
static int
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

static void
for_restore_var(Slot *s, const Slot *saved, bool copied)
{
	s->v = saved->v;
	s->set = saved->set;
	if (copied)
	{
		/* the buffer only grows, so the saved string still fits */
		memcpy(s->buf, saved->v.u.s.p, saved->v.u.s.n + 1);
		s->v.u.s.p = s->buf;
	}
}

/* Value of the loop variable in iteration k. */
static inline void
for_item(const Node *n, const ForBounds *fb, int64_t k, Value *v)
{
	int64_t		idx = n->u.loop.reversed ? fb->from + fb->cnt - 1 - k : fb->from + k;

	if (fb->coll.t == V_INT)
	{
		v->t = V_INT;
		v->u.i = fb->lo + idx;
	}
	else if (fb->coll.t == V_ARR)
		json_to_value(json_object_array_get_idx(fb->coll.u.j, (size_t) idx), v);
	else
		*v = fb->coll;
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
	for (k = 0; k < fb.cnt; k++)
	{
		if (++c->iterations > c->lim.max_iterations)
		{
			c->line = n->line;
			c->col = n->col;
			rc = rerr(c, TMPL_ERR_LIMIT, "template loops exceed the limit of %ld iterations",
					  c->lim.max_iterations);
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
		return rerr(c, TMPL_ERR_LIMIT, "template loops exceed the limit of %ld iterations",
					c->lim.max_iterations);
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
	for (i = 0; i < c->nslots; i++)
		free(c->slots[i].buf);
	free(c->slots);
	free(c->cache);
	free(c->khash);
	for (i = 0; i <= TMPL_MAX_COMPILE_DEPTH; i++)
		be_buf_free(&c->capbufs[i]);
	free(c);
}

/* Prepare a context for one render of t; fills err on failure. */
static int
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
		}
	}
	else
	{
		for (i = 0; i < t->nslots; i++)
			c->slots[i].set = false;
	}
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
	c->ncap = 0;
	c->line = 0;
	c->col = 0;
	c->err = err;
	/* intermediate strings are bounded by the output limit */
	c->arena.limit = (c->lim.max_output > SIZE_MAX / 8 ? SIZE_MAX / 2 :
					  c->lim.max_output * 4) + 65536;
	arena_release(&c->arena, (ArenaMark) {NULL, 0, 0});
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
		return -1;
	if (out->oom)
	{
		set_error(err, TMPL_ERR_NOMEM, 0, 0, "out of memory");
		return -1;
	}
	return 0;
}

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
	bool		jump_dyn;		/* break/continue must happen at render time */
	/* work left for pre-rendering; failures spend it too */
	long		iter_budget;
	size_t		out_budget;
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

/* Copy a value into the new template (strings are copied). */
static void
pe_copy_value(Pe *pe, const Value *v, Value *out)
{
	*out = *v;
	if (v->t == V_STR)
	{
		char	   *d = pe_strdup(pe, v->u.s.p, v->u.s.n);

		out->u.s.p = d ? d : "";
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

static bool
pe_loop_known(Pe *pe)
{
	return pe->c->nloops == 0 || pe->loop_known[pe->c->nloops - 1];
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
			return inloop > 0 || pe_loop_known(pe);
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
			ok = pe_expr_known(pe, n->u.loop.coll, inloop) &&
				pe_expr_known(pe, n->u.loop.limit, inloop) &&
				pe_expr_known(pe, n->u.loop.offset, inloop) &&
				pe_bind(pe, n->u.loop.slot) &&
				pe_static_block(pe, n->u.loop.body, inloop + 1);
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
			case N_CAPTURE:
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
	if ((e->kind == E_FORLOOP && pe_loop_known(pe)) ||
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
			break;
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
			case N_CAPTURE:
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
	memset(c->pe_wr, 0, (size_t) pe->t->nslots);
	pe->nsnap = 0;
	pe_snap(pe, n);
	for (i = 0; i < pe->nsnap; i++)
		pe->bound[pe->snap[i]] = 0;
	if (pe->nomem)
		return RC_ERR;
	c->lim.max_iterations = it0 + pe->iter_budget;
	c->lim.max_output = prod0 + pe->out_budget;
	rc = render_node(c, n);
	arena_release(&c->arena, m);
	c->out = &l->text;
	pe->iter_budget -= c->iterations - it0;
	pe->out_budget -= c->produced - prod0;
	if (l->text.oom)
	{
		pe->nomem = true;
		return RC_ERR;
	}
	if (rc == RC_ERR || c->clock_used)
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
	pe->loop_known[pe->c->nloops++] = false;
	nd->u.loop.body = pe_sub(pe, n->u.loop.body, true, NULL);
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

	if (force || !pe_expr_known(pe, n->u.loop.coll, 0) ||
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
