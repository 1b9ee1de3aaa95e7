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

#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "broadcast_engine.h"
#include "be_sender.h"

/* this process's batches in flight, and the bytes they hold */
static List *in_flight = NIL;
static size_t bytes_in_flight = 0;


/*
 * The whole batch's outcome in one statement: history rows, queue rows
 * deleted / rescheduled / dead-lettered, broadcast counters.  Queue rows are
 * found by the ctid the claim returned (a TID scan, no index probe), and
 * only if they still carry our message id and lease; counters move by the
 * rows actually changed, so a row whose lease ran out and was claimed again
 * elsewhere is not counted twice.  A row that stays in the queue takes its
 * broadcast's integration: update_broadcast(integration_id => ...) moves
 * the rows that were not in flight (the 1.3 trigger in 50_endpoints.sql),
 * and the broadcasts are locked before this runs, so the rows that were in
 * flight follow here.  A message recorded a second time (sent again after
 * its lease ran out, or a dead letter retried) updates its history row:
 * message_history is partitioned with no index on its root, so ON CONFLICT
 * can name no target; the rows the insert skipped are updated instead,
 * which only probes the history for those (the skipped rows are
 * materialised first: otherwise the planner probes the history for every
 * row of the batch before the anti-join drops them).  A row committed by another
 * sender after this statement began is skipped, not updated: the first
 * record of a message sent twice at once wins.
 */
static BePlan complete_plan = {
	"WITH r AS ("
	"  SELECT * FROM unnest($4::tid[], $5::text[], $6::text[], $7::text[], $8::int4[], $9::text[],"
	"                       $10::text[], $11::int4[], $12::text[], $13::text[], $14::text[],"
	"                       $15::int4[], $16::int4[])"
	"    AS r(tid, broadcast_id, email, message_id, variation, list_id, template_id,"
	"         template_version, outcome, provider_message_id, error, retry_ms, attempts)"
	"), ins AS ("
	"  INSERT INTO broadcast.message_history AS h"
	"         (workspace_id, message_id, broadcast_id, template_id, template_version, variation,"
	"          list_id, email, integration_id, provider, provider_message_id, status, attempts,"
	"          error, sent_at, failed_at)"
	"  SELECT $1, r.message_id::uuid, r.broadcast_id, r.template_id, r.template_version,"
	"         r.variation::int2, r.list_id, r.email, $2, $3, r.provider_message_id,"
	"         CASE r.outcome WHEN 'sent' THEN 'sent' ELSE 'failed' END, r.attempts::int2, r.error,"
	"         CASE WHEN r.outcome = 'sent' THEN now() END,"
	"         CASE WHEN r.outcome = 'dead' THEN now() END"
	"    FROM r WHERE r.outcome IN ('sent', 'dead')"
	"  ON CONFLICT DO NOTHING"
	"  RETURNING h.message_id"
	"), again AS MATERIALIZED ("
	"  SELECT r.* FROM r"
	"   WHERE r.outcome IN ('sent', 'dead')"
	"     AND NOT EXISTS (SELECT 1 FROM ins WHERE ins.message_id = r.message_id::uuid)"
	"), hist AS ("
	"  UPDATE broadcast.message_history h"
	"     SET status = CASE r.outcome WHEN 'sent' THEN 'sent' ELSE 'failed' END,"
	"         provider_message_id = r.provider_message_id, attempts = r.attempts::int2,"
	"         error = r.error, sent_at = CASE WHEN r.outcome = 'sent' THEN now() END,"
	"         failed_at = CASE WHEN r.outcome = 'dead' THEN now() END"
	"    FROM again r"
	"   WHERE h.workspace_id = $1 AND h.message_id = r.message_id::uuid"
	"  RETURNING 1"
	"), del AS ("
	"  DELETE FROM broadcast.email_queue q USING r"
	"   WHERE q.ctid = r.tid AND q.message_id = r.message_id::uuid AND q.lease_until IS NOT NULL"
	"     AND r.outcome = 'sent'"
	"  RETURNING q.broadcast_id"
	"), upd AS ("
	"  UPDATE broadcast.email_queue q"
	"     SET status = CASE r.outcome WHEN 'dead' THEN 'dead' ELSE 'pending' END,"
	"         next_attempt_at = CASE r.outcome WHEN 'dead' THEN q.next_attempt_at"
	"                                ELSE now() + make_interval(secs => r.retry_ms / 1000.0) END,"
	"         attempts = CASE r.outcome WHEN 'unsent' THEN q.attempts - 1 ELSE q.attempts END,"
	"         last_error = coalesce(r.error, q.last_error), lease_until = NULL,"
	"         integration_id = coalesce((SELECT b.integration_id FROM broadcast.broadcasts b"
	"                                     WHERE b.workspace_id = q.workspace_id"
	"                                       AND b.broadcast_id = q.broadcast_id), q.integration_id)"
	"    FROM r"
	"   WHERE q.ctid = r.tid AND q.message_id = r.message_id::uuid AND q.lease_until IS NOT NULL"
	"     AND r.outcome IN ('retry', 'dead', 'unsent')"
	"  RETURNING q.broadcast_id, q.status"
	"), counts AS ("
	"  SELECT x.broadcast_id, sum(x.sent) AS sent, sum(x.failed) AS failed FROM ("
	"    SELECT d.broadcast_id, 1 AS sent, 0 AS failed FROM del d"
	"    UNION ALL"
	"    SELECT u.broadcast_id, 0, 1 FROM upd u WHERE u.status = 'dead') x"
	"   GROUP BY x.broadcast_id"
	")"
	"UPDATE broadcast.broadcasts b"
	"   SET sent_count = b.sent_count + c.sent, failed_count = b.failed_count + c.failed,"
	"       updated_at = now()"
	"  FROM counts c"
	" WHERE b.workspace_id = $1 AND b.broadcast_id = c.broadcast_id"
	"   AND (SELECT count(*) FROM hist) >= 0",
	16, {TEXTOID, TEXTOID, TEXTOID, TIDARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
		INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
	TEXTARRAYOID, INT4ARRAYOID, INT4ARRAYOID},
	NULL, true, true
};

