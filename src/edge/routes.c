/*-------------------------------------------------------------------------
 *
 * routes.c
 *	  The HTTP edge's endpoints: /u/<token>, /hooks/<workspace>/<integration>
 *	  and /metrics.
 *
 * libmicrohttpd calls edge_access() from MHD_run() in the worker's own
 * loop, first when a request's headers are in, then with each piece of
 * body, then once more to answer.  Each answer that needs the database is
 * one short transaction, run under PG_TRY so that no ERROR unwinds through
 * libmicrohttpd's frames: an error is turned into a status code instead.
 * The worker's session runs as broadcast_edge (edge.c), so a request can
 * do only what that role may.
 *
 *	/u/<token>		GET, HEAD: a confirmation page whose button POSTs (a
 *					GET never unsubscribes: mail scanners prefetch links).
 *					POST: unsubscribes; the RFC 8058 one-click body gets a
 *					short text/plain 200, a form POST the "done" page.
 *					Invalid tokens get 400 and a plain page.
 *	/hooks/<ws>/<integration>	POST: record_webhook() with the exact body
 *					and the headers.  2xx on success, 4xx when the request
 *					is at fault (providers do not retry), 5xx when we are.
 *	/metrics		GET, HEAD: Prometheus text format from edge_metrics().
 *	/c/<token>		GET, HEAD: the double opt-in confirmation page, whose
 *					button POSTs (like /u/); POST: confirm_subscription()
 *					with the client's address.
 *	/t/c/<token>	GET: track() records the click, then 302 to the target
 *					signed in the token (never one from the request).
 *	/t/o/<token>	GET: track() records the open, then a 1x1 GIF.
 *					HEAD on either answers the same without recording.
 *
 * Anything else is 404; a known path with the wrong method is 405 with
 * Allow.  No response sets a cookie; only /t/c/ redirects.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "broadcast_engine.h"
#include "edge.h"

typedef enum EdgeRoute
{
	ROUTE_UNSUBSCRIBE,
	ROUTE_HOOK,
	ROUTE_METRICS,
	ROUTE_CONFIRM,
	ROUTE_CLICK,
	ROUTE_OPEN
} EdgeRoute;

/* one request, from its headers to its answer (freed by edge_request_done) */
typedef struct EdgeRequest
{
	MemoryContext cxt;
	EdgeRoute	route;
	struct MHD_Connection *conn;
	char	   *arg1;			/* token, or workspace */
	char	   *arg2;			/* integration */
	bool		post;
	bool		head;
	char	   *user_agent;		/* /t/: the client's, or NULL */
	char	   *client_ip;		/* /c/ and /t/: the client's address, or NULL */
	StringInfoData body;
	bool		too_large;
	/* header names (lower case) and values, for webhooks */
	List	   *hnames;
	List	   *hvalues;
	/* set by the SQL step */
	int			sqlstate;		/* 0: it worked */
	char	   *error;
	char	   *result[8];
	bool		result_null[8];
} EdgeRequest;

/* con_cls of a request answered at its headers: its body is ignored */
static char answered_early;

typedef void (*EdgeSqlFn) (EdgeRequest *req);

/* ---- responses ---- */

static enum MHD_Result
respond(struct MHD_Connection *conn, unsigned int status, const char *ctype,
		const char *body, const char *allow)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(body), (void *) body, MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	if (strncmp(ctype, "text/html", 9) == 0)
		MHD_add_response_header(r, "Content-Security-Policy",
								"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
								"frame-ancestors 'none'; base-uri 'none'");
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
respond_text(struct MHD_Connection *conn, unsigned int status, const char *text)
{
	return respond(conn, status, "text/plain; charset=utf-8", text, NULL);
}

/* the open pixel: a transparent 1x1 GIF */
static const unsigned char pixel_gif[] = {
	0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
	0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b
};

