/*-------------------------------------------------------------------------
 *
 * liquid_cli.c
 *	  Renders templates for the conformance runner (run_golden.py).
 *
 * Reads records from stdin, each "<len>\n<template bytes><len>\n<json
 * bytes>", and writes for each "OK <len>\n<output>" or "ERR <len>\n<error
 * message>", so that one process serves a whole test file.  With arguments
 * (template [json]) it renders once and prints the result: a debugging aid.
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void
render_one(const char *src, size_t srclen, const char *json, size_t jsonlen,
		   TmplRenderCtx *ctx, FILE *out, int framed)
{
	TmplError	err;
	Template   *t = tmpl_compile(src, srclen, &err);
	struct json_object *data = tmpl_data_parse(json, jsonlen);
	BeBuf		buf;
	char		msg[400];
	int			rc = -1;

	be_buf_init(&buf);
	if (t != NULL)
		rc = tmpl_render(t, ctx, data, NULL, &buf, &err);
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

		render_one(argv[1], strlen(argv[1]), json, strlen(json), ctx, stdout, 0);
		tmpl_ctx_free(ctx);
		return 0;
	}
	while ((src = read_rec(&srclen)) != NULL)
	{
		size_t		jsonlen;
		char	   *json = read_rec(&jsonlen);

		if (json == NULL)
			return 2;
		render_one(src, srclen, json, jsonlen, ctx, stdout, 1);
		free(src);
		free(json);
	}
	tmpl_ctx_free(ctx);
	return 0;
}