/* moves a pair's cap reservation, in the periods of its claim (88_windows_caps.sql) */
static BePlan cap_add_plan = {
	"SELECT broadcast._cap_add($1, $2, $3, $4, $5)",
	5, {TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT4OID}
};

/*
 * Moves the batch's cap reservation by n (negative: gives back), inside a
 * transaction.  A message counts against the caps from its claim; one that
 * was not sent is given back when the batch is recorded, so the counts
 * follow what the provider accepted, and never fall below it.
 */
void
be_cap_add(BeSendBatch *b, int n)
{
	Datum		args[5];

	if (!b->capped || n == 0)
		return;
	args[0] = CStringGetTextDatum(b->workspace_id);
	args[1] = CStringGetTextDatum(b->integration_id);
	args[2] = TimestampTzGetDatum(b->cap_hour);
	args[3] = TimestampTzGetDatum(b->cap_day);
	args[4] = Int32GetDatum(n);
	be_plan_exec(&cap_add_plan, args, NULL, SPI_OK_SELECT);
}

/* the broadcasts whose counters a batch moves, locked in one order */
static BePlan lock_broadcasts_plan = {
	"SELECT 1 FROM broadcast.broadcasts b"
	" WHERE b.workspace_id = $1 AND b.broadcast_id = ANY ($2)"
	" ORDER BY b.broadcast_id FOR NO KEY UPDATE",
	2, {TEXTOID, TEXTARRAYOID}
};

/* a broadcast waiting for its queue to drain is looked at as soon as it has */
static BePlan nudge_plan = {
	"UPDATE broadcast.tasks t SET run_at = now(), updated_at = now()"
	" WHERE t.workspace_id = $1 AND t.broadcast_id = ANY ($2) AND t.status = 'pending'"
	"   AND t.phase IN ('drain', 'wait_test') AND t.run_at > now()"
	"   AND NOT EXISTS (SELECT 1 FROM broadcast.email_queue q"
	"                    WHERE q.workspace_id = $1 AND q.broadcast_id = t.broadcast_id"
	"                      AND q.status IN ('pending', 'sending'))",
	2, {TEXTOID, TEXTARRAYOID}, NULL, false, true
};

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

static Datum
text_array(Datum *elems, bool *nulls, int n)
{
	int			dims[1];
	int			lbs[1];

	dims[0] = n;
	lbs[0] = 1;
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
}

static Datum
int_array(Datum *elems, int n)
{
	return PointerGetDatum(construct_array(elems, n, INT4OID, 4, true, TYPALIGN_INT));
}

