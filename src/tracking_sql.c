/*-------------------------------------------------------------------------
 *
 * tracking_sql.c
 *	  SQL-callable wrappers for the tokens of other purposes than
 *	  unsubscribing (double opt-in confirmation, tracking) and for the link
 *	  rewriting of tracking.c.
 *
 * As in mime_sql.c, what the modules malloc is freed before any ereport.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "tracking.h"
#include "unsub_token.h"

PG_FUNCTION_INFO_V1(be_signed_token_make);
PG_FUNCTION_INFO_V1(be_signed_token_verify);
PG_FUNCTION_INFO_V1(be_track_rewrite);

static const char *
purpose_context(text *purpose)
{
	char	   *p = text_to_cstring(purpose);

	if (strcmp(p, "unsubscribe") == 0)
		return UNSUB_MAC_CONTEXT;
	if (strcmp(p, "confirm") == 0)
		return CONFIRM_MAC_CONTEXT;
	if (strcmp(p, "track") == 0)
		return TRACK_MAC_CONTEXT;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown token purpose \"%s\"", p)));
	return NULL;				/* keep the compiler quiet */
}

static char *
arg_utf8(FunctionCallInfo fcinfo, int n)
{
	char	   *s;

	if (PG_ARGISNULL(n))
		return NULL;
	s = text_to_cstring(PG_GETARG_TEXT_PP(n));
	return pg_server_to_any(s, strlen(s), PG_UTF8);
}

/* be_signed_token_make(purpose, secret, workspace_id, list_id, email, message_id) returns text */
Datum
be_signed_token_make(PG_FUNCTION_ARGS)
{
	const char *context;
	bytea	   *secret;
	BeBuf		out;
	int			rc;
	text	   *result;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(4))
		PG_RETURN_NULL();
	context = purpose_context(PG_GETARG_TEXT_PP(0));
	secret = PG_GETARG_BYTEA_PP(1);
	if (VARSIZE_ANY_EXHDR(secret) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("token secret must not be empty")));
	be_buf_init(&out);
	rc = be_token_make(context, (const uint8_t *) VARDATA_ANY(secret), VARSIZE_ANY_EXHDR(secret),
					   arg_utf8(fcinfo, 2), arg_utf8(fcinfo, 3), arg_utf8(fcinfo, 4),
					   arg_utf8(fcinfo, 5), &out);
	if (rc != UNSUB_OK)
	{
		be_buf_free(&out);
		if (rc == UNSUB_ENOMEM)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid token field"),
				 errdetail("The workspace_id and email must not be empty, and no field may contain control characters or exceed %d bytes.",
						   UNSUB_FIELD_MAX)));
	}
	result = cstring_to_text_with_len(out.data, (int) out.len);
	be_buf_free(&out);
	PG_RETURN_TEXT_P(result);
}

/* be_signed_token_verify(purpose, token, secret) returns boolean: constant-time MAC check */
Datum
be_signed_token_verify(PG_FUNCTION_ARGS)
{
	const char *context;
	text	   *t;
	bytea	   *secret;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_BOOL(false);
	context = purpose_context(PG_GETARG_TEXT_PP(0));
	t = PG_GETARG_TEXT_PP(1);
	secret = PG_GETARG_BYTEA_PP(2);
	PG_RETURN_BOOL(be_token_verify(context, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t),
								   (const uint8_t *) VARDATA_ANY(secret),
								   VARSIZE_ANY_EXHDR(secret)));
}

/*
 * be_track_rewrite(html, base_url, secret, workspace_id, message_id,
 * unsubscribe_url) returns text: what the sender does to a tracked message's
 * HTML (previews and tests).
 */
Datum
be_track_rewrite(PG_FUNCTION_ARGS)
{
	char	   *html;
	TrackParams p;
	bytea	   *secret;
	BeBuf		out;
	BeBuf		scratch;
	BeBuf		token;
	int			rc;
	char	   *conv;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3) || PG_ARGISNULL(4))
		PG_RETURN_NULL();
	html = arg_utf8(fcinfo, 0);
	secret = PG_GETARG_BYTEA_PP(2);
	memset(&p, 0, sizeof(p));
	p.base_url = arg_utf8(fcinfo, 1);
	p.secret = (const uint8_t *) VARDATA_ANY(secret);
	p.secret_len = VARSIZE_ANY_EXHDR(secret);
	p.workspace_id = arg_utf8(fcinfo, 3);
	p.message_id = arg_utf8(fcinfo, 4);
	p.unsubscribe_url = arg_utf8(fcinfo, 5);
	if (p.secret_len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("token secret must not be empty")));
	be_buf_init(&out);
	be_buf_init(&scratch);
	be_buf_init(&token);
	rc = track_rewrite_html(html, strlen(html), &p, &out, &scratch, &token);
	be_buf_free(&scratch);
	be_buf_free(&token);
	if (rc < 0)
	{
		be_buf_free(&out);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	conv = pg_any_to_server(out.data ? out.data : "", (int) out.len, PG_UTF8);
	if (conv == out.data)
		conv = pnstrdup(out.data, out.len);
	be_buf_free(&out);
	PG_RETURN_TEXT_P(cstring_to_text(conv));
}
