/*-------------------------------------------------------------------------
 *
 * transport.c
 *	  Sending a batch of messages over one libcurl multi handle.
 *
 * Up to broadcast_engine.max_connections transfers run at once and the
 * next message starts as soon as one finishes, so one slow request never
 * holds back the batch.  The multi handle lives as long as the process, so
 * connections (HTTP keep-alive, SMTP sessions) are reused from one batch
 * to the next.  No transaction is open while this runs.
 *
 * libcurl callbacks only copy bytes into buffers: nothing in them can
 * raise an error.  Between polls (at most 100 ms apart) interrupts and
 * postmaster death are checked, so a worker stops within a second even in
 * the middle of a batch; its claimed rows come back when their lease ends.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "utils/memutils.h"

#include "broadcast_engine.h"
#include "be_sender.h"

#define RESP_BODY_MAX (64 * 1024)
#define RESP_HEADERS_MAX (16 * 1024)

static CURLM *multi = NULL;
static BeTransfer *pool = NULL;
static int	pool_size = 0;

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
	int			i;

	if (multi == NULL)
	{
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			elog(ERROR, "could not initialize libcurl");
		multi = curl_multi_init();
		if (multi == NULL)
			elog(ERROR, "could not create a libcurl multi handle");
	}
	curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long) be_max_connections);
	curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long) be_max_connections);
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long) be_max_connections);

	if (pool_size < be_max_connections)
	{
		BeTransfer *np = MemoryContextAllocZero(TopMemoryContext,
												sizeof(BeTransfer) * be_max_connections);

		if (pool != NULL)
		{
			memcpy(np, pool, sizeof(BeTransfer) * pool_size);
			pfree(pool);
		}
		pool = np;
		for (i = pool_size; i < be_max_connections; i++)
		{
			pool[i].easy = curl_easy_init();
			if (pool[i].easy == NULL)
				elog(ERROR, "could not create a libcurl handle");
			be_buf_init(&pool[i].resp_headers);
			be_buf_init(&pool[i].resp_body);
		}
		pool_size = be_max_connections;
	}
}

static void
release_transfer(BeTransfer *x)
{
	if (x->msg == NULL)
		return;
	curl_multi_remove_handle(multi, x->easy);
	curl_slist_free_all(x->headers);
	curl_slist_free_all(x->rcpt);
	x->headers = NULL;
	x->rcpt = NULL;
	x->msg = NULL;
}

static void
start_transfer(BeIntegration *ig, BeTransfer *x, BeMessage *m)
{
	CURL	   *h = x->easy;

	curl_easy_reset(h);
	x->msg = m;
	x->upload_off = 0;
	x->errbuf[0] = '\0';
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
	curl_easy_setopt(h, CURLOPT_USERAGENT, "broadcast_engine/" BE_EXTVERSION);
	if (ig->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, ig->ca_file);
	ig->ops->setup(ig, x);
	curl_multi_add_handle(multi, h);
}

/*
 * Sends msgs[0..n) through the integration; every message comes back with
 * an outcome.  Messages that already have one (composition failed) are
 * skipped.
 */
void
be_transport_send(BeIntegration *ig, BeMessage **msgs, int n)
{
	volatile int next = 0;
	volatile int active = 0;
	volatile int failures = 0;

	ensure_multi();

	PG_TRY();
	{
		while ((next < n && failures < be_breaker_threshold) || active > 0)
		{
			int			running;
			CURLMsg    *info;
			int			queued;
			int			i;

			/*
			 * Keep every connection busy, unless the provider keeps failing:
			 * then start nothing more (the breaker opens and the untried
			 * rows go back to the queue without spending an attempt).
			 */
			for (i = 0; i < be_max_connections && next < n && failures < be_breaker_threshold; i++)
			{
				if (pool[i].msg != NULL)
					continue;
				while (next < n && msgs[next]->outcome != BE_OUT_NONE)
					next++;
				if (next >= n)
					break;
				start_transfer(ig, &pool[i], msgs[next++]);
				active++;
			}

			curl_multi_perform(multi, &running);
			while ((info = curl_multi_info_read(multi, &queued)) != NULL)
			{
				BeTransfer *x;
				long		code = 0;

				if (info->msg != CURLMSG_DONE)
					continue;
				curl_easy_getinfo(info->easy_handle, CURLINFO_PRIVATE, (char **) &x);
				curl_easy_getinfo(info->easy_handle, CURLINFO_RESPONSE_CODE, &code);
				ig->ops->result(ig, x, info->data.result, code);
				if (x->msg->provider_failure)
					failures++;
				else if (x->msg->outcome == BE_OUT_SENT)
					failures = 0;
				release_transfer(x);
				active--;
			}

			if (active > 0)
				curl_multi_poll(multi, NULL, 0, 100, NULL);
			CHECK_FOR_INTERRUPTS();
			if (IsBackgroundWorker && !PostmasterIsAlive())
				proc_exit(1);
		}
	}
	PG_CATCH();
	{
		int			i;

		for (i = 0; i < pool_size; i++)
			release_transfer(&pool[i]);
		PG_RE_THROW();
	}
	PG_END_TRY();
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

static int
retry_after_seconds(const BeBuf *headers)
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
		m->retry_after_s = retry_after_seconds(&x->resp_headers);
		m->error = psprintf("throttled by %s (HTTP 429)", ig->provider);
	}
	else if (code >= 500)
	{
		m->outcome = BE_OUT_RETRY;
		m->provider_failure = true;
		m->retry_after_s = retry_after_seconds(&x->resp_headers);
		m->error = psprintf("%s server error (HTTP %ld): %.200s", ig->provider, code,
							x->resp_body.data ? x->resp_body.data : "");
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
		m->error = psprintf("%s rejected the message (HTTP %ld): %.200s", ig->provider, code,
							x->resp_body.data ? x->resp_body.data : "");
	}
}