/* the pixel, or the redirect of a click: never cached, so each open reaches us */
static enum MHD_Result
respond_tracking(struct MHD_Connection *conn, const char *location)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	static const char moved[] = "moved\n";

	if (location)
		r = MHD_create_response_from_buffer(sizeof(moved) - 1, (void *) moved, MHD_RESPMEM_PERSISTENT);
	else
		r = MHD_create_response_from_buffer(sizeof(pixel_gif), (void *) pixel_gif, MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, location ? "text/plain; charset=utf-8" : "image/gif");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store, no-cache, must-revalidate, max-age=0");
	MHD_add_response_header(r, MHD_HTTP_HEADER_PRAGMA, "no-cache");
	MHD_add_response_header(r, MHD_HTTP_HEADER_EXPIRES, "0");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	/* the target signed in the token: its bytes have no control characters (unsub_token.c) */
	if (location && MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, location) != MHD_YES)
	{
		MHD_destroy_response(r);
		return respond(conn, MHD_HTTP_BAD_REQUEST, "text/plain; charset=utf-8", "invalid link\n", NULL);
	}
	ret = MHD_queue_response(conn, location ? MHD_HTTP_FOUND : MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static void
html_escape(StringInfo out, const char *s)
{
	for (; *s; s++)
	{
		switch (*s)
		{
			case '&':
				appendStringInfoString(out, "&amp;");
				break;
			case '<':
				appendStringInfoString(out, "&lt;");
				break;
			case '>':
				appendStringInfoString(out, "&gt;");
				break;
			case '"':
				appendStringInfoString(out, "&quot;");
				break;
			case '\'':
				appendStringInfoString(out, "&#39;");
				break;
			default:
				appendStringInfoChar(out, *s);
		}
	}
}

/* a small page: a title, a paragraph, and optionally the button that POSTs */
static char *
page(const char *title, const char *text, const char *button)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfoString(&s, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
						   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
						   "<meta name=\"robots\" content=\"noindex\"><title>");
	html_escape(&s, title);
	appendStringInfoString(&s, "</title><style>body{font-family:sans-serif;max-width:32em;margin:3em auto;"
						   "padding:0 1em}button{font-size:1em;padding:.5em 1.5em}</style></head>\n<body><h1>");
	html_escape(&s, title);
	appendStringInfoString(&s, "</h1><p>");
	html_escape(&s, text);
	appendStringInfoString(&s, "</p>");
	if (button)
	{
		/* no action: the form posts back to this very URL, whatever the proxy's prefix */
		appendStringInfoString(&s, "<form method=\"post\"><input type=\"hidden\" name=\"confirm\" value=\"yes\">"
							   "<button type=\"submit\">");
		html_escape(&s, button);
		appendStringInfoString(&s, "</button></form>");
	}
	appendStringInfoString(&s, "</body></html>\n");
	return s.data;
}

/* ---- running SQL ---- */

/*
 * Runs fn in its own transaction.  An ERROR is caught here, the transaction
 * rolled back and the SQLSTATE and message left in req; FATAL (SIGTERM)
 * still ends the process.
 */
static void
edge_sql(EdgeRequest *req, EdgeSqlFn fn)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	char		timeout[32];

	req->sqlstate = 0;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		/* a request waits for no lock or statement longer than a client would */
		snprintf(timeout, sizeof(timeout), "%dms", be_lock_timeout_ms);
		(void) set_config_option("lock_timeout", timeout, PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
		snprintf(timeout, sizeof(timeout), "%ds", be_http_request_timeout_s);
		(void) set_config_option("statement_timeout", timeout, PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		PushActiveSnapshot(GetTransactionSnapshot());
		fn(req);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(req->cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		req->sqlstate = edata->sqlerrcode;
		req->error = edata->message ? edata->message : "unknown error";
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
}

/* copies the first row of the last result into req->result */
static void
keep_row(EdgeRequest *req)
{
	int			i;

	if (SPI_processed != 1)
		elog(ERROR, "expected one row, got " UINT64_FORMAT, SPI_processed);
	for (i = 0; i < SPI_tuptable->tupdesc->natts && i < 8; i++)
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1);

		req->result_null[i] = (v == NULL);
		req->result[i] = v ? MemoryContextStrdup(req->cxt, v) : NULL;
	}
}

static void
exec_text(EdgeRequest *req, const char *sql, int nargs, Oid *types, Datum *values)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, NULL, false, 0);

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "unexpected result %s from: %s", SPI_result_code_string(rc), sql);
	keep_row(req);
}

static void
sql_unsubscribe_page(EdgeRequest *req)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(req->arg1)};

	exec_text(req, "SELECT p->>'title', p->>'text', p->>'button', p->>'done'"
			  " FROM broadcast.unsubscribe_page($1) p", 1, types, values);
}

