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
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
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

static BeWorkerSlot *my_slot = NULL;

static void
be_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(BeSharedState)));
	RequestAddinShmemSpace(be_ratelimit_shmem_size());
	RequestNamedLWLockTranche("broadcast_engine", 2);
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
		be_init_slot(&be_shared->scheduler);
		for (i = 0; i < BE_MAX_SENDERS; i++)
			be_init_slot(&be_shared->senders[i]);
	}
	be_ratelimit_shmem_init();
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

static void
be_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (wake_scheduler_pending)
				be_wake_scheduler_now();
			if (wake_senders_pending)
				be_wake_senders_now();
			wake_scheduler_pending = false;
			wake_senders_pending = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
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
