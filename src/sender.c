/*-------------------------------------------------------------------------
 *
 * sender.c
 *	  Sender workers: claim due queue rows, render, send, record.
 *
 * One cycle:
 *	1. find the (workspace, integration) pairs that have queued rows, by a
 *	   loose index scan of email_queue_due_idx: its cost follows the number
 *	   of active pairs, not the number of workspaces;
 *	2. for each pair in turn (the starting pair rotates) that is not
 *	   isolated (isolation.c) and has no batch in flight, take tokens from
 *	   the rate limiter, then claim that many due rows in a short
 *	   transaction (skipping rows other senders hold; leased while in flight),
 *	   no more than the rest of the byte budget (sender_batch_bytes) holds
 *	   and than the pair's hourly and daily caps have left (reserved in the
 *	   same transaction); rows outside their broadcast's sending window are
 *	   moved to its opening instead (88_windows_caps.sql);
 *	3. with no transaction open, render each message from the compiled
 *	   templates of its broadcast (cached per worker) and launch the batch
 *	   on the libcurl multi handle, where it runs next to other pairs'
 *	   batches while the cycle goes on (sender_record.c);
 *	4. when a batch's transfers are done, in one short transaction, write
 *	   message_history for the whole batch, delete sent rows, reschedule or
 *	   dead-letter failed ones and move the broadcast counters, all in one
 *	   statement.
 *
 * A crash between 2 and 4 loses nothing: the rows come due again when
 * their lease ends and are sent again with the same message id
 * (sender_record.c states the lease argument).  An error in 2, 3 or 4 is
 * the pair's: the pair is isolated and backed off, and the others go on.
 *
 * Caches.  Integrations and compiled broadcasts (templates, workspace
 * settings, list names) are cached per worker, keyed by ids.  Every entry
 * carries the cache generation it was loaded under (shmem.c explains the
 * two counters and why the checks below suffice): an entry is used for a
 * batch only if no change to the tables it was read from started since it
 * was loaded, checked after the claim's snapshot, so the batch never mixes
 * rows the claim can see with an entry older than them.  A changed
 * integration (a rotated key, a new endpoint) or workspace setting thus
 * applies from the next batch of every sender, and a workspace dropped and
 * made again under the same ids never meets the old one's entries; nor do
 * the entries survive DROP EXTENSION (checked by the extension's OID).  The
 * TTLs remain only as a backstop.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <time.h>

#include "access/xact.h"
#include "common/hashfn.h"
#include "common/pg_prng.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "broadcast_engine.h"
#include "be_sender.h"
#include "be_sender_sql.h"
#include "tmpl_tz.h"
#include "compose.h"

PG_FUNCTION_INFO_V1(be_send_queue);

/* backstops only: entries follow their sources through the cache generation */
#define CACHE_TTL_MS 10000

typedef struct Pair
{
	char	   *workspace_id;
	char	   *integration_id;
	TimestampTz next_due;
	BeIntegration *ig;
	int			fair_share;
} Pair;

typedef struct IntegEntry
{
	char		key[BE_KEY_LEN];
	MemoryContext cxt;
	BeIntegration *ig;
	uint64		unit;			/* the unit of work that loaded ig */
	/* where this pair's next claim starts in email_queue_due_idx (see claim_unit) */
	TimestampTz claim_from;
	TimestampTz claim_from_set;
	/* bytes one message of this pair held in its last batch (0: not known yet) */
	size_t		msg_bytes;
	/* over a cap: no claim before this (a changed integration clears it) */
	TimestampTz cap_until;
} IntegEntry;

/* how long a claim cursor is trusted before a claim scans from the start */
#define CLAIM_CURSOR_MS 10000

typedef struct BroadcastEntry
{
	char		key[BE_KEY_LEN];
	uint64		generation;		/* cache generation it was loaded under */
	uint64		unit;			/* the unit of work that loaded it */
	ComposeBroadcast *cb;
	char	   *error;			/* why it cannot be composed (in TopMemoryContext) */
	TimestampTz loaded_at;
	TimestampTz used_at;
} BroadcastEntry;

/* a composer unused this long is freed (finished broadcasts) */
#define BROADCAST_IDLE_MS 120000

static HTAB *integ_cache = NULL;
static HTAB *broadcast_cache = NULL;
static ComposeCtx *compose_ctx = NULL;
static int	rotation = 0;
/* the cache generation every entry was last checked against, and the extension's OID */
static uint64 flushed_generation = 0;
static Oid	cached_extension = InvalidOid;

/*
 * The unit of work under way: its number, and the cache generation that had
 * finished before it began (the tag of what it loads).  What a unit loaded
 * serves the rest of that unit: its snapshots only move forward.
 */
static uint64 unit_number = 0;
static uint64 unit_load_gen = 0;

