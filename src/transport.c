/*-------------------------------------------------------------------------
 *
 * transport.c
 *	  Sending the batches of several pairs at once over one libcurl multi
 *	  handle.
 *
 * The sender hands over each pair's batch (a BeFlight) and moves all of
 * them on with be_transport_pump() between its claims, so one pair's slow
 * or silent server never holds back another pair's mail.  A batch runs up
 * to broadcast_engine.max_connections_per_integration transfers, all
 * batches together up to broadcast_engine.max_connections, except that a
 * batch may always run its share of them (max_connections divided by the
 * batches in flight, one at least): a pair never waits for another pair's
 * transfers, which may take up to request_timeout each.  A
 * transfer carries one message, or up to the provider's batch_max messages
 * with equal batch keys; a batch the provider refused whole (without saying
 * which message was wrong) is sent again one message per request.  The
 * multi handle and the transfers' easy handles live as long as the process,
 * so connections (HTTP keep-alive, SMTP sessions) are reused from one batch
 * to the next.  No transaction is open while this runs.
 *
 * A batch starts no request after its start_by time, which the sender sets
 * a request timeout (and a margin) before its rows' lease ends: every
 * transfer has ended, and the batch is recorded, before another sender may
 * claim the rows again.  Untried messages go back without an attempt spent.
 *
 * libcurl callbacks only copy bytes into buffers, or refuse a socket:
 * nothing in them can raise an error.  Unless a superuser allows private
 * endpoints, every connection is checked where it is opened, after name
 * resolution, so a name that resolves to an internal address is refused
 * (endpoint.c says why).  What a provider said reaches the tenant only as a
 * bounded excerpt without control characters.  Between polls (at most 100 ms apart) interrupts and
 * postmaster death are checked, so a worker stops within a second even in
 * the middle of a batch; its claimed rows come back when their lease ends.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/socket.h>

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "broadcast_engine.h"
#include "be_sender.h"

/* a Postmark answer to a 500-message batch is about 80 kB */
#define RESP_BODY_MAX (1024 * 1024)
#define RESP_HEADERS_MAX (16 * 1024)

static CURLM *multi = NULL;
/* transfers, made as needed and kept with their easy handles (connection reuse) */
static BeTransfer **pool = NULL;
static int	pool_size = 0;
static int	pool_alloc = 0;
static int	total_active = 0;
/* the batches in flight */
static BeFlight *flights[256];
static int	nflights = 0;

/* whether the multi handle's cached connections were made while private targets were allowed */
static bool multi_private = false;

/*
 * Opens a transfer's socket, unless its address is not public and private
 * targets are not allowed: then nothing is connected, and the transfer
 * fails with "couldn't connect" and the reason left in x->blocked.
 */
static curl_socket_t
open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	BeTransfer *x = (BeTransfer *) clientp;

	if (!be_allow_private_endpoints)
	{
		const char *why = be_sockaddr_forbidden(&address->addr, address->addrlen);

		if (why != NULL)
		{
			x->blocked = why;
			be_sockaddr_text(&address->addr, x->blocked_addr, sizeof(x->blocked_addr));
			return CURL_SOCKET_BAD;
		}
	}
	return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

static size_t
capture_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	BeBuf	   *b = (BeBuf *) userdata;
	size_t		n = size * nmemb;

	if (b->len < RESP_BODY_MAX)
		be_buf_append(b, ptr, Min(n, RESP_BODY_MAX - b->len));
	return n;
}

static size_t
capture_header(char *ptr, size_t size, size_t nitems, void *userdata)
{
	BeBuf	   *b = (BeBuf *) userdata;
	size_t		n = size * nitems;

	if (b->len < RESP_HEADERS_MAX)
		be_buf_append(b, ptr, Min(n, RESP_HEADERS_MAX - b->len));
	return n;
}

/* feeds an SMTP upload from the composed message */
static size_t
read_body(char *buffer, size_t size, size_t nitems, void *userdata)
{
	BeTransfer *x = (BeTransfer *) userdata;
	size_t		left = x->msg->body_len - x->upload_off;
	size_t		n = Min(left, size * nitems);

	memcpy(buffer, x->msg->body + x->upload_off, n);
	x->upload_off += n;
	return n;
}

