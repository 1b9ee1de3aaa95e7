/*
 * bench_render.c
 *	  Throughput of the template engine on realistic newsletters.
 *
 *	  bench_render N template.liquid[=name] ...
 *
 * For each template: compile once, then render it N times on one thread,
 * cycling over a pool of distinct per-contact data objects prepared before
 * the clock starts (min(N, 4096) contacts sharing one broadcast object, as
 * the sender does; BENCH_POOL=n changes the pool size: a small pool keeps
 * the data in cache, like a sender that renders right after building it).
 *
 * Three figures per template, all in the same run:
 * - plain: tmpl_render of the compiled template;
 * - specialised: tmpl_render of tmpl_specialize(template, {broadcast,
 *   list, workspace}), which is what the sender uses (specialisation is
 *   done once per send, before the clock starts; its own time is printed
 *   separately).  Before timing, every contact of the pool is rendered
 *   both ways and the outputs must be byte-identical;
 * - baseline: appending a precomputed output of the same size to the same
 *   buffer N times, the floor any renderer has to pay.
 * Times are thread CPU time, so the rates are per core.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json.h>

#include "tmpl.h"

#define POOL_MAX 4096

static const char *first_names[] = {
	"Ann", "Bob", "Chloé", "Dmitri", "Eve", "François", "Grace", "Hiro", "", NULL
};
static const char *last_names[] = {
	"Smith", "O'Neil", "Brown & Sons", "García", "<script>", "Ng"
};
static const char *cities[] = {"Paris", "Berlin", "Lisbon", NULL, "Oslo", "Paris"};
static const char *plans[] = {"free", "pro", "trial", "pro", "free"};
static const char *topics[] = {"postgres", "email", "design", "ops", "rust", "c"};

/*
 * Thread CPU time: the figure is per core, and the build machine is shared,
 * so wall-clock time would also count the time other jobs held the core.
 */
static double
now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static struct json_object *
make_items(const char *kind, int n, int seed)
{
	struct json_object *arr = json_object_new_array();
	int			i;

	for (i = 0; i < n; i++)
	{
		struct json_object *a = json_object_new_object();
		struct json_object *tags = json_object_new_array();
		char		buf[512];
		int			k;

		snprintf(buf, sizeof(buf), "%s #%d: what's new in \"release %d\" & why it matters", kind, i + 1, seed + i);
		json_object_object_add(a, "title", json_object_new_string(buf));
		snprintf(buf, sizeof(buf), "https://example.com/%s/%d", kind, i + 1);
		json_object_object_add(a, "url", json_object_new_string(buf));
		if (i % 2 == 0)
		{
			snprintf(buf, sizeof(buf), "https://cdn.example.com/img/%s-%d.png", kind, i);
			json_object_object_add(a, "image", json_object_new_string(buf));
		}
		snprintf(buf, sizeof(buf),
				 "  In this piece we look at how the team shipped feature %d, the trade-offs <em>we</em> made "
				 "along the way, what broke in production & what we learned from it. A longer summary "
				 "that will be truncated by the template so that the email stays readable on phones.  ",
				 i);
		json_object_object_add(a, "summary", json_object_new_string(buf));
		json_object_object_add(a, "category", json_object_new_string(i % 3 ? "engineering" : "product"));
		json_object_object_add(a, "published_at", json_object_new_string("2026-02-27T08:30:00Z"));
		if (i % 2)
			json_object_object_add(a, "author", json_object_new_string("Jane O'Hara"));
		for (k = 0; k < 3; k++)
			json_object_array_add(tags, json_object_new_string(topics[(i + k) % 6]));
		json_object_object_add(a, "tags", tags);
		json_object_array_add(arr, a);
	}
	return arr;
}

static struct json_object *
make_broadcast(void)
{
	struct json_object *b = json_object_new_object();
	struct json_object *events = json_object_new_array();
	struct json_object *jobs = json_object_new_array();
	int			i;

	json_object_object_add(b, "subject", json_object_new_string("This week: Postgres 15 tips & <tricks>"));
	json_object_object_add(b, "preheader", json_object_new_string("Five stories, two events and a job board"));
	json_object_object_add(b, "intro", json_object_new_string("Here is what happened this week in our corner of the internet."));
	json_object_object_add(b, "slug", json_object_new_string("weekly-2026-09"));
	json_object_object_add(b, "sent_at", json_object_new_string("2026-03-01T10:00:00Z"));
	json_object_object_add(b, "articles", make_items("article", 6, 1));
	json_object_object_add(b, "community", make_items("community", 6, 20));
	json_object_object_add(b, "updates", make_items("update", 6, 40));
	for (i = 0; i < 6; i++)
	{
		struct json_object *e = json_object_new_object();
		char		buf[64];

		snprintf(buf, sizeof(buf), "Meetup #%d", i);
		json_object_object_add(e, "name", json_object_new_string(buf));
		json_object_object_add(e, "url", json_object_new_string("https://example.com/events/1"));
		json_object_object_add(e, "city", json_object_new_string(cities[i % 6] ? cities[i % 6] : "Rome"));
		json_object_object_add(e, "venue", json_object_new_string("Café Central"));
		json_object_object_add(e, "online", json_object_new_boolean(i == 5));
		json_object_object_add(e, "starts_at", json_object_new_string("2026-03-12 18:30:00+01"));
		json_object_array_add(events, e);

		e = json_object_new_object();
		json_object_object_add(e, "title", json_object_new_string("Senior C engineer"));
		json_object_object_add(e, "company", json_object_new_string("Acme & Co"));
		json_object_object_add(e, "url", json_object_new_string("https://example.com/jobs/1"));
		json_object_object_add(e, "area", json_object_new_string(topics[i % 6]));
		if (i % 2)
			json_object_object_add(e, "salary", json_object_new_string("€80k–€100k"));
		json_object_array_add(jobs, e);
	}
	json_object_object_add(b, "events", events);
	json_object_object_add(b, "jobs", jobs);
	return b;
}