static void
begin_cache_unit(void)
{
	unit_number++;
	/* before the unit's first snapshot: what it loads includes these changes */
	unit_load_gen = be_cache_generation_done();
}






static void
make_key(char *key, const char *a, const char *b)
{
	snprintf(key, BE_KEY_LEN, "%s\x1f%s", a, b);
}

static void
ensure_caches(void)
{
	HASHCTL		ctl;

	if (integ_cache != NULL)
		return;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = BE_KEY_LEN;
	ctl.entrysize = sizeof(IntegEntry);
	integ_cache = hash_create("broadcast_engine integrations", 64, &ctl, HASH_ELEM | HASH_STRINGS);
	ctl.entrysize = sizeof(BroadcastEntry);
	broadcast_cache = hash_create("broadcast_engine broadcasts", 64, &ctl, HASH_ELEM | HASH_STRINGS);
	compose_ctx = compose_ctx_create();
	if (compose_ctx == NULL)
		elog(ERROR, "out of memory");
	compose_ctx_set_tz_resolver(compose_ctx, be_tz_resolve, NULL);
}

/*
 * Returns an integration, loading it again unless its entry was loaded
 * under generation check or in this unit (and within CACHE_TTL_MS); a new
 * load is tagged unit_load_gen.  Inside a transaction.  Reloading frees
 * the previous BeIntegration of this pair.
 */
static BeIntegration *
get_integration(const char *ws, const char *integ, uint64 check)
{
	char		key[BE_KEY_LEN];
	IntegEntry *e;
	bool		found;
	BeIntegration *ig;
	MemoryContext old;

	make_key(key, ws, integ);
	e = hash_search(integ_cache, key, HASH_ENTER, &found);
	if (found && e->ig && (e->ig->generation == check || e->unit == unit_number) &&
		!TimestampDifferenceExceeds(e->ig->loaded_at, GetCurrentTimestamp(), CACHE_TTL_MS))
		return e->ig;
	if (!found)
	{
		/* hash_search leaves all but the key uninitialised */
		StaticAssertStmt(offsetof(IntegEntry, key) == 0, "the key leads the entry");
		memset((char *) e + sizeof(e->key), 0, sizeof(IntegEntry) - sizeof(e->key));
		e->cxt = AllocSetContextCreate(TopMemoryContext, "broadcast_engine integration",
									   ALLOCSET_SMALL_SIZES);
	}
	else
		MemoryContextReset(e->cxt);
	e->ig = NULL;
	/* the claim cursor follows the queue of what is loaded now */
	e->claim_from = DT_NOBEGIN;
	e->claim_from_set = 0;
	/* and new caps are judged at the next claim */
	e->cap_until = 0;

	old = MemoryContextSwitchTo(e->cxt);
	ig = palloc0(sizeof(BeIntegration));
	if (!be_sql_load_integration(ws, integ, ig))
	{
		MemoryContextSwitchTo(old);
		MemoryContextReset(e->cxt);
		return NULL;
	}
	ig->workspace_id = pstrdup(ws);
	ig->integration_id = pstrdup(integ);
	ig->tls_mode = be_tls_mode(ig->tls);
	be_rate_keys(ig);
	ig->ops = be_provider_for(ig->provider);
	if (ig->ops && ig->ops->load)
		ig->ops->load(ig);
	if (ig->ops == NULL)
		ig->refused = psprintf("provider \"%s\" of integration \"%s\" is not supported by this version",
							   ig->provider, integ);
	else
	{
		/* checked against broadcast_engine.allow_insecure_transport at send time */
		ig->insecure = (ig->endpoint && pg_strncasecmp(ig->endpoint, "https://", 8) != 0) ||
			(ig->ops == &be_provider_smtp && ig->tls_mode == BE_TLS_NONE);
	}
	ig->loaded_at = GetCurrentTimestamp();
	ig->generation = unit_load_gen;
	e->unit = unit_number;
	MemoryContextSwitchTo(old);
	e->ig = ig;
	return ig;
}

static char *
strdup_top(const char *s)
{
	return s ? MemoryContextStrdup(TopMemoryContext, s) : NULL;
}

/*
 * Returns a broadcast's composer (all variations in one query), loading it
 * again unless loaded under generation check or in this unit (and within
 * the TTL); a new load is tagged unit_load_gen.  Inside a transaction.
 */
