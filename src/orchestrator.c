/*-------------------------------------------------------------------------
 *
 * orchestrator.c
 *	  Turning a broadcast into email_queue rows, phase by phase.
 *
 * A task moves through phases:
 *
 *	count		 count the audience, store total_recipients
 *	expand		 add the audience to the queue in chunks (plain broadcast)
 *	test		 A/B: add the test sample, split across the variations
 *	wait_test	 A/B: wait until every test message has left the queue
 *	wait_winner	 A/B: wait for the test period (or a manual choice)
 *	remainder	 A/B: add the rest of the audience with the winner
 *	drain		 wait until the queue is empty, then complete
 *
 * Each call of be_orchestrator_step_unit() does one short transaction's worth
 * of one phase.  A chunk inserts its rows, advances the keyset cursor,
 * bumps enqueued_count and (at the end) the phase, all in the transaction
 * that the caller commits: a crash between chunks repeats nothing and
 * skips nothing.  The unique key on (workspace, broadcast, email) backs
 * that up.
 *
 * The broadcast and its pinned variations are loaded once per step
 * (be_orchestrator_load), never per chunk.  A pause or cancel is noticed
 * through the rows each chunk updates anyway: the task (its status must
 * still be running under our lease) and the broadcast (its status must
 * still allow the phase).  If either update finds no row, the chunk is
 * rolled back and the task dropped.
 *
 * A broadcast with segments (or a follow-up condition) has an audience
 * predicate, compiled by broadcast._audience_predicate() once per step.  Its
 * statements walk contacts in email order instead of list members, with the
 * same keyset cursor and the same commit of cursor and rows together, so the
 * exactly-once argument is unchanged; they are built per step around the
 * predicate and planned with their values (SPI_execute_with_args).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "broadcast_engine.h"
#include "be_tasks.h"

#define AUDIENCE_FILTER \
	" NOT EXISTS (SELECT 1 FROM broadcast.suppressions s" \
	"              WHERE s.workspace_id = $1 AND s.email = a.email)" \
	" AND (cardinality($3::text[]) = 0 OR NOT EXISTS (SELECT 1 FROM broadcast.list_members x" \
	"      WHERE x.workspace_id = $1 AND x.list_id = ANY ($3) AND x.email = a.email))"

/* the earliest send time of a row: now, or the local time in the contact's zone */
#define SEND_AT_EXPR \
	" CASE WHEN $9::timestamp IS NULL THEN now()" \
	"      ELSE greatest(now(), $9::timestamp AT TIME ZONE coalesce(" \
	"          (SELECT ct.timezone FROM broadcast.contacts ct" \
	"            WHERE ct.workspace_id = $1 AND ct.email = a.email), $10)) END"

static BePlan load_plan = {
	"SELECT b.lists, b.exclude_lists, b.integration_id, b.status, b.variations IS NOT NULL,"
	"       coalesce(b.ab_sample_percent, 0), b.ab_metric, b.ab_auto,"
	"       extract(epoch FROM b.ab_duration)::float8, b.recipient_timezone, b.local_send_at,"
	"       w.timezone, b.test_completed_at, b.total_recipients, count(v.variation)::int4,"
	"       coalesce(min(v.variation) FILTER (WHERE v.template_id = b.winner_template_id), -1)::int4,"
	"       hashtext(b.broadcast_id)::int8"
	"  FROM broadcast.broadcasts b"
	"  JOIN broadcast.workspaces w ON w.workspace_id = b.workspace_id"
	"  LEFT JOIN broadcast.broadcast_variations v"
	"         ON v.workspace_id = b.workspace_id AND v.broadcast_id = b.broadcast_id"
	" WHERE b.workspace_id = $1 AND b.broadcast_id = $2"
	" GROUP BY b.workspace_id, b.broadcast_id, w.workspace_id",
	2, {TEXTOID, TEXTOID}
};

static BePlan count_plan = {
	"SELECT count(*) FROM ("
	"  SELECT DISTINCT ON (m.email) m.email FROM broadcast.list_members m"
	"   WHERE m.workspace_id = $1 AND m.list_id = ANY ($2) AND m.status = 'active'"
	"   ORDER BY m.email) a"
	" WHERE" AUDIENCE_FILTER,
	3, {TEXTOID, TEXTARRAYOID, TEXTARRAYOID}
};

static BePlan set_total_plan = {
	"UPDATE broadcast.broadcasts SET total_recipients = $3, updated_at = now()"
	" WHERE workspace_id = $1 AND broadcast_id = $2 AND status = 'processing'",
	3, {TEXTOID, TEXTOID, INT8OID}
};

/*
 * A chunk is found in two steps.  First its bounds: the next $3 distinct
 * audience addresses after the cursor, in email order (an index-only walk
 * of list_members_contact_idx streamed into Unique and Limit; ordering by
 * anything more would sort the whole remaining audience every chunk).
 */
