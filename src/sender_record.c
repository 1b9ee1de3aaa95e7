/*-------------------------------------------------------------------------
 *
 * sender_record.c
 *	  A sender's batches in flight, and recording their results.
 *
 * sender.c claims and composes a pair's batch (BeSendBatch) and launches it
 * here; its transfers then run on the multi handle (transport.c) next to
 * other pairs' while the sender goes on claiming.  When a batch's transfers
 * are all done it is recorded: history rows, queue rows deleted,
 * rescheduled or dead-lettered, and the broadcast counters, in one
 * statement and one short transaction.
 *
 * Crash argument.  The claim leased every row for be_batch_lease_s(): the
 * time for the batch to run, max_connections_per_integration requests at a
 * time each up to request_timeout, plus a margin for recording.  A batch
 * starts no request after start_by (a request timeout and the margin before
 * the lease ends), so its last transfer ends, and the batch is recorded,
 * before another sender could claim its rows again; rows it never started
 * go back without an attempt spent.  A crash at any point loses nothing:
 * the rows come due when their lease ends and are sent again with the same
 * message id.  No transaction is open while transfers run.
 *
 * Caps.  The claim reserved its rows against the pair's hourly and daily
 * counts; the record gives back, in the same transaction, what was not
 * sent.  A crash before the record keeps the reservation: a period's count
 * may exceed what was sent in it, never the other way round, so the caps
 * hold across crashes.
 *
 * An error recording one pair's batch is that pair's: it is isolated
 * (isolation.c), its rows come back when their lease ends, and the other
 * pairs go on.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/pg_prng.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "broadcast_engine.h"
#include "be_sender.h"
#include "be_sender_sql.h"

/* this process's batches in flight, and the bytes they hold */
static List *in_flight = NIL;
static size_t bytes_in_flight = 0;


/*
 * Moves the batch's cap reservation by n (negative: gives back), inside a
 * transaction.  A message counts against the caps from its claim; one that
 * was not sent is given back when the batch is recorded, so the counts
 * follow what the provider accepted, and never fall below it.
 */
void
be_cap_add(BeSendBatch *b, int n)
{
	if (!b->capped || n == 0)
		return;
	be_sql_cap_add(b->workspace_id, b->integration_id, b->cap_hour, b->cap_day, n);
}

/*
 * The lease of a claim of want rows: long enough for the whole batch to
 * time out, max_connections_per_integration requests at a time, and to be
 * recorded.  The batch starts no request later than a request timeout and
 * LEASE_MARGIN_S before the lease ends (batch_start_by), so even a batch
 * that gets fewer connections ends, and is recorded, within its lease.
 */
#define LEASE_MARGIN_S 10.0

double
be_batch_lease_s(int want)
{
	int			conns = Max(1, be_max_connections_per_integration);

	return ((want + conns - 1) / conns + 1) * (be_request_timeout_ms / 1000.0) +
		LEASE_MARGIN_S + 5.0;
}

static TimestampTz
batch_start_by(BeSendBatch *b)
{
	double		s = be_batch_lease_s(b->want) - be_request_timeout_ms / 1000.0 - LEASE_MARGIN_S;

	return TimestampTzPlusMilliseconds(b->t_claim, (int64) (s * 1000.0));
}

static int
retry_delay_ms(BeMessage *m)
{
	double		base = be_retry_base_ms * pow(2.0, Max(m->attempts - 1, 0));
	double		jitter = 0.5 + pg_prng_double(&pg_global_prng_state);

	if (m->retry_after_s > 0)
		return m->retry_after_s * 1000;
	return (int) Min(base * jitter, 3600.0 * 1000);
}

/*
 * What the record does with a message.  A retry out of attempts becomes
 * dead here.  A message never started (the breaker tripped mid-batch:
 * after its cooldown; deferred for the byte budget or the lease: at once)
 * goes back with no attempt spent.
 */