static struct json_object *
make_contact_data(int i, struct json_object *broadcast, struct json_object *list,
				  struct json_object *workspace)
{
	struct json_object *d = json_object_new_object();
	struct json_object *c = json_object_new_object();
	struct json_object *interests = json_object_new_array();
	struct json_object *recs = json_object_new_array();
	char		buf[256];
	const char *fn = first_names[i % 10];
	int			k;

	if (fn)
		json_object_object_add(c, "first_name", json_object_new_string(fn));
	json_object_object_add(c, "last_name", json_object_new_string(last_names[i % 6]));
	snprintf(buf, sizeof(buf), "user.%d+news@example.com", i);
	json_object_object_add(c, "email", json_object_new_string(buf));
	if (cities[i % 6])
		json_object_object_add(c, "city", json_object_new_string(cities[i % 6]));
	json_object_object_add(c, "plan", json_object_new_string(plans[i % 5]));
	json_object_object_add(c, "created_at", json_object_new_int64(1600000000 + (int64_t) i * 86400));
	if (i % 3 == 0)
		json_object_object_add(c, "manager", json_object_new_string("Kim Lee"));
	for (k = 0; k < 1 + i % 3; k++)
		json_object_array_add(interests, json_object_new_string(topics[(i + 2 * k) % 6]));
	json_object_object_add(c, "interests", interests);
	for (k = 0; k < i % 4; k++)
	{
		struct json_object *r = json_object_new_object();

		snprintf(buf, sizeof(buf), "Recommended read %d for you", k);
		json_object_object_add(r, "title", json_object_new_string(buf));
		json_object_object_add(r, "url", json_object_new_string("https://example.com/r"));
		json_object_object_add(r, "score", json_object_new_int(50 + 17 * k));
		json_object_array_add(recs, r);
	}
	json_object_object_add(c, "recommendations", recs);
	snprintf(buf, sizeof(buf), "ref%05d", i);
	json_object_object_add(c, "referral_code", json_object_new_string(buf));
	json_object_object_add(c, "tracking_opt_out", json_object_new_boolean(i % 7 == 0));

	json_object_object_add(d, "contact", c);
	json_object_object_add(d, "broadcast", json_object_get(broadcast));
	json_object_object_add(d, "list", json_object_get(list));
	json_object_object_add(d, "workspace", json_object_get(workspace));
	snprintf(buf, sizeof(buf), "https://example.com/u/%08x", (unsigned) i * 2654435761u);
	json_object_object_add(d, "unsubscribe_url", json_object_new_string(buf));
	snprintf(buf, sizeof(buf), "<%d.weekly@mail.example.com>", i);
	json_object_object_add(d, "message_id", json_object_new_string(buf));
	return d;
}

static char *
read_file(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	char	   *buf;
	long		n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t) n + 1);
	if (fread(buf, 1, (size_t) n, f) != (size_t) n)
	{
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	*len = (size_t) n;
	return buf;
}

