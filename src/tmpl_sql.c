/*-------------------------------------------------------------------------
 *
 * tmpl_sql.c
 *	  SQL-callable wrappers around the template engine (src/tmpl/).
 *
 *	  broadcast._template_check(source text, field text) returns void
 *	  broadcast._template_render(source text, data jsonb [, workspace_id text]) returns text
 *	  broadcast._template_snippets(workspace_id text, source text, field text) returns jsonb
 *	  broadcast._jsonb_depth(value jsonb) returns integer
 *
 * The engine itself uses malloc and never longjmps, so everything it
 * allocates is released before any ereport(ERROR) is raised here.  json-c's
 * headers cannot be included next to PostgreSQL's (both define
 * json_object), so the data is parsed through tmpl_data_parse().
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "tmpl.h"
#include "tmpl_tz.h"

PG_FUNCTION_INFO_V1(be_template_check);
PG_FUNCTION_INFO_V1(be_template_render);
PG_FUNCTION_INFO_V1(be_jsonb_depth);
PG_FUNCTION_INFO_V1(be_template_snippets);

/*
 * How deeply a jsonb value's arrays and objects nest: 0 for a scalar, 1 for
 * {} or {"a": 1}.  The template data is parsed with json-c, which refuses
 * deeper documents than its limit, so contact properties are bounded by
 * this (the 1.3 trigger on broadcast.contacts) before they can reach a
 * render.  A linear walk of the binary value, no recursion.
 */
Datum
be_jsonb_depth(PG_FUNCTION_ARGS)
{
	Jsonb	   *jb = PG_GETARG_JSONB_P(0);
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			depth = 0;
	int			peak = 0;

	if (JB_ROOT_IS_SCALAR(jb))
		PG_RETURN_INT32(0);
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		if (tok == WJB_BEGIN_ARRAY || tok == WJB_BEGIN_OBJECT)
		{
			if (++depth > peak)
				peak = depth;
		}
		else if (tok == WJB_END_ARRAY || tok == WJB_END_OBJECT)
			depth--;
	}
	Assert(depth == 0);
	PG_RETURN_INT32(peak);
}

/*
 * A hint for the syntax errors users are most likely to make, in buf
 * (lists of the known filters and tags come from the compiler's tables).
 */
static const char *
tmpl_error_hint(const TmplError *err, char *buf, size_t cap)
{
	char		names[900];

	if (strncmp(err->message, "unknown filter", 14) == 0)
	{
		tmpl_list_names(true, names, sizeof(names));
		snprintf(buf, cap, "Supported filters: %s.", names);
		return buf;
	}
	if (strncmp(err->message, "unknown tag", 11) == 0)
	{
		tmpl_list_names(false, names, sizeof(names));
		snprintf(buf, cap, "Supported tags: %s, and {%% # comments %%}.", names);
		return buf;
	}
	if (strncmp(err->message, "\"{{\" was never closed", 21) == 0 ||
		strncmp(err->message, "\"{%\" was never closed", 21) == 0)
		return "Close output markup with }} and tags with %}; use {% raw %} for literal braces.";
	if (strstr(err->message, "was never closed") != NULL)
		return "Every block tag needs its matching end tag, e.g. {% endif %}.";
	return NULL;
}

static void
report_syntax_error(const char *field, const TmplError *err)
{
	char		buf[1024];
	const char *hint = tmpl_error_hint(err, buf, sizeof(buf));

	ereport(ERROR,
			(errcode(ERRCODE_SYNTAX_ERROR),
			 errmsg("template syntax error in %s at line %d, column %d",
					field, err->line, err->column),
			 errdetail("%s", err->message),
			 hint ? errhint("%s", hint) : 0));
}

/*
 * be_template_check(source text, field text) returns void
 *
 * Raises a syntax error naming "field" (e.g. "subject", "html_body") when
 * the template does not compile.
 */