static BeRecordItem
record_item(BeMessage *m)
{
	BeRecordItem it;

	if (m->outcome == BE_OUT_RETRY && m->attempts >= be_max_attempts)
	{
		m->outcome = BE_OUT_DEAD;
		m->error = psprintf("gave up after %d attempts: %s", m->attempts,
							m->error ? m->error : "unknown error");
	}
	it.m = m;
	it.retry_ms = 0;
	switch (m->outcome)
	{
		case BE_OUT_SENT:
			it.kind = BE_REC_SENT;
			break;
		case BE_OUT_DEAD:
			it.kind = BE_REC_DEAD;
			break;
		case BE_OUT_RETRY:
			it.kind = BE_REC_RETRY;
			it.retry_ms = retry_delay_ms(m);
			break;
		case BE_OUT_NONE:
			it.kind = BE_REC_UNSENT;
			it.retry_ms = m->deferred ? 0 : be_breaker_cooldown_ms;
			break;
		default:
			elog(ERROR, "unknown outcome %d", (int) m->outcome);
	}
	return it;
}

static void
complete_unit(void *arg)
{
	BeSendBatch *b = (BeSendBatch *) arg;
	int			n = b->nmsgs;
	BeRecordItem *items = palloc(sizeof(BeRecordItem) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		items[i] = record_item(b->msgs[i]);
	be_sql_record(b->workspace_id, b->integration_id, b->ig->provider, items, n);
	/* what was not sent no longer counts against the caps */
	if (b->capped)
	{
		int			unsent = 0;

		for (i = 0; i < n; i++)
			if (items[i].kind != BE_REC_SENT)
				unsent++;
		be_cap_add(b, -unsent);
	}

	/*
	 * Wake the scheduler for broadcasts whose queue just emptied; only a
	 * short batch can have emptied it (the drain poll catches the rest), and
	 * the check is not free.
	 */
	if (b->nmsgs >= b->want)
		return;
	b->nudged = be_sql_nudge_drained(b->workspace_id, items, n);
	if (b->nudged > 0)
		be_wake_scheduler_at_commit();
}

/*
 * Runs a unit of work; true when it committed.  An error in it is the
 * pair's: the pair is isolated (isolation.c) and the sender goes on.  An
 * error that is the process's own (out of memory, shutdown, I/O) is raised.
 */
bool
be_run_pair_unit(BeExec *ex, BeUnitFn fn, void *arg, const char *ws, const char *integ,
			  const char *what, bool *abandoned)
{
	return be_run_pair_unit_retry(ex, fn, arg, ws, integ, what, abandoned, 0);
}

/*
 * The same, trying again up to "retries" times (20, 40, 80 ms apart) when
 * the unit failed on a lock it could not get in time or a deadlock: for the
 * record of a sent batch, whose results exist only in memory, giving up
 * means the batch is sent again once its lease runs out.
 */
bool
be_run_pair_unit_retry(BeExec *ex, BeUnitFn fn, void *arg, const char *ws, const char *integ,
					   const char *what, bool *abandoned, int retries)
{
	char	   *err = NULL;
	int			sqlstate;
	int			attempt;

	Assert(retries >= 0 && retries <= 8);
	for (attempt = 0;; attempt++)
	{
		be_exec_begin(ex);
		if (be_exec_unit(ex, fn, arg, &err))
		{
			be_exec_commit(ex);
			return true;
		}
		sqlstate = be_exec_last_sqlstate;
		be_exec_commit(ex);
		if (attempt >= retries ||
			(sqlstate != ERRCODE_LOCK_NOT_AVAILABLE && sqlstate != ERRCODE_T_R_DEADLOCK_DETECTED &&
			 sqlstate != ERRCODE_T_R_SERIALIZATION_FAILURE))
			break;
		ereport(LOG,
				(errmsg("broadcast_engine sender will retry to %s for integration \"%s\" of workspace \"%s\": %s",
						what, integ, ws, err)));
		pg_usleep(20000L << attempt);
		CHECK_FOR_INTERRUPTS();
	}
	if (abandoned && *abandoned)
		return false;			/* the integration went away: nothing to isolate */
	if (be_error_is_process_level(sqlstate))
		ereport(ERROR,
				(errcode(sqlstate),
				 errmsg("broadcast_engine sender could not %s for integration \"%s\" of workspace \"%s\": %s",
						what, integ, ws, err)));
	(void) be_pair_failed(ws, integ, sqlstate, what, err);
	return false;
}

/* a copy of an integration, in the current memory context */
BeIntegration *
be_copy_integration(const BeIntegration *src)
{
	BeIntegration *ig = palloc(sizeof(BeIntegration));
	char	  **fields[] = {
		&ig->workspace_id, &ig->integration_id, &ig->provider, &ig->shared_id,
		&ig->incarnation, &ig->shared_incarnation, &ig->secret, &ig->endpoint, &ig->host,
		&ig->tls, &ig->username, &ig->ehlo_name, &ig->ca_file, &ig->domain, &ig->region,
		&ig->message_stream, &ig->access_key_id, &ig->session_token,
		&ig->configuration_set, &ig->api_key, &ig->refused, &ig->bounce_domain, &ig->bounce_local
	};
	int			i;

	memcpy(ig, src, sizeof(BeIntegration));
	for (i = 0; i < lengthof(fields); i++)
		if (*fields[i] != NULL)
			*fields[i] = pstrdup(*fields[i]);
	if (src->verp_secret != NULL)
	{
		ig->verp_secret = palloc(src->verp_secret_len);
		memcpy(ig->verp_secret, src->verp_secret, src->verp_secret_len);
	}
	return ig;
}

BeSendBatch *
be_batch_in_flight(const char *ws, const char *integ)
{
	ListCell   *lc;

	foreach(lc, in_flight)
	{
		BeSendBatch  *b = (BeSendBatch *) lfirst(lc);

		if (strcmp(b->workspace_id, ws) == 0 && strcmp(b->integration_id, integ) == 0)
			return b;
	}
	return NULL;
}

static void
free_batch(BeSendBatch *b)
{
	bytes_in_flight -= Min(bytes_in_flight, b->bytes);
	MemoryContextDelete(b->cxt);
}

/*
 * Records a batch whose transfers are all done (or that never started
 * any): rate-limiter report, results, worker counters.
 */
static void
record_batch(BeExec *ex, BeSendBatch *b)
{
	BeFlight   *f = &b->flight;
	TimestampTz t3 = GetCurrentTimestamp();
	int			ok = 0;
	int			failed = 0;
	int			retry_after = 0;
	int			deferred = 0;
	int			i;
	bool		stopped = f->paused || f->failures >= be_breaker_threshold;

	for (i = 0; i < b->nmsgs; i++)
	{
		BeMessage  *m = b->msgs[i];

		if (m->outcome == BE_OUT_SENT)
			ok++;
		else if (m->provider_failure)
			failed++;
		/* not started, and not for the breaker's sake: the lease ran short */
		if (m->outcome == BE_OUT_NONE && !stopped)
			m->deferred = true;
		if (m->outcome == BE_OUT_NONE && m->deferred)
			deferred++;
		retry_after = Max(retry_after, m->retry_after_s);
	}
	be_rate_report(b->ig, ok, failed, retry_after);
	be_rate_refund(b->ig, deferred);
	if (f->paused)
	{
		/* the account's own pause: rate_limits() says why */
		for (i = 0; i < b->nmsgs; i++)
			if (b->msgs[i]->outcome == BE_OUT_NONE && b->msgs[i]->error)
			{
				be_rate_pause(b->ig, b->msgs[i]->retry_after_s, b->msgs[i]->error);
				break;
			}
	}

	if (be_run_pair_unit_retry(ex, complete_unit, b, b->workspace_id, b->integration_id,
							   "record the results", NULL, BE_RECORD_RETRIES))
		be_pair_succeeded(b->workspace_id, b->integration_id);
	if (ex->slot)
	{
		BeWorkerSlot *slot = ex->slot;

		pg_atomic_fetch_add_u64(&slot->messages, b->nmsgs);
		pg_atomic_fetch_add_u64(&slot->batches, 1);
		pg_atomic_fetch_add_u64(&slot->claim_us, b->t_claimed - b->t_claim);
		pg_atomic_fetch_add_u64(&slot->render_us, b->t_composed - b->t_claimed);
		pg_atomic_fetch_add_u64(&slot->send_us, t3 - b->t_composed);
		pg_atomic_fetch_add_u64(&slot->record_us, GetCurrentTimestamp() - t3);
	}
}

static void
record_and_free(BeExec *ex, BeSendBatch *b)
{
	PG_TRY();
	{
		record_batch(ex, b);
	}
	PG_CATCH();
	{
		free_batch(b);
		PG_RE_THROW();
	}
	PG_END_TRY();
	free_batch(b);
}

/*
 * Moves the batches in flight on (waiting up to wait_ms for the network)
 * and records those that are done.  Returns how many were recorded.
 */
int
be_batches_record_done(BeExec *ex, long wait_ms)
{
	int			n = 0;
	ListCell   *lc;

	if (in_flight == NIL)
		return 0;
	be_transport_pump(wait_ms);
	foreach(lc, in_flight)
	{
		BeSendBatch  *b = (BeSendBatch *) lfirst(lc);

		if (!b->flight.done)
			continue;
		in_flight = foreach_delete_current(in_flight, lc);
		record_and_free(ex, b);
		n++;
	}
	return n;
}

/* drops every batch in flight: an error is ending the loop (their leases bring the rows back) */
void
be_batches_abort(void)
{
	ListCell   *lc;

	be_transport_abort();
	foreach(lc, in_flight)
		free_batch((BeSendBatch *) lfirst(lc));
	list_free(in_flight);
	in_flight = NIL;
	bytes_in_flight = 0;
}

/*
 * Waits up to wait_ms while batches are in flight, moving them on, until
 * one is recorded or the latch is set.  Returns false when nothing is in
 * flight (the caller sleeps on its latch instead).
 */
bool
be_batches_wait(BeExec *ex, long wait_ms)
{
	TimestampTz until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), wait_ms);

	if (in_flight == NIL)
		return false;
	while (in_flight != NIL)
	{
		volatile int n = 0;

		PG_TRY();
		{
			n = be_batches_record_done(ex, 100);
		}
		PG_CATCH();
		{
			be_batches_abort();
			PG_RE_THROW();
		}
		PG_END_TRY();
		if (n > 0 || GetCurrentTimestamp() >= until)
			break;
		if (MyLatch->is_set)
		{
			ResetLatch(MyLatch);
			break;
		}
	}
	return true;
}

/*
 * Puts a composed batch in flight: its bytes count against the budget from
 * now until it is recorded, and its transfers start at once.
 */
void
be_batch_launch(BeSendBatch *b)
{
	MemoryContext old;

	bytes_in_flight += b->bytes;
	b->flight.ig = b->ig;
	b->flight.msgs = b->msgs;
	b->flight.nmsgs = b->nmsgs;
	b->flight.cxt = b->cxt;
	b->flight.start_by = batch_start_by(b);
	old = MemoryContextSwitchTo(TopMemoryContext);
	in_flight = lappend(in_flight, b);
	MemoryContextSwitchTo(old);
	be_transport_start(&b->flight);
}

/* the batches in flight, and the bytes they hold */
int
be_batches_in_flight(void)
{
	return list_length(in_flight);
}

size_t
be_batch_bytes_in_flight(void)
{
	return bytes_in_flight;
}
