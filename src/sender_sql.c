/*-------------------------------------------------------------------------
 *
 * sender_sql.c
 *	  Every statement of the sender, behind typed functions.
 *
 * sender.c (claim, caches) and sender_record.c (the record of a batch) call
 * these inside units of work (exec.c: be_exec_unit, be_plan_exec); each
 * statement is prepared once per process.  Arguments and results are C
 * structs (be_sender_sql.h): what a statement's columns mean is written
 * down here only.  Results are allocated in the caller's memory context,
 * and nothing here keeps a pointer into SPI's result after returning.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "broadcast_engine.h"
#include "be_sender.h"
#include "be_sender_sql.h"
#include "compose.h"

static BePlan pairs_plan = {
	"SELECT workspace_id, integration_id, next_attempt_at FROM broadcast.active_pairs",
	0, {InvalidOid}, NULL, false, true
};

static BePlan integ_plan = {
	"SELECT i.provider, i.shared_id, coalesce(sh.secret, s.secret),"
	/* rates within what a double and the bucket arithmetic hold (src/ratelimit.c) */
	"       CASE WHEN i.rate_per_second IS NULL THEN 0"
	"            ELSE least(greatest(i.rate_per_second, 0.001), 1000000) END::float8,"
	"       CASE WHEN sh.rate_per_second IS NULL THEN 0"
	"            ELSE least(greatest(sh.rate_per_second, 0.001), 1000000) END::float8,"
	"       c->>'endpoint', c->>'host', (c->>'port')::int4, coalesce(c->>'tls', 'starttls'),"
	"       c->>'username', c->>'ehlo_name', c->>'ca_file',"
	"       c->>'domain', c->>'region', c->>'message_stream', c->>'access_key_id',"
	"       c->>'configuration_set', c->>'api_key', i.incarnation::text, sh.incarnation::text,"
	/* VERP (smtp): the bounce address, and the workspace's secret that signs its tokens */
	"       c->>'bounce_domain', coalesce(c->>'bounce_local', 'bounces'),"
	"       CASE WHEN c ? 'bounce_domain' THEN ws.unsubscribe_secret END"
	"  FROM broadcast.integrations i"
	"  LEFT JOIN broadcast.integration_secrets s"
	"         ON s.workspace_id = i.workspace_id AND s.integration_id = i.integration_id"
	"  LEFT JOIN broadcast.shared_integrations sh ON sh.shared_id = i.shared_id"
	"  CROSS JOIN LATERAL (SELECT coalesce(sh.config, i.config) AS c) cfg"
	"  LEFT JOIN broadcast.workspace_secrets ws ON ws.workspace_id = i.workspace_id"
	" WHERE i.workspace_id = $1 AND i.integration_id = $2",
	2, {TEXTOID, TEXTOID}
};

/*
 * Due rows of one pair, skipping paused and cancelled broadcasts; with the
 * contact's data.  A row is claimed only if its broadcast exists and was
 * scheduled in this database (its instance nonce is current): rows of a
 * restored dump are skipped from the moment they are loaded, in whatever
 * order pg_restore loads the tables (see the 1.3 script, 10_backup.sql).
 * The broadcasts that may send are listed once per claim (an InitPlan over
 * the workspace's broadcasts); a correlated probe per candidate row made
 * the claim 25 times slower.  The lease is lease_until, which no index
 * covers, so the claim is a HOT update (see the 1.2 upgrade script);
 * status and next_attempt_at stay as they are.  A test send (send_test)
 * renders with the data of the contact its row names in data_email.
 *
 * A candidate of a broadcast with a sending window that is closed for it
 * now (in its contact's or the workspace's zone) is not claimed: its
 * next_attempt_at moves to the window's opening, no attempt spent
 * (88_windows_caps.sql).  The broadcasts with a window are listed once per
 * claim too, so a row of a broadcast without one costs a test against an
 * (almost always empty) array.  The last row of the result is not a
 * message: its ctid is NULL and its last column counts the rows moved.
 */
