/*-------------------------------------------------------------------------
 *
 * liquid_cli.c
 *	  Renders templates for the conformance runner (run_golden.py).
 *
 * Reads records from stdin, each "<len>\n<template bytes><len>\n<json
 * bytes><len>\n<snippets json bytes>" (the snippets: an object mapping
 * each name {% render %} and {% include %} may use to its source), and
 * writes for each "OK <len>\n<output>" or "ERR <len>\n<error message>", so
 * that one process serves a whole test file.  Every template is also
 * specialised with all of its data as constant data and with none of it:
 * a render that differs from the plain one is reported as an error.  With
 * arguments (template [json [snippets json]]) it renders once and prints
 * the result: a debugging aid.
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json.h>

#include "tmpl.h"

static char *
read_rec(size_t *len)
{
	char	   *buf;

	if (scanf("%zu", len) != 1 || getchar() != '\n')
		return NULL;
	buf = malloc(*len + 1);
	if (buf == NULL || fread(buf, 1, *len, stdin) != *len)
		exit(2);
	buf[*len] = '\0';
	return buf;
}

/* The case's "templates" object serves as the snippet resolver. */
static bool
resolve(void *arg, const char *name, size_t namelen, const char **src, size_t *srclen)
{
	struct json_object *snippets = arg;
	struct json_object *v;
	char		key[256];

	if (snippets == NULL || namelen >= sizeof(key))
		return false;
	memcpy(key, name, namelen);
	key[namelen] = '\0';
	if (!json_object_object_get_ex(snippets, key, &v) ||
		!json_object_is_type(v, json_type_string))
		return false;
	*src = json_object_get_string(v);
	*srclen = (size_t) json_object_get_string_len(v);
	return true;
}

/* Render the specialisation of t by "constant"; true when it matches. */
static bool
spec_matches(Template *t, struct json_object *constant, struct json_object *data,
			 TmplRenderCtx *ctx, int rc, const BeBuf *want, const TmplError *werr)
{
	TmplError	err;
	Template   *st = tmpl_specialize(t, constant, &err);
	BeBuf		buf;
	int			rc2;
	bool		ok;

	if (st == NULL)
		return false;
	be_buf_init(&buf);
	rc2 = tmpl_render(st, ctx, data, NULL, &buf, &err);
	ok = rc2 == rc &&
		(rc != 0 ? err.kind == werr->kind :
		 buf.len == want->len && (buf.len == 0 || memcmp(buf.data, want->data, buf.len) == 0));
	be_buf_free(&buf);
	tmpl_free(st);
	return ok;
}

static void
render_one(const char *src, size_t srclen, const char *json, size_t jsonlen,
		   const char *snip, size_t sniplen, TmplRenderCtx *ctx, FILE *out, int framed)
{
	TmplError	err;
	struct json_object *snippets = tmpl_data_parse(snip, sniplen);
	Template   *t = tmpl_compile_ex(src, srclen, resolve, snippets, &err);
	struct json_object *data = tmpl_data_parse(json, jsonlen);
	BeBuf		buf;
	char		msg[400];
	int			rc = -1;

	be_buf_init(&buf);
	if (t != NULL)
	{
		struct json_object *none = json_object_new_object();

		rc = tmpl_render(t, ctx, data, NULL, &buf, &err);
		if (!spec_matches(t, data, data, ctx, rc, &buf, &err) ||
			!spec_matches(t, none, data, ctx, rc, &buf, &err))
		{
			rc = -1;
			snprintf(err.message, sizeof(err.message), "specialised render differs");
			err.line = err.column = 0;
		}
		json_object_put(none);
	}
	if (rc == 0)
	{
		if (framed)
			fprintf(out, "OK %zu\n", buf.len);
		fwrite(buf.data ? buf.data : "", 1, buf.len, out);
	}
	else
	{
		int			n = snprintf(msg, sizeof(msg), "%s (line %d, column %d)",
								 err.message, err.line, err.column);

		if (framed)
			fprintf(out, "ERR %d\n", n);
		fwrite(msg, 1, n, out);
	}
	if (!framed)
		fputc('\n', out);
	fflush(out);
	be_buf_free(&buf);
	tmpl_data_free(data);
	tmpl_data_free(snippets);
	tmpl_free(t);
}

int
main(int argc, char **argv)
{
	TmplRenderCtx *ctx = tmpl_ctx_create();
	char	   *src;
	size_t		srclen;

	if (argc > 1)
	{
		const char *json = argc > 2 ? argv[2] : "{}";
		const char *snip = argc > 3 ? argv[3] : "{}";

		render_one(argv[1], strlen(argv[1]), json, strlen(json), snip, strlen(snip),
				   ctx, stdout, 0);
		tmpl_ctx_free(ctx);
		return 0;
	}
	while ((src = read_rec(&srclen)) != NULL)
	{
		size_t		jsonlen;
		size_t		sniplen;
		char	   *json = read_rec(&jsonlen);
		char	   *snip = json ? read_rec(&sniplen) : NULL;

		if (snip == NULL)
			return 2;
		render_one(src, srclen, json, jsonlen, snip, sniplen, ctx, stdout, 1);
		free(src);
		free(json);
		free(snip);
	}
	tmpl_ctx_free(ctx);
	return 0;
}