static void
sql_unsubscribe(EdgeRequest *req)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(req->arg1)};

	/* the page's texts first: they check the token without changing anything */
	exec_text(req, "SELECT p->>'title', p->>'text', p->>'button', p->>'done', u.unsubscribed"
			  " FROM broadcast.unsubscribe_page($1) p, broadcast.unsubscribe($1) u",
			  1, types, values);
}

static Datum
text_array(List *items)
{
	Datum	   *elems;
	int			n = list_length(items);
	int			i = 0;
	ListCell   *lc;

	elems = palloc(sizeof(Datum) * (n > 0 ? n : 1));
	foreach(lc, items)
		elems[i++] = CStringGetTextDatum((char *) lfirst(lc));
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

static void
sql_webhook(EdgeRequest *req)
{
	Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, TEXTARRAYOID};
	Datum		values[5];

	values[0] = CStringGetTextDatum(req->arg1);
	values[1] = CStringGetTextDatum(req->arg2);
	values[2] = PointerGetDatum(cstring_to_text_with_len(req->body.data, req->body.len));
	values[3] = text_array(req->hnames);
	values[4] = text_array(req->hvalues);
	exec_text(req, "SELECT received, applied, changed, pending, unknown, ignored, suppressed, confirm_url"
			  " FROM broadcast.record_webhook($1, $2, $3, pg_catalog.jsonb_object($4, $5))",
			  5, types, values);
}

static void
sql_confirm_page(EdgeRequest *req)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(req->arg1)};

	exec_text(req, "SELECT p->>'title', p->>'text', p->>'button', p->>'done'"
			  " FROM broadcast.confirm_page($1) p", 1, types, values);
}

static void
sql_confirm(EdgeRequest *req)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	char		nulls[2] = {' ', ' '};

	values[0] = CStringGetTextDatum(req->arg1);
	values[1] = req->client_ip ? CStringGetTextDatum(req->client_ip) : (Datum) 0;
	if (req->client_ip == NULL)
		nulls[1] = 'n';
	/* the page's texts first: they check the token without changing anything */
	if (SPI_execute_with_args("SELECT p->>'title', p->>'text', p->>'button', p->>'done'"
							  " FROM broadcast.confirm_page($1) p, broadcast.confirm_subscription($1, $2) c",
							  2, types, values, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "unexpected result from confirm_subscription");
	keep_row(req);
}

