/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  Configuration parameters of broadcast_engine.
 *
 * Every parameter is documented in docs/configuration.md.  Parameters that
 * decide which database or role the workers connect as need a restart.
 * Those that tune a running worker are read again when it reloads its
 * configuration; the ones that also make sense per session (chunk size,
 * time slice...) are PGC_SUSET so a superuser can try them with SET and
 * CALL broadcast.run_tasks().
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/guc.h"

#include "broadcast_engine.h"

char	   *be_database_name = NULL;
char	   *be_database_user = NULL;
int			be_sender_workers = 2;
int			be_scheduler_tick_ms = 10000;
int			be_task_lease_s = 60;
int			be_chunk_size = 10000;
int			be_time_slice_ms = 1000;
int			be_drain_poll_ms = 5000;
int			be_task_retry_base_s = 5;

static void be_define_postmaster_gucs(void);
static void be_define_sighup_gucs(void);

void
be_define_gucs(void)
{
	/*
	 * Restart-only parameters can be defined only while preloading; a
	 * backend that loads the module on demand runs no workers anyway.
	 */
	if (process_shared_preload_libraries_in_progress)
		be_define_postmaster_gucs();
	be_define_sighup_gucs();
	MarkGUCPrefixReserved("broadcast_engine");
}

static void
be_define_postmaster_gucs(void)
{
	DefineCustomStringVariable("broadcast_engine.database",
							   "Database in which the broadcast_engine workers run.",
							   "The extension must be created in this database.",
							   &be_database_name,
							   "postgres",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("broadcast_engine.database_user",
							   "Role the broadcast_engine workers connect as.",
							   "Empty means the bootstrap superuser.",
							   &be_database_user,
							   "",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
}

static void
be_define_sighup_gucs(void)
{

	DefineCustomIntVariable("broadcast_engine.sender_workers",
							"Number of sender workers the launcher keeps running.",
							"Changes apply on reload.",
							&be_sender_workers,
							2, 0, BE_MAX_SENDERS,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("broadcast_engine.scheduler_tick",
							"Longest time the scheduler sleeps without looking for due tasks.",
							"Scheduling, resuming and selecting a winner wake it at once; "
							"the tick catches tasks changed by other means.",
							&be_scheduler_tick_ms,
							10000, 100, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("broadcast_engine.task_lease",
							"How long a claimed task stays owned without progress.",
							"After this, another executor may take the task over.",
							&be_task_lease_s,
							60, 5, 3600,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("broadcast_engine.chunk_size",
							"Recipients the orchestrator adds to the queue per transaction.",
							NULL,
							&be_chunk_size,
							10000, 1, 1000000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("broadcast_engine.time_slice",
							"How long one task runs before the next task gets its turn.",
							NULL,
							&be_time_slice_ms,
							1000, 10, 60000,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("broadcast_engine.drain_poll",
							"How often a broadcast waiting for its queue to drain is checked.",
							"Senders wake the scheduler when they empty a broadcast's queue; "
							"this poll is the fallback.",
							&be_drain_poll_ms,
							5000, 10, 3600 * 1000,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("broadcast_engine.task_retry_base",
							"First retry delay of a task step that failed; it doubles per attempt.",
							NULL,
							&be_task_retry_base_s,
							5, 0, 3600,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);
}
