/*-------------------------------------------------------------------------
 *
 * exec.c
 *	  Running short transactions of work, in a background worker or inside
 *	  a CALL from SQL (pg_cron, tests).
 *
 * The scheduler and the senders do their work as a series of short units,
 * each committed on its own.  A worker starts and commits transactions
 * itself; a procedure runs in a non-atomic SPI context and commits with
 * SPI_commit().  The code above this file does not care which.
 *
 * Every unit runs in a subtransaction so that an error in one task's step
 * can be recorded against that task (in the same transaction) without
 * ending the loop; query cancels still propagate.  Every unit runs under
 * broadcast_engine.lock_timeout: a lock held by someone else (a tenant's
 * open transaction, an administrator's LOCK TABLE) makes the unit fail
 * with lock_not_available instead of stalling the worker, and the caller
 * retries that unit later while the other work goes on.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "executor/spi.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "broadcast_engine.h"

/* the SQLSTATE of the last unit that failed (0 after one that succeeded) */
int			be_exec_last_sqlstate = 0;

void
be_exec_init(BeExec *ex, bool in_procedure, BeWorkerSlot *slot)
{
	ex->in_procedure = in_procedure;
	ex->slot = slot;
	ex->caller_cxt = NULL;
	ex->unit_cxt = AllocSetContextCreate(TopMemoryContext,
										 "broadcast_engine unit",
										 ALLOCSET_DEFAULT_SIZES);
	if (in_procedure)
	{
		if (SPI_connect_ext(SPI_OPT_NONATOMIC) != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect_ext failed");
	}
}

void
be_exec_finish(BeExec *ex)
{
	if (ex->in_procedure)
		SPI_finish();
	MemoryContextDelete(ex->unit_cxt);
	ex->unit_cxt = NULL;
}

void
be_exec_begin(BeExec *ex)
{
	/* a commit leaves us in TopMemoryContext: come back here afterwards */
	ex->caller_cxt = CurrentMemoryContext;
	if (ex->in_procedure)
		return;					/* a transaction is always open in CALL */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
}

void
be_exec_commit(BeExec *ex)
{
	if (SPI_tuptable != NULL)
	{
		SPI_freetuptable(SPI_tuptable);
		SPI_tuptable = NULL;
	}
	if (ex->in_procedure)
		SPI_commit();
	else
	{
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		pgstat_report_stat(false);
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	if (ex->slot != NULL)
	{
		pg_atomic_fetch_add_u64(&ex->slot->units_done, 1);
		ex->slot->last_active = GetCurrentTimestamp();
	}
	MemoryContextReset(ex->unit_cxt);
	if (ex->caller_cxt != NULL)
		MemoryContextSwitchTo(ex->caller_cxt);
}

/*
 * Runs fn(arg) in a subtransaction of the current transaction.  Returns
 * false, with the error message (allocated in the caller's context), when
 * it raised an ERROR; the subtransaction's work is then rolled back.
 * Cancels and shutdowns are not swallowed.
 */
bool
be_exec_unit(BeExec *ex, BeUnitFn fn, void *arg, char **errmsg_out)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool ok = true;
	char		timeout[32];

	be_exec_last_sqlstate = 0;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(ex->unit_cxt);

	PG_TRY();
	{
		/* undone with the subtransaction, whichever way it ends */
		snprintf(timeout, sizeof(timeout), "%dms", be_lock_timeout_ms);
		(void) set_config_option("lock_timeout", timeout, PGC_SUSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);

		/*
		 * Units are short statements over a few thousand rows.  With
		 * enable_seqscan off (be_plan_exec's queue statements) any table
		 * without an index, however small, costs more than jit_above_cost,
		 * and compiling the plan took 300 ms of a 15 ms claim.
		 */
		(void) set_config_option("jit", "off", PGC_SUSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
		fn(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;

		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
			edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
			ReThrowError(edata);
		if (errmsg_out)
			*errmsg_out = edata->message ? edata->message : pstrdup("unknown error");
		be_exec_last_sqlstate = edata->sqlerrcode;
		ok = false;
	}
	PG_END_TRY();

	return ok;
}

/*
 * Executes a statement prepared once per process.  The previous result of
 * any statement is freed first: callers copy out what they need at once.
 */
int
be_plan_exec(BePlan *p, Datum *values, const char *nulls, int expected)
{
	int			rc;

	if (p->plan == NULL)
	{
		SPIPlanPtr	plan;

		/*
		 * A generic plan guesses 10 elements for every array parameter and
		 * may pick a bitmap scan of the whole workspace; statements that
		 * take a batch as arrays are planned with their values each time.
		 */
		plan = SPI_prepare_cursor(p->sql, p->nargs, p->argtypes,
								  p->custom ? CURSOR_OPT_CUSTOM_PLAN : 0);

		if (plan == NULL)
			elog(ERROR, "could not prepare statement: %s",
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "could not keep a prepared statement");
		p->plan = plan;
	}
	if (SPI_tuptable != NULL)
	{
		SPI_freetuptable(SPI_tuptable);
		SPI_tuptable = NULL;
	}
	if (p->queue_scan)
	{
		/*
		 * email_queue swings from empty to millions of rows and back faster
		 * than autovacuum's statistics follow, and a plan made while it was
		 * empty is kept: a seq scan then reads every dead row of a sent
		 * broadcast on each call.  Its statements are written for its
		 * indexes, so the planner gets no other choice, here or when it
		 * replans inside SPI_execute_plan.
		 */
		int			save = NewGUCNestLevel();

		(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		rc = SPI_execute_plan(p->plan, values, nulls, false, 0);
		AtEOXact_GUC(true, save);
	}
	else
		rc = SPI_execute_plan(p->plan, values, nulls, false, 0);
	if (rc != expected)
		elog(ERROR, "unexpected result %s from statement: %.200s",
			 SPI_result_code_string(rc), p->sql);
	return (int) SPI_processed;
}

/*
 * The installed version of the extension, palloc'd in the caller's context,
 * or NULL when it is not installed.
 */
static char *
installed_version(void)
{
	char	   *version = NULL;
	MemoryContext caller = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (OidIsValid(get_extension_oid("broadcast_engine", true)))
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		PushActiveSnapshot(GetTransactionSnapshot());
		if (SPI_execute("SELECT extversion FROM pg_catalog.pg_extension"
						" WHERE extname = 'broadcast_engine'", true, 1) == SPI_OK_SELECT &&
			SPI_processed == 1)
		{
			char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

			if (v)
				version = MemoryContextStrdup(caller, v);
		}
		PopActiveSnapshot();
		SPI_finish();
	}
	CommitTransactionCommand();
	MemoryContextSwitchTo(caller);
	return version;
}

/*
 * Workers start before anyone ran CREATE EXTENSION: wait for it, looking
 * again at every tick.  They also wait while the database still has an
 * older version than the library's (between installing new binaries and
 * ALTER EXTENSION UPDATE): their statements use the new version's objects.
 */
void
be_wait_for_extension(const char *who)
{
	bool		logged = false;
	char	   *version;

	while ((version = installed_version()) == NULL || strcmp(version, BE_EXTVERSION) != 0)
	{
		if (!logged && version == NULL)
			ereport(LOG,
					(errmsg("broadcast_engine %s: extension not installed in database \"%s\", waiting",
							who, be_database_name)));
		else if (!logged)
			ereport(LOG,
					(errmsg("broadcast_engine %s: extension version %s in database \"%s\" differs from the library's %s, waiting",
							who, version, be_database_name, BE_EXTVERSION),
					 errhint("Run ALTER EXTENSION broadcast_engine UPDATE.")));
		logged = true;
		if (version)
			pfree(version);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 be_scheduler_tick_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}
	pfree(version);
	ereport(LOG, (errmsg("broadcast_engine %s started in database \"%s\"", who, be_database_name)));
}

/*
 * The checks shared by the procedures that commit as they go (run_tasks,
 * send_queue): called by CALL outside a transaction block, with a sane time
 * budget.  Returns max_seconds.
 */
int
be_procedure_max_seconds(FunctionCallInfo fcinfo, const char *name)
{
	int			max_seconds = PG_ARGISNULL(0) ? 50 : PG_GETARG_INT32(0);

	if (max_seconds < 1 || max_seconds > 3600)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_seconds must be between 1 and 3600, got %d", max_seconds)));
	if (fcinfo->context == NULL || !IsA(fcinfo->context, CallContext) ||
		((CallContext *) fcinfo->context)->atomic)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
				 errmsg("%s must be called with CALL outside a transaction block", name),
				 errhint("It commits as it goes, so it cannot run inside BEGIN ... COMMIT or a function.")));
	return max_seconds;
}
