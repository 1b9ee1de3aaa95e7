/*-------------------------------------------------------------------------
 *
 * ratelimit.c
 *	  Token buckets and circuit breakers shared by all sender workers.
 *
 * Two levels of bucket: the provider account (an integration, or a shared
 * platform integration used by many workspaces) and each workspace on it.
 * A sender takes tokens from both before it claims rows, at most a fair
 * share of the account's tokens per workspace that has mail waiting, so a
 * workspace flooding a shared account cannot starve another.
 *
 * The account bucket also carries the provider's Retry-After pause and
 * the circuit breaker: after breaker_threshold consecutive provider
 * failures it opens for breaker_cooldown, then lets a single probe
 * through.  While it is open no tokens are given, so no rows are claimed
 * and no attempts are spent.
 *
 * Keys (be_rate_keys) name a kind and then ids, so no workspace id can
 * name a shared account: "w" a workspace's own integration, "s" a shared
 * platform integration, "p" a workspace's share of one; each ends with the
 * incarnation (a uuid given when the row was created), so a workspace or
 * integration dropped and made again under the same ids starts with fresh
 * buckets instead of the old one's Retry-After pause or open breaker.
 *
 * The table lives in shared memory (one LWLock; every operation is a few
 * arithmetic steps).  A session that runs broadcast.send_queue() without
 * the library preloaded gets a private table instead.
 *
 * The table has broadcast_engine.rate_buckets slots, open addressing with
 * at most BE_MAX_PROBE probes per key.  Slots never become empty again, so
 * a chain is never broken: a bucket unused for rate_bucket_idle (no pause,
 * breaker closed and no failures counted) is reused in place by a new key,
 * which also retires the buckets of old incarnations.  When no slot is free or idle within a key's probes,
 * the table is full for that key and it fails closed: no tokens, a message
 * in the server log and a counter in broadcast.rate_limit_usage(), never sending
 * without a limit or a breaker.
 *
 * Rates are clamped here too (0 = unlimited, else BE_RATE_MIN to
 * BE_RATE_MAX per second), whatever reached the table: the API bounds them,
 * but a value that slipped past must not turn into an integer overflow or a
 * sender polling every millisecond.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/hashfn.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "broadcast_engine.h"
#include "be_sender.h"

#define BE_MAX_PROBE 256
#define BE_RATE_MIN 0.001
#define BE_RATE_MAX 1000000.0

typedef struct BeBucket
{
	char		key[BE_KEY_LEN];	/* "" when free */
	double		rate;			/* tokens per second; 0 = unlimited */
	double		tokens;
	TimestampTz refilled_at;
	TimestampTz used_at;
	TimestampTz paused_until;	/* Retry-After, or the account's own pause */
	char		paused_reason[BE_PAUSE_REASON_LEN];	/* the provider's, or "" */
	int			failures;		/* consecutive provider failures */
	TimestampTz open_until;		/* breaker open until */
	bool		probing;		/* half-open: one probe is out */
	uint64		granted;
	uint64		throttled;
} BeBucket;

typedef struct BeRateTable
{
	LWLock	   *lock;
	int			nbuckets;
	uint64		refused;		/* acquisitions refused because the table was full */
	TimestampTz warned_at;		/* last "table full" warning */
	BeBucket	buckets[FLEXIBLE_ARRAY_MEMBER];
} BeRateTable;

static BeRateTable *rate_table = NULL;
static bool rate_table_local = false;

static Size
table_size(int nbuckets)
{
	return add_size(offsetof(BeRateTable, buckets), mul_size(sizeof(BeBucket), nbuckets));
}

Size
be_ratelimit_shmem_size(void)
{
	return MAXALIGN(table_size(be_rate_buckets));
}

