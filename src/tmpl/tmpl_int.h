/*-------------------------------------------------------------------------
 *
 * tmpl_int.h
 *	  Private declarations shared by the files of the template engine
 *	  (src/tmpl/): values, the compiled tree, the compiler's and the
 *	  renderer's state.  Nothing here is part of the API (include/tmpl.h).
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
#ifndef TMPL_INT_H
#define TMPL_INT_H

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

#include <json.h>

#ifndef Assert
#include <assert.h>
#define Assert(x) assert(x)
#endif

#include "tmpl.h"

/* internal functions stay inside the shared library */
#pragma GCC visibility push(hidden)

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
	V_BLANK,					/* the "blank" literal */
	V_RANGE,					/* (lo..hi), integers; empty when hi < lo */
	V_PAIR,						/* [key, value] of "for" over an object */
	V_LIST						/* array built during the render (list arena) */
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
		struct
		{
			int64_t		lo;
			int64_t		hi;
		}			r;
		struct
		{
			const char *k;		/* NUL-terminated, owned by the data */
			struct json_object *v;
		}			pr;
		struct
		{
			const struct Value *v;	/* items, in TmplRenderCtx.lists */
			size_t		n;
		}			l;
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
	LP_LENGTH,
	LP_NAME,					/* forloop.name: "variable-collection" */
	/* tablerowloop only */
	LP_COL,
	LP_COL0,
	LP_COL_FIRST,
	LP_COL_LAST,
	LP_ROW
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
	int			up;				/* E_FORLOOP: parentloop steps */
	bool		tablerow;		/* E_FORLOOP: tablerowloop, not forloop */
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
	F_MODULO,
	F_ABS,
	F_AT_LEAST,
	F_AT_MOST,
	F_CEIL,
	F_FLOOR,
	F_ROUND,
	F_REPLACE_LAST,
	F_REMOVE_LAST,
	F_URL_DECODE,
	F_BASE64_ENCODE,
	F_BASE64_DECODE,
	F_BASE64_URL_SAFE_ENCODE,
	F_BASE64_URL_SAFE_DECODE,
	F_STRIP_HTML,
	F_SLICE,
	/* array filters (tmpl_filter_arr.c) */
	F_SPLIT,
	F_MAP,
	F_WHERE,
	F_REJECT,
	F_FIND,
	F_FIND_INDEX,
	F_HAS,
	F_SORT,
	F_SORT_NATURAL,
	F_REVERSE,
	F_UNIQ,
	F_COMPACT,
	F_CONCAT,
	F_SUM
} FilterId;

#define MAX_FILTER_ARGS 2

typedef struct FilterCall
{
	FilterId	id;
	const struct FilterDef *def;
	int			nargs;
	Expr	   *args[MAX_FILTER_ARGS];
	Expr	   *allow_false;	/* default: allow_false: ... */
	int			line;
	int			col;
} FilterCall;

struct TmplRenderCtx;

/*
 * A filter's function: "in" is the input (already its text form for a
 * filter marked "text"), "args" the evaluated arguments.  Returns RC_OK with
 * *out set, or RC_ERR with the error reported through rerr().
 */
typedef int (*FilterFn) (struct TmplRenderCtx *c, const FilterCall *fc,
						 const Value *in, const Value *args, Value *out);

/* One row per filter name: the compiler and the hints read this table. */
typedef struct FilterDef
{
	const char *name;
	FilterId	id;
	int			min_args;
	int			max_args;
	FilterFn	fn;				/* NULL: handled in apply_filter itself */
	bool		text;			/* fn takes the text form of the input */
} FilterDef;