static void
complete_unit(void *arg)
{
	BeSendBatch  *b = (BeSendBatch *) arg;
	BeIntegration *ig = b->ig;
	int			n = b->nmsgs;
	Datum		args[16];
	Datum	   *a[12];
	bool	   *nn[12];
	int			i;
	int			k;
	Datum	   *bids;
	Datum	   *tids = palloc(sizeof(Datum) * n);
	Datum		lock_args[2];

	for (k = 0; k < 12; k++)
	{
		a[k] = palloc(sizeof(Datum) * n);
		nn[k] = palloc0(sizeof(bool) * n);
	}
	for (i = 0; i < n; i++)
	{
		BeMessage  *m = b->msgs[i];
		const char *outcome;

		if (m->outcome == BE_OUT_RETRY && m->attempts >= be_max_attempts)
		{
			m->outcome = BE_OUT_DEAD;
			m->error = psprintf("gave up after %d attempts: %s", m->attempts,
								m->error ? m->error : "unknown error");
		}
		/*
		 * never started (the breaker tripped mid-batch: after its cooldown;
		 * deferred for the byte budget or the lease: at once): no attempt
		 * spent
		 */
		if (m->outcome == BE_OUT_NONE)
			outcome = "unsent";
		else
			outcome = m->outcome == BE_OUT_SENT ? "sent" : m->outcome == BE_OUT_DEAD ? "dead" : "retry";
		tids[i] = PointerGetDatum(&m->tid);
		a[0][i] = CStringGetTextDatum(m->broadcast_id);
		a[1][i] = CStringGetTextDatum(m->email);
		a[2][i] = CStringGetTextDatum(m->message_id);
		a[3][i] = Int32GetDatum(m->variation);
		a[4][i] = CStringGetTextDatum(m->list_id);
		a[5][i] = m->template_id ? CStringGetTextDatum(m->template_id) : (Datum) 0;
		nn[5][i] = (m->template_id == NULL);
		a[6][i] = Int32GetDatum(m->template_version);
		a[7][i] = CStringGetTextDatum(outcome);
		a[8][i] = m->provider_message_id ? CStringGetTextDatum(m->provider_message_id) : (Datum) 0;
		nn[8][i] = (m->provider_message_id == NULL);
		a[9][i] = m->error ? CStringGetTextDatum(m->error) : (Datum) 0;
		nn[9][i] = (m->error == NULL);
		a[10][i] = Int32GetDatum(m->outcome == BE_OUT_RETRY ? retry_delay_ms(m) :
								 m->outcome == BE_OUT_NONE && !m->deferred ? be_breaker_cooldown_ms : 0);
		a[11][i] = Int32GetDatum(m->attempts);
	}
	args[0] = CStringGetTextDatum(b->workspace_id);
	args[1] = CStringGetTextDatum(b->integration_id);
	args[2] = CStringGetTextDatum(ig->provider);
	args[3] = PointerGetDatum(construct_array(tids, n, TIDOID, sizeof(ItemPointerData),
											  false, TYPALIGN_SHORT));
	args[4] = text_array(a[0], nn[0], n);
	args[5] = text_array(a[1], nn[1], n);
	args[6] = text_array(a[2], nn[2], n);
	args[7] = int_array(a[3], n);
	args[8] = text_array(a[4], nn[4], n);
	args[9] = text_array(a[5], nn[5], n);
	args[10] = int_array(a[6], n);
	args[11] = text_array(a[7], nn[7], n);
	args[12] = text_array(a[8], nn[8], n);
	args[13] = text_array(a[9], nn[9], n);
	args[14] = int_array(a[10], n);
	args[15] = int_array(a[11], n);
	/*
	 * The batch's broadcasts first, in a fixed order: cancel_broadcast locks
	 * the broadcast and then deletes its queue rows, so taking the queue
	 * rows first and the counters last would deadlock with it.
	 */
	lock_args[0] = args[0];
	lock_args[1] = args[4];
	be_plan_exec(&lock_broadcasts_plan, lock_args, NULL, SPI_OK_SELECT);
	be_plan_exec(&complete_plan, args, NULL, SPI_OK_UPDATE);
	/* what was not sent no longer counts against the caps */
	if (b->capped)
	{
		int			unsent = 0;

		for (i = 0; i < n; i++)
			if (b->msgs[i]->outcome != BE_OUT_SENT)
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
	bids = palloc(sizeof(Datum) * n);
	for (i = 0; i < n; i++)
		bids[i] = a[0][i];
	args[1] = text_array(bids, nn[0], n);
	b->nudged = be_plan_exec(&nudge_plan, args, NULL, SPI_OK_UPDATE);
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
	char	   *err = NULL;
	int			sqlstate;

	be_exec_begin(ex);
	if (be_exec_unit(ex, fn, arg, &err))
	{
		be_exec_commit(ex);
		return true;
	}
	sqlstate = be_exec_last_sqlstate;
	be_exec_commit(ex);
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

	if (be_run_pair_unit(ex, complete_unit, b, b->workspace_id, b->integration_id,
					  "record the results", NULL))
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