static BePlan claim_plan = {
	"WITH cand AS MATERIALIZED ("
	"  SELECT d.ctid AS tid, d.broadcast_id, d.email FROM broadcast.email_queue d"
	"   WHERE d.workspace_id = $1 AND d.integration_id = $2"
	"     AND d.status IN ('pending', 'sending') AND d.next_attempt_at <= now()"
	"     AND d.next_attempt_at >= $5"
	"     AND (d.lease_until IS NULL OR d.lease_until <= now())"
	"     AND d.broadcast_id = ANY (ARRAY(SELECT b.broadcast_id FROM broadcast.broadcasts b"
	"          WHERE b.workspace_id = $1 AND b.status NOT IN ('paused', 'cancelled')"
	"            AND b.instance_nonce = (SELECT i.nonce FROM broadcast.instance i)))"
	"   ORDER BY d.next_attempt_at"
	"   LIMIT $3"
	"   FOR UPDATE SKIP LOCKED"
	"), w AS MATERIALIZED ("
	"  SELECT cand.tid,"
	"         CASE WHEN cand.broadcast_id = ANY (ARRAY(SELECT b.broadcast_id FROM broadcast.broadcasts b"
	"                   WHERE b.workspace_id = $1 AND b.send_window IS NOT NULL))"
	"              THEN broadcast._window_wait($1, cand.broadcast_id, cand.email) END AS opens"
	"    FROM cand"
	"), park AS ("
	"  UPDATE broadcast.email_queue q"
	"     SET next_attempt_at = (SELECT w.opens FROM w WHERE w.tid = q.ctid)"
	"   WHERE q.ctid = ANY (ARRAY(SELECT w.tid FROM w WHERE w.opens IS NOT NULL))"
	"  RETURNING 1"
	"), c AS ("
	"  UPDATE broadcast.email_queue q"
	"     SET attempts = q.attempts + 1, lease_until = now() + make_interval(secs => $4)"
	"   WHERE q.ctid = ANY (ARRAY(SELECT w.tid FROM w WHERE w.opens IS NULL))"
	"  RETURNING q.ctid, q.broadcast_id, q.email, q.list_id, q.variation, q.message_id, q.attempts,"
	"            q.next_attempt_at, q.data_email"
	")"
	"SELECT c.ctid, c.broadcast_id, c.email, c.list_id, c.variation::int4, c.message_id::text, c.attempts::int4,"
	"       ct.properties::text, ct.first_name, ct.last_name, ct.language, ct.timezone, c.next_attempt_at,"
	"       NULL::int4"
	"  FROM c LEFT JOIN broadcast.contacts ct"
	"         ON ct.workspace_id = $1 AND ct.email = coalesce(c.data_email, c.email)"
	" UNION ALL "
	"SELECT NULL::tid, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
	"       (SELECT count(*) FROM park)::int4",
	5, {TEXTOID, TEXTOID, INT4OID, FLOAT8OID, TIMESTAMPTZOID}, NULL, false, true
};

/*
 * The pair's caps, in the claim's transaction: how many of want it may
 * claim, reserved against its hourly and daily counts with the counter
 * rows locked (88_windows_caps.sql); be_cap_add gives back what the
 * claim did not use.
 */
static BePlan cap_reserve_plan = {
	"SELECT granted, reason, wait_until, hour_start, day_start"
	"  FROM broadcast._cap_reserve($1, $2, $3)",
	3, {TEXTOID, TEXTOID, INT4OID}
};

/* moves a pair's cap reservation, in the periods of its claim (88_windows_caps.sql) */
static BePlan cap_add_plan = {
	"SELECT broadcast._cap_add($1, $2, $3, $4, $5)",
	5, {TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID}
};

