/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher: keeps the scheduler and the sender workers running.
 *
 * _PG_init registers the launcher (a static worker, restarted by the
 * postmaster).  It starts the others as dynamic workers connected to
 * broadcast_engine.database, restarts any that stop, and follows
 * broadcast_engine.sender_workers on reload.  A worker that is alive holds
 * its slot in shared memory, so a restarted launcher does not start a
 * second copy of a worker that is still running.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "broadcast_engine.h"

PGDLLEXPORT void be_launcher_main(Datum main_arg);

#define RESTART_DELAY_MS 5000

typedef struct LaunchedWorker
{
	BackgroundWorkerHandle *handle;
	TimestampTz last_start;
} LaunchedWorker;

static LaunchedWorker scheduler_worker;
static LaunchedWorker sender_workers[BE_MAX_SENDERS];
static bool logged_no_slots = false;

void
be_register_launcher(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "broadcast_engine");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "be_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "broadcast_engine launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "broadcast_engine launcher");
	RegisterBackgroundWorker(&worker);
}

static bool
worker_alive(LaunchedWorker *lw, BeWorkerSlot *slot)
{
	if (lw->handle != NULL)
	{
		pid_t		pid;
		BgwHandleStatus st = GetBackgroundWorkerPid(lw->handle, &pid);

		if (st == BGWH_STARTED || st == BGWH_NOT_YET_STARTED)
			return true;
		pfree(lw->handle);
		lw->handle = NULL;
	}
	/* started by an earlier launcher and still running */
	return slot->pid != 0;
}

static void
start_worker(LaunchedWorker *lw, const char *function, const char *name, int arg)
{
	BackgroundWorker worker;
	TimestampTz now = GetCurrentTimestamp();

	/* a worker that keeps failing is not restarted in a hot loop */
	if (lw->last_start != 0 &&
		!TimestampDifferenceExceeds(lw->last_start, now, RESTART_DELAY_MS))
		return;
	lw->last_start = now;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "broadcast_engine");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "%s", function);
	snprintf(worker.bgw_name, BGW_MAXLEN, "%s", name);
	snprintf(worker.bgw_type, BGW_MAXLEN, "%s", name);
	worker.bgw_main_arg = Int32GetDatum(arg);
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &lw->handle))
	{
		lw->handle = NULL;
		if (!logged_no_slots)
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("broadcast_engine could not start \"%s\": out of background worker slots", name),
					 errhint("Increase max_worker_processes; broadcast_engine needs %d plus one per sender.",
							 2)));
		logged_no_slots = true;
	}
}

static void
maintain_workers(void)
{
	int			i;

	if (!worker_alive(&scheduler_worker, &be_shared->scheduler))
		start_worker(&scheduler_worker, "be_scheduler_main", "broadcast_engine scheduler", 0);

	for (i = 0; i < BE_MAX_SENDERS; i++)
	{
		BeWorkerSlot *slot = &be_shared->senders[i];
		char		name[BGW_MAXLEN];

		if (i < be_sender_workers)
		{
			if (!worker_alive(&sender_workers[i], slot))
			{
				snprintf(name, sizeof(name), "broadcast_engine sender %d", i);
				start_worker(&sender_workers[i], "be_sender_main", name, i);
			}
		}
		else if (slot->pid != 0)
		{
			/* fewer senders wanted after a reload */
			if (sender_workers[i].handle != NULL)
				TerminateBackgroundWorker(sender_workers[i].handle);
			else
				kill(slot->pid, SIGTERM);
		}
	}
}

void
be_launcher_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/* no database, like the logical replication launcher: visible in pg_stat_activity */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("broadcast_engine launcher");
	be_shared->launcher_pid = MyProcPid;
	ereport(LOG, (errmsg("broadcast_engine launcher started for database \"%s\"", be_database_name)));

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		maintain_workers();

		/* woken when a worker starts or stops (bgw_notify_pid), or to retry a start */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 RESTART_DELAY_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
