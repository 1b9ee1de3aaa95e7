/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  Shared memory of broadcast_engine, and waking workers on commit.
 *
 * The state lives in one chunk requested through shmem_request_hook.  It
 * holds only PIDs, PGPROC numbers and counters: never process-local
 * pointers.  A latch is reached through the PGPROC number.
 *
 * SQL functions that create work (schedule, resume, select_winner, and
 * the orchestrator's queue inserts) ask for a wake-up; it is delivered by
 * one transaction callback, registered once per backend, and only when the
 * transaction commits, so a worker never wakes to find nothing visible.
 *
 * Cache generations.  The senders cache integrations and compiled
 * broadcasts (src/sender.c).  Triggers on every table those caches read
 * (broadcast._bump_generation(), below) mark the transaction; the same
 * callback then adds one to cache_started at PRE_COMMIT, before the commit
 * becomes visible, and one to cache_done at COMMIT (or ABORT), after
 * ProcArrayEndTransaction made it visible.  A sender tags what it loads
 * with cache_done read before the loading snapshot, and trusts an entry for
 * a claim only while its tag equals cache_started read after the claim's
 * snapshot.  Why that is enough:
 *	- a change the claim can see became visible before the claim's snapshot,
 *	  so its cache_started step came earlier still and is counted;
 *	- a change counted in the tag had finished (cache_done) before the load's
 *	  snapshot, so the loaded rows include it;
 *	- every change steps cache_started once and then cache_done once, so
 *	  the two counts are equal only if the same changes are behind both.
 * A sender therefore never uses an entry older than a change its claim can
 * see, and never tags rows loaded before a change with a generation that
 * includes it.  After a crash shared memory is rebuilt and every worker
 * starts with empty caches, so the counters may start again from zero.
 * PREPARE TRANSACTION is refused for such a transaction: its commit would
 * happen in another session, without the second step.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "broadcast_engine.h"
#include "be_sender.h"

BeSharedState *be_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static bool wake_scheduler_pending = false;
static bool wake_senders_pending = false;
static bool xact_callback_registered = false;
static bool cache_change_pending = false;	/* a trigger fired in this transaction */
static bool cache_change_started = false;	/* cache_started was stepped for it */

/* without shared memory every look is a new generation: nothing is trusted */
static uint64 local_generation = 0;

static BeWorkerSlot *my_slot = NULL;

static void
be_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(BeSharedState)));
	RequestAddinShmemSpace(be_ratelimit_shmem_size());
	RequestAddinShmemSpace(be_isolation_shmem_size());
	/* the slots' lock, the rate-limit table's, the isolated pairs' */
	RequestNamedLWLockTranche("broadcast_engine", 3);
}

static void
be_init_slot(BeWorkerSlot *slot)
{
	slot->pid = 0;
	slot->procno = -1;
	slot->kind = BE_WORKER_NONE;
	slot->started_at = 0;
	slot->last_active = 0;
	pg_atomic_init_u64(&slot->units_done, 0);
	pg_atomic_init_u64(&slot->messages, 0);
	pg_atomic_init_u64(&slot->batches, 0);
	pg_atomic_init_u64(&slot->claim_us, 0);
	pg_atomic_init_u64(&slot->render_us, 0);
	pg_atomic_init_u64(&slot->send_us, 0);
	pg_atomic_init_u64(&slot->record_us, 0);
}

static void
be_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	be_shared = ShmemInitStruct("broadcast_engine", sizeof(BeSharedState), &found);
	if (!found)
	{
		int			i;

		be_shared->lock = &(GetNamedLWLockTranche("broadcast_engine"))->lock;
		be_shared->launcher_pid = 0;
		pg_atomic_init_u64(&be_shared->cache_started, 0);
		pg_atomic_init_u64(&be_shared->cache_done, 0);
		be_init_slot(&be_shared->scheduler);
		for (i = 0; i < BE_MAX_SENDERS; i++)
			be_init_slot(&be_shared->senders[i]);
	}
	be_ratelimit_shmem_init();
	be_isolation_shmem_init();
	LWLockRelease(AddinShmemInitLock);
}

/* Called from _PG_init when preloaded. */
void
be_shmem_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = be_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = be_shmem_startup;
}

bool
be_shmem_available(void)
{
	return be_shared != NULL;
}

static void
be_slot_detach(int code, Datum arg)
{
	if (my_slot == NULL)
		return;
	LWLockAcquire(be_shared->lock, LW_EXCLUSIVE);
	if (my_slot->pid == MyProcPid)
	{
		my_slot->pid = 0;
		my_slot->procno = -1;
		my_slot->kind = BE_WORKER_NONE;
	}
	LWLockRelease(be_shared->lock);
	my_slot = NULL;
}