static void
ensure_multi(void)
{
	/*
	 * Connections opened while private targets were allowed must not be
	 * reused once they are not: start over with an empty connection cache
	 * when no transfer is attached (until then start_transfer connects
	 * afresh).
	 */
	if (multi != NULL && multi_private && !be_allow_private_endpoints && total_active == 0)
	{
		curl_multi_cleanup(multi);
		multi = NULL;
	}
	if (multi == NULL)
	{
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			elog(ERROR, "could not initialize libcurl");
		multi = curl_multi_init();
		if (multi == NULL)
			elog(ERROR, "could not create a libcurl multi handle");
	}
	multi_private = multi_private || be_allow_private_endpoints;
	if (total_active == 0)
		multi_private = be_allow_private_endpoints;

	/*
	 * The limits are ours (start_more): libcurl would queue a transfer over
	 * its own per-host or total limit behind others, whoever they are for.
	 * Every batch in flight may have its share of max_connections beyond
	 * it.  The cache holds as many: were it smaller than what is open, each
	 * finished transfer's connection would be closed (the oldest idle one
	 * goes), and a pair next to a tarpit would connect afresh per message.
	 */
	curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
	curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
					  (long) (2 * be_max_connections + lengthof(flights)));
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS,
					  (long) (2 * be_max_connections + lengthof(flights)));
}

/* an idle transfer, made if none is free */
static BeTransfer *
idle_transfer(void)
{
	BeTransfer *x;
	int			i;

	for (i = 0; i < pool_size; i++)
		if (pool[i]->flight == NULL)
			return pool[i];
	if (pool_size == pool_alloc)
	{
		int			n = Max(16, pool_alloc * 2);

		if (pool == NULL)
			pool = MemoryContextAlloc(TopMemoryContext, sizeof(BeTransfer *) * n);
		else
			pool = repalloc(pool, sizeof(BeTransfer *) * n);
		pool_alloc = n;
	}
	x = MemoryContextAllocZero(TopMemoryContext, sizeof(BeTransfer));
	x->msgs = MemoryContextAlloc(TopMemoryContext, sizeof(BeMessage *) * BE_BATCH_MAX);
	x->easy = curl_easy_init();
	if (x->easy == NULL)
		elog(ERROR, "could not create a libcurl handle");
	be_buf_init(&x->resp_headers);
	be_buf_init(&x->resp_body);
	pool[pool_size++] = x;
	return x;
}

static void
release_transfer(BeTransfer *x)
{
	if (x->flight == NULL)
		return;
	curl_multi_remove_handle(multi, x->easy);
	x->flight->active--;
	total_active--;
	x->flight = NULL;
	curl_slist_free_all(x->headers);
	curl_slist_free_all(x->rcpt);
	if (x->form)
		curl_mime_free(x->form);
	x->headers = NULL;
	x->rcpt = NULL;
	x->form = NULL;
	x->req_body = NULL;
	x->req_len = 0;
	x->msg = NULL;
	x->nmsgs = 0;
}

static void
start_transfer(BeFlight *f, BeTransfer *x, BeMessage **ms, int n)
{
	BeIntegration *ig = f->ig;
	CURL	   *h = x->easy;
	MemoryContext old;

	curl_easy_reset(h);
	memcpy(x->msgs, ms, sizeof(BeMessage *) * n);
	x->nmsgs = n;
	x->msg = ms[0];
	x->split = false;
	x->pause = false;
	x->upload_off = 0;
	x->errbuf[0] = '\0';
	x->blocked = NULL;
	x->blocked_addr[0] = '\0';
	be_buf_reset(&x->resp_headers);
	be_buf_reset(&x->resp_body);

	curl_easy_setopt(h, CURLOPT_PRIVATE, x);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long) be_connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long) be_request_timeout_ms);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, capture_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &x->resp_body);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, capture_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &x->resp_headers);
	curl_easy_setopt(h, CURLOPT_READFUNCTION, read_body);
	curl_easy_setopt(h, CURLOPT_READDATA, x);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, x);
	/*
	 * Private targets were allowed when some cached connections were made,
	 * and no longer are: until the cache is emptied (when nothing is in
	 * flight), connect afresh, so that open_socket() checks the address.
	 */
	if (multi_private && !be_allow_private_endpoints)
		curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "broadcast_engine/" BE_EXTVERSION);
	if (ig->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, ig->ca_file);
	/* request bodies live as long as the batch */
	old = MemoryContextSwitchTo(f->cxt);
	ig->ops->setup(ig, x);
	MemoryContextSwitchTo(old);
	x->flight = f;
	f->active++;
	total_active++;
	curl_multi_add_handle(multi, h);
}

