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
#include "be_sender.h"

char	   *be_database_name = NULL;
char	   *be_database_user = NULL;
int			be_sender_workers = 2;
int			be_scheduler_tick_ms = 10000;
int			be_task_lease_s = 60;
int			be_chunk_size = 10000;
int			be_time_slice_ms = 1000;
int			be_drain_poll_ms = 5000;
int			be_task_retry_base_s = 5;
int			be_lock_timeout_ms = 2000;

int			be_sender_batch_size = 1000;
int			be_max_connections = 64;
int			be_max_connections_per_integration = 32;
int			be_sender_max_batches = 16;
int			be_sender_batch_bytes_kb = 64 * 1024;
int			be_connect_timeout_ms = 5000;
int			be_request_timeout_ms = 30000;
int			be_max_attempts = 5;
int			be_retry_base_ms = 5000;
int			be_breaker_threshold = 10;
int			be_breaker_cooldown_ms = 30000;
int			be_rate_buckets = 8192;
int			be_rate_bucket_idle_s = 300;
bool		be_allow_insecure_transport = false;
bool		be_allow_private_endpoints = false;
static int	be_webhook_tolerance_s = 300;
static int	be_sns_max_age_s = 3600;
static int	be_pending_events_limit = 10000;
static int	be_pending_events_max_age_s = 86400;
static int	be_history_retention_months = 0;

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
	be_edge_define_gucs(process_shared_preload_libraries_in_progress);
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

	DefineCustomIntVariable("broadcast_engine.lock_timeout",
							"Longest wait of a worker's statement for a lock.",
							"A unit of work that waits longer is rolled back and retried later "
							"without spending an attempt, so one tenant's locks cannot stall the workers.",
							&be_lock_timeout_ms,
							2000, 10, 600000,
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
	DefineCustomIntVariable("broadcast_engine.sender_batch_size",
							"Queue rows a sender claims and sends per batch.",
							NULL, &be_sender_batch_size, 1000, 1, 100000,
							PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("broadcast_engine.max_connections",
							"Transfers a sender runs at once (HTTP requests or SMTP sessions).",
							NULL, &be_max_connections, 64, 1, 1024,
							PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("broadcast_engine.max_connections_per_integration",
							"Transfers one integration's batch may run at once in a sender.",
							"A slow or silent server then holds only these, never the other pairs' connections.",
							&be_max_connections_per_integration, 32, 1, 1024,
							PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("broadcast_engine.sender_max_batches",
							"Batches (of different pairs) a sender keeps in flight at once.",
							NULL, &be_sender_max_batches, 16, 1, 256,
							PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("broadcast_engine.sender_batch_bytes",
							"Composed message bytes a sender holds at once, across its batches in flight.",
							"A claim takes no more rows than the rest of this budget holds at the broadcast's rendered size.",
							&be_sender_batch_bytes_kb, 64 * 1024, 1024, 16 * 1024 * 1024,
							PGC_SUSET, GUC_UNIT_KB, NULL, NULL, NULL);

	DefineCustomIntVariable("broadcast_engine.connect_timeout",
							"Longest wait to connect to a provider.",
							NULL, &be_connect_timeout_ms, 5000, 100, 600000,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("broadcast_engine.request_timeout",
							"Longest time one message's request may take.",
							NULL, &be_request_timeout_ms, 30000, 100, 600000,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("broadcast_engine.max_attempts",
							"Attempts per message before it is dead-lettered.",
							NULL, &be_max_attempts, 5, 1, 100,
							PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("broadcast_engine.retry_base",
							"First retry delay of a message; it doubles per attempt, with jitter.",
							"A provider's Retry-After takes precedence.",
							&be_retry_base_ms, 5000, 0, 3600 * 1000,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("broadcast_engine.breaker_threshold",
							"Consecutive provider failures that open an integration's circuit breaker.",
							NULL, &be_breaker_threshold, 10, 1, 100000,
							PGC_SUSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("broadcast_engine.breaker_cooldown",
							"How long an open circuit breaker waits before letting one probe through.",
							NULL, &be_breaker_cooldown_ms, 30000, 10, 3600 * 1000,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("broadcast_engine.rate_buckets",
							"Slots of the shared rate-limit and circuit-breaker table.",
							"One per provider account and per workspace on a shared account that has sent "
							"recently; when none is free, sending fails closed.",
							&be_rate_buckets, 8192, 64, 1048576,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("broadcast_engine.rate_bucket_idle",
							"How long a rate-limit bucket must be unused before its slot can be reused.",
							"Only a bucket with no pause, a closed breaker and no failures counted is reused.",
							&be_rate_bucket_idle_s, 300, 1, 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomBoolVariable("broadcast_engine.allow_insecure_transport",
							 "Allows plain http endpoints and SMTP without TLS.",
							 "For tests against local servers only.",
							 &be_allow_insecure_transport, false,
							 PGC_SUSET, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);

	/* SSRF guard: endpoint.c, and transport.c at connect time */
	DefineCustomBoolVariable("broadcast_engine.allow_private_endpoints",
							 "Allows integration endpoints and SMTP hosts on loopback, private and other non-public addresses.",
							 "For tests against local servers, or a provider reached over a private network.",
							 &be_allow_private_endpoints, false,
							 PGC_SUSET, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);

	/* read by broadcast.record_events() (the 1.2 script) through current_setting() */
	DefineCustomIntVariable("broadcast_engine.webhook_tolerance",
							"Largest difference between a signed webhook's timestamp and the server's clock.",
							"Mailgun and Resend (Svix) signatures older or newer than this are refused; 0 turns the check off.",
							&be_webhook_tolerance_s, 300, 0, 7 * 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);

	/* read by the 1.3 SQL (40_events_input.sql) through current_setting() */
	DefineCustomIntVariable("broadcast_engine.sns_max_age",
							"Oldest Amazon SNS message (by its Timestamp) that an SES integration accepts.",
							"SNS keeps a message's Timestamp across its retries; 0 turns the check off.",
							&be_sns_max_age_s, 3600, 0, 14 * 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("broadcast_engine.pending_events_limit",
							"Most delivery events a workspace may have waiting for their message's history row.",
							"Events beyond it are dropped with a warning and counted in broadcast.pending_events_dropped.",
							&be_pending_events_limit, 10000, 0, 10000000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("broadcast_engine.pending_events_max_age",
							"How long a delivery event waits for its message's history row before it is dropped.",
							NULL, &be_pending_events_max_age_s, 86400, 60, 30 * 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);

	/* read by broadcast.maintain_history() (1.3) through current_setting() */
	DefineCustomIntVariable("broadcast_engine.history_retention",
							"Months of message history kept; 0 keeps it forever.",
							"maintain_history() drops a month's partition once the whole month is older than the longest retention in force.",
							&be_history_retention_months, 0, 0, 1200,
							PGC_SUSET, 0, NULL, NULL, NULL);
}