static BePlan bound_plan = {
	"SELECT max(c.email), count(*) FROM ("
	"  SELECT DISTINCT ON (m.email) m.email"
	"    FROM broadcast.list_members m"
	"   WHERE m.workspace_id = $1 AND m.email > $4 AND m.list_id = ANY ($2) AND m.status = 'active'"
	"   ORDER BY m.email"
	"   LIMIT $3) c",
	4, {TEXTOID, TEXTARRAYOID, INT4OID, TEXTOID}
};

/*
 * Then one plain INSERT ... SELECT of the addresses in (cursor, bound],
 * filtered.  An address on several lists is attributed to the first list
 * the index walk meets.  The suppression check carries the chunk's bounds
 * so that its cost stays proportional to the chunk whatever plan is
 * chosen.  No ON CONFLICT: the lease token and the cursor,
 * committed with these rows, make the insert happen exactly once, and the
 * primary key would turn any mistake into an error rather than a duplicate.
 * $11/$12 skip the A/B test sample.
 */
static BePlan insert_plan = {
	"INSERT INTO broadcast.email_queue"
	"       (workspace_id, broadcast_id, email, integration_id, list_id, variation, message_id,"
	"        next_attempt_at)"
	"SELECT $1, $6, a.email, $7, a.list_id, $8, broadcast._uuid_v7()," SEND_AT_EXPR
	"  FROM (SELECT DISTINCT ON (m.email) m.email, m.list_id"
	"          FROM broadcast.list_members m"
	"         WHERE m.workspace_id = $1 AND m.email > $4 AND m.email <= $5"
	"           AND m.list_id = ANY ($2) AND m.status = 'active'"
	"         ORDER BY m.email) a"
	" WHERE NOT EXISTS (SELECT 1 FROM broadcast.suppressions s"
	"                    WHERE s.workspace_id = $1 AND s.email = a.email"
	"                      AND s.email > $4 AND s.email <= $5)"
	"   AND (cardinality($3::text[]) = 0 OR NOT EXISTS (SELECT 1 FROM broadcast.list_members x"
	"        WHERE x.workspace_id = $1 AND x.list_id = ANY ($3) AND x.email = a.email))"
	"   AND ($11::int8 IS NULL OR (hashtextextended(a.email, $13), a.email) > ($11, $12::text))",
	13, {TEXTOID, TEXTARRAYOID, TEXTARRAYOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT2OID,
	TIMESTAMPOID, TEXTOID, INT8OID, TEXTOID, INT8OID}
};

/*
 * The workspace's audience lock, shared (docs/guarantees.md, "Suppression
 * and expansion").  Taken before a statement that inserts audience rows into
 * the queue and held to the commit: a suppression or unsubscribe takes it
 * exclusive before it drops queue rows, so it waits for this chunk and then
 * sees its rows, and a chunk that starts after it waits for its commit and
 * then sees the suppression (each SPI statement takes a new snapshot in READ
 * COMMITTED).  Chunks share it, so they never wait for each other.
 *
 * The chunk only tries: while someone holds it exclusive (an unsubscribe, or
 * a tenant's transaction that inserted a suppression and stays open), the
 * task steps aside for a moment and the scheduler goes on with the others.
 */
static Datum getbin(int col, bool *isnull);

static BePlan audience_lock_plan = {
	"SELECT broadcast._try_lock_audience($1, false)",
	1, {TEXTOID}
};

/* false when the lock is held exclusive: the task was released to retry */
static bool
lock_audience_shared(BeTask *t)
{
	Datum		args[1];
	bool		isnull;

	args[0] = CStringGetTextDatum(t->workspace_id);
	be_plan_exec(&audience_lock_plan, args, NULL, SPI_OK_SELECT);
	if (DatumGetBool(getbin(1, &isnull)))
		return true;
	be_task_wait(t, "waiting for the audience lock (a suppression or unsubscribe in progress)",
				 be_lock_timeout_ms);
	t->result = BE_STEP_RELEASED;
	return false;
}

static BePlan enqueued_plan = {
	"UPDATE broadcast.broadcasts"
	"   SET enqueued_count = enqueued_count + $3,"
	"       total_recipients = CASE WHEN $4 THEN enqueued_count + $3 ELSE total_recipients END,"
	"       updated_at = now()"
	" WHERE workspace_id = $1 AND broadcast_id = $2 AND status = $5",
	5, {TEXTOID, TEXTOID, INT8OID, BOOLOID, TEXTOID}
};

/*
 * The A/B test sample: the $4 audience addresses with the smallest stable
 * hash of (broadcast, email), which is a reproducible pseudo-random sample,
 * dealt round-robin across $7 variations so the split is even within one.
 * Returns the rows added and the sample's last (hash, email): the boundary
 * the remainder phase skips.
 */
