/*
 * tmpl_fuzz.c
 *	  libFuzzer target for the template engine: every input is compiled as
 *	  a template and, when it compiles, rendered twice with small limits
 *	  over a fixed data object on a context shared by all inputs, then once
 *	  on a fresh context: both must give the same result.  It is also
 *	  specialised (tmpl_specialize) with two splits of the data into
 *	  constant and per-recipient parts; rendering each specialisation must
 *	  give the same return code, error kind and output as the plain render.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <json.h>

#include "tmpl.h"

static const char *fuzz_json =
"{\"contact\": {\"first_name\": \"Ann\", \"last_name\": \"O'Neil & <Co>\","
" \"tags\": [\"vip\", \"beta\", 3, 1.5, null, true, [1, [2]], {\"k\": \"v\"}],"
" \"score\": 42, \"ratio\": -1.5, \"active\": true, \"deleted\": false,"
" \"nothing\": null, \"empty\": \"\", \"signup\": \"2026-03-01T10:00:00Z\","
" \"unix\": 1772359200, \"meta\": {\"city\": \"Paris\", \"size\": 7}},"
" \"broadcast\": {\"subject\": \"News\", \"articles\": ["
"   {\"title\": \"One\", \"url\": \"https://e.com/1?a=b&c\", \"featured\": true},"
"   {\"title\": \"Two\", \"url\": \"https://e.com/2\"}]},"
" \"list\": {\"name\": \"Weekly\"}, \"workspace\": {\"name\": \"Acme\"},"
" \"unsubscribe_url\": \"https://e.com/u\", \"message_id\": \"m-1\"}";

static struct json_object *fuzz_data;
static TmplRenderCtx *fuzz_ctx;
static struct json_object *fuzz_splits[2];

int			LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len);

static int
has_sub(const uint8_t *buf, size_t len, const char *s)
{
	size_t		n = strlen(s);
	size_t		i;

	for (i = 0; i + n <= len; i++)
		if (memcmp(buf + i, s, n) == 0)
			return 1;
	return 0;
}

/*
 * Snippets for {% render %}/{% include %}: a few fixed ones, and the input
 * itself as "self" (cycles); a zone resolver knowing one named zone.
 */
static const char *fuzz_self;
static size_t fuzz_self_len;

static bool
fuzz_snippet(void *arg, const char *name, size_t n, const char **src, size_t *len)
{
	static const char *const fixed[][2] = {
		{"a", "{{ x }}{% assign y = 1 %}{{ y }}{% include 'b' %}"},
		{"b", "<{{ item | default: 'b' }}{{ forloop.index }}>"},
		{"c", "{% render 'a', x: 2 %}{% render 'b' for contact.tags as item %}"},
		{"d", "{% increment n %}{% tablerow i in (1..3) cols: 2 %}{{ tablerowloop.col }}"
		"{{ forloop.name }}{% decrement n %}{% endtablerow %}{{ n | divided_by: 0 }}"},
		{NULL, NULL}
	};
	int			i;

	if (n == 4 && memcmp(name, "self", 4) == 0)
	{
		*src = fuzz_self;
		*len = fuzz_self_len;
		return true;
	}
	for (i = 0; fixed[i][0]; i++)
		if (strlen(fixed[i][0]) == n && memcmp(fixed[i][0], name, n) == 0)
		{
			*src = fixed[i][1];
			*len = strlen(*src);
			return true;
		}
	return false;
}

static bool
fuzz_tz(void *arg, const char *zone, long long secs, int *off, char *abbr, size_t cap)
{
	if (strcmp(zone, "Europe/Paris") != 0)
		return false;
	*off = secs % 2 ? 3600 : 7200;
	snprintf(abbr, cap, "CET");
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len)
{
	TmplError	err;
	TmplLimits	lim;
	Template   *t;
	BeBuf		out;
	BeBuf		ref;
	int			i;
	int			rc = 0;

	if (fuzz_data == NULL)
	{
		static const char *const keys[2][4] = {
			{"broadcast", "list", "workspace", NULL},
			{"contact", "unsubscribe_url", "message_id", NULL}
		};
		int			s;
		int			k;

		fuzz_data = json_tokener_parse(fuzz_json);
		fuzz_ctx = tmpl_ctx_create();
		tmpl_ctx_set_tz_resolver(fuzz_ctx, fuzz_tz, NULL);
		for (s = 0; s < 2; s++)
		{
			fuzz_splits[s] = json_object_new_object();
			for (k = 0; keys[s][k]; k++)
				json_object_object_add(fuzz_splits[s], keys[s][k],
									   json_object_get(json_object_object_get(fuzz_data, keys[s][k])));
		}
	}
	fuzz_self = (const char *) buf;
	fuzz_self_len = len;
	t = tmpl_compile_ex((const char *) buf, len, fuzz_snippet, NULL, &err);
	if (t == NULL)
	{
		/* errors must carry a position and a message */
		if (err.kind == TMPL_ERR_SYNTAX && (err.line < 1 || err.column < 1 || err.message[0] == '\0'))
			__builtin_trap();
		return 0;
	}
	lim.max_output = 64 * 1024;
	lim.max_iterations = 2000;
	lim.max_depth = 16;
	be_buf_init(&out);
	be_buf_init(&ref);
	for (i = 0; i < 2; i++)
	{
		be_buf_reset(&out);
		rc = tmpl_render(t, fuzz_ctx, fuzz_data, &lim, &out, &err);
		if (rc == 0 && out.len > lim.max_output)
			__builtin_trap();
		if (rc != 0 && err.message[0] == '\0')
			__builtin_trap();
	}

	/*
	 * The shared context (caches filled by earlier inputs) must give the
	 * same result as a fresh one.  Skip inputs that may read the clock.
	 */
	if (!has_sub(buf, len, "now") && !has_sub(buf, len, "today"))
	{
		TmplRenderCtx *fresh = tmpl_ctx_create();

		tmpl_ctx_set_tz_resolver(fresh, fuzz_tz, NULL);
		int			rc2 = tmpl_render(t, fresh, fuzz_data, &lim, &ref, &err);

		if (rc != rc2 || (rc == 0 && (out.len != ref.len ||
									  (out.len && memcmp(out.data, ref.data, out.len) != 0))))
			__builtin_trap();
		tmpl_ctx_free(fresh);

		/* specialised templates must render exactly like the original */
		for (i = 0; i < 2; i++)
		{
			TmplError	err2;
			Template   *st = tmpl_specialize(t, fuzz_splits[i], &err2);
			int			k;

			if (st == NULL)
				__builtin_trap();
			for (k = 0; k < 2; k++)
			{
				be_buf_reset(&ref);
				rc2 = tmpl_render(st, fuzz_ctx, fuzz_data, &lim, &ref, &err2);
				if (rc != rc2 || (rc != 0 && err.kind != err2.kind) ||
					(rc == 0 && (out.len != ref.len ||
								 (out.len && memcmp(out.data, ref.data, out.len) != 0))))
					__builtin_trap();
			}
			tmpl_free(st);
		}
	}
	be_buf_free(&out);
	be_buf_free(&ref);
	tmpl_free(t);
	return 0;
}
