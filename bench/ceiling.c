/*-------------------------------------------------------------------------
 *
 * ceiling.c
 *	  The ceiling client for the sending benchmark: the least work that
 *	  still sends every queued row once and records it.
 *
 *	  ceiling CONNINFO URL WORKSPACE INTEGRATION [BATCH [INFLIGHT [BODY [SCHEMA]]]]
 *
 * With URL "-" nothing is posted (every row counts as accepted): the
 * database path alone, claim + history + delete.
 *
 * One process, one connection, no templates and no rate limits; the
 * benchmark starts as many processes as the engine has senders, and
 * FOR UPDATE SKIP LOCKED gives each its own rows.  Each round, in ONE
 * transaction: claim BATCH due rows with FOR UPDATE SKIP LOCKED, POST a
 * SendGrid-shaped JSON body of about BODY bytes (default 10,000: the size
 * of the engine's request for the 5 KB newsletter) for each to URL
 * (INFLIGHT transfers at once on one libcurl multi handle, keep-alive),
 * then insert their history rows and delete them from the queue, and
 * commit.  It holds row locks across network I/O, which the engine refuses
 * to do (DESIGN.md section 2), so it is a bound on what libpq + libcurl
 * can do on this machine, not a design to copy.
 *
 * SCHEMA "engine" (the default) works on broadcast.email_queue and
 * broadcast.message_history (the pair WORKSPACE/INTEGRATION); "minimal" on
 * the benchmark's own ceil.queue (an identity key and one partial index on
 * due time) and ceil.history (a primary key only), which bench/send.py
 * creates and fills.
 *
 * Prints "ceiling: N messages in S s = R messages/s (P requests, ...)".
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <libpq-fe.h>

#define MAX_BATCH 10000
#define MAX_BODY (1024 * 1024)

/* the statements of each schema: same parameters, same result columns */
static const char *const claim_sql[2] = {
	"SELECT ctid::text, broadcast_id, email, message_id::text, list_id"
	"  FROM broadcast.email_queue"
	" WHERE workspace_id = $1 AND integration_id = $2 AND status = 'pending'"
	"   AND next_attempt_at <= now()"
	" ORDER BY next_attempt_at LIMIT $3::int FOR UPDATE SKIP LOCKED",
	"SELECT id::text, broadcast_id, email, message_id::text, list_id"
	"  FROM ceil.queue"
	" WHERE workspace_id = $1 AND $2::text IS NOT NULL AND status = 'p' AND due_at <= now()"
	" ORDER BY due_at LIMIT $3::int FOR UPDATE SKIP LOCKED"
};

static const char *const record_sql[2] = {
	"WITH r AS (SELECT * FROM unnest($3::tid[], $4::text[], $5::text[], $6::uuid[], $7::text[])"
	"             AS r(tid, broadcast_id, email, message_id, provider_id)),"
	" h AS (INSERT INTO broadcast.message_history (workspace_id, message_id, broadcast_id,"
	"              email, integration_id, provider, provider_message_id, status, sent_at)"
	"       SELECT $1, r.message_id, r.broadcast_id, r.email, $2, 'sendgrid',"
	"              r.provider_id, 'sent', now() FROM r RETURNING 1)"
	" DELETE FROM broadcast.email_queue q USING r"
	"  WHERE q.ctid = r.tid AND (SELECT count(*) FROM h) >= 0",
	"WITH r AS (SELECT * FROM unnest($3::int8[], $4::text[], $5::text[], $6::uuid[], $7::text[])"
	"             AS r(id, broadcast_id, email, message_id, provider_id)),"
	" h AS (INSERT INTO ceil.history (workspace_id, message_id, broadcast_id, email,"
	"              integration_id, provider_message_id, status, sent_at)"
	"       SELECT $1, r.message_id, r.broadcast_id, r.email, $2, r.provider_id, 's', now()"
	"         FROM r RETURNING 1)"
	" DELETE FROM ceil.queue q USING r"
	"  WHERE q.id = r.id AND (SELECT count(*) FROM h) >= 0"
};

typedef struct Row
{
	char	   *broadcast_id;
	char	   *email;
	char	   *message_id;
	char	   *list_id;
	char	   *tid;
	char		provider_id[128];
	char	   *body;
	size_t		body_len;
	long		status;
} Row;

static Row	rows[MAX_BATCH];

