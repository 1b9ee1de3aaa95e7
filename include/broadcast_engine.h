/*-------------------------------------------------------------------------
 *
 * broadcast_engine.h
 *	  Declarations shared by the extension's server-side modules.
 *
 *-------------------------------------------------------------------------
 */
#ifndef BROADCAST_ENGINE_H
#define BROADCAST_ENGINE_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "executor/spi.h"
#include "port/atomics.h"
#include "storage/lwlock.h"

#define BE_MAX_SENDERS 32

/* guc.c */
extern char *be_database_name;
extern char *be_database_user;
extern int	be_sender_workers;
extern int	be_scheduler_tick_ms;
extern int	be_task_lease_s;
extern int	be_chunk_size;
extern int	be_time_slice_ms;
extern int	be_drain_poll_ms;
extern int	be_task_retry_base_s;
extern int	be_lock_timeout_ms;

extern void be_define_gucs(void);

/* shmem.c: what the workers share */
typedef enum BeWorkerKind
{
	BE_WORKER_NONE = 0,
	BE_WORKER_SCHEDULER,
	BE_WORKER_SENDER
} BeWorkerKind;

typedef struct BeWorkerSlot
{
	pid_t		pid;			/* 0 when the slot is free */
	int			procno;			/* PGPROC number, to set the latch */
	BeWorkerKind kind;
	TimestampTz started_at;
	TimestampTz last_active;	/* last time it did any work */
	pg_atomic_uint64 units_done;	/* transactions of work committed */
	pg_atomic_uint64 messages;	/* messages handled (senders) */
	/* senders: batches, and microseconds spent in each stage of them */
	pg_atomic_uint64 batches;
	pg_atomic_uint64 claim_us;	/* claim transaction */
	pg_atomic_uint64 render_us;	/* templates, MIME and request bodies */
	pg_atomic_uint64 send_us;	/* the provider's transfers */
	pg_atomic_uint64 record_us; /* results transaction */
} BeWorkerSlot;

typedef struct BeSharedState
{
	LWLock	   *lock;			/* protects the slots' pid/procno/kind */
	pid_t		launcher_pid;
	/*
	 * Cache generations (see shmem.c): a transaction that changed a row a
	 * sender caches adds one to cache_started before its commit becomes
	 * visible and one to cache_done after; so cache_started >= cache_done.
	 */
	pg_atomic_uint64 cache_started;
	pg_atomic_uint64 cache_done;
	BeWorkerSlot scheduler;
	BeWorkerSlot senders[BE_MAX_SENDERS];
} BeSharedState;

extern BeSharedState *be_shared;

extern void be_shmem_init(void);
extern bool be_shmem_available(void);
extern void be_slot_attach(BeWorkerSlot *slot, BeWorkerKind kind);
extern void be_wake_scheduler_now(void);
extern void be_wake_senders_now(void);
extern void be_register_xact_callback(void);
extern void be_wake_scheduler_at_commit(void);
extern void be_wake_senders_at_commit(void);
extern void be_cache_changed_at_commit(void);
extern uint64 be_cache_generation_done(void);
extern uint64 be_cache_generation_started(void);

/* launcher.c */
extern void be_register_launcher(void);

/* edge/edge.c: the HTTP edge */
extern void be_edge_define_gucs(bool postmaster);
extern void be_register_edge(void);

/* exec.c: running units of work in a worker or inside CALL */
typedef struct BeExec
{
	bool		in_procedure;	/* inside CALL: commit with SPI_commit */
	MemoryContext unit_cxt;		/* reset after every unit of work */
	MemoryContext caller_cxt;	/* current at be_exec_begin, restored after commit */
	BeWorkerSlot *slot;			/* the worker's slot, or NULL */
} BeExec;

typedef void (*BeUnitFn) (void *arg);

extern void be_exec_init(BeExec *ex, bool in_procedure, BeWorkerSlot *slot);
extern void be_exec_begin(BeExec *ex);
extern void be_exec_commit(BeExec *ex);
extern bool be_exec_unit(BeExec *ex, BeUnitFn fn, void *arg, char **errmsg_out);
extern int	be_exec_last_sqlstate;
extern void be_exec_finish(BeExec *ex);
extern void be_wait_for_extension(const char *who);
extern int	be_procedure_max_seconds(FunctionCallInfo fcinfo, const char *name);

/* a statement prepared once per process and kept */
typedef struct BePlan
{
	const char *sql;
	int			nargs;
	Oid			argtypes[16];
	SPIPlanPtr	plan;
	bool		custom;			/* plan with the values each time (array sizes) */
	bool		queue_scan;		/* reads email_queue: never plan a seq scan */
} BePlan;

extern int	be_plan_exec(BePlan *p, Datum *values, const char *nulls, int expected);

/* scheduler.c */
extern int	be_run_due_tasks(BeExec *ex, int max_ms, bool *more_work);
PGDLLEXPORT extern void be_scheduler_main(Datum main_arg);

#endif							/* BROADCAST_ENGINE_H */