/*
 * A transfer that failed because its connection was refused by
 * open_socket(): every message of it is dead-lettered with the reason (a
 * configuration problem, not the provider's failure, so the breaker is not
 * moved and nothing is retried).
 */
static void
refuse_blocked(BeIntegration *ig, BeTransfer *x)
{
	char	   *why = psprintf("%s integration \"%s\" was not connected: %s is %s, which needs broadcast_engine.allow_private_endpoints",
							   ig->provider, ig->integration_id, x->blocked_addr, x->blocked);
	int			i;

	x->split = false;
	x->pause = false;
	for (i = 0; i < x->nmsgs; i++)
	{
		BeMessage  *m = x->msgs[i];

		m->outcome = BE_OUT_DEAD;
		m->provider_failure = false;
		m->retry_after_s = 0;
		m->provider_message_id = NULL;
		m->error = why;
	}
}

/*
 * The next request's messages: one message that must go alone, or the
 * first untried message and the following ones with the same batch key,
 * up to the provider's batch size and byte bound.  Deferred messages (not composed, for
 * the byte budget) are not sent.  Returns how many were put in out[].
 */
static int
next_request(BeIntegration *ig, BeMessage **msgs, int n, bool *taken, int *first,
			 BeMessage **solo, int *nsolo, BeMessage **out)
{
	int			limit = Max(1, Min(ig->ops->batch_max, BE_BATCH_MAX));
	size_t		bytes_max = ig->ops->batch_bytes;
	size_t		bytes = 0;
	uint32		key_hash;
	int			k = 0;
	int			i;
	const char *key;

	if (*nsolo > 0)
	{
		out[0] = solo[--(*nsolo)];
		return 1;
	}
	while (*first < n && (taken[*first] || msgs[*first]->outcome != BE_OUT_NONE ||
						  msgs[*first]->deferred))
		(*first)++;
	if (*first >= n)
		return 0;
	key = msgs[*first]->batch_key;
	key_hash = msgs[*first]->batch_key_hash;
	for (i = *first; i < n && k < limit; i++)
	{
		BeMessage  *m = msgs[i];
		size_t		size = m->body_len + strlen(m->email) + 8;

		if (taken[i] || m->outcome != BE_OUT_NONE || m->deferred)
			continue;
		/* keys can be whole messages: the hash tells most unequal ones apart */
		if (k > 0 && !((key == NULL && m->batch_key == NULL) ||
					   (key && m->batch_key && key_hash == m->batch_key_hash &&
						strcmp(key, m->batch_key) == 0)))
			continue;
		/* the provider's byte bound on a request's bodies; one message always goes */
		if (k > 0 && bytes_max > 0 && bytes + size > bytes_max)
			break;
		taken[i] = true;
		out[k++] = m;
		bytes += size;
	}
	return k;
}

/* whether the batch may start another request */
static bool
may_start(BeFlight *f)
{
	return f->more && f->failures < be_breaker_threshold && !f->paused &&
		GetCurrentTimestamp() < f->start_by;
}

/*
 * Starts the batch's next requests: up to max_connections_per_integration
 * of its own, within the sender's max_connections, except that a batch may
 * always run its share of max_connections (one at least), so that no pair
 * waits for other pairs' slow transfers to end: a tarpit holds only its
 * own connections, never another batch's share.
 */
static void
start_more(BeFlight *f)
{
	BeMessage  *batch[BE_BATCH_MAX];
	int			share = Max(1, be_max_connections / Max(nflights, 1));

	while (may_start(f) && f->active < be_max_connections_per_integration &&
		   (total_active < be_max_connections || f->active < share))
	{
		int			k = next_request(f->ig, f->msgs, f->nmsgs, f->taken, &f->first,
									 f->solo, &f->nsolo, batch);

		if (k == 0)
		{
			f->more = false;
			break;
		}
		start_transfer(f, idle_transfer(), batch, k);
	}
}

/*
 * The provider reads its answer.  An error while it does (an answer it
 * cannot parse, say) is that transfer's: its messages are retried with the
 * error, and the other batches go on.  No transaction is open here.
 */