Datum
be_template_check(PG_FUNCTION_ARGS)
{
	text	   *src;
	char	   *field;
	TmplError	err;
	Template   *t;

	/* a missing template is valid (the SQL function may not be STRICT) */
	if (PG_ARGISNULL(0))
		PG_RETURN_VOID();
	src = PG_GETARG_TEXT_PP(0);
	field = PG_ARGISNULL(1) ? pstrdup("template") : text_to_cstring(PG_GETARG_TEXT_PP(1));

	t = tmpl_compile(VARDATA_ANY(src), VARSIZE_ANY_EXHDR(src), &err);
	if (t == NULL)
	{
		if (err.kind == TMPL_ERR_NOMEM)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory while compiling template")));
		report_syntax_error(field, &err);
	}
	tmpl_free(t);
	PG_RETURN_VOID();
}

/*
 * Snippets of a workspace, resolved through SPI while a template compiles.
 * The engine must not be longjmp'd out of, so an error of the lookup is
 * kept and raised again once tmpl_compile_ex has returned and freed.
 */
typedef struct SnippetLookup
{
	const char *workspace_id;
	MemoryContext cxt;			/* where sources, names and the error live */
	StringInfoData used;		/* {"name": version, ...} */
	int			nused;
	ErrorData  *error;
} SnippetLookup;

static bool
spi_snippet(void *arg, const char *name, size_t namelen, const char **src, size_t *srclen)
{
	SnippetLookup *sl = arg;
	MemoryContext old = CurrentMemoryContext;
	volatile bool found = false;

	if (sl->error)
		return false;
	PG_TRY();
	{
		Datum		args[2];
		char	   *id = pnstrdup(name, namelen);

		args[0] = CStringGetTextDatum(sl->workspace_id);
		args[1] = CStringGetTextDatum(id);
		if (SPI_execute_with_args("SELECT t.version, t.html FROM broadcast.templates t"
								  " WHERE t.workspace_id = $1 AND t.template_id = $2"
								  " ORDER BY t.version DESC LIMIT 1",
								  2, (Oid[]) {TEXTOID, TEXTOID}, args, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not look up snippet \"%s\"", id);
		if (SPI_processed == 1)
		{
			bool		isnull;
			int32		version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
															  SPI_tuptable->tupdesc, 1, &isnull));
			char	   *html = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
			MemoryContext o2 = MemoryContextSwitchTo(sl->cxt);

			*src = html ? pstrdup(html) : "";
			*srclen = strlen(*src);
			appendStringInfoString(&sl->used, sl->nused++ ? ", " : "{");
			escape_json(&sl->used, id);
			appendStringInfo(&sl->used, ": %d", version);
			MemoryContextSwitchTo(o2);
			found = true;
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(sl->cxt);
		sl->error = CopyErrorData();
		FlushErrorState();
		found = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	return found;
}

/*
 * be_template_render(source text, data jsonb [, workspace_id text]) returns text
 *
 * With a workspace, {% render %} snippets are that workspace's templates
 * (latest versions), as when saving.
 * Compiles, renders with the default limits and frees.  Meant for previews
 * and tests; the sender compiles once and renders many times in C.
 */
Datum
be_template_render(PG_FUNCTION_ARGS)
{
	text	   *src;
	char	   *json = NULL;
	struct json_object *data = NULL;
	Template   *t;
	TmplRenderCtx *ctx;
	TmplLimits	lim;
	TmplError	err;
	BeBuf		out;
	text	   *result;
	int			rc;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	src = PG_GETARG_TEXT_PP(0);
	if (PG_NARGS() > 2 && !PG_ARGISNULL(2))
	{
		/* a workspace's template: its snippets are the workspace's */
		SnippetLookup sl;

		memset(&sl, 0, sizeof(sl));
		sl.workspace_id = text_to_cstring(PG_GETARG_TEXT_PP(2));
		sl.cxt = CurrentMemoryContext;
		initStringInfo(&sl.used);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		t = tmpl_compile_ex(VARDATA_ANY(src), VARSIZE_ANY_EXHDR(src), spi_snippet, &sl, &err);
		SPI_finish();
		if (sl.error)
		{
			tmpl_free(t);
			ReThrowError(sl.error);
		}
	}
	else
		t = tmpl_compile(VARDATA_ANY(src), VARSIZE_ANY_EXHDR(src), &err);
	if (t == NULL)
	{
		if (err.kind == TMPL_ERR_NOMEM)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory while compiling template")));
		report_syntax_error("template", &err);
	}

	if (!PG_ARGISNULL(1))
	{
		Jsonb	   *jb = PG_GETARG_JSONB_P(1);

		/* JsonbToCString pallocs and may ereport: free the template first */
		PG_TRY();
		{
			json = JsonbToCString(NULL, &jb->root, VARSIZE(jb));
		}
		PG_CATCH();
		{
			tmpl_free(t);
			PG_RE_THROW();
		}
		PG_END_TRY();
		data = tmpl_data_parse(json, strlen(json));
		pfree(json);
		if (data == NULL)
		{
			tmpl_free(t);
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("could not convert template data to json")));
		}
	}

	ctx = tmpl_ctx_create();
	if (ctx == NULL)
	{
		tmpl_data_free(data);
		tmpl_free(t);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	}
	tmpl_ctx_set_tz_resolver(ctx, be_tz_resolve, NULL);
	tmpl_default_limits(&lim);
	be_buf_init(&out);
	rc = tmpl_render(t, ctx, data, &lim, &out, &err);

	tmpl_ctx_free(ctx);
	tmpl_data_free(data);
	tmpl_free(t);

	if (rc != 0)
	{
		be_buf_free(&out);
		switch (err.kind)
		{
			case TMPL_ERR_LIMIT:
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("template rendering failed at line %d, column %d",
								err.line, err.column),
						 errdetail("%s", err.message)));
				break;
			case TMPL_ERR_NOMEM:
				ereport(ERROR,
						(errcode(ERRCODE_OUT_OF_MEMORY),
						 errmsg("out of memory while rendering template")));
				break;
			default:
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("template rendering failed at line %d, column %d",
								err.line, err.column),
						 errdetail("%s", err.message)));
				break;
		}
	}

	/* copy out of malloc'd memory before freeing; palloc may ereport */
	PG_TRY();
	{
		result = cstring_to_text_with_len(out.data ? out.data : "", (int) out.len);
	}
	PG_CATCH();
	{
		be_buf_free(&out);
		PG_RE_THROW();
	}
	PG_END_TRY();
	be_buf_free(&out);
	PG_RETURN_TEXT_P(result);
}