/* a broadcast and every variation's pinned template, in one query */
static BePlan broadcast_plan = {
	"SELECT v.variation::int4, v.template_id, v.version, t.subject, t.html, t.text_body,"
	"       coalesce(t.from_email, w.settings->>'default_from_email'),"
	"       coalesce(t.from_name, w.settings->>'default_from_name'), t.reply_to,"
	"       b.name, w.name, w.settings->>'sending_domain', w.settings->>'unsubscribe_base_url',"
	"       w.settings->>'unsubscribe_mailto', s.unsubscribe_secret,"
	"       (SELECT jsonb_object_agg(l.list_id, l.name) FROM broadcast.lists l"
	"         WHERE l.workspace_id = b.workspace_id AND l.list_id = ANY (b.lists))::text,"
	/*
	 * first-party tracking: the broadcast's switch, else the workspace's
	 * (86_optin_tracking.sql); never in an opt-in confirmation, sent before
	 * any consent
	 */
	"       CASE WHEN b.kind = 'broadcast'"
	"             AND coalesce(b.tracking, (w.settings->'tracking'->>'enabled')::boolean, false)"
	"            THEN w.settings->'tracking'->>'base_url' END,"
	"       CASE WHEN b.kind = 'optin' THEN w.settings->'double_opt_in'->>'base_url' END,"
	"       w.timezone,"
	/* the sources of the snippet versions pinned with the template */
	"       (SELECT jsonb_object_agg(p.key, sn.html) FROM jsonb_each_text(v.snippets) p"
	"          JOIN broadcast.templates sn ON sn.workspace_id = v.workspace_id"
	"           AND sn.template_id = p.key AND sn.version = p.value::int)::text"
	"  FROM broadcast.broadcast_variations v"
	"  JOIN broadcast.templates t ON t.workspace_id = v.workspace_id"
	"       AND t.template_id = v.template_id AND t.version = v.version"
	"  JOIN broadcast.broadcasts b ON b.workspace_id = v.workspace_id AND b.broadcast_id = v.broadcast_id"
	"  JOIN broadcast.workspaces w ON w.workspace_id = v.workspace_id"
	"  JOIN broadcast.workspace_secrets s ON s.workspace_id = v.workspace_id"
	" WHERE v.workspace_id = $1 AND v.broadcast_id = $2"
	" ORDER BY v.variation",
	2, {TEXTOID, TEXTOID}
};

/* the broadcasts whose counters a batch moves, locked in one order */
static BePlan lock_broadcasts_plan = {
	"SELECT 1 FROM broadcast.broadcasts b"
	" WHERE b.workspace_id = $1 AND b.broadcast_id = ANY ($2)"
	" ORDER BY b.broadcast_id FOR NO KEY UPDATE",
	2, {TEXTOID, TEXTARRAYOID}
};

/*
 * The whole batch's outcome in one statement: history rows, queue rows
 * deleted / rescheduled / dead-lettered, broadcast counters.  Queue rows are
 * found by the ctid the claim returned (a TID scan, no index probe), and
 * only if they still carry our message id and lease; counters move by the
 * rows actually changed, so a row whose lease ran out and was claimed again
 * elsewhere is not counted twice.  Each broadcast's message id range grows
 * to cover every history row written or updated here (a row skipped for a
 * lost lease included: a wider range is harmless), so its statistics read
 * the history's primary key instead of an index paid for on every insert;
 * uuid has no min() or max(), and its text in "C" order is its byte order.
 * A row that stays in the queue takes its
 * broadcast's integration: update_broadcast(integration_id => ...) moves
 * the rows that were not in flight (the 1.3 trigger in 50_endpoints.sql),
 * and the broadcasts are locked before this runs, so the rows that were in
 * flight follow here.  A message recorded a second time (sent again after
 * its lease ran out, or a dead letter retried) updates its history row:
 * message_history is partitioned with no index on its root, so ON CONFLICT
 * can name no target; the rows the insert skipped are updated instead,
 * which only probes the history for those (the skipped rows are
 * materialised first: otherwise the planner probes the history for every
 * row of the batch before the anti-join drops them).  A row committed by another
 * sender after this statement began is skipped, not updated: the first
 * record of a message sent twice at once wins.
 */