static BePlan test_plan = {
	"WITH a AS ("
	"  SELECT DISTINCT ON (m.email) m.email, m.list_id FROM broadcast.list_members m"
	"   WHERE m.workspace_id = $1 AND m.list_id = ANY ($2) AND m.status = 'active'"
	"   ORDER BY m.email, m.list_id"
	"), sample AS MATERIALIZED ("
	"  SELECT a.email, a.list_id, hashtextextended(a.email, $8) AS h,"
	"         row_number() OVER (ORDER BY hashtextextended(a.email, $8), a.email) - 1 AS rn"
	"    FROM a WHERE" AUDIENCE_FILTER
	"   ORDER BY 3, 1 LIMIT $4"
	"), ins AS ("
	"  INSERT INTO broadcast.email_queue"
	"         (workspace_id, broadcast_id, email, integration_id, list_id, variation, message_id,"
	"          next_attempt_at)"
	"  SELECT $1, $5, a.email, $6, a.list_id, (a.rn % $7)::int2, broadcast._uuid_v7()," SEND_AT_EXPR
	"    FROM sample a"
	"  ON CONFLICT DO NOTHING"
	"  RETURNING 1"
	")"
	"SELECT (SELECT count(*) FROM ins), l.h, l.email"
	"  FROM (SELECT 1) one LEFT JOIN (SELECT h, email FROM sample ORDER BY rn DESC LIMIT 1) l ON true",
	10, {TEXTOID, TEXTARRAYOID, TEXTARRAYOID, INT8OID, TEXTOID, TEXTOID, INT4OID, INT8OID,
	TIMESTAMPOID, TEXTOID}
};

static BePlan testing_plan = {
	"UPDATE broadcast.broadcasts"
	"   SET status = 'testing', test_recipients = $3, enqueued_count = enqueued_count + $3,"
	"       updated_at = now()"
	" WHERE workspace_id = $1 AND broadcast_id = $2 AND status = 'processing'",
	3, {TEXTOID, TEXTOID, INT8OID}
};

static BePlan queue_left_plan = {
	"SELECT EXISTS (SELECT 1 FROM broadcast.email_queue q"
	"                WHERE q.workspace_id = $1 AND q.broadcast_id = $2"
	"                  AND q.status IN ('pending', 'sending'))",
	2, {TEXTOID, TEXTOID}, NULL, false, true
};

static BePlan test_done_plan = {
	"UPDATE broadcast.broadcasts"
	"   SET status = 'test_completed', test_completed_at = now(), updated_at = now()"
	" WHERE workspace_id = $1 AND broadcast_id = $2 AND status = 'testing'"
	" RETURNING CASE WHEN ab_auto THEN now() + ab_duration ELSE 'infinity'::timestamptz END",
	2, {TEXTOID, TEXTOID}
};

/*
 * The winner by open or click rate over delivered (or over sent, when the
 * provider reported no delivery for any variation: one base for all), in
 * one query over all variations; ties go to the lower variation number.
 * An open or a click counts as a delivery the provider did not report.
 * The history is read on its primary key, in the broadcast's message id
 * range.  Opens and clicks are the human ones: those the edge flagged as a
 * machine's (Apple's proxy, link scanners; 86_optin_tracking.sql) do not
 * score.
 */
static BePlan pick_winner_plan = {
	"WITH scores AS ("
	"  SELECT v.variation, v.template_id,"
	"         count(h.message_id) FILTER (WHERE h.status = 'sent') AS sent,"
	"         count(h.delivered_at) AS delivered,"
	"         count(h.opened_at) FILTER (WHERE h.open_machine IS NOT TRUE) AS opened,"
	"         count(h.message_id) FILTER (WHERE h.delivered_at IS NOT NULL"
	"                OR h.opened_at IS NOT NULL OR h.clicked_at IS NOT NULL) AS reached,"
	"         count(h.clicked_at) FILTER (WHERE h.click_machine IS NOT TRUE) AS clicked"
	"    FROM broadcast.broadcast_variations v"
	"    JOIN broadcast.broadcasts b"
	"      ON b.workspace_id = v.workspace_id AND b.broadcast_id = v.broadcast_id"
	"    LEFT JOIN broadcast.message_history h"
	"           ON h.workspace_id = v.workspace_id"
	"          AND h.message_id BETWEEN b.first_message_id AND b.last_message_id"
	"          AND h.broadcast_id = v.broadcast_id AND h.template_id = v.template_id"
	"   WHERE v.workspace_id = $1 AND v.broadcast_id = $2"
	"   GROUP BY v.variation, v.template_id"
	"), winner AS ("
	"  SELECT variation, template_id FROM scores"
	"   ORDER BY (CASE WHEN $3 = 'click' THEN clicked ELSE opened END)::numeric"
	"            / nullif(CASE WHEN max(delivered) OVER () > 0 THEN reached ELSE sent END, 0)"
	"            DESC NULLS LAST, variation"
	"   LIMIT 1"
	")"
	"UPDATE broadcast.broadcasts b"
	"   SET status = 'winner_selected', winner_template_id = w.template_id,"
	"       winner_selected_at = now(), updated_at = now()"
	"  FROM winner w"
	" WHERE b.workspace_id = $1 AND b.broadcast_id = $2 AND b.status = 'test_completed'"
	" RETURNING w.variation::int4",
	3, {TEXTOID, TEXTOID, TEXTOID}
};