/* called from the shmem startup hook, under AddinShmemInitLock */
void
be_ratelimit_shmem_init(void)
{
	bool		found;

	rate_table = ShmemInitStruct("broadcast_engine rate limits", table_size(be_rate_buckets), &found);
	if (!found)
	{
		memset(rate_table, 0, table_size(be_rate_buckets));
		rate_table->nbuckets = be_rate_buckets;
		rate_table->lock = &(GetNamedLWLockTranche("broadcast_engine"))[1].lock;
	}
}

static void
ensure_table(void)
{
	if (rate_table != NULL)
		return;
	/* not preloaded: a private table, good for one session's send_queue() */
	rate_table = MemoryContextAllocZero(TopMemoryContext, table_size(be_rate_buckets));
	rate_table->nbuckets = be_rate_buckets;
	rate_table_local = true;
}

static void
lock_table(void)
{
	if (!rate_table_local)
		LWLockAcquire(rate_table->lock, LW_EXCLUSIVE);
}

static void
unlock_table(void)
{
	if (!rate_table_local)
		LWLockRelease(rate_table->lock);
}

/* 0 (unlimited) or a rate the arithmetic below is safe with */
static double
clamp_rate(double rate)
{
	if (!(rate > 0))			/* also NaN */
		return 0;
	if (rate < BE_RATE_MIN)
		return BE_RATE_MIN;
	if (rate > BE_RATE_MAX)
		return BE_RATE_MAX;
	return rate;
}

/* may this slot be given to another key? */
static bool
bucket_idle(BeBucket *b, TimestampTz now)
{
	return b->used_at + (TimestampTz) be_rate_bucket_idle_s * USECS_PER_SEC <= now &&
		b->paused_until <= now && b->open_until <= now &&
		b->failures == 0 && !b->probing;
}

/*
 * Finds or creates a bucket.  A new key takes the first idle bucket of its
 * probe sequence, but only after the sequence showed that the key is not
 * further on.  NULL when the table is full for this key: the callers then
 * fail closed.
 */
static BeBucket *
find_bucket(const char *key, double rate, TimestampTz now)
{
	uint32		h = hash_bytes((const unsigned char *) key, strlen(key));
	int			n = rate_table->nbuckets;
	BeBucket   *reuse = NULL;
	int			i;

	rate = clamp_rate(rate);
	for (i = 0; i < Min(n, BE_MAX_PROBE); i++)
	{
		BeBucket   *c = &rate_table->buckets[(h + i) % n];

		if (c->key[0] == '\0')
		{
			/* the end of the chain: the key is not in the table */
			if (reuse == NULL)
				reuse = c;
			break;
		}
		if (strcmp(c->key, key) == 0)
		{
			/* a changed rate applies at once */
			if (c->rate != rate)
			{
				c->rate = rate;
				c->tokens = Min(c->tokens, Max(rate, 1.0));
			}
			c->used_at = now;
			return c;
		}
		if (reuse == NULL && bucket_idle(c, now))
			reuse = c;
	}
	if (reuse == NULL)
	{
		rate_table->refused++;
		return NULL;
	}
	memset(reuse, 0, sizeof(BeBucket));
	strlcpy(reuse->key, key, BE_KEY_LEN);
	reuse->rate = rate;
	reuse->tokens = rate > 0 ? Max(rate, 1.0) : 0;
	reuse->refilled_at = now;
	reuse->used_at = now;
	return reuse;
}

/* called with the table unlocked: says loudly that a key found no slot */
static void
warn_full(BeIntegration *ig)
{
	TimestampTz now = GetCurrentTimestamp();

	/* once a minute per process is loud enough */
	if (rate_table->warned_at + 60 * USECS_PER_SEC > now)
		return;
	rate_table->warned_at = now;
	/* LOG, not WARNING: it must reach the server log whatever log_min_messages says */
	ereport(LOG,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("broadcast_engine rate-limit table is full: integration \"%s\" of workspace \"%s\" is held back",
					ig->integration_id, ig->workspace_id),
			 errdetail("All %d buckets are in use and none has been idle for %d s.",
					   rate_table->nbuckets, be_rate_bucket_idle_s),
			 errhint("Raise broadcast_engine.rate_buckets (needs a restart) or lower broadcast_engine.rate_bucket_idle.")));
}

