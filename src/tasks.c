/*-------------------------------------------------------------------------
 *
 * tasks.c
 *	  Durable tasks: claiming, leases, release and failure.
 *
 * A task is claimed with FOR UPDATE SKIP LOCKED in the transaction that
 * marks it running and gives it a fresh lease token, so two executors never
 * run the same task.  Every later write to the task checks the token: an
 * executor that lost its lease (it stalled, another took over) finds zero
 * rows and backs off instead of writing.  All due tasks are claimed at
 * once: there is no cap per cycle.  Tasks of broadcasts scheduled in another
 * database (a restored dump) are never claimed: each claim first turns them
 * into a visible hold (broadcast._hold_restored).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "broadcast_engine.h"
#include "be_tasks.h"

static BePlan claim_plan = {
	"WITH due AS ("
	"  SELECT t.workspace_id, t.task_id FROM broadcast.tasks t"
	"   WHERE ((t.status = 'pending' AND t.run_at <= now())"
	"          OR (t.status = 'running' AND t.lease_until < now()))"
	"     AND EXISTS (SELECT 1 FROM broadcast.broadcasts b"
	"                  WHERE b.workspace_id = t.workspace_id AND b.broadcast_id = t.broadcast_id"
	"                    AND b.instance_nonce = (SELECT i.nonce FROM broadcast.instance i))"
	"   ORDER BY t.run_at"
	"     FOR UPDATE SKIP LOCKED"
	"), claimed AS ("
	"  UPDATE broadcast.tasks t"
	"     SET status = 'running', lease_until = now() + make_interval(secs => $1),"
	"         lease_token = gen_random_uuid(), updated_at = now()"
	"    FROM due WHERE t.workspace_id = due.workspace_id AND t.task_id = due.task_id"
	"  RETURNING t.workspace_id, t.task_id, t.broadcast_id, t.lease_token::text,"
	"            t.phase, coalesce(t.cursor_email, '') AS cursor_text, t.ab_cutoff_hash, t.ab_cutoff_email, t.run_at"
	"), started AS ("
	"  UPDATE broadcast.broadcasts b"
	"     SET status = 'processing', started_at = now(), updated_at = now()"
	"    FROM claimed c"
	"   WHERE b.workspace_id = c.workspace_id AND b.broadcast_id = c.broadcast_id"
	"     AND b.status = 'scheduled'"
	"  RETURNING 1"
	")"
	"SELECT workspace_id, task_id, broadcast_id, lease_token, phase, cursor_text, ab_cutoff_hash,"
	"       ab_cutoff_email FROM claimed ORDER BY run_at, task_id",
	1, {INT4OID}
};

/* rows restored from a dump become a visible hold (10_backup.sql) */
static BePlan hold_plan = {
	"SELECT broadcast._hold_restored()",
	0, {InvalidOid}
};

static BePlan release_plan = {
	"UPDATE broadcast.tasks"
	"   SET status = 'pending', phase = $4, cursor_email = $5, run_at = $6,"
	"       lease_until = NULL, lease_token = NULL, updated_at = now()"
	" WHERE workspace_id = $1 AND task_id = $2 AND lease_token = $3::uuid AND status = 'running'",
	6, {TEXTOID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID}
};

/* a step that could not get a lock: back to pending, no attempt spent */
static BePlan wait_plan = {
	"UPDATE broadcast.tasks"
	"   SET status = 'pending', run_at = now() + make_interval(secs => $5 / 1000.0),"
	"       last_error = $4, lease_until = NULL, lease_token = NULL, updated_at = now()"
	" WHERE workspace_id = $1 AND task_id = $2 AND lease_token = $3::uuid AND status = 'running'",
	5, {TEXTOID, INT8OID, TEXTOID, TEXTOID, INT4OID}
};

static BePlan advance_plan = {
	"UPDATE broadcast.tasks"
	"   SET phase = $4, cursor_email = $5, ab_cutoff_hash = $6, ab_cutoff_email = $7,"
	"       lease_until = now() + make_interval(secs => $8), updated_at = now()"
	" WHERE workspace_id = $1 AND task_id = $2 AND lease_token = $3::uuid AND status = 'running'",
	8, {TEXTOID, INT8OID, TEXTOID, TEXTOID, TEXTOID, INT8OID, TEXTOID, INT4OID}
};

