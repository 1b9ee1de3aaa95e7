/*-------------------------------------------------------------------------
 *
 * scheduler.c
 *	  The scheduler: runs due tasks, in a background worker or from SQL.
 *
 * One cycle claims every due task (no cap), then serves them round-robin:
 * each task runs units of its current phase for at most one time slice
 * before the next task gets its turn, so a million-recipient broadcast does
 * not hold up a fifty-recipient one.  Tasks that became due meanwhile join
 * the rotation after each round.  Tasks still unfinished when the time
 * budget ends are released, to be claimed again at once.
 *
 * The worker sleeps on its latch until the next task is due; scheduling,
 * resuming and choosing a winner set the latch when they commit, and a
 * periodic tick (broadcast_engine.scheduler_tick) catches anything else.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "broadcast_engine.h"
#include "be_tasks.h"

PG_FUNCTION_INFO_V1(be_run_tasks);
PG_FUNCTION_INFO_V1(be_sql_wake_scheduler);
PG_FUNCTION_INFO_V1(be_sql_wake_senders);



typedef struct ClaimArgs
{
	MemoryContext cxt;
	List	   *tasks;
} ClaimArgs;

static void
claim_unit(void *arg)
{
	ClaimArgs  *ca = (ClaimArgs *) arg;

	ca->tasks = be_tasks_claim(ca->cxt);
}

static void
release_unit(void *arg)
{
	BeTask	   *t = (BeTask *) arg;

	be_task_release(t, t->phase, GetCurrentTimestamp());
}

/* maintain_history() when its hour has come (_maintain_history_due) */
static BePlan history_plan = {
	"SELECT broadcast._maintain_history_due()",
	0, {InvalidOid}
};

static void
history_unit(void *arg)
{
	be_plan_exec(&history_plan, NULL, NULL, SPI_OK_SELECT);
}

/*
 * The message history's partitions are kept from here, so that pg_cron
 * setups (run_tasks) get it too.  The SQL side decides whether an hour has
 * passed; this only spares it the question more than once a minute.
 */
static void
maybe_maintain_history(BeExec *ex)
{
	static TimestampTz last_check = 0;
	TimestampTz now = GetCurrentTimestamp();
	char	   *err = NULL;

	if (last_check != 0 && !TimestampDifferenceExceeds(last_check, now, 60 * 1000))
		return;
	last_check = now;
	be_exec_begin(ex);
	if (!be_exec_unit(ex, history_unit, NULL, &err))
		ereport(WARNING,
				(errmsg("broadcast_engine: could not run the message history maintenance: %s", err)));
	be_exec_commit(ex);
}

/* Runs one unit of a task in its own transaction; false when the task leaves the rotation. */
static bool
run_task_unit(BeExec *ex, BeTask *t, BeUnitFn fn)
{
	char	   *err = NULL;
	bool		ok;

	CHECK_FOR_INTERRUPTS();
	be_exec_begin(ex);
	t->lost = false;
	ok = be_exec_unit(ex, fn, t, &err);
	if (!ok && !t->lost)
	{
		if (be_exec_last_sqlstate == ERRCODE_LOCK_NOT_AVAILABLE)
		{
			/* someone else's lock, not the task's fault: later, no attempt spent */
			be_task_wait(t, psprintf("waiting for a lock: %s", err), be_lock_timeout_ms);
			t->result = BE_STEP_RELEASED;
		}
		else
		{
			/* counted in the same transaction; the task is retried with backoff */
			be_task_record_failure(t, err);
		}
	}
	be_exec_commit(ex);
	if (!ok)
		return false;
	return t->result == BE_STEP_CONTINUE;
}

/*
 * Runs due tasks for at most max_ms.  Returns whether work remains that is
 * due now (so the caller should not sleep).
 */
int
be_run_due_tasks(BeExec *ex, int max_ms, bool *more_work)
{
	MemoryContext cycle_cxt;
	TimestampTz deadline;
	List	   *volatile tasks = NIL;
	ClaimArgs	ca;
	char	   *err;
	ListCell   *lc;
	volatile int nsteps = 0;
	MemoryContext old_cxt;

	cycle_cxt = AllocSetContextCreate(TopMemoryContext, "broadcast_engine cycle",
									  ALLOCSET_DEFAULT_SIZES);
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), max_ms);
	*more_work = false;
	old_cxt = MemoryContextSwitchTo(cycle_cxt);

	PG_TRY();
	{
		maybe_maintain_history(ex);
		for (;;)
		{
			List	   *next = NIL;

			/* all tasks that are due join the rotation, however many */
			ca.cxt = cycle_cxt;
			ca.tasks = NIL;
			be_exec_begin(ex);
			if (!be_exec_unit(ex, claim_unit, &ca, &err))
				elog(ERROR, "could not claim tasks: %s", err);
			be_exec_commit(ex);
			tasks = list_concat(tasks, ca.tasks);
			if (tasks == NIL)
				break;

			/* one round: every task gets one time slice */
			foreach(lc, tasks)
			{
				BeTask	   *t = (BeTask *) lfirst(lc);
				TimestampTz slice_end;
				bool		keep;

				if (GetCurrentTimestamp() >= deadline)
				{
					next = lappend(next, t);
					continue;
				}
				slice_end = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), be_time_slice_ms);
				if (slice_end > deadline)
					slice_end = deadline;

				/* the first unit of a step also loads the broadcast, in the same transaction */
				t->loaded = false;
				keep = run_task_unit(ex, t, be_orchestrator_step_unit);
				while (keep && GetCurrentTimestamp() < slice_end)
					keep = run_task_unit(ex, t, be_orchestrator_step_unit);
				nsteps++;
				if (keep)
					next = lappend(next, t);
				else
					MemoryContextDelete(t->cxt);
			}
			list_free(tasks);
			tasks = next;
			if (GetCurrentTimestamp() >= deadline)
				break;
		}

		/* out of time: hand unfinished tasks back so they can be taken at once */
		foreach(lc, tasks)
		{
			BeTask	   *t = (BeTask *) lfirst(lc);

			*more_work = true;
			be_exec_begin(ex);
			(void) be_exec_unit(ex, release_unit, t, &err);
			be_exec_commit(ex);
		}
	}
	PG_FINALLY();
	{
		MemoryContextSwitchTo(old_cxt);
		MemoryContextDelete(cycle_cxt);
	}
	PG_END_TRY();

	return nsteps;
}