static void
sql_track(EdgeRequest *req)
{
	Oid			types[4] = {TEXTOID, TEXTOID, TEXTOID, BOOLOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	values[0] = CStringGetTextDatum(req->arg1);
	values[1] = req->user_agent ? CStringGetTextDatum(req->user_agent) : (Datum) 0;
	values[2] = req->client_ip ? CStringGetTextDatum(req->client_ip) : (Datum) 0;
	values[3] = BoolGetDatum(!req->head);
	if (req->user_agent == NULL)
		nulls[1] = 'n';
	if (req->client_ip == NULL)
		nulls[2] = 'n';
	if (SPI_execute_with_args("SELECT url FROM broadcast.track($1, $2, $3, $4)",
							  4, types, values, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "unexpected result from track");
	keep_row(req);
}

static void
sql_metrics(EdgeRequest *req)
{
	exec_text(req, "SELECT broadcast.edge_metrics()", 0, NULL, NULL);
}

/* ---- status codes ---- */

/* our failures (retry later) against the request's (do not retry) */
static bool
our_failure(int sqlstate)
{
	const char *s = unpack_sql_state(sqlstate);

	return strncmp(s, "08", 2) == 0 || strncmp(s, "40", 2) == 0 || strncmp(s, "53", 2) == 0 ||
		strncmp(s, "55", 2) == 0 || strncmp(s, "57", 2) == 0 || strncmp(s, "58", 2) == 0;
}

static unsigned int
webhook_status(int sqlstate)
{
	const char *s = unpack_sql_state(sqlstate);

	if (strncmp(s, "28", 2) == 0)
		return MHD_HTTP_UNAUTHORIZED;	/* signature */
	if (sqlstate == ERRCODE_INSUFFICIENT_PRIVILEGE)
		return MHD_HTTP_FORBIDDEN;
	if (sqlstate == ERRCODE_UNDEFINED_OBJECT)
		return MHD_HTTP_NOT_FOUND;	/* no such workspace or integration */
	if (strncmp(s, "22", 2) == 0 || strncmp(s, "23", 2) == 0 || strncmp(s, "0A", 2) == 0)
		return MHD_HTTP_BAD_REQUEST;	/* the payload */
	if (our_failure(sqlstate))
		return MHD_HTTP_SERVICE_UNAVAILABLE;
	return MHD_HTTP_INTERNAL_SERVER_ERROR;
}

static void
log_failure(EdgeRequest *req, unsigned int status, const char *what)
{
	ereport(status >= 500 ? LOG : DEBUG1,
			(errmsg("broadcast_engine edge: %s answered %u: %s", what, status, req->error)));
}

/* ---- handlers ---- */

static enum MHD_Result
handle_unsubscribe(EdgeRequest *req)
{
	const char *title;
	const char *text;
	const char *button;
	bool		one_click;

	edge_sql(req, req->post ? sql_unsubscribe : sql_unsubscribe_page);
	if (req->sqlstate != 0)
	{
		const char *s = unpack_sql_state(req->sqlstate);

		if (strncmp(s, "22", 2) == 0)
		{
			log_failure(req, MHD_HTTP_BAD_REQUEST, "unsubscribe");
			return respond(req->conn, MHD_HTTP_BAD_REQUEST, "text/html; charset=utf-8",
						   page("Invalid link",
								"This unsubscribe link is not valid. It may have been altered or cut short; "
								"open it again from the email you received.", NULL), NULL);
		}
		log_failure(req, MHD_HTTP_SERVICE_UNAVAILABLE, "unsubscribe");
		return respond(req->conn, MHD_HTTP_SERVICE_UNAVAILABLE, "text/html; charset=utf-8",
					   page("Please try again",
							"We could not process your request right now. Please try again in a few minutes.",
							NULL), NULL);
	}

	title = req->result[0] ? req->result[0] : "Unsubscribe";
	if (!req->post)
	{
		text = req->result[1] ? req->result[1] : "Do you want to stop receiving these emails?";
		button = req->result[2] ? req->result[2] : "Unsubscribe";
		return respond(req->conn, MHD_HTTP_OK, "text/html; charset=utf-8", page(title, text, button), NULL);
	}

	/* RFC 8058: the body of a one-click POST is List-Unsubscribe=One-Click */
	one_click = (req->body.len > 0 && strstr(req->body.data, "List-Unsubscribe=One-Click") != NULL);
	if (one_click)
		return respond_text(req->conn, MHD_HTTP_OK, "unsubscribed\n");
	text = req->result[3] ? req->result[3] : "You are unsubscribed. You will not receive these emails any more.";
	return respond(req->conn, MHD_HTTP_OK, "text/html; charset=utf-8", page(title, text, NULL), NULL);
}

static enum MHD_Result
handle_hook(EdgeRequest *req)
{
	StringInfoData s;
	static const char *const names[] = {"received", "applied", "changed", "pending", "unknown",
	"ignored", "suppressed"};
	int			i;
	unsigned int status;

	/* the body goes to SQL as text: it must be valid in the database encoding */
	if (memchr(req->body.data, '\0', req->body.len) != NULL ||
		!pg_verifymbstr(req->body.data, req->body.len, true))
		return respond_text(req->conn, MHD_HTTP_BAD_REQUEST, "the body is not valid text\n");

	edge_sql(req, sql_webhook);
	if (req->sqlstate != 0)
	{
		status = webhook_status(req->sqlstate);
		log_failure(req, status, "webhook");
		initStringInfo(&s);
		appendStringInfoString(&s, "{\"error\": ");
		escape_json(&s, req->error);
		appendStringInfoString(&s, "}\n");
		return respond(req->conn, status, "application/json", s.data, NULL);
	}
	initStringInfo(&s);
	appendStringInfoChar(&s, '{');
	for (i = 0; i < 7; i++)
		appendStringInfo(&s, "\"%s\": %s, ", names[i], req->result[i] ? req->result[i] : "null");
	appendStringInfoString(&s, "\"confirm_url\": ");
	if (req->result[7])
		escape_json(&s, req->result[7]);
	else
		appendStringInfoString(&s, "null");
	appendStringInfoString(&s, "}\n");
	return respond(req->conn, MHD_HTTP_OK, "application/json", s.data, NULL);
}

static enum MHD_Result
handle_confirm(EdgeRequest *req)
{
	const char *title;

	edge_sql(req, req->post ? sql_confirm : sql_confirm_page);
	if (req->sqlstate != 0)
	{
		const char *s = unpack_sql_state(req->sqlstate);

		if (strncmp(s, "22", 2) == 0)
		{
			log_failure(req, MHD_HTTP_BAD_REQUEST, "confirm");
			return respond(req->conn, MHD_HTTP_BAD_REQUEST, "text/html; charset=utf-8",
						   page("Invalid link",
								"This confirmation link is not valid or has expired. "
								"Subscribe again to get a new one.", NULL), NULL);
		}
		log_failure(req, MHD_HTTP_SERVICE_UNAVAILABLE, "confirm");
		return respond(req->conn, MHD_HTTP_SERVICE_UNAVAILABLE, "text/html; charset=utf-8",
					   page("Please try again",
							"We could not process your request right now. Please try again in a few minutes.",
							NULL), NULL);
	}
	title = req->result[0] ? req->result[0] : "Confirm your subscription";
	if (!req->post)
		return respond(req->conn, MHD_HTTP_OK, "text/html; charset=utf-8",
					   page(title,
							req->result[1] ? req->result[1] : "Please confirm that you want to receive these emails.",
							req->result[2] ? req->result[2] : "Confirm"), NULL);
	return respond(req->conn, MHD_HTTP_OK, "text/html; charset=utf-8",
				   page(title, req->result[3] ? req->result[3] : "Thank you: your subscription is confirmed.",
						NULL), NULL);
}

static enum MHD_Result
handle_track(EdgeRequest *req)
{
	edge_sql(req, sql_track);
	if (req->sqlstate != 0)
	{
		const char *s = unpack_sql_state(req->sqlstate);

		if (strncmp(s, "22", 2) == 0)
		{
			log_failure(req, MHD_HTTP_BAD_REQUEST, "tracking");
			return respond_text(req->conn, MHD_HTTP_BAD_REQUEST, "invalid link\n");
		}
		log_failure(req, MHD_HTTP_SERVICE_UNAVAILABLE, "tracking");
		return respond_text(req->conn, MHD_HTTP_SERVICE_UNAVAILABLE, "please try again\n");
	}
	if (req->route == ROUTE_CLICK)
	{
		if (req->result[0] == NULL)
			return respond_text(req->conn, MHD_HTTP_BAD_REQUEST, "invalid link\n");
		return respond_tracking(req->conn, req->result[0]);
	}
	return respond_tracking(req->conn, NULL);
}

/*
 * The client's address: the peer's, or behind a proxy on this host the
 * last X-Forwarded-For entry (the one the proxy added).  Only kept as a
 * record (consent) or a hint (Apple's proxy), never trusted for access.
 */
static char *
client_address(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;
	char		buf[INET6_ADDRSTRLEN];
	bool		loopback = false;
	const char *xff;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	buf[0] = '\0';
	if (ci != NULL && ci->client_addr != NULL)
	{
		const struct sockaddr *sa = ci->client_addr;

		if (sa->sa_family == AF_INET)
		{
			const struct sockaddr_in *in = (const struct sockaddr_in *) sa;

			inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf));
			loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
		}
		else if (sa->sa_family == AF_INET6)
		{
			const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;

			inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf));
			loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
		}
	}
	xff = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-For");
	if (loopback && xff != NULL)
	{
		const char *last = strrchr(xff, ',');
		char	   *v;
		char	   *e;

		v = pstrdup(last ? last + 1 : xff);
		while (*v == ' ' || *v == '\t')
			v++;
		for (e = v + strlen(v); e > v && (e[-1] == ' ' || e[-1] == '\t'); e--)
			e[-1] = '\0';
		/* SQL casts it to inet, or keeps NULL */
		if (*v != '\0' && strlen(v) <= 45 && strspn(v, "0123456789abcdefABCDEF:.") == strlen(v))
			return v;
	}
	return buf[0] ? pstrdup(buf) : NULL;
}