/*
 * Publish this worker's latch in its slot; the slot is freed on exit, so the
 * launcher can tell a live worker from a dead one.
 */
void
be_slot_attach(BeWorkerSlot *slot, BeWorkerKind kind)
{
	LWLockAcquire(be_shared->lock, LW_EXCLUSIVE);
	slot->pid = MyProcPid;
	slot->procno = MyProc->pgprocno;
	slot->kind = kind;
	slot->started_at = GetCurrentTimestamp();
	slot->last_active = 0;
	LWLockRelease(be_shared->lock);
	my_slot = slot;
	on_shmem_exit(be_slot_detach, (Datum) 0);
}

static void
be_set_slot_latch(BeWorkerSlot *slot)
{
	int			procno;

	/* a stale procno at worst wakes some other process once: harmless */
	procno = slot->procno;
	if (slot->pid != 0 && procno >= 0)
		SetLatch(&ProcGlobal->allProcs[procno].procLatch);
}

void
be_wake_scheduler_now(void)
{
	if (be_shared == NULL)
		return;
	be_set_slot_latch(&be_shared->scheduler);
}

void
be_wake_senders_now(void)
{
	int			i;

	if (be_shared == NULL)
		return;
	for (i = 0; i < BE_MAX_SENDERS; i++)
		be_set_slot_latch(&be_shared->senders[i]);
}

/* the second step of a cache change: after commit or abort */
static void
cache_change_finish(bool committed)
{
	/* a trigger that fired after PRE_COMMIT (another module's callback): late, but counted */
	if (committed && cache_change_pending && !cache_change_started && be_shared != NULL)
	{
		pg_atomic_fetch_add_u64(&be_shared->cache_started, 1);
		cache_change_started = true;
	}
	if (cache_change_started && be_shared != NULL)
		pg_atomic_fetch_add_u64(&be_shared->cache_done, 1);
	cache_change_started = false;
	cache_change_pending = false;
}

static void
be_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			if (cache_change_pending && !cache_change_started && be_shared != NULL)
			{
				/* a full barrier: ordered before the commit record and the ProcArray update */
				pg_atomic_fetch_add_u64(&be_shared->cache_started, 1);
				cache_change_started = true;
			}
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (cache_change_pending)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that changed rows the broadcast_engine senders cache"),
						 errdetail("The senders must learn of the change when it commits, which a prepared transaction does in another session."),
						 errhint("Commit the change without two-phase commit.")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			/* before the wake-ups: a woken sender must find the new generation */
			cache_change_finish(true);
			if (wake_scheduler_pending)
				be_wake_scheduler_now();
			if (wake_senders_pending)
				be_wake_senders_now();
			wake_scheduler_pending = false;
			wake_senders_pending = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			/* keeps cache_started - cache_done equal to the commits in flight */
			cache_change_finish(false);
			wake_scheduler_pending = false;
			wake_senders_pending = false;
			break;
		default:
			break;
	}
}

void
be_register_xact_callback(void)
{
	if (!xact_callback_registered)
	{
		RegisterXactCallback(be_xact_callback, NULL);
		xact_callback_registered = true;
	}
}

void
be_wake_scheduler_at_commit(void)
{
	be_register_xact_callback();
	wake_scheduler_pending = true;
}

void
be_wake_senders_at_commit(void)
{
	be_register_xact_callback();
	wake_senders_pending = true;
}

/* Called by the cache triggers: the senders reload after this transaction commits. */
void
be_cache_changed_at_commit(void)
{
	be_register_xact_callback();
	cache_change_pending = true;
}

/* changes finished (visible); read before the snapshot that loads a cache entry */
uint64
be_cache_generation_done(void)
{
	if (be_shared == NULL)
		return ++local_generation;
	pg_memory_barrier();
	return pg_atomic_read_u64(&be_shared->cache_done);
}

/* changes started; read after the snapshot of a claim, to check entries against */
uint64
be_cache_generation_started(void)
{
	if (be_shared == NULL)
		return ++local_generation;
	pg_memory_barrier();
	return pg_atomic_read_u64(&be_shared->cache_started);
}

PG_FUNCTION_INFO_V1(be_bump_generation);

/*
 * broadcast._bump_generation(): trigger on the tables the senders cache
 * rows of (statement level, any event).  The senders see the change from
 * their next batch on (see the file comment).
 */
Datum
be_bump_generation(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("broadcast._bump_generation() must be called as a trigger")));
	be_cache_changed_at_commit();
	return PointerGetDatum(NULL);
}