static size_t
on_header(char *buf, size_t size, size_t n, void *arg)
{
	Row		   *r = (Row *) arg;
	size_t		len = size * n;

	if (len > 14 && strncasecmp(buf, "X-Message-Id: ", 14) == 0)
	{
		size_t		v = len - 14;

		while (v > 0 && (buf[14 + v - 1] == '\r' || buf[14 + v - 1] == '\n'))
			v--;
		if (v >= sizeof(r->provider_id))
			v = sizeof(r->provider_id) - 1;
		memcpy(r->provider_id, buf + 14, v);
		r->provider_id[v] = '\0';
	}
	return len;
}

static size_t
on_body(char *buf, size_t size, size_t n, void *arg)
{
	(void) buf;
	(void) arg;
	return size * n;
}

static void
die(PGconn *conn, PGresult *res, const char *what)
{
	fprintf(stderr, "ceiling: %s: %s", what, res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
	exit(1);
}

/* appends one array element, double-quoted, to a '{...}' literal */
static char *
array_add(char *p, const char *s, int first)
{
	if (!first)
		*p++ = ',';
	*p++ = '"';
	for (; *s; s++)
	{
		if (*s == '"' || *s == '\\')
			*p++ = '\\';
		*p++ = *s;
	}
	*p++ = '"';
	return p;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	const char *conninfo;
	const char *url;
	const char *params[6];
	int			batch = 1000;
	int			inflight = 64;
	PGconn	   *conn;
	CURLM	   *multi;
	CURL	  **easy;
	struct curl_slist *headers = NULL;
	long		total = 0;
	long		requests = 0;
	double		t0;
	double		took;
	size_t		cap;
	char	   *arr[5];
	long		body_bytes = 10000;
	int			schema = 0;
	char	   *filler;
	size_t		filler_len;

	if (argc < 5)
	{
		fprintf(stderr, "usage: ceiling CONNINFO URL WORKSPACE INTEGRATION [BATCH [INFLIGHT [BODY [engine|minimal]]]]\n");
		return 2;
	}
	conninfo = argv[1];
	url = argv[2];
	if (argc > 5)
		batch = atoi(argv[5]);
	if (argc > 6)
		inflight = atoi(argv[6]);
	if (argc > 7)
		body_bytes = atol(argv[7]);
	if (argc > 8)
	{
		if (strcmp(argv[8], "minimal") == 0)
			schema = 1;
		else if (strcmp(argv[8], "engine") != 0)
		{
			fprintf(stderr, "ceiling: schema must be engine or minimal\n");
			return 2;
		}
	}
	if (batch < 1 || batch > MAX_BATCH || inflight < 1 || body_bytes < 0 || body_bytes > MAX_BODY)
	{
		fprintf(stderr, "ceiling: bad batch, inflight or body size\n");
		return 2;
	}

	/*
	 * The message's HTML part: a fixed text of the body's size, copied into
	 * each request (the engine renders it; the ceiling does not).
	 */
	filler_len = body_bytes > 300 ? (size_t) body_bytes - 300 : 1;
	filler = malloc(filler_len + 1);
	for (size_t i = 0; i < filler_len; i++)
	{
		static const char para[] = "<p>Your week in review: the latest news, picked for you.</p> ";

		filler[i] = para[i % (sizeof(para) - 1)];
	}
	filler[filler_len] = '\0';
	for (int i = 0; i < MAX_BATCH; i++)
		rows[i].body = NULL;
	conn = PQconnectdb(conninfo);
	if (PQstatus(conn) != CONNECTION_OK)
		die(conn, NULL, "connect");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	multi = curl_multi_init();
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long) inflight);
	headers = curl_slist_append(headers, "Authorization: Bearer SG.ceiling");
	headers = curl_slist_append(headers, "Content-Type: application/json");
	headers = curl_slist_append(headers, "Expect:");
	easy = calloc(inflight, sizeof(CURL *));
	for (int i = 0; i < inflight; i++)
		easy[i] = curl_easy_init();
	cap = (size_t) batch * 300 + 16;
	for (int k = 0; k < 5; k++)
		arr[k] = malloc(cap);

	t0 = now_s();
	for (;;)
	{
		PGresult   *res;
		int			n;
		int			next = 0;
		int			running = 0;
		int			free_top = inflight;
		CURL	  **free_easy = malloc(sizeof(CURL *) * inflight);
		char	   *p[5];

		memcpy(free_easy, easy, sizeof(CURL *) * inflight);
		res = PQexec(conn, "BEGIN");
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			die(conn, res, "begin");
		PQclear(res);
		params[0] = argv[3];
		params[1] = argv[4];
		{
			char		lim[16];

			snprintf(lim, sizeof(lim), "%d", batch);
			params[2] = lim;
			res = PQexecParams(conn, claim_sql[schema], 3, NULL, params, NULL, NULL, 0);
		}
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			die(conn, res, "claim");
		n = PQntuples(res);
		if (n == 0)
		{
			PQclear(res);
			res = PQexec(conn, "COMMIT");
			PQclear(res);
			free(free_easy);
			break;
		}
		for (int i = 0; i < n; i++)
		{
			Row		   *r = &rows[i];

			r->tid = PQgetvalue(res, i, 0);
			r->broadcast_id = PQgetvalue(res, i, 1);
			r->email = PQgetvalue(res, i, 2);
			r->message_id = PQgetvalue(res, i, 3);
			r->list_id = PQgetvalue(res, i, 4);
			r->provider_id[0] = '\0';
			r->status = 0;
			if (r->body == NULL)
				r->body = malloc(filler_len + 1024);
			r->body_len = (size_t) snprintf(r->body, filler_len + 1024,
											"{\"personalizations\":[{\"to\":[{\"email\":\"%s\"}],"
											"\"custom_args\":{\"message_id\":\"%s\"}}],"
											"\"from\":{\"email\":\"news@bench.test\"},\"subject\":\"Hello\","
											"\"content\":[{\"type\":\"text/html\",\"value\":\"%s\"}]}",
											r->email, r->message_id, filler);
		}

		/* post every row, INFLIGHT at a time, refilling as transfers finish */
		if (strcmp(url, "-") == 0)
		{
			for (int i = 0; i < n; i++)
			{
				rows[i].status = 202;
				snprintf(rows[i].provider_id, sizeof(rows[i].provider_id), "db-%d", i);
			}
			next = n;
		}
		while (next < n || running > 0)
		{
			CURLMsg    *m;
			int			left;

			while (next < n && free_top > 0)
			{
				CURL	   *h = free_easy[--free_top];
				Row		   *r = &rows[next++];

				curl_easy_setopt(h, CURLOPT_URL, url);
				curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
				curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body);
				curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) r->body_len);
				curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
				curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
				curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
				curl_easy_setopt(h, CURLOPT_PRIVATE, r);
				curl_multi_add_handle(multi, h);
				running++;
			}
			curl_multi_perform(multi, &left);
			while ((m = curl_multi_info_read(multi, &left)) != NULL)
			{
				Row		   *r;

				if (m->msg != CURLMSG_DONE)
					continue;
				curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **) &r);
				curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &r->status);
				curl_multi_remove_handle(multi, m->easy_handle);
				free_easy[free_top++] = m->easy_handle;
				running--;
				requests++;
			}
			if (running > 0)
				curl_multi_poll(multi, NULL, 0, 100, NULL);
		}
		free(free_easy);

		/* history and delete, in the claim's transaction */
		for (int k = 0; k < 5; k++)
		{
			p[k] = arr[k];
			*p[k]++ = '{';
		}
		for (int i = 0; i < n; i++)
		{
			p[0] = array_add(p[0], rows[i].tid, i == 0);
			p[1] = array_add(p[1], rows[i].broadcast_id, i == 0);
			p[2] = array_add(p[2], rows[i].email, i == 0);
			p[3] = array_add(p[3], rows[i].message_id, i == 0);
			p[4] = array_add(p[4], rows[i].status / 100 == 2 ? rows[i].provider_id : "", i == 0);
		}
		for (int k = 0; k < 5; k++)
		{
			*p[k]++ = '}';
			*p[k] = '\0';
		}
		params[0] = argv[3];
		params[1] = argv[4];
		params[2] = arr[0];
		params[3] = arr[1];
		params[4] = arr[2];
		params[5] = arr[3];
		PQclear(res);
		{
			const char *hp[7];

			memcpy(hp, params, sizeof(params));
			hp[6] = arr[4];
			res = PQexecParams(conn, record_sql[schema], 7, NULL, hp, NULL, NULL, 0);
		}
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			die(conn, res, "record");
		PQclear(res);
		res = PQexec(conn, "COMMIT");
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			die(conn, res, "commit");
		PQclear(res);
		total += n;
	}
	took = now_s() - t0;
	printf("ceiling: %ld messages in %.2f s = %.0f messages/s (%ld requests, batch %d, %d in flight, %s schema, bodies of %ld bytes)\n",
		   total, took, took > 0 ? total / took : 0.0, requests, batch, inflight,
		   schema ? "minimal" : "engine", body_bytes);
	for (int i = 0; i < inflight; i++)
		curl_easy_cleanup(easy[i]);
	curl_multi_cleanup(multi);
	curl_slist_free_all(headers);
	PQfinish(conn);
	return 0;
}