static enum MHD_Result
handle_metrics(EdgeRequest *req)
{
	edge_sql(req, sql_metrics);
	if (req->sqlstate != 0)
	{
		log_failure(req, MHD_HTTP_SERVICE_UNAVAILABLE, "metrics");
		return respond_text(req->conn, MHD_HTTP_SERVICE_UNAVAILABLE, "metrics are not available\n");
	}
	return respond(req->conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
				   req->result[0] ? req->result[0] : "", NULL);
}

/* ---- routing ---- */

static enum MHD_Result
collect_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	EdgeRequest *req = (EdgeRequest *) cls;
	MemoryContext old = MemoryContextSwitchTo(req->cxt);
	char	   *name = pstrdup(key);
	char	   *p;

	for (p = name; *p; p++)
		*p = pg_ascii_tolower((unsigned char) *p);
	/* a header that is not valid text cannot be passed on; the signature check will fail */
	if (pg_verifymbstr(value ? value : "", value ? strlen(value) : 0, true))
	{
		req->hnames = lappend(req->hnames, name);
		req->hvalues = lappend(req->hvalues, pstrdup(value ? value : ""));
	}
	MemoryContextSwitchTo(old);
	return MHD_YES;
}

/* one non-empty path segment: no slash */
static bool
segment(const char *s, const char **end)
{
	const char *p = s;

	while (*p && *p != '/')
		p++;
	*end = p;
	return p > s;
}