static BePlan complete_plan = {
	"WITH r AS ("
	"  SELECT * FROM unnest($4::tid[], $5::text[], $6::text[], $7::text[], $8::int4[], $9::text[],"
	"                       $10::text[], $11::int4[], $12::text[], $13::text[], $14::text[],"
	"                       $15::int4[], $16::int4[])"
	"    AS r(tid, broadcast_id, email, message_id, variation, list_id, template_id,"
	"         template_version, outcome, provider_message_id, error, retry_ms, attempts)"
	"), ins AS ("
	"  INSERT INTO broadcast.message_history AS h"
	"         (workspace_id, message_id, broadcast_id, template_id, template_version, variation,"
	"          list_id, email, integration_id, provider, provider_message_id, status, attempts,"
	"          error, sent_at, failed_at)"
	"  SELECT $1, r.message_id::uuid, r.broadcast_id, r.template_id, r.template_version,"
	"         r.variation::int2, r.list_id, r.email, $2, $3, r.provider_message_id,"
	"         CASE r.outcome WHEN 'sent' THEN 'sent' ELSE 'failed' END, r.attempts::int2, r.error,"
	"         CASE WHEN r.outcome = 'sent' THEN now() END,"
	"         CASE WHEN r.outcome = 'dead' THEN now() END"
	"    FROM r WHERE r.outcome IN ('sent', 'dead')"
	"  ON CONFLICT DO NOTHING"
	"  RETURNING h.message_id"
	"), again AS MATERIALIZED ("
	"  SELECT r.* FROM r"
	"   WHERE r.outcome IN ('sent', 'dead')"
	"     AND NOT EXISTS (SELECT 1 FROM ins WHERE ins.message_id = r.message_id::uuid)"
	"), hist AS ("
	"  UPDATE broadcast.message_history h"
	"     SET status = CASE r.outcome WHEN 'sent' THEN 'sent' ELSE 'failed' END,"
	"         provider_message_id = r.provider_message_id, attempts = r.attempts::int2,"
	"         error = r.error, sent_at = CASE WHEN r.outcome = 'sent' THEN now() END,"
	"         failed_at = CASE WHEN r.outcome = 'dead' THEN now() END"
	"    FROM again r"
	"   WHERE h.workspace_id = $1 AND h.message_id = r.message_id::uuid"
	"  RETURNING 1"
	"), del AS ("
	"  DELETE FROM broadcast.email_queue q USING r"
	"   WHERE q.ctid = r.tid AND q.message_id = r.message_id::uuid AND q.lease_until IS NOT NULL"
	"     AND r.outcome = 'sent'"
	"  RETURNING q.broadcast_id"
	"), upd AS ("
	"  UPDATE broadcast.email_queue q"
	"     SET status = CASE r.outcome WHEN 'dead' THEN 'dead' ELSE 'pending' END,"
	"         next_attempt_at = CASE r.outcome WHEN 'dead' THEN q.next_attempt_at"
	"                                ELSE now() + make_interval(secs => r.retry_ms / 1000.0) END,"
	"         attempts = CASE r.outcome WHEN 'unsent' THEN q.attempts - 1 ELSE q.attempts END,"
	"         last_error = coalesce(r.error, q.last_error), lease_until = NULL,"
	"         integration_id = coalesce((SELECT b.integration_id FROM broadcast.broadcasts b"
	"                                     WHERE b.workspace_id = q.workspace_id"
	"                                       AND b.broadcast_id = q.broadcast_id), q.integration_id)"
	"    FROM r"
	"   WHERE q.ctid = r.tid AND q.message_id = r.message_id::uuid AND q.lease_until IS NOT NULL"
	"     AND r.outcome IN ('retry', 'dead', 'unsent')"
	"  RETURNING q.broadcast_id, q.status"
	"), counts AS ("
	"  SELECT x.broadcast_id, sum(x.sent) AS sent, sum(x.failed) AS failed,"
	"         min(x.mid COLLATE \"C\")::uuid AS lo, max(x.mid COLLATE \"C\")::uuid AS hi FROM ("
	"    SELECT d.broadcast_id, 1 AS sent, 0 AS failed, NULL::text AS mid FROM del d"
	"    UNION ALL"
	"    SELECT u.broadcast_id, 0, 1, NULL FROM upd u WHERE u.status = 'dead'"
	"    UNION ALL"
	"    SELECT r.broadcast_id, 0, 0, r.message_id::uuid::text FROM r"
	"     WHERE r.outcome IN ('sent', 'dead')) x"
	"   GROUP BY x.broadcast_id"
	")"
	"UPDATE broadcast.broadcasts b"
	"   SET sent_count = b.sent_count + c.sent, failed_count = b.failed_count + c.failed,"
	"       first_message_id = least(b.first_message_id, c.lo),"
	"       last_message_id = greatest(b.last_message_id, c.hi),"
	"       updated_at = now()"
	"  FROM counts c"
	" WHERE b.workspace_id = $1 AND b.broadcast_id = c.broadcast_id"
	"   AND (SELECT count(*) FROM hist) >= 0",
	16, {TEXTOID, TEXTOID, TEXTOID, TIDARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
		INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
	TEXTARRAYOID, INT4ARRAYOID, INT4ARRAYOID},
	NULL, true, true
};