/* tokens accrue at rate per second, up to one second's worth (at least 1) */
static void
refill(BeBucket *b, TimestampTz now)
{
	double		elapsed;

	if (b->rate <= 0)
		return;
	elapsed = (double) (now - b->refilled_at) / USECS_PER_SEC;
	if (elapsed > 0)
		b->tokens = Min(Max(b->rate, 1.0), b->tokens + elapsed * b->rate);
	b->refilled_at = now;
}

static TimestampTz
time_for_one_token(BeBucket *b, TimestampTz now)
{
	double		missing = 1.0 - b->tokens;

	if (b->rate <= 0 || missing <= 0)
		return now;
	return now + (TimestampTz) ceil(missing / b->rate * USECS_PER_SEC);
}

/*
 * How many messages this workspace may send through the integration now
 * (0..want).  fair_share caps what one workspace takes of a shared
 * account's tokens.  When 0, *next_ok says when to look again.
 */
int
be_rate_acquire(BeIntegration *ig, int want, int fair_share, TimestampTz *next_ok)
{
	TimestampTz now = GetCurrentTimestamp();
	BeBucket   *acct;
	BeBucket   *pair = NULL;
	int			n = want;

	ensure_table();
	*next_ok = now;
	lock_table();
	acct = find_bucket(ig->account_key, ig->shared_id ? ig->account_rate : ig->rate, now);
	if (ig->shared_id && acct != NULL)
		pair = find_bucket(ig->pair_key, ig->rate, now);
	if (acct == NULL || (ig->shared_id && pair == NULL))
	{
		/* no slot: no limit and no breaker could be kept, so nothing is sent */
		unlock_table();
		warn_full(ig);
		*next_ok = now + USECS_PER_SEC;
		return 0;
	}

	{
		refill(acct, now);
		if (acct->paused_until > now)
		{
			*next_ok = acct->paused_until;
			n = 0;
		}
		else if (acct->open_until > now)
		{
			*next_ok = acct->open_until;
			n = 0;
		}
		else if (acct->failures >= be_breaker_threshold)
		{
			/* half-open: exactly one probe until it reports back */
			if (acct->probing)
			{
				*next_ok = now + (TimestampTz) be_breaker_cooldown_ms * 1000;
				n = 0;
			}
			else
			{
				acct->probing = true;
				n = 1;
			}
		}
		if (n > 0 && acct->rate > 0)
		{
			int			avail = (int) floor(acct->tokens);

			if (fair_share > 1)
				avail = (int) ceil((double) avail / fair_share);
			n = Min(n, avail);
			if (n <= 0)
				*next_ok = time_for_one_token(acct, now);
		}
	}
	if (n > 0 && pair != NULL)
	{
		refill(pair, now);
		if (pair->rate > 0)
		{
			n = Min(n, (int) floor(pair->tokens));
			if (n <= 0)
				*next_ok = time_for_one_token(pair, now);
		}
	}
	if (n > 0)
	{
		if (acct && acct->rate > 0)
			acct->tokens -= n;
		if (pair && pair->rate > 0)
			pair->tokens -= n;
		if (acct)
			acct->granted += n;
	}
	else if (acct)
		acct->throttled++;
	unlock_table();
	return Max(n, 0);
}

/* gives back tokens taken for rows that were not there to claim */
void
be_rate_refund(BeIntegration *ig, int unused)
{
	TimestampTz now = GetCurrentTimestamp();
	BeBucket   *b;

	if (unused <= 0)
		return;
	ensure_table();
	lock_table();
	b = find_bucket(ig->account_key, ig->shared_id ? ig->account_rate : ig->rate, now);
	if (b && b->rate > 0)
		b->tokens = Min(Max(b->rate, 1.0), b->tokens + unused);
	if (ig->shared_id)
	{
		b = find_bucket(ig->pair_key, ig->rate, now);
		if (b && b->rate > 0)
			b->tokens = Min(Max(b->rate, 1.0), b->tokens + unused);
	}
	unlock_table();
}

