/*-------------------------------------------------------------------------
 *
 * mime_sql.c
 *	  SQL-callable wrappers for the MIME builder and unsubscribe tokens.
 *
 * The modules themselves (mime.c, unsub_token.c) use malloc and return
 * codes; everything malloc'd here is freed before any ereport so an ERROR
 * never leaks.  Strings cross the boundary as UTF-8: arguments are
 * converted from the server encoding, results back to it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <errno.h>
#include <time.h>

/* a few PostgreSQL 15 headers (bufpage.h, ilist.h) trip -Wunused-parameter */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "access/htup_details.h"
#include "funcapi.h"
#pragma GCC diagnostic pop
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "mime.h"
#include "unsub_token.h"

PG_FUNCTION_INFO_V1(be_unsub_token_make);
PG_FUNCTION_INFO_V1(be_unsub_token_parse);
PG_FUNCTION_INFO_V1(be_unsub_token_verify);
PG_FUNCTION_INFO_V1(be_build_message);

/* text argument as a NUL-terminated UTF-8 string (palloc'd) */
static char *
arg_utf8(FunctionCallInfo fcinfo, int n)
{
	text	   *t;
	char	   *s;

	if (PG_ARGISNULL(n))
		return NULL;
	t = PG_GETARG_TEXT_PP(n);
	s = text_to_cstring(t);
	return pg_server_to_any(s, strlen(s), PG_UTF8);
}

/* UTF-8 C string to a text datum in the server encoding */
static text *
utf8_to_text(const char *s)
{
	char	   *conv = pg_any_to_server(s, strlen(s), PG_UTF8);

	return cstring_to_text(conv);
}

/*
 * be_unsub_token_make(secret bytea, workspace_id text, list_id text,
 *					   email text, message_id text) returns text
 *
 * NULL list_id / message_id mean "" (global unsubscribe / no message).
 */
Datum
be_unsub_token_make(PG_FUNCTION_ARGS)
{
	bytea	   *secret;
	char	   *ws;
	char	   *list;
	char	   *email;
	char	   *mid;
	BeBuf		out;
	int			rc;
	text	   *result;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(3))
		PG_RETURN_NULL();
	secret = PG_GETARG_BYTEA_PP(0);
	ws = arg_utf8(fcinfo, 1);
	list = arg_utf8(fcinfo, 2);
	email = arg_utf8(fcinfo, 3);
	mid = arg_utf8(fcinfo, 4);

	if (VARSIZE_ANY_EXHDR(secret) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unsubscribe secret must not be empty")));

	be_buf_init(&out);
	rc = unsub_token_make((const uint8_t *) VARDATA_ANY(secret),
						  VARSIZE_ANY_EXHDR(secret), ws, list, email, mid, &out);
	if (rc != UNSUB_OK)
	{
		be_buf_free(&out);
		if (rc == UNSUB_ENOMEM)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory")));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid unsubscribe token field"),
				 errdetail("The workspace_id and email must not be empty, and no field may contain control characters or exceed %d bytes.",
						   UNSUB_FIELD_MAX)));
	}
	result = cstring_to_text_with_len(out.data, (int) out.len);
	be_buf_free(&out);
	PG_RETURN_TEXT_P(result);
}

/*
 * be_unsub_token_parse(token text)
 *	returns record (workspace_id text, list_id text, email text, message_id text)
 *
 * No MAC check: this is how the server learns which workspace's secret to
 * verify with.  Never act on the fields before be_unsub_token_verify.
 */