/* a broadcast waiting for its queue to drain is looked at as soon as it has */
static BePlan nudge_plan = {
	"UPDATE broadcast.tasks t SET run_at = now(), updated_at = now()"
	" WHERE t.workspace_id = $1 AND t.broadcast_id = ANY ($2) AND t.status = 'pending'"
	"   AND t.phase IN ('drain', 'wait_test') AND t.run_at > now()"
	"   AND NOT EXISTS (SELECT 1 FROM broadcast.email_queue q"
	"                    WHERE q.workspace_id = $1 AND q.broadcast_id = t.broadcast_id"
	"                      AND q.status IN ('pending', 'sending'))",
	2, {TEXTOID, TEXTARRAYOID}, NULL, false, true
};

/*
 * be_plan_exec, coming back to the caller's memory context: SPI leaves its
 * own procedure context current, which a worker's commit frees.
 */
static int
exec_plan(BePlan *p, Datum *values, const char *nulls, int expected)
{
	MemoryContext caller = CurrentMemoryContext;
	int			n = be_plan_exec(p, values, nulls, expected);

	MemoryContextSwitchTo(caller);
	return n;
}

/* ---- reading results ---- */

static char *
col_text(HeapTuple tup, TupleDesc desc, int col)
{
	return SPI_getvalue(tup, desc, col);
}

static int
col_int(HeapTuple tup, TupleDesc desc, int col, int dflt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? dflt : DatumGetInt32(d);
}

static double
col_float(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? 0.0 : DatumGetFloat8(d);
}

/* a timestamptz column; null when NULL */
static TimestampTz
col_ts(HeapTuple tup, TupleDesc desc, int col, TimestampTz null)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? null : DatumGetTimestampTz(d);
}

/* a bytea column, copied (palloc'd); NULL when NULL */
static uint8 *
col_bytes(HeapTuple tup, TupleDesc desc, int col, size_t *len)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);
	bytea	   *b;
	uint8	   *out;

	*len = 0;
	if (isnull)
		return NULL;
	b = DatumGetByteaPP(d);
	*len = VARSIZE_ANY_EXHDR(b);
	out = palloc(Max(*len, 1));
	memcpy(out, VARDATA_ANY(b), *len);
	return out;
}

/* ---- building arguments ---- */

static Datum
text_array(Datum *elems, bool *nulls, int n)
{
	int			dims[1];
	int			lbs[1];

	dims[0] = n;
	lbs[0] = 1;
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
}

static Datum
int_array(Datum *elems, int n)
{
	return PointerGetDatum(construct_array(elems, n, INT4OID, 4, true, TYPALIGN_INT));
}