static void
read_result(BeIntegration *ig, BeTransfer *x, CURLcode rc, long code)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		ig->ops->result(ig, x, rc, code);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		char	   *why;
		int			i;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
			be_error_is_process_level(edata->sqlerrcode))
			ReThrowError(edata);
		why = psprintf("could not read the answer of %s: %s", ig->provider, edata->message);
		x->split = false;
		for (i = 0; i < x->nmsgs; i++)
		{
			x->msgs[i]->outcome = BE_OUT_RETRY;
			x->msgs[i]->provider_failure = true;
			x->msgs[i]->error = why;
		}
	}
	PG_END_TRY();
}

/* reads a finished transfer's outcome into its messages */
static void
finish_transfer(BeTransfer *x, CURLcode rc)
{
	BeFlight   *f = x->flight;
	BeIntegration *ig = f->ig;
	MemoryContext old = MemoryContextSwitchTo(f->cxt);
	long		code = 0;
	bool		any_failure = false;
	bool		any_sent = false;
	int			i;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
	read_result(ig, x, rc, code);
	if (x->blocked && rc != CURLE_OK)
		refuse_blocked(ig, x);
	for (i = 0; i < x->nmsgs; i++)
	{
		/* the provider's words reach the tenant bounded and printable */
		x->msgs[i]->error = be_sanitize_text(x->msgs[i]->error);
		x->msgs[i]->provider_message_id = be_sanitize_text(x->msgs[i]->provider_message_id);
	}
	if (x->split && x->nmsgs > 1)
	{
		/* refused whole: each message goes again on its own */
		for (i = 0; i < x->nmsgs; i++)
		{
			BeMessage  *m = x->msgs[i];

			m->outcome = BE_OUT_NONE;
			m->error = NULL;
			m->provider_failure = false;
			m->retry_after_s = 0;
			m->provider_message_id = NULL;
			f->solo[f->nsolo++] = m;
		}
		f->more = true;
	}
	for (i = 0; i < x->nmsgs; i++)
	{
		any_failure |= x->msgs[i]->provider_failure;
		any_sent |= (x->msgs[i]->outcome == BE_OUT_SENT);
	}
	if (any_failure)
		f->failures++;
	else if (any_sent)
		f->failures = 0;
	if (x->pause)
		f->paused = true;
	MemoryContextSwitchTo(old);
	release_transfer(x);
}

/*
 * Adds a batch: msgs[0..nmsgs) through ig.  Messages that already have an
 * outcome (composition failed) are skipped.  Its transfers start at once
 * and run from be_transport_pump, next to the other batches'.
 */
void
be_transport_start(BeFlight *f)
{
	MemoryContext old;

	if (nflights >= lengthof(flights))
		elog(ERROR, "too many batches in flight");
	ensure_multi();
	old = MemoryContextSwitchTo(f->cxt);
	f->taken = palloc0(sizeof(bool) * Max(f->nmsgs, 1));
	f->solo = palloc(sizeof(BeMessage *) * Max(f->nmsgs, 1));
	MemoryContextSwitchTo(old);
	f->nsolo = 0;
	f->first = 0;
	f->more = true;
	f->failures = 0;
	f->paused = false;
	f->active = 0;
	f->done = false;
	flights[nflights++] = f;
	start_more(f);
	if (f->active == 0)
	{
		/* nothing to send (every message failed to compose, or none left) */
		f->done = true;
		flights[--nflights] = NULL;
	}
}

/*
 * Moves every batch in flight on: runs the transfers, reads the finished
 * ones, starts the next requests.  Waits up to timeout_ms for network
 * activity.  A batch whose messages all have their outcome (or that may
 * start nothing more: the breaker opened, the provider paused the account,
 * its lease is running out) is marked done and leaves the list; its
 * untried messages stay BE_OUT_NONE.  Interrupts and postmaster death are
 * checked on every call.
 */