extern const FilterDef filter_defs[];

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
	N_CYCLE,					/* stateful: never pre-rendered */
	N_IFCHANGED,				/* stateful; u.capture with slot -1 */
	N_COUNTER,					/* increment/decrement: stateful */
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
			bool		offset_continue;	/* offset: continue */
			bool		tablerow;	/* tablerow: cells, tablerowloop */
			int			name_idx;	/* "var-collection": continue state */
			Node	   *body;
			Node	   *else_body;
			Expr	   *cols;		/* tablerow cols:, NULL: one row */
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
			Expr	   *group;	/* evaluated group name, NULL: unnamed */
			const char *markup;	/* unnamed: the values' markup is the key */
			size_t		markuplen;
			int			nvals;
			Expr	  **vals;
		}			cycle;
		struct
		{
			const char *p;
			size_t		n;
			const TmplCost *cost;	/* NULL: nothing to charge */
		}			chunk;
		struct
		{
			int			slot;	/* the variable the counter shows in */
			int			step;	/* +1, -1, or 0: reset (new render scope) */
		}			counter;
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
	int			nfornames;		/* distinct "var-collection" loop names */
	const char **fornames;		/* by name_idx, NUL-terminated (forloop.name) */
	/* positions inside snippets (tmpl_snippet.c): see tmpl_error_locate */
	int			nsnippos;
	const struct SnipPos *snippos;
	bool		uses_continue;	/* some loop has offset: continue */
	const char **slot_names;	/* NUL-terminated, for data lookups */
	/* specialised templates only */
	struct json_object *const_data; /* referenced; values point into it */
	const Value *slot_init;		/* per slot: value of a constant root */
	const bool *slot_init_set;
};

/*
 * Position of a node or filter inside a snippet: its line and column there,
 * and where the outermost render/include tag stands in the template.  Such
 * nodes carry line -(index + 1) into Template.snippos.
 */
/* include arguments (and with/for variables) of all nested includes */
#define TMPL_MAX_INCLUDE_NAMES (33 * TMPL_MAX_SNIPPET_DEPTH)

typedef struct SnipPos
{
	const char *name;			/* innermost snippet, NUL-terminated */
	int			line;
	int			col;
	int			top_line;
	int			top_col;
} SnipPos;

typedef struct ForName
{
	const char *p;
	size_t		n;
	struct ForName *next;
} ForName;

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
	/* loop names for offset: continue, in the template's arena */
	struct ForName *fornames;
	int			nfornames;
	/* inside {% liquid %}: the lines not yet read, else NULL */
	const char *lq_p;
	const char *lq_end;
	int			lq_count;		/* liquid tags read so far */
	int			lq_group;		/* the current one's number, 0 outside */
	int			last_group;		/* lq_group of the last token read */
	/* snippets (tmpl_snippet.c): slots are per scope, render opens one */
	int			scope;
	int			nscopes;
	int		   *scopes;			/* per slot */
	uint8_t    *assigned;		/* per slot: written by assign/capture/for */
	TmplSnippetResolver snip_fn;
	void	   *snip_arg;
	const char *snip_stack[TMPL_MAX_SNIPPET_DEPTH];
	size_t		snip_stack_len[TMPL_MAX_SNIPPET_DEPTH];
	int			snip_depth;
	size_t		snip_bytes;
	const char *snip_name;		/* innermost snippet, NUL-terminated copy */
	int			snip_top_line;	/* the outermost render/include tag */
	int			snip_top_col;
	SnipPos    *snippos;		/* malloc'd; copied into the template */
	int			nsnippos;
	int			capsnippos;
	/* forloop/tablerowloop inside "render" see only the snippet's loops */
	bool		isolated;
	bool		region_for;		/* the render tag loops ("for") */
	int			loops_open;		/* for loops open since the region began */
	int			trs_open;		/* tablerows open since then */
	/* names an include shadows (read_slot), innermost last */
	struct
	{
		const char *p;
		size_t		n;
		int			slot;
	}			ovl[TMPL_MAX_INCLUDE_NAMES];
	int			novl;
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


/* ----------------------------------------------------------------
 * Renderer: context and helpers
 * ----------------------------------------------------------------
 */
typedef struct Slot
{
	Value		v;
	bool		set;			/* false: not yet looked up in the data */
	/*
	 * Liquid's increment/decrement counters are variables of their own,
	 * shown when the name is not assigned (assign, capture, for).
	 */
	bool		assigned;
	bool		has_counter;
	int64_t		counter;
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
	int64_t		cols;			/* tablerow; <= 0: never wraps */
	int			name_idx;		/* for: Template.fornames */
} LoopState;