/* arg: int64, the milliseconds until the next task is due, or -1 for none */
static void
next_due_unit(void *arg)
{
	int64		ms;

	*(int64 *) arg = be_tasks_next_due_ms(&ms) ? Max(ms, 0) : -1;
}

void
be_scheduler_main(Datum main_arg)
{
	BeExec		ex;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(be_database_name,
										 be_database_user[0] ? be_database_user : NULL, 0);
	pgstat_report_appname("broadcast_engine scheduler");
	be_slot_attach(&be_shared->scheduler, BE_WORKER_SCHEDULER);

	be_wait_for_extension("scheduler");

	/*
	 * A chunk's rows and its cursor commit together, so losing the last
	 * commits in a crash only repeats them: no need to wait for the flush.
	 */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);

	be_exec_init(&ex, false, &be_shared->scheduler);
	for (;;)
	{
		bool		more = false;
		int			nsteps;
		int64		next_ms = -1;
		long		sleep_ms;
		char	   *err;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		pgstat_report_activity(STATE_RUNNING, "running due tasks");
		nsteps = be_run_due_tasks(&ex, 5000, &more);
		if (more)
			continue;

		/* sleep until the next task is due, or the tick */
		be_exec_begin(&ex);
		if (!be_exec_unit(&ex, next_due_unit, &next_ms, &err))
			elog(ERROR, "could not read the next due task: %s", err);
		be_exec_commit(&ex);
		sleep_ms = be_scheduler_tick_ms;
		if (next_ms > 0 && next_ms < sleep_ms)
			sleep_ms = (long) next_ms + 1;
		if (next_ms == 0)
			sleep_ms = 0;
		/* overdue but not claimable (another executor is claiming it): back off a little */
		if (sleep_ms == 0 && nsteps == 0)
			sleep_ms = 10;

		if (sleep_ms > 0)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 sleep_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
	}
}

/*
 * CALL broadcast.run_tasks(max_seconds): the scheduler's work in the calling
 * session, committing as it goes.  Returns when nothing is due or the time
 * is up.  This is how pg_cron drives an installation without workers.
 */
Datum
be_run_tasks(PG_FUNCTION_ARGS)
{
	int			max_seconds = be_procedure_max_seconds(fcinfo, "broadcast.run_tasks()");
	BeExec		ex;
	bool		more = true;
	char	   *saved_sync;
	TimestampTz deadline;

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), (int64) max_seconds * 1000);
	be_exec_init(&ex, true, NULL);

	/* as in the worker, commits need not wait for the WAL flush (restored below) */
	saved_sync = pstrdup(GetConfigOption("synchronous_commit", false, false));
	SetConfigOption("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION);
	PG_TRY();
	{
		for (;;)
		{
			long		secs;
			int			usecs;

			TimestampDifference(GetCurrentTimestamp(), deadline, &secs, &usecs);
			if (secs <= 0 && usecs <= 0)
				break;
			(void) be_run_due_tasks(&ex, (int) (secs * 1000 + usecs / 1000), &more);
			if (!more)
				break;
		}
	}
	PG_FINALLY();
	{
		SetConfigOption("synchronous_commit", saved_sync, PGC_USERSET, PGC_S_SESSION);
	}
	PG_END_TRY();
	be_exec_finish(&ex);
	PG_RETURN_VOID();
}

/* broadcast._wake_scheduler(): wake the scheduler when this transaction commits */
Datum
be_sql_wake_scheduler(PG_FUNCTION_ARGS)
{
	be_wake_scheduler_at_commit();
	PG_RETURN_VOID();
}

/* broadcast._wake_senders(): wake the senders when this transaction commits */
Datum
be_sql_wake_senders(PG_FUNCTION_ARGS)
{
	be_wake_senders_at_commit();
	PG_RETURN_VOID();
}