/*
 * be_template_snippets(workspace_id text, source text, field text) returns jsonb
 *
 * Compiles a template with the workspace's snippets (the html of the latest
 * version of the template named by each render/include) and returns the
 * versions it used, {"name": version}, to be pinned; a syntax error, or a
 * missing snippet, is raised naming the field, the line and the column.
 */
Datum
be_template_snippets(PG_FUNCTION_ARGS)
{
	text	   *src;
	char	   *field;
	SnippetLookup sl;
	TmplError	err;
	Template   *t;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	src = PG_GETARG_TEXT_PP(1);
	field = PG_ARGISNULL(2) ? pstrdup("template") : text_to_cstring(PG_GETARG_TEXT_PP(2));
	memset(&sl, 0, sizeof(sl));
	sl.workspace_id = text_to_cstring(PG_GETARG_TEXT_PP(0));
	sl.cxt = CurrentMemoryContext;
	initStringInfo(&sl.used);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	t = tmpl_compile_ex(VARDATA_ANY(src), VARSIZE_ANY_EXHDR(src), spi_snippet, &sl, &err);
	tmpl_free(t);
	SPI_finish();
	if (sl.error)
		ReThrowError(sl.error);
	if (t == NULL)
	{
		if (err.kind == TMPL_ERR_NOMEM)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory while compiling template")));
		report_syntax_error(field, &err);
	}
	appendStringInfoString(&sl.used, sl.nused ? "}" : "{}");
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(sl.used.data)));
}