/*
 * After a batch: successes close the breaker, a run of provider failures
 * opens it, and a Retry-After pauses the whole account.
 */
void
be_rate_report(BeIntegration *ig, int ok, int failed, int retry_after_s)
{
	TimestampTz now = GetCurrentTimestamp();
	BeBucket   *b;

	ensure_table();
	lock_table();
	b = find_bucket(ig->account_key, ig->shared_id ? ig->account_rate : ig->rate, now);
	if (b != NULL)
	{
		if (retry_after_s > 0)
		{
			TimestampTz until = now + (TimestampTz) retry_after_s * USECS_PER_SEC;

			if (until > b->paused_until)
			{
				b->paused_until = until;
				b->paused_reason[0] = '\0';
			}
		}
		if (ok > 0)
		{
			b->failures = 0;
			b->open_until = 0;
		}
		else if (failed > 0)
		{
			b->failures += failed;
			if (b->failures >= be_breaker_threshold)
				b->open_until = now + (TimestampTz) be_breaker_cooldown_ms * 1000;
		}
		b->probing = false;
	}
	unlock_table();
}

/*
 * The provider said the account cannot send now (a quota used up, sending
 * disabled): the account bucket is paused for seconds, and rate_limits()
 * shows why.
 */
void
be_rate_pause(BeIntegration *ig, int seconds, const char *reason)
{
	TimestampTz now = GetCurrentTimestamp();
	BeBucket   *b;

	ensure_table();
	lock_table();
	b = find_bucket(ig->account_key, ig->shared_id ? ig->account_rate : ig->rate, now);
	if (b != NULL)
	{
		TimestampTz until = now + (TimestampTz) Max(seconds, 1) * USECS_PER_SEC;

		if (until > b->paused_until)
			b->paused_until = until;
		strlcpy(b->paused_reason, reason ? reason : "", sizeof(b->paused_reason));
	}
	unlock_table();
}

/*
 * Sets the integration's bucket keys from its ids and incarnations.  The
 * kind letter keeps the key spaces apart; \x1f cannot occur in an id.
 */
void
be_rate_keys(BeIntegration *ig)
{
	if (ig->shared_id)
	{
		snprintf(ig->account_key, BE_KEY_LEN, "s\x1f\x1f%s\x1f%s", ig->shared_id,
				 ig->shared_incarnation ? ig->shared_incarnation : "");
		snprintf(ig->pair_key, BE_KEY_LEN, "p\x1f%s\x1f%s\x1f%s", ig->workspace_id,
				 ig->integration_id, ig->incarnation ? ig->incarnation : "");
	}
	else
	{
		snprintf(ig->account_key, BE_KEY_LEN, "w\x1f%s\x1f%s\x1f%s", ig->workspace_id,
				 ig->integration_id, ig->incarnation ? ig->incarnation : "");
		strlcpy(ig->pair_key, ig->account_key, BE_KEY_LEN);
	}
}

/* the n-th (from 0) \x1f-separated field of a key, in place */
static char *
key_field(char *key, int n)
{
	char	   *s = key;
	char	   *e;

	while (n-- > 0)
	{
		s = strchr(s, '\x1f');
		if (s == NULL)
			return "";
		s++;
	}
	e = strchr(s, '\x1f');
	if (e)
		*e = '\0';
	return s;
}

PG_FUNCTION_INFO_V1(be_rate_limits);

/*
 * broadcast.rate_limits(): one row per bucket this server has used: the
 * provider account or workspace it limits, its rate and tokens, a
 * Retry-After pause, and the circuit breaker's state.
 */