static BePlan status_plan = {
	"UPDATE broadcast.tasks"
	"   SET status = $4, phase = CASE WHEN $4 = 'completed' THEN 'done' ELSE phase END,"
	"       lease_until = NULL, lease_token = NULL, updated_at = now()"
	" WHERE workspace_id = $1 AND task_id = $2 AND lease_token = $3::uuid AND status = 'running'",
	4, {TEXTOID, INT8OID, TEXTOID, TEXTOID}
};

/* after max_attempts failures the task and its broadcast fail, with the error */
static BePlan fail_plan = {
	"WITH t AS ("
	"  UPDATE broadcast.tasks"
	"     SET attempts = attempts + 1, last_error = $4,"
	"         status = CASE WHEN attempts + 1 >= max_attempts THEN 'failed' ELSE 'pending' END,"
	"         run_at = now() + make_interval(secs => $5 * power(2, attempts)),"
	"         lease_until = NULL, lease_token = NULL, updated_at = now()"
	"   WHERE workspace_id = $1 AND task_id = $2 AND lease_token = $3::uuid AND status = 'running'"
	"  RETURNING broadcast_id, status"
	")"
	"UPDATE broadcast.broadcasts b SET status = 'failed', paused_from = NULL, last_error = $4,"
	"       updated_at = now()"
	"  FROM t WHERE t.status = 'failed' AND b.workspace_id = $1 AND b.broadcast_id = t.broadcast_id"
	"   AND b.status NOT IN ('completed', 'cancelled')",
	5, {TEXTOID, INT8OID, TEXTOID, TEXTOID, FLOAT8OID}
};

static BePlan next_due_plan = {
	"SELECT extract(epoch FROM min(CASE WHEN status = 'pending' THEN run_at ELSE lease_until END)"
	"                           - clock_timestamp()) * 1000"
	"  FROM broadcast.tasks WHERE status IN ('pending', 'running')",
	0, {InvalidOid}
};

static char *
getcol_text(HeapTuple tup, TupleDesc desc, int col)
{
	char	   *v = SPI_getvalue(tup, desc, col);

	return v;
}

/*
 * Claims every due task (and every task whose lease expired) and returns
 * them as BeTask, allocated in cxt.
 */
List *
be_tasks_claim(MemoryContext cxt)
{
	Datum		args[1];
	int			n;
	int			i;
	List	   *tasks = NIL;

	/*
	 * The claim itself skips tasks of broadcasts scheduled in another
	 * database; the hold makes them visible and takes them out of the due
	 * scan, in the same transaction.
	 */
	be_plan_exec(&hold_plan, NULL, NULL, SPI_OK_SELECT);
	args[0] = Int32GetDatum(be_task_lease_s);
	n = be_plan_exec(&claim_plan, args, NULL, SPI_OK_SELECT);
	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old;
		MemoryContext tcxt;
		BeTask	   *t;
		char	   *hash;

		tcxt = AllocSetContextCreate(cxt, "broadcast_engine task", ALLOCSET_SMALL_SIZES);
		old = MemoryContextSwitchTo(tcxt);
		t = palloc0(sizeof(BeTask));
		t->cxt = tcxt;
		t->step_cxt = AllocSetContextCreate(tcxt, "broadcast_engine step", ALLOCSET_SMALL_SIZES);
		t->workspace_id = getcol_text(tup, desc, 1);
		t->task_id = pg_strtoint64(getcol_text(tup, desc, 2));
		t->broadcast_id = getcol_text(tup, desc, 3);
		t->token = getcol_text(tup, desc, 4);
		t->phase = getcol_text(tup, desc, 5);
		t->cursor = getcol_text(tup, desc, 6);
		hash = getcol_text(tup, desc, 7);
		t->has_cutoff = (hash != NULL);
		t->cutoff_hash = hash ? pg_strtoint64(hash) : 0;
		t->cutoff_email = getcol_text(tup, desc, 8);
		t->winner_variation = -1;
		MemoryContextSwitchTo(old);
		tasks = lappend(tasks, t);
	}
	return tasks;
}

void
be_task_lost(BeTask *t, const char *why)
{
	t->lost = true;
	elog(ERROR, "task %lld of broadcast \"%s\" lost: %s",
		 (long long) t->task_id, t->broadcast_id, why);
}