/*
 * The properties forloop and tablerowloop share (index, rindex, length,
 * first, last); false for any other.
 */
static inline bool
loop_common_prop(const LoopState *ls, LoopProp prop, Value *out)
{
	out->t = V_INT;
	switch (prop)
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
		default:
			return false;
	}
	return true;
}

struct TmplRenderCtx
{
	Arena		arena;
	/*
	 * Arrays built by filters live until the end of the render.  Each item
	 * counts as one iteration and the bytes of its strings as output, so
	 * the iteration and output limits bound this arena too.
	 */
	Arena		lists;
	Slot	   *slots;
	int			nslots;
	LoopState	loops[TMPL_MAX_COMPILE_DEPTH + 1];
	LoopState	trloops[TMPL_MAX_COMPILE_DEPTH + 1];	/* tablerow */
	int			ntrloops;
	int64_t    *for_next;		/* per loop name: where offset: continue starts */
	int			nfor_next;
	struct CycleState *cycles;	/* cycle groups met in this render (lists arena) */
	const char *ifchanged_last;	/* last ifchanged output (lists arena), or NULL */
	size_t		ifchanged_len;
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
	bool		zone_used;		/* a date took its zone from data or resolver */
	TmplTzResolver tz_fn;
	void	   *tz_arg;
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


/* Collection and bounds of a "for" loop, shared with tmpl_specialize. */
typedef struct ForBounds
{
	Value		coll;			/* V_INT for a range */
	int64_t		lo;				/* first value of a range */
	int64_t		from;
	int64_t		cnt;			/* iterations, <= 0 for none */
	struct lh_entry *ent;		/* object: cursor, the entry at ent_idx */
	int64_t		ent_idx;
} ForBounds;

/* ----------------------------------------------------------------
 * Functions shared between the files
 * ----------------------------------------------------------------
 */
extern void arena_init(Arena *a);
extern void arena_free(Arena *a);
extern void *arena_alloc(Arena *a, size_t n);
extern void set_error(TmplError *err, TmplErrorKind kind, int line, int col,
		  const char *fmt,...)
__attribute__((format(printf, 5, 6)));
extern void pos_of(Parser *ps, const char *at, int *line, int *col);
extern void perr(Parser *ps, const char *at, const char *fmt,...)
__attribute__((format(printf, 3, 4)));
extern void *ps_alloc(Parser *ps, size_t n);
extern char *ps_strdup(Parser *ps, const char *s, size_t n);
extern bool next_ttok(Parser *ps, TTok *tk);
extern int intern_slot(Parser *ps, const char *name, size_t n);
extern void mark_assigned(Parser *ps, int slot);
extern void mark_counter(Parser *ps, int slot);
extern int	read_slot(Parser *ps, const char *name, size_t n);
extern Node *parse_cycle(Parser *ps, const TTok *open);
extern Node *parse_counter(Parser *ps, const TTok *open, int step);
extern int	intern_forname(Parser *ps, const char *a, size_t an, const char *b, size_t bn);
extern Expr *parse_primary(Lex *lx, int depth);
extern bool parse_block(Parser *ps, int depth, Node **head, TTok *term);
extern Node *new_node(Parser *ps, NodeKind kind, const char *at);
extern void err_unexpected_tag(Parser *ps, const TTok *tk);
extern Node *parse_snippet_tag(Parser *ps, const TTok *tk, int depth, Node **last);
extern bool lex_next(Lex *lx);
extern bool lex_init(Lex *lx, Parser *ps, const char *p, size_t n);
extern bool tok_is_word(const Tok *t, const char *w);
extern void unexpected_tok(Lex *lx, const char *expected);
extern bool expect_end(Lex *lx);
extern int rerr(TmplRenderCtx *c, TmplErrorKind kind, const char *fmt,...)
__attribute__((format(printf, 3, 4)));
extern int err_output_limit(TmplRenderCtx *c);
extern int err_iteration_limit(TmplRenderCtx *c);
extern int fmt_int(char *buf, int64_t i);
extern char *ralloc(TmplRenderCtx *c, size_t n);
extern size_t utf8_len(const char *p, size_t n);
extern size_t utf8_prefix(const char *p, size_t n, size_t chars);
extern bool append_value(BeBuf *b, const Value *v, int depth, size_t cap);
extern int str_of(TmplRenderCtx *c, const Value *v, const char **p, size_t *n);
extern int emit_value(TmplRenderCtx *c, const Value *v);
extern void obj_first(const Value *in, Value *out);
extern void to_number(const Value *v, Value *out);
extern int64_t to_int(const Value *v);
extern bool value_to_time(TmplRenderCtx *c, const Value *v, int64_t *secs);
extern size_t format_time(char *out, size_t cap, const char *f, size_t fn, int64_t secs,
						  int off, const char *abbr);
extern int	date_zone(TmplRenderCtx *c, const FilterCall *fc, const Value *args,
					  int64_t secs, int *off, char *abbr, size_t cap);
extern bool values_equal(const Value *a, const Value *b);
extern const char *find_sub(const char *h, size_t hn, const char *nd, size_t nn);
extern int emit_escaped(TmplRenderCtx *c, const char *s, size_t n);
extern int apply_filter(TmplRenderCtx *c, const FilterCall *fc, const Value *in,
			 const Value *args, Value *out);
extern int eval_expr(TmplRenderCtx *c, const Expr *e, Value *out);
extern int eval_cond(TmplRenderCtx *c, const Cond *cd, bool *res);
extern int for_bounds(TmplRenderCtx *c, const Node *n, ForBounds *fb);
extern int for_save_var(TmplRenderCtx *c, const Slot *s, Slot *saved, bool *copied);
extern void for_restore_var(Slot *s, const Slot *saved, bool copied);
extern int ctx_begin(const Template *t, TmplRenderCtx *c, struct json_object *data,
		  const TmplLimits *lim, BeBuf *out, TmplError *err);
extern int	tmpl_exec_node(TmplRenderCtx *c, const Node *n);
extern int	tmpl_exec_block(TmplRenderCtx *c, const Node *n);
extern int	tmpl_enter_block(TmplRenderCtx *c);
extern int	tmpl_render_tablerow(TmplRenderCtx *c, const Node *n);
extern int	tmpl_loop_prop(TmplRenderCtx *c, const Expr *e, Value *out);
extern int	tmpl_render_counter(TmplRenderCtx *c, const Node *n);
extern void tmpl_counter_show(Slot *s);
extern void node_pos(Parser *ps, const char *at, int *line, int *col);
extern void tmpl_error_locate(const Template *t, TmplError *err);
extern int	tmpl_render_cycle(TmplRenderCtx *c, const Node *n);
extern int	tmpl_ifchanged_emit(TmplRenderCtx *c, BeBuf *out, const BeBuf *body);
/* filters with their own function (FilterDef.fn) */
#define FILTER_FN(name) \
	extern int name(TmplRenderCtx *c, const FilterCall *fc, const Value *in, \
					const Value *args, Value *out)
FILTER_FN(tmpl_f_abs);
FILTER_FN(tmpl_f_at_least);
FILTER_FN(tmpl_f_at_most);
FILTER_FN(tmpl_f_ceil);
FILTER_FN(tmpl_f_floor);
FILTER_FN(tmpl_f_round);
FILTER_FN(tmpl_f_replace_last);
FILTER_FN(tmpl_f_url_decode);
FILTER_FN(tmpl_f_base64);
FILTER_FN(tmpl_f_strip_html);
FILTER_FN(tmpl_f_slice);
FILTER_FN(tmpl_f_split);
FILTER_FN(tmpl_f_map);
FILTER_FN(tmpl_f_select);
FILTER_FN(tmpl_f_sort);
FILTER_FN(tmpl_f_reverse);
FILTER_FN(tmpl_f_uniq);
FILTER_FN(tmpl_f_compact);
FILTER_FN(tmpl_f_concat);
FILTER_FN(tmpl_f_sum);
extern int tmpl_f_seq_slice(TmplRenderCtx *c, const Value *in, int64_t off, int64_t len,
							Value *out);
extern bool tmpl_short_decimal(double d, int64_t *m, int *e);
extern uint32_t tmpl_upper2(uint32_t cp);
extern uint32_t tmpl_lower2(uint32_t cp);
extern bool tmpl_dec_arith(FilterId id, const Value *a, const Value *b, double *res);
extern const char *tmpl_nearest_name(const char *name, size_t n, const void *names,
									 size_t stride);

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
 * Compiler: template-level scanner
 * ----------------------------------------------------------------
 */
static inline bool
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static inline bool
name_is(const char *p, size_t n, const char *lit)
{
	size_t		l = strlen(lit);

	return n == l && memcmp(p, lit, l) == 0;
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

/* Items of a range; lengths beyond the iteration limit are cut anyway. */
static inline int64_t
range_len(int64_t lo, int64_t hi)
{
	uint64_t	span;

	if (hi < lo)
		return 0;
	span = (uint64_t) hi - (uint64_t) lo;
	return span >= INT64_MAX / 2 ? INT64_MAX / 2 : (int64_t) span + 1;
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

/* Items of an array-like value (json array, built list, range); -1 if not. */
static inline int64_t
seq_len(const Value *v)
{
	switch (v->t)
	{
		case V_ARR:
			return (int64_t) json_object_array_length(v->u.j);
		case V_LIST:
			return (int64_t) v->u.l.n;
		case V_RANGE:
			return range_len(v->u.r.lo, v->u.r.hi);
		case V_PAIR:
			return 2;
		default:
			return -1;
	}
}

/*
 * An array for Liquid: a json array, a list built by filters, or a
 * [key, value] pair (for over an object, first of one).
 */
static inline bool
is_list(const Value *v)
{
	return v->t == V_ARR || v->t == V_LIST || v->t == V_PAIR;
}

/* Item i (0 <= i < seq_len(v)) of an array-like value. */
static inline void
seq_get(const Value *v, int64_t i, Value *out)
{
	if (v->t == V_ARR)
		json_to_value(json_object_array_get_idx(v->u.j, (size_t) i), out);
	else if (v->t == V_LIST)
		*out = v->u.l.v[i];
	else if (v->t == V_PAIR)
	{
		if (i == 0)
		{
			out->t = V_STR;
			out->u.s.p = v->u.pr.k;
			out->u.s.n = strlen(v->u.pr.k);
		}
		else
			json_to_value(v->u.pr.v, out);
	}
	else
	{
		out->t = V_INT;
		out->u.i = v->u.r.lo + i;
	}
}

/* Value of the loop variable in iteration k. */
static inline void
for_item(const Node *n, ForBounds *fb, int64_t k, Value *v)
{
	int64_t		idx = n->u.loop.reversed ? fb->from + fb->cnt - 1 - k : fb->from + k;

	if (fb->coll.t == V_INT)
	{
		v->t = V_INT;
		v->u.i = fb->lo + idx;
	}
	else if (fb->coll.t == V_ARR)
		json_to_value(json_object_array_get_idx(fb->coll.u.j, (size_t) idx), v);
	else if (fb->coll.t == V_LIST)
		*v = fb->coll.u.l.v[idx];
	else if (fb->coll.t == V_PAIR)
		seq_get(&fb->coll, idx, v);
	else if (fb->coll.t == V_OBJ)
	{
		/* entries in insertion order; the cursor moves one step per item */
		while (fb->ent_idx < idx)
			fb->ent = fb->ent->next, fb->ent_idx++;
		while (fb->ent_idx > idx)
			fb->ent = fb->ent->prev, fb->ent_idx--;
		v->t = V_PAIR;
		v->u.pr.k = (const char *) lh_entry_k(fb->ent);
		v->u.pr.v = (struct json_object *) lh_entry_v(fb->ent);
	}
	else
		*v = fb->coll;
}

#pragma GCC visibility pop

#endif							/* TMPL_INT_H */
