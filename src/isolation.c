/*-------------------------------------------------------------------------
 *
 * isolation.c
 *	  Pairs (workspace, integration) whose work keeps failing, backed off.
 *
 * An error while claiming, composing or recording one pair's batch is
 * caught by the sender (sender.c) and reported here instead of ending the
 * worker: the pair is skipped until its retry time, which doubles with each
 * failure in a row, and the others go on.  A success clears the entry.
 *
 * The table is in shared memory, not per process: both senders then skip
 * the pair (a pair that fails in one fails in the other too), and an
 * administrator sees it in broadcast.isolated_pairs from any session.  It
 * is a fixed array of BE_ISOLATION_SLOTS entries under one LWLock; every
 * operation is a scan and a copy.  When it is full the entry with the
 * earliest retry time gives way: at worst a pair is retried sooner than its
 * backoff said, never skipped for ever.  Without shared memory (a CALL of
 * send_queue() in a server that did not preload the library) the table is
 * the process's own.  A crash empties it: every pair is tried again at once,
 * and one that still fails comes back after its first failure.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "broadcast_engine.h"
#include "be_sender.h"

#define BE_ISOLATION_SLOTS 256
#define BE_ID_MAX 64			/* ids are at most 63 characters */

/* backoff: doubling from the base, up to the cap */
#define ISOLATE_BASE_MS 5000
#define ISOLATE_CAP_MS (10 * 60 * 1000)
/* a lock held by someone else: short, the unit gives up after lock_timeout anyway */
#define ISOLATE_LOCK_BASE_MS 500
#define ISOLATE_LOCK_CAP_MS 5000

typedef struct IsolatedPair
{
	char		workspace_id[BE_ID_MAX];	/* "" when the slot is free */
	char		integration_id[BE_ID_MAX];
	int			failures;		/* in a row */
	TimestampTz since;			/* the first of them */
	TimestampTz retry_at;
	char		sqlstate[6];
	char		last_error[BE_ERROR_MAX];
} IsolatedPair;

typedef struct IsolationTable
{
	LWLock	   *lock;
	IsolatedPair pairs[BE_ISOLATION_SLOTS];
} IsolationTable;

static IsolationTable *table = NULL;
static bool table_local = false;

PG_FUNCTION_INFO_V1(be_isolated_pairs);

Size
be_isolation_shmem_size(void)
{
	return MAXALIGN(sizeof(IsolationTable));
}

/* called from the shmem startup hook, under AddinShmemInitLock */
void
be_isolation_shmem_init(void)
{
	bool		found;

	table = ShmemInitStruct("broadcast_engine isolated pairs", sizeof(IsolationTable), &found);
	if (!found)
	{
		memset(table, 0, sizeof(IsolationTable));
		table->lock = &(GetNamedLWLockTranche("broadcast_engine"))[2].lock;
	}
}

static void
ensure_table(void)
{
	if (table != NULL)
		return;
	table = MemoryContextAllocZero(TopMemoryContext, sizeof(IsolationTable));
	table_local = true;
}

static void
lock_table(LWLockMode mode)
{
	ensure_table();
	if (!table_local)
		LWLockAcquire(table->lock, mode);
}

static void
unlock_table(void)
{
	if (!table_local)
		LWLockRelease(table->lock);
}

static IsolatedPair *
find(const char *ws, const char *integ)
{
	int			i;

	for (i = 0; i < BE_ISOLATION_SLOTS; i++)
	{
		IsolatedPair *p = &table->pairs[i];

		if (p->workspace_id[0] != '\0' && strcmp(p->workspace_id, ws) == 0 &&
			strcmp(p->integration_id, integ) == 0)
			return p;
	}
	return NULL;
}

/* when the pair may be tried again, or 0 when it is not isolated */
TimestampTz
be_pair_isolated_until(const char *ws, const char *integ)
{
	IsolatedPair *p;
	TimestampTz until = 0;

	lock_table(LW_SHARED);
	p = find(ws, integ);
	if (p)
		until = p->retry_at;
	unlock_table();
	return until;
}

/*
 * Whether an error is the process's own problem rather than the pair's:
 * out of memory or disk, an administrator's command, an I/O or corruption
 * error.  Those still end the worker (it restarts with clean state).
 */