/*
 * Matches the path; on a match returns true with the route and the
 * methods it allows.
 */
static bool
match_route(const char *url, EdgeRoute *route, const char **allow, char **a1, char **a2)
{
	const char *e1;
	const char *e2;

	*a1 = *a2 = NULL;
	if (strncmp(url, "/u/", 3) == 0 && segment(url + 3, &e1) && *e1 == '\0')
	{
		*route = ROUTE_UNSUBSCRIBE;
		*allow = "GET, HEAD, POST";
		*a1 = pstrdup(url + 3);
		return true;
	}
	if (strncmp(url, "/hooks/", 7) == 0 && segment(url + 7, &e1) && *e1 == '/' &&
		segment(e1 + 1, &e2) && *e2 == '\0')
	{
		*route = ROUTE_HOOK;
		*allow = "POST";
		*a1 = pnstrdup(url + 7, e1 - (url + 7));
		*a2 = pstrdup(e1 + 1);
		return true;
	}
	if (strncmp(url, "/c/", 3) == 0 && segment(url + 3, &e1) && *e1 == '\0')
	{
		*route = ROUTE_CONFIRM;
		*allow = "GET, HEAD, POST";
		*a1 = pstrdup(url + 3);
		return true;
	}
	if ((strncmp(url, "/t/c/", 5) == 0 || strncmp(url, "/t/o/", 5) == 0) &&
		segment(url + 5, &e1) && *e1 == '\0')
	{
		*route = url[3] == 'c' ? ROUTE_CLICK : ROUTE_OPEN;
		*allow = "GET, HEAD";
		*a1 = pstrdup(url + 5);
		return true;
	}
	if (strcmp(url, "/metrics") == 0)
	{
		*route = ROUTE_METRICS;
		*allow = "GET, HEAD";
		return true;
	}
	return false;
}

static bool
method_allowed(const char *allow, const char *method)
{
	const char *p = strstr(allow, method);
	size_t		n = strlen(method);

	return p != NULL && (p == allow || p[-1] == ' ') && (p[n] == '\0' || p[n] == ',');
}