int
main(int argc, char **argv)
{
	long		n = argc > 1 ? atol(argv[1]) : 1000000;
	int			pool_max = getenv("BENCH_POOL") ? atoi(getenv("BENCH_POOL")) : POOL_MAX;
	int			pool;
	struct json_object *broadcast = make_broadcast();
	struct json_object *list = json_object_new_object();
	struct json_object *workspace = json_object_new_object();
	struct json_object **datas;
	int			a;
	int			i;
	int			status = 0;

	if (pool_max < 1)
		pool_max = 1;
	pool = n < pool_max ? (int) n : pool_max;
	if (n <= 0 || argc < 3)
	{
		fprintf(stderr, "usage: %s N template.liquid[=name] ...\n", argv[0]);
		return 2;
	}
	json_object_object_add(list, "name", json_object_new_string("The Weekly"));
	json_object_object_add(workspace, "name", json_object_new_string("Acme & Friends"));
	json_object_object_add(workspace, "url", json_object_new_string("https://acme.example.com"));
	json_object_object_add(workspace, "address", json_object_new_string("1 Rue de la Paix, 75002 Paris"));
	datas = malloc(sizeof(*datas) * (size_t) pool);
	for (i = 0; i < pool; i++)
		datas[i] = make_contact_data(i, broadcast, list, workspace);

	for (a = 2; a < argc; a++)
	{
		char	   *path = strdup(argv[a]);
		char	   *name = strchr(path, '=');
		size_t		len;
		char	   *src;
		TmplError	err;
		Template   *t;
		Template   *st;
		struct json_object *constant;
		TmplRenderCtx *ctx = tmpl_ctx_create();
		TmplLimits	lim;
		BeBuf		out;
		BeBuf		base;
		char	   *ref;
		size_t		reflen;
		size_t		total = 0;
		double		t0,
					t1,
					rate,
					srate,
					brate,
					spec_us;
		BeBuf		out2;
		long		k;

		if (name)
			*name++ = '\0';
		else
			name = path;
		src = read_file(path, &len);
		if (src == NULL)
		{
			fprintf(stderr, "cannot read %s\n", path);
			return 1;
		}
		t = tmpl_compile(src, len, &err);
		if (t == NULL)
		{
			fprintf(stderr, "%s:%d:%d: %s\n", path, err.line, err.column, err.message);
			return 1;
		}
		tmpl_default_limits(&lim);
		be_buf_init(&out);
		be_buf_init(&out2);
		be_buf_init(&base);

		/* per send: the data every recipient shares */
		constant = json_object_new_object();
		json_object_object_add(constant, "broadcast", json_object_get(broadcast));
		json_object_object_add(constant, "list", json_object_get(list));
		json_object_object_add(constant, "workspace", json_object_get(workspace));
		t0 = now_sec();
		st = tmpl_specialize(t, constant, &err);
		t1 = now_sec();
		spec_us = (t1 - t0) * 1e6;
		if (st == NULL)
		{
			fprintf(stderr, "%s: specialise failed: %s\n", path, err.message);
			return 1;
		}

		/* the specialised template must give the same bytes */
		for (i = 0; i < pool; i++)
		{
			be_buf_reset(&out);
			be_buf_reset(&out2);
			if (tmpl_render(t, ctx, datas[i], &lim, &out, &err) != 0 ||
				tmpl_render(st, ctx, datas[i], &lim, &out2, &err) != 0 ||
				out.len != out2.len || memcmp(out.data, out2.data, out.len) != 0)
			{
				fprintf(stderr, "%s: specialised output differs for contact %d\n", path, i);
				return 1;
			}
		}

		/* warm up and keep one output as the baseline payload */
		for (i = 0; i < pool; i++)
		{
			be_buf_reset(&out);
			if (tmpl_render(t, ctx, datas[i], &lim, &out, &err) != 0)
			{
				fprintf(stderr, "%s: render failed: %s\n", path, err.message);
				return 1;
			}
			total += out.len;
		}
		reflen = total / (size_t) pool;
		ref = malloc(reflen + 1);
		memset(ref, 'x', reflen);

		t0 = now_sec();
		total = 0;
		for (k = 0; k < n; k++)
		{
			be_buf_reset(&out);
			if (tmpl_render(t, ctx, datas[k % pool], &lim, &out, &err) != 0)
			{
				status = 1;
				break;
			}
			total += out.len;
		}
		t1 = now_sec();
		rate = (double) n / (t1 - t0);

		/* warm up the specialised template, then time it */
		for (i = 0; i < pool; i++)
		{
			be_buf_reset(&out);
			(void) tmpl_render(st, ctx, datas[i], &lim, &out, &err);
		}
		t0 = now_sec();
		for (k = 0; k < n; k++)
		{
			be_buf_reset(&out);
			if (tmpl_render(st, ctx, datas[k % pool], &lim, &out, &err) != 0)
			{
				status = 1;
				break;
			}
		}
		t1 = now_sec();
		srate = (double) n / (t1 - t0);

		t0 = now_sec();
		for (k = 0; k < n; k++)
		{
			be_buf_reset(&base);
			be_buf_append(&base, ref, reflen);
			/* keep the copy observable */
			__asm__ volatile("" : : "r"(base.data) : "memory");
		}
		t1 = now_sec();
		brate = (double) n / (t1 - t0);

		printf("%s: plain %.0f renders/s (%.2f us), specialised %.0f renders/s (%.2f us), "
			   "baseline memcpy %.0f/s (per core, thread CPU time; template %zu bytes, "
			   "avg output %zu bytes, N=%ld, %d contacts, specialise once %.0f us)\n",
			   name, rate, 1e6 / rate, srate, 1e6 / srate, brate, len,
			   total / (size_t) n, n, pool, spec_us);

		free(ref);
		be_buf_free(&out);
		be_buf_free(&base);
		be_buf_free(&out2);
		tmpl_ctx_free(ctx);
		tmpl_free(st);
		json_object_put(constant);
		tmpl_free(t);
		free(src);
		free(path);
	}
	for (i = 0; i < pool; i++)
		json_object_put(datas[i]);
	free(datas);
	json_object_put(broadcast);
	json_object_put(list);
	json_object_put(workspace);
	return status;
}
