/*-------------------------------------------------------------------------
 *
 * bounce_sql.c
 *	  SQL access to the bounce parser and VERP tokens (src/bounce.c).
 *
 *	_bounce_parse(raw bytea) returns jsonb
 *		{"kind": "dsn"|"arf"|"text"|"none", "class": "hard"|"soft"|
 *		 "complaint"|"none", "message_id": ..., "date": ...,
 *		 "feedback_type": ..., "tokens": [...],
 *		 "recipients": [{"email", "action", "status", "diagnostic", "class"}]}
 *	_verp_message_id(workspace_id text, token text, secret bytea) returns uuid
 *		the message id a genuine token carries, else NULL
 *
 * broadcast.record_bounce_message() (82_bounces.sql) does the rest in SQL.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/uuid.h"

#include "bounce.h"

PG_FUNCTION_INFO_V1(be_bounce_parse);
PG_FUNCTION_INFO_V1(be_verp_message_id);

/* a JSON string of what the parser copied out (bytes of any encoding made valid) */
static void
put_str(StringInfo buf, const char *key, const char *value)
{
	char	   *clean;
	char	   *p;

	/* the message's bytes are not necessarily UTF-8: keep ASCII, mark the rest */
	clean = pstrdup(value);
	for (p = clean; *p; p++)
		if ((unsigned char) *p >= 0x80 || (unsigned char) *p < 0x20)
			*p = '?';
	if (key)
	{
		escape_json(buf, key);
		appendStringInfoChar(buf, ':');
	}
	escape_json(buf, clean);
}

Datum
be_bounce_parse(PG_FUNCTION_ARGS)
{
	bytea	   *raw = PG_GETARG_BYTEA_PP(0);
	size_t		len = VARSIZE_ANY_EXHDR(raw);
	BounceReport *r;
	StringInfoData buf;
	int			rc;
	int			i;

	if (len > BOUNCE_INPUT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("returned message is too large (%zu bytes)", len),
				 errdetail("At most %d bytes are read.", BOUNCE_INPUT_MAX)));
	r = palloc(sizeof(BounceReport));
	rc = len == 0 ? BOUNCE_OK : bounce_parse(VARDATA_ANY(raw), len, r);
	if (len == 0)
		memset(r, 0, sizeof(BounceReport));
	if (rc == BOUNCE_ENOMEM)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	put_str(&buf, "kind", bounce_kind_name(r->kind));
	appendStringInfoChar(&buf, ',');
	put_str(&buf, "class", bounce_class_name(r->cls));
	appendStringInfoChar(&buf, ',');
	put_str(&buf, "message_id", r->message_id);
	appendStringInfoChar(&buf, ',');
	put_str(&buf, "date", r->date);
	appendStringInfoChar(&buf, ',');
	put_str(&buf, "feedback_type", r->feedback_type);
	appendStringInfoString(&buf, ",\"tokens\":[");
	for (i = 0; i < r->ntokens; i++)
	{
		if (i > 0)
			appendStringInfoChar(&buf, ',');
		put_str(&buf, NULL, r->tokens[i]);
	}
	appendStringInfoString(&buf, "],\"recipients\":[");
	for (i = 0; i < r->nrcpt; i++)
	{
		BounceRcpt *rc = &r->rcpt[i];

		appendStringInfoString(&buf, i > 0 ? ",{" : "{");
		put_str(&buf, "email", rc->email);
		appendStringInfoChar(&buf, ',');
		put_str(&buf, "action", rc->action);
		appendStringInfoChar(&buf, ',');
		put_str(&buf, "status", rc->status);
		appendStringInfoChar(&buf, ',');
		put_str(&buf, "diagnostic", rc->diagnostic);
		appendStringInfoChar(&buf, ',');
		put_str(&buf, "class", bounce_class_name(rc->cls));
		appendStringInfoChar(&buf, '}');
	}
	appendStringInfoString(&buf, "]}");
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}

Datum
be_verp_message_id(PG_FUNCTION_ARGS)
{
	char	   *ws = text_to_cstring(PG_GETARG_TEXT_PP(0));
	text	   *token = PG_GETARG_TEXT_PP(1);
	bytea	   *secret = PG_GETARG_BYTEA_PP(2);
	pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));

	if (!bounce_verp_check((const uint8_t *) VARDATA_ANY(secret), VARSIZE_ANY_EXHDR(secret), ws,
						   VARDATA_ANY(token), VARSIZE_ANY_EXHDR(token), u->data))
		PG_RETURN_NULL();
	PG_RETURN_UUID_P(u);
}