Datum
be_unsub_token_parse(PG_FUNCTION_ARGS)
{
	text	   *t;
	TupleDesc	tupdesc;
	UnsubToken	tok;
	int			rc;
	char	   *fields[4];
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	int			i;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("function returning record called in context that cannot accept type record")));
	tupdesc = BlessTupleDesc(tupdesc);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	t = PG_GETARG_TEXT_PP(0);

	rc = unsub_token_parse(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &tok);
	if (rc == UNSUB_ENOMEM)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	if (rc == UNSUB_EVERSION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid unsubscribe token"),
				 errdetail("The token version is not supported.")));
	if (rc != UNSUB_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid unsubscribe token")));

	/* copy out and free before anything that may ereport */
	fields[0] = pstrdup(tok.workspace_id);
	fields[1] = pstrdup(tok.list_id);
	fields[2] = pstrdup(tok.email);
	fields[3] = pstrdup(tok.message_id);
	unsub_token_free(&tok);

	for (i = 0; i < 4; i++)
		values[i] = PointerGetDatum(utf8_to_text(fields[i]));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* be_unsub_token_verify(token text, secret bytea) returns boolean */
Datum
be_unsub_token_verify(PG_FUNCTION_ARGS)
{
	text	   *t;
	bytea	   *secret;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_BOOL(false);
	t = PG_GETARG_TEXT_PP(0);
	secret = PG_GETARG_BYTEA_PP(1);
	PG_RETURN_BOOL(unsub_token_verify(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t),
									  (const uint8_t *) VARDATA_ANY(secret),
									  VARSIZE_ANY_EXHDR(secret)));
}

/* ----------------------------------------------------------------
 * be_build_message(parts jsonb) returns text
 * ----------------------------------------------------------------
 */

static const char *const build_keys[] = {
	"from_email", "from_name", "to_email", "to_name", "reply_to",
	"reply_to_name", "subject", "html", "text", "message_id", "domain",
	"unsubscribe_url", "unsubscribe_mailto", "date", "headers", NULL
};

/* string value of key, converted to UTF-8; NULL when absent or JSON null */
static char *
jb_string(Jsonb *jb, const char *key)
{
	JsonbValue	v;

	if (getKeyJsonValueFromContainer(&jb->root, key, strlen(key), &v) == NULL ||
		v.type == jbvNull)
		return NULL;
	if (v.type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("message part \"%s\" must be a string", key)));
	return pg_server_to_any(pnstrdup(v.val.string.val, v.val.string.len),
							v.val.string.len, PG_UTF8);
}

static time_t
jb_date(Jsonb *jb)
{
	JsonbValue	v;

	if (getKeyJsonValueFromContainer(&jb->root, "date", 4, &v) == NULL ||
		v.type == jbvNull)
		return timestamptz_to_time_t(GetCurrentTimestamp());
	if (v.type == jbvNumeric)
		return (time_t) DatumGetInt64(DirectFunctionCall1(numeric_int8,
														  NumericGetDatum(v.val.numeric)));
	if (v.type == jbvString)
	{
		char	   *s = pnstrdup(v.val.string.val, v.val.string.len);
		char	   *end;
		long long	t;

		errno = 0;
		t = strtoll(s, &end, 10);
		if (errno == 0 && end != s && *end == '\0')
			return (time_t) t;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("message part \"date\" must be a number of seconds since 1970-01-01")));
	return 0;					/* keep compiler quiet */
}

/* optional "headers": {"Name": "value", ...} */
static void
jb_headers(Jsonb *jb, MimeHeader **hdrs, size_t *nhdrs)
{
	JsonbValue	v;
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	kv;
	size_t		n = 0;
	MimeHeader *h;

	*hdrs = NULL;
	*nhdrs = 0;
	if (getKeyJsonValueFromContainer(&jb->root, "headers", 7, &v) == NULL ||
		v.type == jbvNull)
		return;
	if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("message part \"headers\" must be an object of strings")));

	h = palloc0(sizeof(MimeHeader) * (MIME_EXTRA_HEADERS_MAX + 1));
	it = JsonbIteratorInit(v.val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &kv, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			if (n >= MIME_EXTRA_HEADERS_MAX)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("too many extra headers"),
						 errdetail("At most %d are allowed.", MIME_EXTRA_HEADERS_MAX)));
			h[n].name = pnstrdup(kv.val.string.val, kv.val.string.len);
		}
		else if (tok == WJB_VALUE)
		{
			if (kv.type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("value of header \"%s\" must be a string", h[n].name)));
			h[n].value = pg_server_to_any(pnstrdup(kv.val.string.val, kv.val.string.len),
										  kv.val.string.len, PG_UTF8);
			n++;
		}
	}
	*hdrs = h;
	*nhdrs = n;
}