bool
be_error_is_process_level(int sqlstate)
{
	switch (ERRCODE_TO_CATEGORY(sqlstate))
	{
		case ERRCODE_INSUFFICIENT_RESOURCES:	/* 53: out of memory, disk full */
		case ERRCODE_OPERATOR_INTERVENTION: /* 57: shutdown, cancel */
		case ERRCODE_SYSTEM_ERROR:	/* 58: I/O */
		case ERRCODE_CONNECTION_EXCEPTION:	/* 08 */
			return true;
		default:
			break;
	}
	return sqlstate == ERRCODE_DATA_CORRUPTED || sqlstate == ERRCODE_INDEX_CORRUPTED;
}

/*
 * Records that the pair's work failed (what: claim, compose, record) and
 * backs it off; logs the failure with the workspace and integration.
 * Returns the time it may be tried again.
 */
TimestampTz
be_pair_failed(const char *ws, const char *integ, int sqlstate, const char *what,
			   const char *error)
{
	IsolatedPair *p;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz until;
	int			failures;
	int64		delay;
	bool		lock = (sqlstate == ERRCODE_LOCK_NOT_AVAILABLE);
	char	   *clean = be_sanitize_text(error ? error : "unknown error");
	char	   *full = psprintf("could not %s: %s", what, clean);

	/* bounded (with room for the "..." mark), cut at a character boundary */
	full = be_excerpt(full, strlen(full), BE_ERROR_MAX - 8);

	lock_table(LW_EXCLUSIVE);
	p = find(ws, integ);
	if (p == NULL)
	{
		int			i;

		/* a free slot, or the one due soonest */
		p = &table->pairs[0];
		for (i = 0; i < BE_ISOLATION_SLOTS; i++)
		{
			IsolatedPair *q = &table->pairs[i];

			if (q->workspace_id[0] == '\0')
			{
				p = q;
				break;
			}
			if (q->retry_at < p->retry_at)
				p = q;
		}
		memset(p, 0, sizeof(IsolatedPair));
		strlcpy(p->workspace_id, ws, BE_ID_MAX);
		strlcpy(p->integration_id, integ, BE_ID_MAX);
		p->since = now;
	}
	failures = ++p->failures;
	if (lock)
		delay = Min((int64) ISOLATE_LOCK_BASE_MS * Min(failures, 16), ISOLATE_LOCK_CAP_MS);
	else
		delay = Min((int64) ISOLATE_BASE_MS << Min(failures - 1, 20), ISOLATE_CAP_MS);
	until = TimestampTzPlusMilliseconds(now, delay);
	p->retry_at = until;
	strlcpy(p->sqlstate, unpack_sql_state(sqlstate), sizeof(p->sqlstate));
	strlcpy(p->last_error, full, sizeof(p->last_error));
	unlock_table();

	/* LOG, not WARNING: the server log's default threshold (log) drops warnings */
	ereport(LOG,
			(errmsg("broadcast_engine sender: integration \"%s\" of workspace \"%s\" could not %s, isolated for %.1f s (failure %d in a row)",
					integ, ws, what, delay / 1000.0, failures),
			 errdetail("SQLSTATE %s: %s", unpack_sql_state(sqlstate), clean)));
	return until;
}

/* the pair's work went through: it is no longer isolated */
void
be_pair_succeeded(const char *ws, const char *integ)
{
	IsolatedPair *p;

	/* the common case, no entry at all, under a shared lock only */
	if (be_pair_isolated_until(ws, integ) == 0)
		return;
	lock_table(LW_EXCLUSIVE);
	p = find(ws, integ);
	if (p)
		memset(p, 0, sizeof(IsolatedPair));
	unlock_table();
}

/*
 * broadcast.isolated_pairs(): workspace_id, integration_id, failures,
 * last_error, sqlstate, since, retry_at.
 */
Datum
be_isolated_pairs(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	IsolatedPair *copy;
	int			n = 0;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	copy = palloc(sizeof(IsolatedPair) * BE_ISOLATION_SLOTS);
	lock_table(LW_SHARED);
	for (i = 0; i < BE_ISOLATION_SLOTS; i++)
		if (table->pairs[i].workspace_id[0] != '\0')
			copy[n++] = table->pairs[i];
	unlock_table();
	for (i = 0; i < n; i++)
	{
		Datum		values[7];
		bool		nulls[7] = {false};

		values[0] = CStringGetTextDatum(copy[i].workspace_id);
		values[1] = CStringGetTextDatum(copy[i].integration_id);
		values[2] = Int32GetDatum(copy[i].failures);
		values[3] = CStringGetTextDatum(copy[i].last_error);
		values[4] = CStringGetTextDatum(copy[i].sqlstate);
		values[5] = TimestampTzGetDatum(copy[i].since);
		values[6] = TimestampTzGetDatum(copy[i].retry_at);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
