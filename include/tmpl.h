/*-------------------------------------------------------------------------
 *
 * tmpl.h
 *	  Liquid-compatible template engine used to personalise every email of
 *	  a broadcast.
 *
 * A template is compiled once (tmpl_compile) into an immutable tree and
 * rendered many times (tmpl_render).  Rendering only reads the compiled
 * template, so one Template may be shared by several threads as long as
 * each thread uses its own TmplRenderCtx, which holds the scratch memory
 * reused from one render to the next.
 *
 * Like the other server-independent modules this one does not include
 * PostgreSQL headers: it uses malloc, never longjmp, and reports every
 * failure through a return code and a TmplError.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TMPL_H
#define TMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "be_buf.h"

struct json_object;

typedef enum TmplErrorKind
{
	TMPL_ERR_NONE = 0,
	TMPL_ERR_SYNTAX,			/* tmpl_compile rejected the source */
	TMPL_ERR_LIMIT,				/* a TmplLimits bound was exceeded */
	TMPL_ERR_RUNTIME,			/* e.g. division by zero in a filter */
	TMPL_ERR_NOMEM				/* malloc failed */
} TmplErrorKind;

typedef struct TmplError
{
	int			line;			/* 1-based; 0 when not tied to a position */
	int			column;			/* 1-based, in bytes */
	char		message[256];	/* PostgreSQL style: lower case, no period */
	TmplErrorKind kind;
} TmplError;

typedef struct TmplLimits
{
	size_t		max_output;		/* bytes produced, including captures */
	long		max_iterations; /* total "for" iterations in one render */
	int			max_depth;		/* nesting of blocks (if/for/capture...) */
} TmplLimits;

/* Nesting depth accepted by tmpl_compile; bounds all recursion. */
#define TMPL_MAX_COMPILE_DEPTH 64

typedef struct Template Template;	/* compiled, immutable */
typedef struct TmplRenderCtx TmplRenderCtx;	/* per-thread scratch */

/* Returns NULL on error with err filled (err may not be NULL). */
extern Template *tmpl_compile(const char *src, size_t len, TmplError *err);

/*
 * Snippets: {% render 'name' %} and {% include 'name' %} are resolved at
 * compile time through this callback, which sets *src and *srclen to the
 * snippet's source (valid until it returns again or the compile ends) and
 * returns true, or returns false when there is no such snippet.  The
 * snippet is compiled into the template, so a compiled template never
 * changes when a snippet does.  tmpl_compile has no resolver: every
 * snippet is then missing, a syntax error naming it.  It must not longjmp.
 */
typedef bool (*TmplSnippetResolver) (void *arg, const char *name, size_t namelen,
									 const char **src, size_t *srclen);

/* snippets nested in snippets, and the source bytes they may add up to */
#define TMPL_MAX_SNIPPET_DEPTH 8
#define TMPL_MAX_SNIPPET_BYTES (4 * 1024 * 1024)

extern Template *tmpl_compile_ex(const char *src, size_t len, TmplSnippetResolver fn,
								 void *arg, TmplError *err);
extern void tmpl_free(Template *t);

extern TmplRenderCtx *tmpl_ctx_create(void);
extern void tmpl_ctx_free(TmplRenderCtx *c);

/*
 * Appends the output to "out".  Returns 0 on success, -1 with err filled.
 * On failure "out" may hold a partial output after its original length.
 * "data" may be NULL (every variable is then empty).  "lim" may be NULL
 * for tmpl_default_limits().
 *
 * "data" is only read, with one exception: outputting a whole object
 * ({{ contact }}) serialises it with json-c, which writes that object's
 * internal print buffer.  Do not render the same data object from two
 * threads at once.  "data" must not change during a render.
 */
extern int	tmpl_render(const Template *t, TmplRenderCtx *c,
						struct json_object *data, const TmplLimits *lim,
						BeBuf *out, TmplError *err);

/*
 * Per-send specialisation.  Returns a new template equivalent to t in
 * which every part that depends only on "constant_data" (a json object,
 * e.g. {"broadcast": ..., "list": ..., "workspace": ...}) is pre-rendered,
 * so that each render evaluates only what depends on the recipient.
 *
 * For any data D and limits, tmpl_render of the result with D gives the
 * same return code and, on success, byte-identical output to tmpl_render
 * of t with D in which each top-level key of constant_data is replaced by
 * its value there (keys of constant_data win over D's).  Pre-rendered
 * parts still count toward every limit.  The result keeps a reference to
 * constant_data (released by tmpl_free), which must not change afterwards;
 * t may be freed independently.  Rendering the result reads
 * constant_data under the same rule as "data" above (outputting a whole
 * constant object writes its print buffer).  NULL with err filled on
 * failure: out of memory, or t is itself specialised (parts that fail to
 * pre-render are left to render time, where they fail as before).
 */
extern Template *tmpl_specialize(const Template *t, struct json_object *constant_data,
								 TmplError *err);

/*
 * The filter names, or the tag names, the compiler accepts, written to buf
 * as "a, b, c" (truncated to cap bytes), for error hints.
 */
extern void tmpl_list_names(bool filters, char *buf, size_t cap);

/*
 * Time zones of the "date" filter.  The core knows only "UTC" (and "GMT",
 * "Etc/UTC", "Z") and fixed offsets such as "+02:00"; any other name is
 * passed to this resolver, which returns false for an unknown zone, else
 * the zone's offset from UTC in seconds at the instant utc_secs (east
 * positive) and, when it has one, its abbreviation ("CET") in abbrev.
 * The PostgreSQL glue resolves with the server's tz database; the unit
 * tests use a fake.  It must not longjmp.
 */
typedef bool (*TmplTzResolver) (void *arg, const char *zone, long long utc_secs,
								int *offset_secs, char *abbrev, size_t abbrev_cap);

/*
 * Set (or with fn NULL clear) the resolver used by every later render with
 * this context.  The zone of a date is the filter's second argument, else
 * the data's contact.timezone, else workspace.timezone, else UTC; a zone
 * from the data that cannot be resolved is skipped, an explicit one is an
 * error.
 */
extern void tmpl_ctx_set_tz_resolver(TmplRenderCtx *c, TmplTzResolver fn, void *arg);

/* 1 MiB output, 100000 iterations, depth 32 */
extern void tmpl_default_limits(TmplLimits *lim);

/*
 * Parse JSON text into the data object expected by tmpl_render (NULL if
 * the text is not valid JSON), and release it.  They let callers that
 * cannot include json-c's headers, such as the PostgreSQL glue whose
 * json_object() clashes with json-c's type name, pass data in.
 */
extern struct json_object *tmpl_data_parse(const char *json, size_t len);
extern void tmpl_data_free(struct json_object *data);

#endif							/* TMPL_H */