/* reject unknown top-level keys: a typo should not silently drop a header */
static void
jb_check_keys(Jsonb *jb)
{
	JsonbIterator *it = JsonbIteratorInit(&jb->root);
	JsonbIteratorToken tok;
	JsonbValue	kv;

	while ((tok = JsonbIteratorNext(&it, &kv, true)) != WJB_DONE)
	{
		int			i;
		bool		found = false;

		if (tok != WJB_KEY)
			continue;
		for (i = 0; build_keys[i]; i++)
		{
			if (strlen(build_keys[i]) == (size_t) kv.val.string.len &&
				memcmp(build_keys[i], kv.val.string.val, kv.val.string.len) == 0)
			{
				found = true;
				break;
			}
		}
		if (!found)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unrecognized message part \"%s\"",
							pnstrdup(kv.val.string.val, kv.val.string.len)),
					 errhint("Known parts: from_email, from_name, to_email, to_name, reply_to, reply_to_name, subject, html, text, message_id, domain, unsubscribe_url, unsubscribe_mailto, date, headers.")));
	}
}

Datum
be_build_message(PG_FUNCTION_ARGS)
{
	Jsonb	   *jb;
	MimeMessage m;
	MimeHeader *hdrs;
	size_t		nhdrs;
	BeBuf		out;
	char		err[256];
	int			rc;
	text	   *result;
	static const char *const required[] = {"from_email", "to_email", "message_id", "domain", NULL};
	int			i;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	jb = PG_GETARG_JSONB_P(0);
	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("message parts must be a JSON object")));
	jb_check_keys(jb);

	memset(&m, 0, sizeof(m));
	m.from_email = jb_string(jb, "from_email");
	m.from_name = jb_string(jb, "from_name");
	m.to_email = jb_string(jb, "to_email");
	m.to_name = jb_string(jb, "to_name");
	m.reply_to = jb_string(jb, "reply_to");
	m.reply_to_name = jb_string(jb, "reply_to_name");
	m.subject = jb_string(jb, "subject");
	m.html = jb_string(jb, "html");
	m.text = jb_string(jb, "text");
	m.message_id = jb_string(jb, "message_id");
	m.domain = jb_string(jb, "domain");
	m.unsubscribe_url = jb_string(jb, "unsubscribe_url");
	m.unsubscribe_mailto = jb_string(jb, "unsubscribe_mailto");
	m.date = jb_date(jb);
	jb_headers(jb, &hdrs, &nhdrs);
	m.extra = hdrs;
	m.n_extra = nhdrs;

	for (i = 0; required[i]; i++)
	{
		JsonbValue	v;

		if (getKeyJsonValueFromContainer(&jb->root, required[i], strlen(required[i]), &v) == NULL ||
			v.type == jbvNull)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("message part \"%s\" is required", required[i])));
	}

	/* nothing may ereport between here and be_buf_free */
	be_buf_init(&out);
	rc = mime_build(&m, &out, err, sizeof(err));
	if (rc != MIME_OK)
	{
		be_buf_free(&out);
		if (rc == MIME_ENOMEM)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory")));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not build message: %s", err)));
	}
	/* the message is 7-bit ASCII, valid in every server encoding */
	result = cstring_to_text_with_len(out.data, (int) out.len);
	be_buf_free(&out);
	PG_RETURN_TEXT_P(result);
}

/*
 * be_html_to_text(html text) returns text
 *
 * The plain-text part derived from an HTML body, as messages get it when
 * their template has no text body (used by render_template previews).
 */
PG_FUNCTION_INFO_V1(be_html_to_text);

Datum
be_html_to_text(PG_FUNCTION_ARGS)
{
	text	   *html = PG_GETARG_TEXT_PP(0);
	BeBuf		out;
	text	   *result;

	be_buf_init(&out);
	if (mime_html_to_text(VARDATA_ANY(html), VARSIZE_ANY_EXHDR(html), &out) != MIME_OK)
	{
		be_buf_free(&out);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory converting HTML to text")));
	}
	result = cstring_to_text_with_len(out.data ? out.data : "", out.len);
	be_buf_free(&out);
	PG_RETURN_TEXT_P(result);
}