enum MHD_Result
edge_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	EdgeRequest *req = (EdgeRequest *) *con_cls;

	if (req == (EdgeRequest *) &answered_early)
	{
		*upload_data_size = 0;
		return MHD_YES;
	}

	if (req == NULL)
	{
		/* the headers are in: route, and refuse what we can before any body */
		MemoryContext cxt;
		MemoryContext old;
		EdgeRoute	route;
		const char *allow;
		char	   *a1;
		char	   *a2;
		const char *clen;

		cxt = AllocSetContextCreate(TopMemoryContext, "broadcast_engine edge request",
									ALLOCSET_SMALL_SIZES);
		old = MemoryContextSwitchTo(cxt);
		if (!match_route(url, &route, &allow, &a1, &a2))
		{
			MemoryContextSwitchTo(old);
			MemoryContextDelete(cxt);
			*con_cls = &answered_early;
			return respond_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
		}
		if (!method_allowed(allow, method))
		{
			MemoryContextSwitchTo(old);
			MemoryContextDelete(cxt);
			*con_cls = &answered_early;
			return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
						   "method not allowed\n", allow);
		}
		clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (clen != NULL && strtoull(clen, NULL, 10) > (unsigned long long) be_http_max_body)
		{
			MemoryContextSwitchTo(old);
			MemoryContextDelete(cxt);
			*con_cls = &answered_early;
			return respond_text(conn, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large\n");
		}

		req = palloc0(sizeof(EdgeRequest));
		req->cxt = cxt;
		req->conn = conn;
		req->route = route;
		req->arg1 = a1;
		req->arg2 = a2;
		req->post = (strcmp(method, MHD_HTTP_METHOD_POST) == 0);
		req->head = (strcmp(method, MHD_HTTP_METHOD_HEAD) == 0);
		initStringInfo(&req->body);
		if (route == ROUTE_CONFIRM || route == ROUTE_CLICK || route == ROUTE_OPEN)
			req->client_ip = client_address(conn);
		if (route == ROUTE_CLICK || route == ROUTE_OPEN)
		{
			const char *ua = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
														 MHD_HTTP_HEADER_USER_AGENT);

			/* passed to SQL as text: only what is valid there, and not more than it keeps */
			if (ua != NULL && strlen(ua) <= 2000 && pg_verifymbstr(ua, strlen(ua), true))
				req->user_agent = pstrdup(ua);
		}
		if (route == ROUTE_HOOK)
			MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, req);
		MemoryContextSwitchTo(old);
		*con_cls = req;
		return MHD_YES;
	}

	if (*upload_data_size > 0)
	{
		/* a chunked body may still outgrow the limit: keep reading, answer 413 at the end */
		if (!req->too_large)
		{
			if (req->body.len + *upload_data_size > (size_t) be_http_max_body)
				req->too_large = true;
			else
			{
				MemoryContext old = MemoryContextSwitchTo(req->cxt);

				appendBinaryStringInfo(&req->body, upload_data, (int) *upload_data_size);
				MemoryContextSwitchTo(old);
			}
		}
		*upload_data_size = 0;
		return MHD_YES;
	}

	/* the whole request is in: answer */
	if (req->too_large)
		return respond_text(conn, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large\n");
	{
		MemoryContext old = MemoryContextSwitchTo(req->cxt);
		enum MHD_Result ret;

		/* the route only: a token in pg_stat_activity would be an unsubscribe link */
		switch (req->route)
		{
			case ROUTE_UNSUBSCRIBE:
				pgstat_report_activity(STATE_RUNNING, "edge: unsubscribe");
				ret = handle_unsubscribe(req);
				break;
			case ROUTE_HOOK:
				pgstat_report_activity(STATE_RUNNING, "edge: webhook");
				ret = handle_hook(req);
				break;
			case ROUTE_CONFIRM:
				pgstat_report_activity(STATE_RUNNING, "edge: confirm");
				ret = handle_confirm(req);
				break;
			case ROUTE_CLICK:
			case ROUTE_OPEN:
				pgstat_report_activity(STATE_RUNNING, "edge: tracking");
				ret = handle_track(req);
				break;
			case ROUTE_METRICS:
			default:
				pgstat_report_activity(STATE_RUNNING, "edge: metrics");
				ret = handle_metrics(req);
				break;
		}
		pgstat_report_activity(STATE_IDLE, NULL);
		MemoryContextSwitchTo(old);
		return ret;
	}
}

void
edge_request_done(void *cls, struct MHD_Connection *conn, void **con_cls,
				  enum MHD_RequestTerminationCode toe)
{
	EdgeRequest *req = (EdgeRequest *) *con_cls;

	if (req != NULL && req != (EdgeRequest *) &answered_early)
		MemoryContextDelete(req->cxt);
	*con_cls = NULL;
	/* a kept-alive connection has the full time again for its next request */
	edge_connection_rearm(conn);
}
