/*-------------------------------------------------------------------------
 *
 * status.c
 *	  What the workers and the rate limiter are doing, for operators.
 *
 * broadcast.worker_status() reads the worker slots and
 * broadcast.rate_limits() the token buckets and circuit breakers, both in
 * shared memory; neither takes a lock longer than a copy.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "broadcast_engine.h"
#include "be_sender.h"

PG_FUNCTION_INFO_V1(be_worker_status);

static void
put_slot(ReturnSetInfo *rsinfo, const char *kind, int index, BeWorkerSlot *slot)
{
	Datum		values[12];
	bool		nulls[12] = {false};
	pid_t		pid;
	TimestampTz started;
	TimestampTz active;

	LWLockAcquire(be_shared->lock, LW_SHARED);
	pid = slot->pid;
	started = slot->started_at;
	active = slot->last_active;
	LWLockRelease(be_shared->lock);
	if (pid == 0)
		return;
	values[0] = CStringGetTextDatum(kind);
	values[1] = Int32GetDatum(index);
	values[2] = Int32GetDatum((int32) pid);
	values[3] = TimestampTzGetDatum(started);
	values[4] = TimestampTzGetDatum(active);
	nulls[4] = (active == 0);
	values[5] = Int64GetDatum((int64) pg_atomic_read_u64(&slot->units_done));
	values[6] = Int64GetDatum((int64) pg_atomic_read_u64(&slot->messages));
	values[7] = Int64GetDatum((int64) pg_atomic_read_u64(&slot->batches));
	values[8] = Float8GetDatum(pg_atomic_read_u64(&slot->claim_us) / 1000.0);
	values[9] = Float8GetDatum(pg_atomic_read_u64(&slot->render_us) / 1000.0);
	values[10] = Float8GetDatum(pg_atomic_read_u64(&slot->send_us) / 1000.0);
	values[11] = Float8GetDatum(pg_atomic_read_u64(&slot->record_us) / 1000.0);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/* one row per running scheduler and sender worker */
Datum
be_worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	if (!be_shmem_available())
		return (Datum) 0;		/* not preloaded: no workers */
	put_slot(rsinfo, "scheduler", 0, &be_shared->scheduler);
	for (i = 0; i < BE_MAX_SENDERS; i++)
		put_slot(rsinfo, "sender", i, &be_shared->senders[i]);
	return (Datum) 0;
}