static BroadcastEntry *
get_broadcast(const char *ws, const char *bid, uint64 check)
{
	char		key[BE_KEY_LEN];
	BroadcastEntry *e;
	bool		found;
	ComposeBroadcastSrc src;
	char		err[256];

	make_key(key, ws, bid);
	e = hash_search(broadcast_cache, key, HASH_ENTER, &found);
	if (found && (e->cb || e->error) && (e->generation == check || e->unit == unit_number) &&
		!TimestampDifferenceExceeds(e->loaded_at, GetCurrentTimestamp(), CACHE_TTL_MS * 6))
		return e;
	if (found)
	{
		compose_broadcast_free(e->cb);
		if (e->error)
			pfree(e->error);
	}
	e->cb = NULL;
	e->error = NULL;
	e->generation = unit_load_gen;
	e->unit = unit_number;
	e->loaded_at = GetCurrentTimestamp();
	e->used_at = e->loaded_at;

	if (be_sql_load_broadcast(ws, bid, &src) == 0)
	{
		e->error = strdup_top("the broadcast has no pinned template");
		return e;
	}
	e->cb = compose_broadcast_create(&src, err, sizeof(err));
	if (e->cb == NULL)
		e->error = strdup_top(err);
	return e;
}

static void
free_broadcast_entry(BroadcastEntry *e)
{
	compose_broadcast_free(e->cb);
	if (e->error)
		pfree(e->error);
	(void) hash_search(broadcast_cache, e->key, HASH_REMOVE, NULL);
}

/*
 * Frees the composers of broadcasts no batch has used for a while: a
 * sender that runs for months sees many broadcasts, and each composer
 * holds its compiled templates.
 */
static void
evict_broadcasts(void)
{
	static TimestampTz last_run = 0;
	TimestampTz now = GetCurrentTimestamp();
	HASH_SEQ_STATUS seq;
	BroadcastEntry *e;

	if (!TimestampDifferenceExceeds(last_run, now, BROADCAST_IDLE_MS / 4))
		return;
	last_run = now;
	hash_seq_init(&seq, broadcast_cache);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (!TimestampDifferenceExceeds(e->used_at, now, BROADCAST_IDLE_MS))
			continue;
		free_broadcast_entry(e);
	}
}

/*
 * Frees every entry not loaded under generation gen (all of them when
 * everything is true).  Only between batches: a pair's BeIntegration goes
 * with its entry.
 */
static void
flush_caches(uint64 gen, bool everything)
{
	HASH_SEQ_STATUS seq;
	BroadcastEntry *b;
	IntegEntry *i;

	hash_seq_init(&seq, broadcast_cache);
	while ((b = hash_seq_search(&seq)) != NULL)
		if (everything || b->generation != gen)
			free_broadcast_entry(b);
	hash_seq_init(&seq, integ_cache);
	while ((i = hash_seq_search(&seq)) != NULL)
	{
		if (i->ig == NULL || (!everything && i->ig->generation == gen))
			continue;
		MemoryContextReset(i->cxt);
		i->ig = NULL;
		i->claim_from = DT_NOBEGIN;
		i->claim_from_set = 0;
		i->cap_until = 0;
	}
	flushed_generation = gen;
}

/* ---- one cycle ---- */

typedef struct Cycle
{
	MemoryContext cxt;
	TimestampTz started;
	List	   *pairs;
	/* the pair being served, and its batch */
	Pair	   *pair;
	BeSendBatch  *b;
	bool		abandoned;		/* the claim was undone: its integration is gone */
} Cycle;

static void
pairs_unit(void *arg)
{
	Cycle	   *cy = (Cycle *) arg;
	int			n;
	int			i;
	ListCell   *lc;
	MemoryContext old;
	uint64		check;
	Oid			ext;
	BePairRow  *rows;

	/* a new CREATE EXTENSION: nothing loaded from the old one's tables is kept */
	ext = get_extension_oid("broadcast_engine", true);
	if (ext != cached_extension)
	{
		flush_caches(unit_load_gen, true);
		cached_extension = ext;
	}
	old = MemoryContextSwitchTo(cy->cxt);
	n = be_sql_active_pairs(&rows);
	check = be_cache_generation_started();
	for (i = 0; i < n; i++)
	{
		Pair	   *p = palloc0(sizeof(Pair));

		p->workspace_id = rows[i].workspace_id;
		p->integration_id = rows[i].integration_id;
		p->next_due = rows[i].next_due;
		cy->pairs = lappend(cy->pairs, p);
	}
	MemoryContextSwitchTo(old);

	/* integrations loaded or refreshed here, while a transaction is open */
	foreach(lc, cy->pairs)
	{
		Pair	   *p = (Pair *) lfirst(lc);

		p->ig = get_integration(p->workspace_id, p->integration_id, check);
	}
	/* a shared account's tokens are shared fairly between its active workspaces */
	foreach(lc, cy->pairs)
	{
		Pair	   *p = (Pair *) lfirst(lc);
		ListCell   *lc2;

		p->fair_share = 0;
		if (p->ig == NULL)
			continue;
		foreach(lc2, cy->pairs)
		{
			Pair	   *q = (Pair *) lfirst(lc2);

			if (q->ig && strcmp(q->ig->account_key, p->ig->account_key) == 0)
				p->fair_share++;
		}
	}
}