static Datum
text_or_null(const char *s, bool *isnull)
{
	*isnull = (s == NULL);
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

/* ---- the sender's statements ---- */

/* the pairs with queued rows; returns their number */
int
be_sql_active_pairs(BePairRow **rows)
{
	int			n = exec_plan(&pairs_plan, NULL, NULL, SPI_OK_SELECT);
	BePairRow  *out = palloc0(sizeof(BePairRow) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		out[i].workspace_id = col_text(tup, desc, 1);
		out[i].integration_id = col_text(tup, desc, 2);
		out[i].next_due = col_ts(tup, desc, 3, DT_NOEND);
	}
	*rows = out;
	return n;
}

bool
be_sql_load_integration(const char *ws, const char *integ, BeIntegration *ig)
{
	Datum		args[2];
	HeapTuple	tup;
	TupleDesc	desc;
	char	   *port;

	args[0] = CStringGetTextDatum(ws);
	args[1] = CStringGetTextDatum(integ);
	if (exec_plan(&integ_plan, args, NULL, SPI_OK_SELECT) != 1)
		return false;
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;

	ig->provider = col_text(tup, desc, 1);
	ig->shared_id = col_text(tup, desc, 2);
	ig->secret = col_text(tup, desc, 3);
	ig->rate = col_float(tup, desc, 4);
	ig->account_rate = col_float(tup, desc, 5);
	ig->endpoint = col_text(tup, desc, 6);
	ig->host = col_text(tup, desc, 7);
	port = col_text(tup, desc, 8);
	ig->port = port ? atoi(port) : 0;
	ig->tls = col_text(tup, desc, 9);
	ig->username = col_text(tup, desc, 10);
	ig->ehlo_name = col_text(tup, desc, 11);
	ig->ca_file = col_text(tup, desc, 12);
	ig->domain = col_text(tup, desc, 13);
	ig->region = col_text(tup, desc, 14);
	ig->message_stream = col_text(tup, desc, 15);
	ig->access_key_id = col_text(tup, desc, 16);
	ig->configuration_set = col_text(tup, desc, 17);
	ig->api_key = col_text(tup, desc, 18);
	ig->incarnation = col_text(tup, desc, 19);
	ig->shared_incarnation = col_text(tup, desc, 20);
	ig->bounce_domain = col_text(tup, desc, 21);
	ig->bounce_local = col_text(tup, desc, 22);
	ig->verp_secret = NULL;
	ig->verp_secret_len = 0;
	if (ig->bounce_domain)
		ig->verp_secret = (char *) col_bytes(tup, desc, 23, &ig->verp_secret_len);
	if (ig->verp_secret == NULL)
		ig->verp_secret_len = 0;
	return true;
}

int
be_sql_load_broadcast(const char *ws, const char *bid, ComposeBroadcastSrc *src)
{
	Datum		args[2];
	int			n;
	int			i;

	memset(src, 0, sizeof(*src));
	src->workspace_id = ws;
	src->broadcast_id = bid;
	args[0] = CStringGetTextDatum(ws);
	args[1] = CStringGetTextDatum(bid);
	n = exec_plan(&broadcast_plan, args, NULL, SPI_OK_SELECT);
	for (i = 0; i < n && i < COMPOSE_MAX_VARIATIONS; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		ComposeTemplateSrc *t = &src->variations[i];

		t->template_id = col_text(tup, desc, 2);
		t->version = col_int(tup, desc, 3, 0);
		t->subject = col_text(tup, desc, 4);
		t->html = col_text(tup, desc, 5);
		t->text_body = col_text(tup, desc, 6);
		t->from_email = col_text(tup, desc, 7);
		t->from_name = col_text(tup, desc, 8);
		t->reply_to = col_text(tup, desc, 9);
		t->snippets_json = col_text(tup, desc, 20);
		if (i == 0)
		{
			src->broadcast_name = col_text(tup, desc, 10);
			src->workspace_name = col_text(tup, desc, 11);
			src->sending_domain = col_text(tup, desc, 12);
			src->unsub_base_url = col_text(tup, desc, 13);
			src->unsub_mailto = col_text(tup, desc, 14);
			src->secret = col_bytes(tup, desc, 15, &src->secret_len);
			src->lists_json = col_text(tup, desc, 16);
			src->track_base_url = col_text(tup, desc, 17);
			src->confirm_base_url = col_text(tup, desc, 18);
			src->workspace_timezone = col_text(tup, desc, 19);
		}
	}
	src->nvariations = Min(n, COMPOSE_MAX_VARIATIONS);
	return n;
}

/*
 * Reserves up to want messages against the pair's caps; the counter rows
 * stay locked until the transaction ends.
 */
void
be_sql_cap_reserve(const char *ws, const char *integ, int want, BeCapGrant *out)
{
	Datum		args[3];
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;

	memset(out, 0, sizeof(*out));
	args[0] = CStringGetTextDatum(ws);
	args[1] = CStringGetTextDatum(integ);
	args[2] = Int32GetDatum(want);
	if (exec_plan(&cap_reserve_plan, args, NULL, SPI_OK_SELECT) != 1)
		return;
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	out->found = true;
	out->granted = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
	(void) SPI_getbinval(tup, desc, 4, &isnull);
	if (!isnull)
	{
		out->capped = true;
		out->hour_start = col_ts(tup, desc, 4, 0);
		out->day_start = col_ts(tup, desc, 5, 0);
	}
	(void) SPI_getbinval(tup, desc, 3, &isnull);
	out->has_wait = !isnull;
	out->wait_until = col_ts(tup, desc, 3, 0);
}

void
be_sql_cap_add(const char *ws, const char *integ, TimestampTz hour, TimestampTz day, int n)
{
	Datum		args[5];

	args[0] = CStringGetTextDatum(ws);
	args[1] = CStringGetTextDatum(integ);
	args[2] = TimestampTzGetDatum(hour);
	args[3] = TimestampTzGetDatum(day);
	args[4] = Int32GetDatum(n);
	exec_plan(&cap_add_plan, args, NULL, SPI_OK_SELECT);
}

void
be_sql_claim(const BeClaimArgs *in, BeClaimResult *out)
{
	Datum		args[5];
	int			nrows;
	int			i;

	args[0] = CStringGetTextDatum(in->workspace_id);
	args[1] = CStringGetTextDatum(in->integration_id);
	args[2] = Int32GetDatum(in->want);
	args[3] = Float8GetDatum(in->lease_s);
	args[4] = TimestampTzGetDatum(in->claim_from);
	nrows = exec_plan(&claim_plan, args, NULL, SPI_OK_SELECT);

	out->rows = palloc0(sizeof(BeClaimRow) * Max(nrows, 1));
	out->nrows = 0;
	out->parked = 0;
	for (i = 0; i < nrows; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		BeClaimRow *r;
		bool		isnull;
		Datum		tid;

		tid = SPI_getbinval(tup, desc, 1, &isnull);
		if (isnull)
		{
			/* not a message: the rows moved to their window's opening */
			out->parked = col_int(tup, desc, 14, 0);
			continue;
		}
		r = &out->rows[out->nrows++];
		ItemPointerCopy((ItemPointer) DatumGetPointer(tid), &r->tid);
		r->broadcast_id = col_text(tup, desc, 2);
		r->email = col_text(tup, desc, 3);
		r->list_id = col_text(tup, desc, 4);
		r->variation = col_int(tup, desc, 5, 0);
		r->message_id = col_text(tup, desc, 6);
		r->attempts = col_int(tup, desc, 7, 0);
		r->properties = col_text(tup, desc, 8);
		if (r->properties)
		{
			r->first_name = col_text(tup, desc, 9);
			r->last_name = col_text(tup, desc, 10);
			r->language = col_text(tup, desc, 11);
			r->timezone = col_text(tup, desc, 12);
		}
		r->next_attempt_at = col_ts(tup, desc, 13, DT_NOBEGIN);
	}
}

/* how the record statement names each kind (its CASE arms) */
static const char *
record_kind_text(BeRecordKind kind)
{
	switch (kind)
	{
		case BE_REC_SENT:
			return "sent";
		case BE_REC_RETRY:
			return "retry";
		case BE_REC_DEAD:
			return "dead";
		case BE_REC_UNSENT:
			return "unsent";
	}
	elog(ERROR, "unknown record kind %d", (int) kind);
	return NULL;				/* keep compiler quiet */
}

/* the batch's columns for the record statement */
enum
{
	RC_BROADCAST,
	RC_EMAIL,
	RC_MESSAGE,
	RC_VARIATION,
	RC_LIST,
	RC_TEMPLATE,
	RC_TEMPLATE_VERSION,
	RC_OUTCOME,
	RC_PROVIDER_ID,
	RC_ERROR,
	RC_RETRY_MS,
	RC_ATTEMPTS,
	RC_NCOLS
};

void
be_sql_record(const char *ws, const char *integ, const char *provider,
			  const BeRecordItem *items, int n)
{
	Datum		args[16];
	Datum	   *col[RC_NCOLS];
	bool	   *nulls[RC_NCOLS];
	Datum	   *tids = palloc(sizeof(Datum) * Max(n, 1));
	Datum		lock_args[2];
	int			i;
	int			k;

	for (k = 0; k < RC_NCOLS; k++)
	{
		col[k] = palloc(sizeof(Datum) * Max(n, 1));
		nulls[k] = palloc0(sizeof(bool) * Max(n, 1));
	}
	for (i = 0; i < n; i++)
	{
		const BeMessage *m = items[i].m;

		tids[i] = PointerGetDatum(&m->tid);
		col[RC_BROADCAST][i] = CStringGetTextDatum(m->broadcast_id);
		col[RC_EMAIL][i] = CStringGetTextDatum(m->email);
		col[RC_MESSAGE][i] = CStringGetTextDatum(m->message_id);
		col[RC_VARIATION][i] = Int32GetDatum(m->variation);
		col[RC_LIST][i] = CStringGetTextDatum(m->list_id);
		col[RC_TEMPLATE][i] = text_or_null(m->template_id, &nulls[RC_TEMPLATE][i]);
		col[RC_TEMPLATE_VERSION][i] = Int32GetDatum(m->template_version);
		col[RC_OUTCOME][i] = CStringGetTextDatum(record_kind_text(items[i].kind));
		col[RC_PROVIDER_ID][i] = text_or_null(m->provider_message_id, &nulls[RC_PROVIDER_ID][i]);
		col[RC_ERROR][i] = text_or_null(m->error, &nulls[RC_ERROR][i]);
		col[RC_RETRY_MS][i] = Int32GetDatum(items[i].retry_ms);
		col[RC_ATTEMPTS][i] = Int32GetDatum(m->attempts);
	}
	args[0] = CStringGetTextDatum(ws);
	args[1] = CStringGetTextDatum(integ);
	args[2] = CStringGetTextDatum(provider);
	args[3] = PointerGetDatum(construct_array(tids, n, TIDOID, sizeof(ItemPointerData),
											  false, TYPALIGN_SHORT));
	args[4] = text_array(col[RC_BROADCAST], nulls[RC_BROADCAST], n);
	args[5] = text_array(col[RC_EMAIL], nulls[RC_EMAIL], n);
	args[6] = text_array(col[RC_MESSAGE], nulls[RC_MESSAGE], n);
	args[7] = int_array(col[RC_VARIATION], n);
	args[8] = text_array(col[RC_LIST], nulls[RC_LIST], n);
	args[9] = text_array(col[RC_TEMPLATE], nulls[RC_TEMPLATE], n);
	args[10] = int_array(col[RC_TEMPLATE_VERSION], n);
	args[11] = text_array(col[RC_OUTCOME], nulls[RC_OUTCOME], n);
	args[12] = text_array(col[RC_PROVIDER_ID], nulls[RC_PROVIDER_ID], n);
	args[13] = text_array(col[RC_ERROR], nulls[RC_ERROR], n);
	args[14] = int_array(col[RC_RETRY_MS], n);
	args[15] = int_array(col[RC_ATTEMPTS], n);

	/*
	 * The batch's broadcasts first, in a fixed order: cancel_broadcast locks
	 * the broadcast and then deletes its queue rows, so taking the queue
	 * rows first and the counters last would deadlock with it.
	 */
	lock_args[0] = args[0];
	lock_args[1] = args[4];
	exec_plan(&lock_broadcasts_plan, lock_args, NULL, SPI_OK_SELECT);
	exec_plan(&complete_plan, args, NULL, SPI_OK_UPDATE);
}

/*
 * Wakes the drain tasks of the items' broadcasts whose queue just emptied
 * (the caller wakes the scheduler at commit); returns how many.
 */
int
be_sql_nudge_drained(const char *ws, const BeRecordItem *items, int n)
{
	Datum		args[2];
	Datum	   *bids = palloc(sizeof(Datum) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		bids[i] = CStringGetTextDatum(items[i].m->broadcast_id);
	args[0] = CStringGetTextDatum(ws);
	args[1] = text_array(bids, NULL, n);
	return exec_plan(&nudge_plan, args, NULL, SPI_OK_UPDATE);
}