/* Gives the task back, to be claimed again at run_at. */
void
be_task_release(BeTask *t, const char *phase, TimestampTz run_at)
{
	Datum		args[6];

	args[0] = CStringGetTextDatum(t->workspace_id);
	args[1] = Int64GetDatum(t->task_id);
	args[2] = CStringGetTextDatum(t->token);
	args[3] = CStringGetTextDatum(phase);
	args[4] = CStringGetTextDatum(t->cursor);
	args[5] = TimestampTzGetDatum(run_at);
	if (be_plan_exec(&release_plan, args, NULL, SPI_OK_UPDATE) != 1)
		be_task_lost(t, "lease expired");
}

/*
 * The step waited too long for a lock someone else holds (a tenant's open
 * transaction, say): the task goes back to pending and is tried again after
 * delay_ms, at its committed phase and cursor, without spending an attempt.
 */
void
be_task_wait(BeTask *t, const char *why, int delay_ms)
{
	Datum		args[5];

	args[0] = CStringGetTextDatum(t->workspace_id);
	args[1] = Int64GetDatum(t->task_id);
	args[2] = CStringGetTextDatum(t->token);
	args[3] = CStringGetTextDatum(why);
	args[4] = Int32GetDatum(delay_ms);
	(void) be_plan_exec(&wait_plan, args, NULL, SPI_OK_UPDATE);
}

/* Records progress and renews the lease; the caller's transaction commits both. */
void
be_task_advance(BeTask *t, const char *phase, const char *cursor)
{
	Datum		args[8];
	char		nulls[8] = "        ";

	args[0] = CStringGetTextDatum(t->workspace_id);
	args[1] = Int64GetDatum(t->task_id);
	args[2] = CStringGetTextDatum(t->token);
	args[3] = CStringGetTextDatum(phase);
	args[4] = CStringGetTextDatum(cursor);
	args[5] = Int64GetDatum(t->cutoff_hash);
	args[6] = t->cutoff_email ? CStringGetTextDatum(t->cutoff_email) : (Datum) 0;
	args[7] = Int32GetDatum(be_task_lease_s);
	if (!t->has_cutoff)
	{
		nulls[5] = 'n';
		nulls[6] = 'n';
	}
	else if (t->cutoff_email == NULL)
		nulls[6] = 'n';
	if (be_plan_exec(&advance_plan, args, nulls, SPI_OK_UPDATE) != 1)
		be_task_lost(t, "lease expired or task paused");
}

void
be_task_set_status(BeTask *t, const char *status)
{
	Datum		args[4];

	args[0] = CStringGetTextDatum(t->workspace_id);
	args[1] = Int64GetDatum(t->task_id);
	args[2] = CStringGetTextDatum(t->token);
	args[3] = CStringGetTextDatum(status);
	if (be_plan_exec(&status_plan, args, NULL, SPI_OK_UPDATE) != 1)
		be_task_lost(t, "lease expired");
}

/* Counts a failed step; retries with exponential backoff, then gives up. */
void
be_task_record_failure(BeTask *t, const char *message)
{
	Datum		args[5];

	args[0] = CStringGetTextDatum(t->workspace_id);
	args[1] = Int64GetDatum(t->task_id);
	args[2] = CStringGetTextDatum(t->token);
	args[3] = CStringGetTextDatum(message);
	args[4] = Float8GetDatum((double) be_task_retry_base_s);
	be_plan_exec(&fail_plan, args, NULL, SPI_OK_UPDATE);
	ereport(LOG,
			(errmsg("broadcast_engine: step of broadcast \"%s\" in workspace \"%s\" failed: %s",
					t->broadcast_id, t->workspace_id, message)));
}

/*
 * Sets *ms to the milliseconds until the next task is due (zero or negative:
 * overdue) and returns true, or returns false when no task is waiting.  No
 * value of *ms doubles as "none": a task overdue by a millisecond once read
 * as "nothing waiting" and slept through a whole tick.
 */
bool
be_tasks_next_due_ms(int64 *ms)
{
	bool		isnull;
	Datum		d;

	be_plan_exec(&next_due_plan, NULL, NULL, SPI_OK_SELECT);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return false;
	*ms = (int64) floor(DatumGetFloat8(DirectFunctionCall1(numeric_float8, d)));
	return true;
}