/* ,"key":"value" or ,"key":null */
static void
put_member(StringInfo buf, const char *key, const char *value)
{
	appendStringInfo(buf, ",\"%s\":", key);
	if (value)
		escape_json(buf, value);
	else
		appendStringInfoString(buf, "null");
}

/*
 * The contact's template data: its properties at the top level, then the
 * contact's own fields, which win over properties of the same name (json-c
 * keeps the last of duplicate keys), and the properties again under
 * "properties".  Built here from the columns rather than with jsonb in the
 * claim statement, which cost more than the claim itself.  NULL when the
 * contact is gone.
 */
static char *
contact_json(const BeClaimRow *r)
{
	char	   *props = r->properties;
	StringInfoData buf;
	size_t		plen;

	if (props == NULL)
		return NULL;
	plen = strlen(props);
	initStringInfo(&buf);
	/* properties is a JSON object: its members (if any), without the closing brace */
	if (plen > 2 && props[0] == '{' && props[plen - 1] == '}')
	{
		appendBinaryStringInfo(&buf, props, plen - 1);
		appendStringInfoString(&buf, ",\"email\":");
	}
	else
		appendStringInfoString(&buf, "{\"email\":");
	escape_json(&buf, r->email);
	put_member(&buf, "first_name", r->first_name);
	put_member(&buf, "last_name", r->last_name);
	put_member(&buf, "language", r->language);
	put_member(&buf, "timezone", r->timezone);
	appendStringInfoString(&buf, ",\"properties\":");
	appendBinaryStringInfo(&buf, props, plen);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * Caps first: the counter rows stay locked until this transaction ends, so
 * no other sender can reserve what this claim reserved.  Returns how many
 * rows the claim may take (0: over a cap, b->cap_until says until when).
 */
static int
reserve_caps(BeSendBatch *b, TimestampTz now)
{
	BeCapGrant g;

	be_sql_cap_reserve(b->workspace_id, b->integration_id, b->want, &g);
	if (!g.found)
		return b->want;
	if (g.capped)
	{
		b->capped = true;
		b->cap_hour = g.hour_start;
		b->cap_day = g.day_start;
	}
	if (g.granted <= 0)
	{
		/* over a cap: nothing is claimed, the rows wait unclaimed */
		b->cap_until = g.has_wait ? g.wait_until : TimestampTzPlusMilliseconds(now, 60000);
		b->capped = false;
		return 0;
	}
	Assert(g.granted <= b->want);
	return g.granted;
}

static void
claim_unit(void *arg)
{
	Cycle	   *cy = (Cycle *) arg;
	BeSendBatch *b = cy->b;
	BeClaimArgs in;
	BeClaimResult res;
	char		key[BE_KEY_LEN];
	IntegEntry *cursor;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz last = DT_NOBEGIN;
	int			n;
	int			i;
	MemoryContext old;
	uint64		check;
	BeIntegration *ig;

	/*
	 * The claim need not wait for its commit record to reach disk: the
	 * results commit synchronously and flush it with them, and a claim lost
	 * in a crash only makes its rows due again at once, like any lease of a
	 * crashed sender (they were in flight, the window we allow).
	 */
	(void) set_config_option("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	in.workspace_id = cy->pair->workspace_id;
	in.integration_id = cy->pair->integration_id;
	in.lease_s = be_batch_lease_s(b->want);
	in.want = reserve_caps(b, now);
	if (in.want == 0)
	{
		b->nmsgs = 0;
		return;
	}
	b->want = in.want;

	/*
	 * Sent rows leave dead entries at the front of email_queue_due_idx
	 * until vacuum removes them, and a million-row send would make every
	 * claim step over all of them.  So each pair keeps a cursor: the
	 * latest next_attempt_at it claimed.  Rows that come due behind it (a
	 * lease that ran out, a resumed broadcast) are found when the cursor
	 * is reset: after CLAIM_CURSOR_MS, and whenever a claim comes back
	 * short.  Retries are always scheduled ahead of it.
	 */
	make_key(key, cy->pair->workspace_id, cy->pair->integration_id);
	cursor = hash_search(integ_cache, key, HASH_FIND, NULL);
	if (cursor && TimestampDifferenceExceeds(cursor->claim_from_set, now, CLAIM_CURSOR_MS))
		cursor->claim_from = DT_NOBEGIN;
	in.claim_from = cursor ? cursor->claim_from : DT_NOBEGIN;
	old = MemoryContextSwitchTo(b->cxt);
	be_sql_claim(&in, &res);

	/*
	 * Changes that the claim's snapshot may see have all started by now:
	 * entries loaded before one of them are loaded again (from a later
	 * snapshot, which sees at least what the claim saw).
	 */
	check = be_cache_generation_started();
	b->parked = res.parked;
	b->msgs = palloc0(sizeof(BeMessage *) * Max(res.nrows, 1));
	for (i = 0; i < res.nrows; i++)
	{
		BeClaimRow *r = &res.rows[i];
		BeMessage  *m = palloc0(sizeof(BeMessage));

		m->tid = r->tid;
		m->broadcast_id = r->broadcast_id;
		m->email = r->email;
		m->list_id = r->list_id;
		m->variation = r->variation;
		m->message_id = r->message_id;
		m->attempts = r->attempts;
		m->contact_json = contact_json(r);
		b->msgs[i] = m;
		last = Max(last, r->next_attempt_at);
	}
	n = b->nmsgs = res.nrows;
	MemoryContextSwitchTo(old);
	/* what the claim reserved and did not find goes back to the caps */
	if (b->capped && n < b->want)
		be_cap_add(b, n - b->want);
	if (cursor)
	{
		if (n + b->parked < b->want)
			cursor->claim_from = DT_NOBEGIN;	/* ran dry past it: look behind next time */
		else
		{
			if (cursor->claim_from == DT_NOBEGIN)
				cursor->claim_from_set = now;
			cursor->claim_from = last;
		}
	}

	/* the integration and composers for this batch, checked in this transaction */
	if (n > 0)
	{
		ig = get_integration(cy->pair->workspace_id, cy->pair->integration_id, check);
		cy->pair->ig = ig;
		if (ig == NULL)
		{
			/* dropped since the cycle began: undo the claim (the caller skips the pair) */
			cy->abandoned = true;
			elog(ERROR, "integration \"%s\" of workspace \"%s\" no longer exists",
				 cy->pair->integration_id, cy->pair->workspace_id);
		}
	}
	for (i = 0; i < n; i++)
		(void) get_broadcast(cy->pair->workspace_id, b->msgs[i]->broadcast_id, check);
}

/*
 * What a composed message holds: its body, and about as much again for the
 * request an HTTP provider builds from it (JSON or form encoding).
 */
#define MESSAGE_BYTES(m) (2 * (m)->body_len + 1024)

/*
 * Renders the batch's messages; no transaction is open.  It stops when the
 * batch holds avail bytes (after one message at least): the rest are left
 * unsent and deferred, due again at once without an attempt spent, so a
 * sender's memory follows sender_batch_bytes whatever the template size.
 */
static void
compose_batch(BeSendBatch *b, TimestampTz started, size_t avail)
{
	BeIntegration *ig = b->ig;
	int			i;
	time_t		now = time(NULL);

	b->bytes = 0;
	for (i = 0; i < b->nmsgs; i++)
	{
		BeMessage  *m = b->msgs[i];
		char		key[BE_KEY_LEN];
		BroadcastEntry *e;
		ComposeInput in;
		ComposeOutput out;
		int			rc;

		if (ig->refused)
		{
			m->outcome = BE_OUT_DEAD;
			m->error = ig->refused;
			continue;
		}
		if (ig->insecure && !be_allow_insecure_transport)
		{
			/* plain http and unencrypted SMTP only when a superuser allowed them */
			m->outcome = BE_OUT_DEAD;
			m->error = psprintf("%s integration \"%s\" uses an unencrypted connection, which needs broadcast_engine.allow_insecure_transport",
								ig->provider, ig->integration_id);
			continue;
		}
		if (b->bytes > 0 && b->bytes >= avail)
		{
			m->outcome = BE_OUT_NONE;
			m->deferred = true;
			continue;
		}
		make_key(key, b->workspace_id, m->broadcast_id);
		e = hash_search(broadcast_cache, key, HASH_FIND, NULL);
		if (e)
			e->used_at = started;
		if (e == NULL || e->cb == NULL)
		{
			m->outcome = BE_OUT_DEAD;
			m->error = psprintf("cannot compose: %s", e && e->error ? e->error : "broadcast not found");
			continue;
		}
		in.email = m->email;
		in.list_id = m->list_id;
		in.message_id = m->message_id;
		in.contact_json = m->contact_json;
		in.variation = m->variation;
		in.date = now;
		rc = compose_render(e->cb, compose_ctx, &in, &out);
		if (rc == 0)
			rc = ig->ops->compose(e->cb, compose_ctx, &in, &out);
		if (rc != 0)
		{
			m->outcome = BE_OUT_DEAD;
			m->error = pstrdup(out.error);
			continue;
		}
		m->body = palloc(out.body_len + 1);
		memcpy(m->body, out.body, out.body_len);
		m->body[out.body_len] = '\0';
		m->body_len = out.body_len;
		m->from_email = pstrdup(out.from_email);
		m->template_id = pstrdup(out.template_id);
		m->template_version = out.template_version;
		m->batch_key = out.batch_key ? pstrdup(out.batch_key) : NULL;
		/* a key can be a whole message (SparkPost): compared by hash first */
		m->batch_key_hash = m->batch_key ? hash_bytes((const unsigned char *) m->batch_key,
													  (int) strlen(m->batch_key)) : 0;
		b->bytes += MESSAGE_BYTES(m);
	}
}

/*
 * Composes a claimed batch, outside any transaction.  An error here (a
 * template the composer chokes on) is the pair's: the messages go back
 * unsent, and the pair is isolated.
 */
static bool
compose_or_isolate(BeSendBatch *b, TimestampTz started, size_t avail)
{
	MemoryContext old = MemoryContextSwitchTo(b->cxt);
	volatile bool ok = true;
	ErrorData  *volatile edata = NULL;
	int			i;

	PG_TRY();
	{
		compose_batch(b, started, avail);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(b->cxt);
		edata = CopyErrorData();
		FlushErrorState();
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	if (ok)
		return true;
	if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED || be_error_is_process_level(edata->sqlerrcode))
		ReThrowError(edata);
	for (i = 0; i < b->nmsgs; i++)
	{
		BeMessage  *m = b->msgs[i];

		m->outcome = BE_OUT_NONE;
		m->deferred = true;
		m->body = NULL;
		m->body_len = 0;
	}
	b->bytes = 0;
	(void) be_pair_failed(b->workspace_id, b->integration_id, edata->sqlerrcode,
						  "compose", edata->message);
	return false;
}

/*
 * How many rows the pair may claim now, before rate tokens: 0 when it has
 * nothing to do yet (*next_wake then moves to when it may); *avail is the
 * rest of the byte budget.
 */
static int
pair_budget(Pair *p, TimestampTz now, size_t *avail, TimestampTz *next_wake)
{
	TimestampTz until;
	size_t		budget = (size_t) be_sender_batch_bytes_kb * 1024;
	size_t		est = 0;
	char		key[BE_KEY_LEN];
	IntegEntry *ie;
	int			want;

	if (p->ig == NULL)
		return 0;				/* the integration was dropped meanwhile */
	if (p->next_due > now)
	{
		*next_wake = Min(*next_wake, p->next_due);
		return 0;
	}
	until = be_pair_isolated_until(p->workspace_id, p->integration_id);
	if (until > now)
	{
		*next_wake = Min(*next_wake, until);
		return 0;
	}
	/* one batch per pair at a time; look again soon (a batch's end also wakes the loop) */
	if (be_batch_in_flight(p->workspace_id, p->integration_id) != NULL ||
		be_batches_in_flight() >= be_sender_max_batches)
	{
		*next_wake = Min(*next_wake, TimestampTzPlusMilliseconds(now, 100));
		return 0;
	}

	/* as many rows as the rest of the byte budget holds at this pair's size */
	make_key(key, p->workspace_id, p->integration_id);
	ie = hash_search(integ_cache, key, HASH_FIND, NULL);
	if (ie)
		est = ie->msg_bytes;
	/* over an hourly or daily cap: its mail waits, unclaimed, for the next period */
	if (ie && ie->cap_until > now)
	{
		*next_wake = Min(*next_wake, ie->cap_until);
		return 0;
	}
	*avail = budget > be_batch_bytes_in_flight() ? budget - be_batch_bytes_in_flight() : 0;
	if (be_batches_in_flight() > 0 && (*avail == 0 || *avail < est))
	{
		/* when a batch in flight ends */
		*next_wake = Min(*next_wake, TimestampTzPlusMilliseconds(now, 100));
		return 0;
	}
	*avail = Max(*avail, 1);
	want = be_sender_batch_size;
	if (est > 0)
		want = (int) Max(1, Min((size_t) want, *avail / est));
	return want;
}

/*
 * Claims up to granted rows of the pair (rate tokens already taken) in one
 * unit of work.  Returns the batch, or NULL when there is nothing to send
 * (tokens given back; *next_wake moved).
 */
static BeSendBatch *
claim_batch(BeExec *ex, Cycle *cy, Pair *p, int granted, TimestampTz now,
			TimestampTz *next_wake)
{
	MemoryContext cxt;
	BeSendBatch *b;
	char		key[BE_KEY_LEN];
	IntegEntry *ie;

	cxt = AllocSetContextCreate(TopMemoryContext, "broadcast_engine batch",
								ALLOCSET_DEFAULT_SIZES);
	b = MemoryContextAllocZero(cxt, sizeof(BeSendBatch));
	b->cxt = cxt;
	b->workspace_id = MemoryContextStrdup(b->cxt, p->workspace_id);
	b->integration_id = MemoryContextStrdup(b->cxt, p->integration_id);
	b->want = granted;
	cy->pair = p;
	cy->b = b;
	cy->abandoned = false;
	b->t_claim = GetCurrentTimestamp();
	begin_cache_unit();
	make_key(key, p->workspace_id, p->integration_id);
	if (!be_run_pair_unit(ex, claim_unit, cy, p->workspace_id, p->integration_id,
						  "claim queue rows", &cy->abandoned))
	{
		/* undone: the integration went away, or the pair is isolated */
		ie = hash_search(integ_cache, key, HASH_FIND, NULL);
		if (ie)
			ie->claim_from = DT_NOBEGIN;
		if (p->ig)
			be_rate_refund(p->ig, granted);
		p->ig = NULL;
		MemoryContextDelete(b->cxt);
		return NULL;
	}
	b->t_claimed = GetCurrentTimestamp();
	be_rate_refund(p->ig, granted - b->nmsgs);
	if (b->cap_until != 0)
	{
		ie = hash_search(integ_cache, key, HASH_FIND, NULL);
		if (ie)
			ie->cap_until = b->cap_until;
		*next_wake = Min(*next_wake, b->cap_until);
		MemoryContextDelete(b->cxt);
		return NULL;
	}
	if (b->nmsgs == 0)
	{
		/*
		 * Due rows exist but all belong to paused broadcasts, or are locked;
		 * or they were all moved to their window's opening, and more may be
		 * due behind them.
		 */
		*next_wake = Min(*next_wake, b->parked > 0 ? now :
						 TimestampTzPlusMilliseconds(now, 1000));
		MemoryContextDelete(b->cxt);
		return NULL;
	}
	return b;
}

/*
 * Renders a claimed batch, outside any transaction, with a copy of its
 * integration; remembers the bytes a message of this pair holds, for the
 * next claim's size.
 */
static void
render_batch(BeSendBatch *b, Cycle *cy, Pair *p, size_t avail)
{
	MemoryContext old;
	char		key[BE_KEY_LEN];
	IntegEntry *ie;

	old = MemoryContextSwitchTo(b->cxt);
	b->ig = be_copy_integration(p->ig);
	MemoryContextSwitchTo(old);
	(void) compose_or_isolate(b, cy->started, avail);
	b->t_composed = GetCurrentTimestamp();
	make_key(key, p->workspace_id, p->integration_id);
	ie = hash_search(integ_cache, key, HASH_FIND, NULL);
	if (ie && b->bytes > 0)
	{
		int			i;
		size_t		most = 0;

		for (i = 0; i < b->nmsgs; i++)
			if (b->msgs[i]->body)
				most = Max(most, MESSAGE_BYTES(b->msgs[i]));
		ie->msg_bytes = most;
	}
}

/*
 * Serves one pair: claim, render, send.  The batch's transfers run while
 * other pairs are served, and be_batches_record_done records it when they
 * end.  Returns the number of rows claimed; *next_wake moves to when the
 * pair may next have something to do.
 */
static int
serve_pair(BeExec *ex, Cycle *cy, Pair *p, TimestampTz *next_wake)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next_ok;
	size_t		avail = 0;
	BeSendBatch *b;
	int			want;
	int			granted;

	want = pair_budget(p, now, &avail, next_wake);
	if (want == 0)
		return 0;
	granted = be_rate_acquire(p->ig, want, p->fair_share, &next_ok);
	if (granted == 0)
	{
		*next_wake = Min(*next_wake, next_ok);
		return 0;
	}

	b = claim_batch(ex, cy, p, granted, now, next_wake);
	if (b == NULL)
		return 0;
	pgstat_report_activity(STATE_RUNNING, "sending");
	render_batch(b, cy, p, avail);
	be_batch_launch(b);
	return b->nmsgs;
}

/*
 * Serves every active pair once, recording the batches in flight that end
 * meanwhile.  Returns the number of rows claimed; *next_wake is when
 * something may next be due.
 */
static int
sender_cycle(BeExec *ex, TimestampTz *next_wake)
{
	Cycle		cy;
	volatile int handled = 0;
	int			npairs;
	MemoryContext cycle_old_cxt;
	int			j;

	ensure_caches();
	evict_broadcasts();
	memset(&cy, 0, sizeof(cy));
	cy.started = GetCurrentTimestamp();
	cy.cxt = AllocSetContextCreate(TopMemoryContext, "broadcast_engine send cycle",
								   ALLOCSET_DEFAULT_SIZES);
	*next_wake = DT_NOEND;
	cycle_old_cxt = MemoryContextSwitchTo(cy.cxt);
	PG_TRY();
	{
		char	   *err = NULL;

		(void) be_batches_record_done(ex, 0);
		begin_cache_unit();
		if (unit_load_gen != flushed_generation)
			flush_caches(unit_load_gen, false);
		be_exec_begin(ex);
		if (!be_exec_unit(ex, pairs_unit, &cy, &err))
		{
			be_exec_commit(ex);
			elog(ERROR, "broadcast_engine sender could not list the queue: %s", err);
		}
		be_exec_commit(ex);
		npairs = list_length(cy.pairs);
		rotation++;
		for (j = 0; j < npairs; j++)
		{
			Pair	   *p = (Pair *) list_nth(cy.pairs, (j + rotation) % npairs);
			int			n;

			n = serve_pair(ex, &cy, p, next_wake);
			handled += n;
			if (n > 0)
				*next_wake = Min(*next_wake, GetCurrentTimestamp());	/* it may have more due */
			/* the others' transfers go on between claims */
			(void) be_batches_record_done(ex, 0);
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cycle_old_cxt);
		MemoryContextDelete(cy.cxt);
		be_batches_abort();
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cycle_old_cxt);
	MemoryContextDelete(cy.cxt);
	return handled;
}

PGDLLEXPORT void be_sender_main(Datum main_arg);

void
be_sender_main(Datum main_arg)
{
	int			index = DatumGetInt32(main_arg);
	BeExec		ex;
	char		name[64];

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(be_database_name,
										 be_database_user[0] ? be_database_user : NULL, 0);
	snprintf(name, sizeof(name), "broadcast_engine sender %d", index);
	pgstat_report_appname(name);
	be_slot_attach(&be_shared->senders[index], BE_WORKER_SENDER);
	be_wait_for_extension("sender");

	be_exec_init(&ex, false, &be_shared->senders[index]);
	for (;;)
	{
		TimestampTz next_wake;
		int			handled;
		long		sleep_ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		handled = sender_cycle(&ex, &next_wake);
		if (handled > 0)
			continue;

		/* nothing due: sleep until something is, a commit wakes us, or the tick */
		sleep_ms = be_scheduler_tick_ms;
		if (next_wake != DT_NOEND)
		{
			long		secs;
			int			usecs;

			TimestampDifference(GetCurrentTimestamp(), next_wake, &secs, &usecs);
			sleep_ms = Min(sleep_ms, secs * 1000 + usecs / 1000 + 1);
		}
		/* batches in flight: their transfers go on meanwhile */
		if (be_batches_wait(&ex, sleep_ms))
			continue;
		pgstat_report_activity(STATE_IDLE, NULL);
		if (sleep_ms > 0)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 sleep_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
	}
}

/*
 * CALL broadcast.send_queue(max_seconds): the senders' work in the calling
 * session, for pg_cron and tests.  Returns when nothing is due or the time
 * is up.
 */
Datum
be_send_queue(PG_FUNCTION_ARGS)
{
	int			max_seconds = be_procedure_max_seconds(fcinfo, "broadcast.send_queue()");
	BeExec		ex;
	BeWorkerSlot slot;
	TimestampTz deadline;

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), (int64) max_seconds * 1000);
	/* a slot of our own, for the stage timings reported at DEBUG1 */
	memset(&slot, 0, sizeof(slot));
	pg_atomic_init_u64(&slot.units_done, 0);
	pg_atomic_init_u64(&slot.messages, 0);
	pg_atomic_init_u64(&slot.batches, 0);
	pg_atomic_init_u64(&slot.claim_us, 0);
	pg_atomic_init_u64(&slot.render_us, 0);
	pg_atomic_init_u64(&slot.send_us, 0);
	pg_atomic_init_u64(&slot.record_us, 0);
	be_exec_init(&ex, true, &slot);
	while (GetCurrentTimestamp() < deadline)
	{
		TimestampTz next_wake;

		if (sender_cycle(&ex, &next_wake) > 0)
			continue;
		if (be_batches_wait(&ex, 200))
			continue;
		/* wait a little for retries that come due soon; otherwise stop */
		if (next_wake == DT_NOEND || next_wake > deadline ||
			TimestampDifferenceExceeds(GetCurrentTimestamp(), next_wake, 2000))
			break;
		pg_usleep(Min(200000L, Max(1000L, (long) (next_wake - GetCurrentTimestamp()))));
	}
	/* the time is up: what is in flight ends within a request timeout */
	while (be_batches_wait(&ex, 1000))
		;
	be_exec_finish(&ex);
	ereport(DEBUG1,
			(errmsg("send_queue handled " UINT64_FORMAT " messages in " UINT64_FORMAT " batches",
					pg_atomic_read_u64(&slot.messages), pg_atomic_read_u64(&slot.batches)),
			 errdetail("claim %.1f ms, render %.1f ms, send %.1f ms, record %.1f ms",
					   pg_atomic_read_u64(&slot.claim_us) / 1000.0,
					   pg_atomic_read_u64(&slot.render_us) / 1000.0,
					   pg_atomic_read_u64(&slot.send_us) / 1000.0,
					   pg_atomic_read_u64(&slot.record_us) / 1000.0)));
	PG_RETURN_VOID();
}