void
be_transport_pump(long timeout_ms)
{
	int			running;
	CURLMsg    *info;
	int			queued;
	int			i;

	if (nflights == 0)
		return;
	for (i = 0; i < nflights; i++)
		start_more(flights[i]);
	curl_multi_perform(multi, &running);
	while ((info = curl_multi_info_read(multi, &queued)) != NULL)
	{
		BeTransfer *x;

		if (info->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(info->easy_handle, CURLINFO_PRIVATE, (char **) &x);
		finish_transfer(x, info->data.result);
	}
	for (i = 0; i < nflights; i++)
		start_more(flights[i]);
	for (i = 0; i < nflights;)
	{
		BeFlight   *f = flights[i];

		if (f->active == 0 && !may_start(f))
		{
			f->done = true;
			flights[i] = flights[--nflights];
			flights[nflights] = NULL;
			continue;
		}
		i++;
	}
	if (timeout_ms > 0 && total_active > 0)
		curl_multi_poll(multi, NULL, 0, Min(timeout_ms, 100), NULL);
	CHECK_FOR_INTERRUPTS();
	if (IsBackgroundWorker && !PostmasterIsAlive())
		proc_exit(1);
}

/* the batches in flight */
int
be_transport_active(void)
{
	return nflights;
}

/*
 * Drops every batch in flight (an error is ending the sender's loop): their
 * claimed rows come back when their lease ends.
 */
void
be_transport_abort(void)
{
	int			i;

	for (i = 0; i < pool_size; i++)
		release_transfer(pool[i]);
	for (i = 0; i < nflights; i++)
		flights[i] = NULL;
	nflights = 0;
	total_active = 0;
}

/* a response header's value (case-insensitive name), palloc'd, or NULL */
char *
be_header_value(const BeBuf *headers, const char *name)
{
	const char *p = headers->data;
	size_t		nlen = strlen(name);

	if (p == NULL)
		return NULL;
	while (*p)
	{
		const char *eol = strchr(p, '\n');
		size_t		llen = eol ? (size_t) (eol - p) : strlen(p);

		if (llen > nlen && pg_strncasecmp(p, name, nlen) == 0 && p[nlen] == ':')
		{
			const char *v = p + nlen + 1;
			const char *e = p + llen;

			while (v < e && (*v == ' ' || *v == '\t'))
				v++;
			while (e > v && (e[-1] == '\r' || e[-1] == ' '))
				e--;
			return pnstrdup(v, e - v);
		}
		if (!eol)
			break;
		p = eol + 1;
	}
	return NULL;
}

int
be_retry_after_seconds(const BeBuf *headers)
{
	char	   *v = be_header_value(headers, "Retry-After");
	int			s = 0;

	if (v == NULL)
		return 0;
	if (v[0] >= '0' && v[0] <= '9')
		s = atoi(v);
	else
	{
		time_t		when = curl_getdate(v, NULL);

		if (when > 0)
			s = (int) (when - time(NULL));
	}
	return Max(0, Min(s, 3600));
}

/* the start of a response body, fit for a tenant to read */
static char *
body_excerpt(BeTransfer *x)
{
	return x->resp_body.data ? be_excerpt(x->resp_body.data, x->resp_body.len, BE_EXCERPT_MAX) : "";
}

/*
 * The common reading of an HTTP API's answer: 2xx sent; 429 and 5xx,
 * timeouts and connection failures retried; 401/403 and other 4xx
 * permanent.  The provider then reads its own ids.
 */
void
be_classify_http(BeIntegration *ig, BeTransfer *x, CURLcode rc, long code)
{
	BeMessage  *m = x->msg;

	if (rc != CURLE_OK)
	{
		m->outcome = BE_OUT_RETRY;
		m->provider_failure = true;
		m->error = psprintf("%s: %s", curl_easy_strerror(rc), x->errbuf);
	}
	else if (code >= 200 && code < 300)
		m->outcome = BE_OUT_SENT;
	else if (code == 429)
	{
		m->outcome = BE_OUT_RETRY;
		m->retry_after_s = be_retry_after_seconds(&x->resp_headers);
		m->error = psprintf("throttled by %s (HTTP 429)", ig->provider);
	}
	else if (code >= 500)
	{
		m->outcome = BE_OUT_RETRY;
		m->provider_failure = true;
		m->retry_after_s = be_retry_after_seconds(&x->resp_headers);
		m->error = psprintf("%s server error (HTTP %ld): %s", ig->provider, code,
							body_excerpt(x));
	}
	else if (code == 401 || code == 403)
	{
		m->outcome = BE_OUT_DEAD;
		m->error = psprintf("%s integration \"%s\" was refused: the API key is not accepted (HTTP %ld)",
							ig->provider, ig->integration_id, code);
	}
	else
	{
		m->outcome = BE_OUT_DEAD;
		m->error = psprintf("%s rejected the message (HTTP %ld): %s", ig->provider, code,
							body_excerpt(x));
	}
}