Datum
be_rate_limits(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TimestampTz now = GetCurrentTimestamp();
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	ensure_table();
	for (i = 0; i < rate_table->nbuckets; i++)
	{
		BeBucket	b;
		Datum		values[11];
		bool		nulls[11] = {false};
		const char *state;
		bool		shared;
		char		ws[BE_KEY_LEN];
		char		integ[BE_KEY_LEN];

		lock_table();
		b = rate_table->buckets[i];
		unlock_table();
		if (b.key[0] == '\0')
			continue;
		refill(&b, now);
		shared = (b.key[0] == 's');
		strlcpy(ws, b.key, BE_KEY_LEN);
		strlcpy(integ, b.key, BE_KEY_LEN);
		if (b.open_until > now)
			state = "open";
		else if (b.failures >= be_breaker_threshold)
			state = "half-open";
		else
			state = "closed";
		values[0] = CStringGetTextDatum(shared ? "shared" : "workspace");
		values[1] = CStringGetTextDatum(key_field(ws, 1));
		values[2] = CStringGetTextDatum(key_field(integ, 2));
		values[3] = Float8GetDatum(b.rate);
		nulls[3] = (b.rate <= 0);
		values[4] = Float8GetDatum(b.tokens);
		nulls[4] = (b.rate <= 0);
		values[5] = TimestampTzGetDatum(b.paused_until);
		nulls[5] = (b.paused_until <= now);
		values[6] = CStringGetTextDatum(state);
		values[7] = Int32GetDatum(b.failures);
		values[8] = Int64GetDatum((int64) b.granted);
		values[9] = Int64GetDatum((int64) b.throttled);
		/* paused_reason: only once the 1.3 definition (11 columns) is installed */
		values[10] = CStringGetTextDatum(b.paused_reason);
		nulls[10] = (b.paused_until <= now || b.paused_reason[0] == '\0');
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(be_rate_resume);

/*
 * broadcast._rate_resume(account_key text) returns boolean: ends the pause
 * of the bucket with that key (an operator resuming an integration whose
 * account was paused, resume_integration() in SQL).  True when a pause
 * ended.  Never creates a bucket.
 */
Datum
be_rate_resume(PG_FUNCTION_ARGS)
{
	char		key[BE_KEY_LEN];
	TimestampTz now = GetCurrentTimestamp();
	bool		resumed = false;
	uint32		h;
	int			n;
	int			i;

	/* truncated as be_rate_keys truncates */
	strlcpy(key, text_to_cstring(PG_GETARG_TEXT_PP(0)), BE_KEY_LEN);
	ensure_table();
	lock_table();
	h = hash_bytes((const unsigned char *) key, strlen(key));
	n = rate_table->nbuckets;
	for (i = 0; i < Min(n, BE_MAX_PROBE); i++)
	{
		BeBucket   *c = &rate_table->buckets[(h + i) % n];

		if (c->key[0] == '\0')
			break;
		if (strcmp(c->key, key) == 0)
		{
			resumed = c->paused_until > now;
			c->paused_until = 0;
			c->paused_reason[0] = '\0';
			break;
		}
	}
	unlock_table();
	PG_RETURN_BOOL(resumed);
}

PG_FUNCTION_INFO_V1(be_rate_limit_usage);

/*
 * broadcast.rate_limit_usage(): the size of the bucket table, the buckets in
 * use, those idle enough to be reused, and how many acquisitions were
 * refused because the table was full.
 */
Datum
be_rate_limit_usage(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[4];
	bool		nulls[4] = {false};
	TimestampTz now = GetCurrentTimestamp();
	int			used = 0;
	int			idle = 0;
	uint64		refused;
	int			i;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	ensure_table();
	lock_table();
	for (i = 0; i < rate_table->nbuckets; i++)
	{
		BeBucket   *b = &rate_table->buckets[i];

		if (b->key[0] == '\0')
			continue;
		used++;
		if (bucket_idle(b, now))
			idle++;
	}
	refused = rate_table->refused;
	unlock_table();
	values[0] = Int32GetDatum(rate_table->nbuckets);
	values[1] = Int32GetDatum(used);
	values[2] = Int32GetDatum(idle);
	values[3] = Int64GetDatum((int64) refused);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