static BePlan complete_plan = {
	"UPDATE broadcast.broadcasts SET status = 'completed', completed_at = now(), updated_at = now()"
	" WHERE workspace_id = $1 AND broadcast_id = $2"
	"   AND status IN ('processing', 'testing', 'test_completed', 'winner_selected')",
	2, {TEXTOID, TEXTOID}
};

/*
 * The audience of a broadcast with segments: each contact of the workspace
 * (in email order, on the primary key) that is active on some list and is
 * on one of the broadcast's lists or matches the predicate.  The first %s
 * takes the range on c.email, the second the predicate.  Its row names the
 * list it came through: one of the broadcast's lists when it is on one,
 * else the first list it is active on (the unsubscribe link's list).
 */
#define SEG_SOURCE \
	"SELECT c.email, l.list_id FROM broadcast.contacts c" \
	" CROSS JOIN LATERAL (SELECT m.list_id FROM broadcast.list_members m" \
	"    WHERE m.workspace_id = $1 AND m.email = c.email AND m.status = 'active'" \
	"    ORDER BY m.list_id = ANY ($2) DESC, m.list_id LIMIT 1) l" \
	" WHERE c.workspace_id = $1%s AND (l.list_id = ANY ($2) OR %s)"

/*
 * The count needs no list per contact: a semi-join of contacts and their
 * active memberships (the first %s is empty), three times cheaper than
 * SEG_SOURCE's probe per contact.
 */
static const char *seg_count_sql =
"SELECT count(*) FROM ("
"  SELECT c.email FROM broadcast.contacts c"
"   WHERE c.workspace_id = $1%s"
"     AND EXISTS (SELECT 1 FROM broadcast.list_members m"
"                  WHERE m.workspace_id = $1 AND m.email = c.email AND m.status = 'active'"
"                    AND (m.list_id = ANY ($2) OR %s))) a"
" WHERE" AUDIENCE_FILTER;

/*
 * A chunk in one statement: the next $3 audience contacts after the cursor
 * (the predicate is evaluated once per contact), the filtered insert, and
 * the bound the cursor moves to.  Same parameters as insert_plan, with $3
 * the exclusion lists and $14 the chunk size.
 */
static const char *seg_chunk_sql =
"WITH src AS MATERIALIZED ("
SEG_SOURCE " ORDER BY c.email LIMIT $14"
"), ins AS ("
"  INSERT INTO broadcast.email_queue"
"         (workspace_id, broadcast_id, email, integration_id, list_id, variation, message_id,"
"          next_attempt_at)"
"  SELECT $1, $6, a.email, $7, a.list_id, $8, broadcast._uuid_v7()," SEND_AT_EXPR
"    FROM src a"
"   WHERE NOT EXISTS (SELECT 1 FROM broadcast.suppressions s"
"                      WHERE s.workspace_id = $1 AND s.email = a.email AND s.email > $4)"
"     AND (cardinality($3::text[]) = 0 OR NOT EXISTS (SELECT 1 FROM broadcast.list_members x"
"          WHERE x.workspace_id = $1 AND x.list_id = ANY ($3) AND x.email = a.email))"
"     AND ($11::int8 IS NULL OR (hashtextextended(a.email, $13), a.email) > ($11, $12::text))"
"  RETURNING 1"
")"
"SELECT (SELECT count(*) FROM ins), (SELECT max(email) FROM src), (SELECT count(*) FROM src)";

static const Oid seg_chunk_types[14] = {TEXTOID, TEXTARRAYOID, TEXTARRAYOID, TEXTOID, TEXTOID,
	TEXTOID, TEXTOID, INT2OID, TIMESTAMPOID, TEXTOID, INT8OID, TEXTOID, INT8OID, INT4OID};

/* the A/B sample of a segment audience: test_plan with SEG_SOURCE as "a" (a format: %% is %) */
static const char *seg_test_sql =
"WITH a AS (" SEG_SOURCE "), sample AS MATERIALIZED ("
"  SELECT a.email, a.list_id, hashtextextended(a.email, $8) AS h,"
"         row_number() OVER (ORDER BY hashtextextended(a.email, $8), a.email) - 1 AS rn"
"    FROM a WHERE" AUDIENCE_FILTER
"   ORDER BY 3, 1 LIMIT $4"
"), ins AS ("
"  INSERT INTO broadcast.email_queue"
"         (workspace_id, broadcast_id, email, integration_id, list_id, variation, message_id,"
"          next_attempt_at)"
"  SELECT $1, $5, a.email, $6, a.list_id, (a.rn %% $7)::int2, broadcast._uuid_v7()," SEND_AT_EXPR
"    FROM sample a"
"  ON CONFLICT DO NOTHING"
"  RETURNING 1"
")"
"SELECT (SELECT count(*) FROM ins), l.h, l.email"
"  FROM (SELECT 1) one LEFT JOIN (SELECT h, email FROM sample ORDER BY rn DESC LIMIT 1) l ON true";

static BePlan predicate_plan = {
	"SELECT broadcast._audience_predicate($1, $2)",
	2, {TEXTOID, TEXTOID}
};

/* runs a segment statement, built around the predicate, planned with its values */
static void
seg_exec(const char *fmt, const char *range, BeTask *t, int nargs, const Oid *types,
		 Datum *args, const char *nulls, int expected)
{
	char	   *sql;
	int			rc;

	Assert(t->audience_pred != NULL);
	sql = psprintf(fmt, range, t->audience_pred);
	if (SPI_tuptable != NULL)
	{
		SPI_freetuptable(SPI_tuptable);
		SPI_tuptable = NULL;
	}
	rc = SPI_execute_with_args(sql, nargs, (Oid *) types, args, nulls, false, 0);
	if (rc != expected || SPI_processed != 1)
		elog(ERROR, "segment audience statement failed: %s", SPI_result_code_string(rc));
	pfree(sql);
}

static Datum
getbin(int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, isnull);
}

static char *
gettext_copy(int col)
{
	bool		isnull;
	Datum		d = getbin(col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/*
 * Loads the broadcast and its pinned variations in one query.  Runs once at
 * the start of each step; a broadcast that is no longer sending ends its
 * task.
 */
void
be_orchestrator_load(void *arg)
{
	BeTask	   *t = (BeTask *) arg;
	Datum		args[2];
	bool		isnull;
	MemoryContext old;
	const char *task_status = NULL;

	args[0] = CStringGetTextDatum(t->workspace_id);
	args[1] = CStringGetTextDatum(t->broadcast_id);
	if (be_plan_exec(&load_plan, args, NULL, SPI_OK_SELECT) != 1)
	{
		/* the broadcast is gone (its workspace was dropped): nothing to do */
		be_task_set_status(t, "cancelled");
		t->result = BE_STEP_DONE;
		return;
	}

	MemoryContextReset(t->step_cxt);
	old = MemoryContextSwitchTo(t->step_cxt);
	t->lists = datumCopy(getbin(1, &isnull), false, -1);
	t->exclude_lists = datumCopy(getbin(2, &isnull), false, -1);
	t->integration_id = gettext_copy(3);
	t->status = gettext_copy(4);
	t->is_ab = DatumGetBool(getbin(5, &isnull));
	t->ab_sample_percent = DatumGetInt32(getbin(6, &isnull));
	t->ab_metric = gettext_copy(7);
	t->ab_auto = DatumGetBool(getbin(8, &isnull));
	t->ab_duration_s = DatumGetFloat8(getbin(9, &isnull));
	t->recipient_tz = DatumGetBool(getbin(10, &isnull));
	t->local_send_at = DatumGetTimestamp(getbin(11, &isnull));
	t->has_local_time = !isnull && t->recipient_tz;
	t->ws_timezone = gettext_copy(12);
	t->test_completed_at = DatumGetTimestampTz(getbin(13, &isnull));
	t->has_test_completed = !isnull;
	t->total_recipients = DatumGetInt64(getbin(14, &isnull));
	t->nvariations = DatumGetInt32(getbin(15, &isnull));
	t->winner_variation = DatumGetInt32(getbin(16, &isnull));
	t->seed = DatumGetInt64(getbin(17, &isnull));
	MemoryContextSwitchTo(old);
	be_plan_exec(&predicate_plan, args, NULL, SPI_OK_SELECT);
	t->audience_pred = gettext_copy(1);
	if (t->audience_pred != NULL)
		t->audience_pred = MemoryContextStrdup(t->step_cxt, t->audience_pred);
	t->loaded = true;
	t->result = BE_STEP_CONTINUE;

	if (strcmp(t->status, "paused") == 0)
		task_status = "paused";
	else if (strcmp(t->status, "completed") == 0)
		task_status = "completed";
	else if (strcmp(t->status, "failed") == 0)
		task_status = "failed";
	else if (strcmp(t->status, "cancelled") == 0 || strcmp(t->status, "draft") == 0)
		task_status = "cancelled";
	if (task_status != NULL)
	{
		be_task_set_status(t, task_status);
		t->result = BE_STEP_DONE;
	}
	else if (t->nvariations < 1)
		elog(ERROR, "broadcast \"%s\" has no pinned template version", t->broadcast_id);
}

static void
phase_count(BeTask *t)
{
	Datum		args[3];
	int64		total;
	bool		isnull;

	args[0] = CStringGetTextDatum(t->workspace_id);
	args[1] = t->lists;
	args[2] = t->exclude_lists;
	if (t->audience_pred != NULL)
		seg_exec(seg_count_sql, "", t, 3, count_plan.argtypes, args, NULL, SPI_OK_SELECT);
	else
		be_plan_exec(&count_plan, args, NULL, SPI_OK_SELECT);
	total = DatumGetInt64(getbin(1, &isnull));

	args[1] = CStringGetTextDatum(t->broadcast_id);
	args[2] = Int64GetDatum(total);
	if (be_plan_exec(&set_total_plan, args, NULL, SPI_OK_UPDATE) != 1)
		be_task_lost(t, "the broadcast is no longer processing");
	t->total_recipients = total;
	be_task_advance(t, t->is_ab ? "test" : "expand", "");
	t->phase = MemoryContextStrdup(t->cxt, t->is_ab ? "test" : "expand");
	t->cursor = MemoryContextStrdup(t->cxt, "");
	t->result = BE_STEP_CONTINUE;
}

/*
 * One chunk of a segment audience: bound and insert in one statement, then
 * the same bookkeeping as phase_chunk, in the same transaction.
 */
static void
phase_seg_chunk(BeTask *t, bool remainder)
{
	Datum		args[14];
	char		nulls[15] = "              ";
	bool		isnull;
	Datum		d;
	char	   *bound;
	int64		scanned;
	int64		added;
	bool		finished;
	int			variation = remainder ? t->winner_variation : 0;

	if (remainder && variation < 0)
		elog(ERROR, "broadcast \"%s\" has no winner to send the remainder with", t->broadcast_id);

	args[0] = CStringGetTextDatum(t->workspace_id);
	args[1] = t->lists;
	args[2] = t->exclude_lists;
	args[3] = CStringGetTextDatum(t->cursor);
	/* $5 (the upper bound) is not known before the statement runs: unused */
	nulls[4] = 'n';
	args[4] = (Datum) 0;
	args[5] = CStringGetTextDatum(t->broadcast_id);
	args[6] = CStringGetTextDatum(t->integration_id);
	args[7] = Int16GetDatum((int16) variation);
	args[8] = TimestampGetDatum(t->local_send_at);
	args[9] = CStringGetTextDatum(t->ws_timezone);
	args[10] = Int64GetDatum(t->cutoff_hash);
	args[11] = t->cutoff_email ? CStringGetTextDatum(t->cutoff_email) : (Datum) 0;
	args[12] = Int64GetDatum(t->seed);
	args[13] = Int32GetDatum(be_chunk_size);
	if (!t->has_local_time)
		nulls[8] = 'n';
	if (!remainder || !t->has_cutoff)
		nulls[10] = 'n';
	if (!remainder || t->cutoff_email == NULL)
		nulls[11] = 'n';
	if (!lock_audience_shared(t))
		return;
	seg_exec(seg_chunk_sql, " AND c.email > $4", t, 14, seg_chunk_types, args, nulls, SPI_OK_SELECT);
	added = DatumGetInt64(getbin(1, &isnull));
	d = getbin(2, &isnull);
	bound = isnull ? pstrdup(t->cursor) : TextDatumGetCString(d);
	scanned = DatumGetInt64(getbin(3, &isnull));
	finished = scanned < be_chunk_size;

	args[0] = CStringGetTextDatum(t->workspace_id);
	args[1] = CStringGetTextDatum(t->broadcast_id);
	args[2] = Int64GetDatum(added);
	args[3] = BoolGetDatum(finished);
	args[4] = CStringGetTextDatum(remainder ? "winner_selected" : "processing");
	if (be_plan_exec(&enqueued_plan, args, NULL, SPI_OK_UPDATE) != 1)
		be_task_lost(t, "the broadcast is no longer sending");

	be_task_advance(t, finished ? "drain" : t->phase, bound);
	t->cursor = MemoryContextStrdup(t->cxt, bound);
	if (finished)
		t->phase = MemoryContextStrdup(t->cxt, "drain");
	if (added > 0)
		be_wake_senders_at_commit();
	t->result = BE_STEP_CONTINUE;
}

/* one chunk of the plain audience, or of the A/B remainder (with the winner) */
static void
phase_chunk(BeTask *t, bool remainder)
{
	Datum		args[13];
	char		nulls[14] = "             ";
	bool		isnull;
	Datum		d;
	char	   *bound;
	int64		scanned;
	int64		added = 0;
	bool		finished;
	int			variation = remainder ? t->winner_variation : 0;

	if (t->audience_pred != NULL)
	{
		phase_seg_chunk(t, remainder);
		return;
	}
	if (remainder && variation < 0)
		elog(ERROR, "broadcast \"%s\" has no winner to send the remainder with", t->broadcast_id);

	args[0] = CStringGetTextDatum(t->workspace_id);
	args[1] = t->lists;
	args[2] = Int32GetDatum(be_chunk_size);
	args[3] = CStringGetTextDatum(t->cursor);
	be_plan_exec(&bound_plan, args, NULL, SPI_OK_SELECT);
	d = getbin(1, &isnull);
	bound = isnull ? NULL : TextDatumGetCString(d);
	scanned = DatumGetInt64(getbin(2, &isnull));
	finished = scanned < be_chunk_size;

	if (bound != NULL)
	{
		args[2] = t->exclude_lists;
		args[4] = CStringGetTextDatum(bound);
		args[5] = CStringGetTextDatum(t->broadcast_id);
		args[6] = CStringGetTextDatum(t->integration_id);
		args[7] = Int16GetDatum((int16) variation);
		args[8] = TimestampGetDatum(t->local_send_at);
		args[9] = CStringGetTextDatum(t->ws_timezone);
		args[10] = Int64GetDatum(t->cutoff_hash);
		args[11] = t->cutoff_email ? CStringGetTextDatum(t->cutoff_email) : (Datum) 0;
		args[12] = Int64GetDatum(t->seed);
		if (!t->has_local_time)
			nulls[8] = 'n';
		if (!remainder || !t->has_cutoff)
			nulls[10] = 'n';
		if (!remainder || t->cutoff_email == NULL)
			nulls[11] = 'n';
		if (!lock_audience_shared(t))
			return;
		added = be_plan_exec(&insert_plan, args, nulls, SPI_OK_INSERT);
	}
	else
		bound = pstrdup(t->cursor);

	args[0] = CStringGetTextDatum(t->workspace_id);
	args[1] = CStringGetTextDatum(t->broadcast_id);
	args[2] = Int64GetDatum(added);
	args[3] = BoolGetDatum(finished);
	args[4] = CStringGetTextDatum(remainder ? "winner_selected" : "processing");
	if (be_plan_exec(&enqueued_plan, args, NULL, SPI_OK_UPDATE) != 1)
		be_task_lost(t, "the broadcast is no longer sending");

	be_task_advance(t, finished ? "drain" : t->phase, bound);
	/* the task's copy follows what was written; it is committed with the rows */
	t->cursor = MemoryContextStrdup(t->cxt, bound);
	if (finished)
		t->phase = MemoryContextStrdup(t->cxt, "drain");
	if (added > 0)
		be_wake_senders_at_commit();
	t->result = BE_STEP_CONTINUE;
}

static void
phase_test(BeTask *t)
{
	Datum		args[10];
	char		nulls[11] = "          ";
	bool		isnull;
	Datum		d;
	int64		sample;
	int64		added;

	/* round() keeps the sample within one of the exact percentage */
	sample = (int64) floor((double) t->total_recipients * t->ab_sample_percent / 100.0 + 0.5);

	args[0] = CStringGetTextDatum(t->workspace_id);
	args[1] = t->lists;
	args[2] = t->exclude_lists;
	args[3] = Int64GetDatum(sample);
	args[4] = CStringGetTextDatum(t->broadcast_id);
	args[5] = CStringGetTextDatum(t->integration_id);
	args[6] = Int32GetDatum(t->nvariations);
	args[7] = Int64GetDatum(t->seed);
	args[8] = TimestampGetDatum(t->local_send_at);
	args[9] = CStringGetTextDatum(t->ws_timezone);
	if (!t->has_local_time)
		nulls[8] = 'n';
	if (!lock_audience_shared(t))
		return;
	if (t->audience_pred != NULL)
		seg_exec(seg_test_sql, "", t, 10, test_plan.argtypes, args, nulls, SPI_OK_SELECT);
	else
		be_plan_exec(&test_plan, args, nulls, SPI_OK_SELECT);
	added = DatumGetInt64(getbin(1, &isnull));
	d = getbin(2, &isnull);
	t->has_cutoff = !isnull;
	t->cutoff_hash = isnull ? 0 : DatumGetInt64(d);
	d = getbin(3, &isnull);
	t->cutoff_email = isnull ? NULL : MemoryContextStrdup(t->cxt, TextDatumGetCString(d));

	args[1] = CStringGetTextDatum(t->broadcast_id);
	args[2] = Int64GetDatum(added);
	if (be_plan_exec(&testing_plan, args, NULL, SPI_OK_UPDATE) != 1)
		be_task_lost(t, "the broadcast is no longer processing");
	be_task_advance(t, "wait_test", "");
	t->phase = MemoryContextStrdup(t->cxt, "wait_test");
	t->status = MemoryContextStrdup(t->step_cxt, "testing");
	if (added > 0)
		be_wake_senders_at_commit();
	t->result = BE_STEP_CONTINUE;
}

static bool
queue_has_rows(BeTask *t)
{
	Datum		args[2];
	bool		isnull;

	args[0] = CStringGetTextDatum(t->workspace_id);
	args[1] = CStringGetTextDatum(t->broadcast_id);
	be_plan_exec(&queue_left_plan, args, NULL, SPI_OK_SELECT);
	return DatumGetBool(getbin(1, &isnull));
}

static TimestampTz
poll_time(void)
{
	return TimestampTzPlusMilliseconds(GetCurrentTimestamp(), be_drain_poll_ms);
}

static void
phase_wait_test(BeTask *t)
{
	Datum		args[2];
	bool		isnull;
	TimestampTz run_at;

	if (queue_has_rows(t))
	{
		be_task_release(t, "wait_test", poll_time());
		t->result = BE_STEP_RELEASED;
		return;
	}
	if (strcmp(t->status, "winner_selected") == 0)
	{
		/* chosen by hand while the test was still out: go on with the remainder */
		be_task_advance(t, "wait_winner", "");
		t->phase = MemoryContextStrdup(t->cxt, "wait_winner");
		t->result = BE_STEP_CONTINUE;
		return;
	}
	args[0] = CStringGetTextDatum(t->workspace_id);
	args[1] = CStringGetTextDatum(t->broadcast_id);
	if (be_plan_exec(&test_done_plan, args, NULL, SPI_OK_UPDATE_RETURNING) != 1)
		be_task_lost(t, "the broadcast is no longer testing");
	run_at = DatumGetTimestampTz(getbin(1, &isnull));
	/* wait for the test period (or, without ab_auto, for select_winner) */
	be_task_release(t, "wait_winner", run_at);
	t->result = BE_STEP_RELEASED;
}

static void
phase_wait_winner(BeTask *t)
{
	Datum		args[3];
	bool		isnull;

	if (t->ab_sample_percent >= 100)
	{
		/* the test reached everyone: there is no remainder to send */
		be_task_advance(t, "drain", "");
		t->phase = MemoryContextStrdup(t->cxt, "drain");
		t->result = BE_STEP_CONTINUE;
		return;
	}
	if (strcmp(t->status, "winner_selected") != 0)
	{
		TimestampTz due = 0;

		if (t->ab_auto && t->has_test_completed)
			due = TimestampTzPlusMilliseconds(t->test_completed_at,
											  (int64) (t->ab_duration_s * 1000.0));
		if (!t->ab_auto || !t->has_test_completed || GetCurrentTimestamp() < due)
		{
			be_task_release(t, "wait_winner", t->ab_auto && t->has_test_completed ? due : DT_NOEND);
			t->result = BE_STEP_RELEASED;
			return;
		}
		args[0] = CStringGetTextDatum(t->workspace_id);
		args[1] = CStringGetTextDatum(t->broadcast_id);
		args[2] = CStringGetTextDatum(t->ab_metric);
		if (be_plan_exec(&pick_winner_plan, args, NULL, SPI_OK_UPDATE_RETURNING) != 1)
			be_task_lost(t, "the broadcast is no longer waiting for a winner");
		t->winner_variation = DatumGetInt32(getbin(1, &isnull));
		t->status = MemoryContextStrdup(t->step_cxt, "winner_selected");
	}
	be_task_advance(t, "remainder", "");
	t->phase = MemoryContextStrdup(t->cxt, "remainder");
	t->cursor = MemoryContextStrdup(t->cxt, "");
	t->result = BE_STEP_CONTINUE;
}

static void
phase_drain(BeTask *t)
{
	Datum		args[2];

	if (queue_has_rows(t))
	{
		be_task_release(t, "drain", poll_time());
		t->result = BE_STEP_RELEASED;
		return;
	}
	args[0] = CStringGetTextDatum(t->workspace_id);
	args[1] = CStringGetTextDatum(t->broadcast_id);
	if (be_plan_exec(&complete_plan, args, NULL, SPI_OK_UPDATE) != 1)
		be_task_lost(t, "the broadcast is no longer sending");
	be_task_set_status(t, "completed");
	t->result = BE_STEP_DONE;
}

/*
 * One transaction's worth of the task's current phase; the first unit of a
 * step loads the broadcast first, in the same transaction.
 */
void
be_orchestrator_step_unit(void *arg)
{
	BeTask	   *t = (BeTask *) arg;

	if (!t->loaded)
	{
		be_orchestrator_load(t);
		if (t->result != BE_STEP_CONTINUE)
			return;
	}

	if (strcmp(t->phase, "count") == 0)
		phase_count(t);
	else if (strcmp(t->phase, "expand") == 0)
		phase_chunk(t, false);
	else if (strcmp(t->phase, "test") == 0)
		phase_test(t);
	else if (strcmp(t->phase, "wait_test") == 0)
		phase_wait_test(t);
	else if (strcmp(t->phase, "wait_winner") == 0)
		phase_wait_winner(t);
	else if (strcmp(t->phase, "remainder") == 0)
		phase_chunk(t, true);
	else if (strcmp(t->phase, "drain") == 0)
		phase_drain(t);
	else
		elog(ERROR, "task %lld is in unknown phase \"%s\"", (long long) t->task_id, t->phase);
}
