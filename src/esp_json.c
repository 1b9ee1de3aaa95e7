/*-------------------------------------------------------------------------
 *
 * esp_json.c
 *	  Reading the providers' JSON answers (see esp_json.h).
 *
 *-------------------------------------------------------------------------
 */
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esp_json.h"

static json_object *
parse(const char *body, size_t len)
{
	json_tokener *tok;
	json_object *o;

	if (body == NULL || len == 0)
		return NULL;
	tok = json_tokener_new();
	if (tok == NULL)
		return NULL;
	o = json_tokener_parse_ex(tok, body, (int) len);
	if (json_tokener_get_error(tok) != json_tokener_success)
	{
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

static json_object *
member(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (o == NULL || !json_object_is_type(o, json_type_object))
		return NULL;
	json_object_object_get_ex(o, key, &v);
	return v;
}

static void
copy_str(json_object *v, char *out, size_t outlen)
{
	const char *s;

	if (outlen == 0)
		return;
	out[0] = '\0';
	if (v == NULL || json_object_is_type(v, json_type_null))
		return;
	s = json_object_get_string(v);
	if (s)
		snprintf(out, outlen, "%s", s);
}

static void
clear(EspResult *r, int n)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		r[i].ok = -1;
		r[i].code = 0;
		r[i].id[0] = '\0';
		r[i].error[0] = '\0';
	}
}

int
esp_json_member(const char *body, size_t len, const char *key, char *out, size_t outlen)
{
	json_object *o;
	json_object *v;
	int			rc = -1;

	/* "not found" reads as an empty string, never as what was there before */
	if (outlen > 0)
		out[0] = '\0';
	o = parse(body, len);
	v = member(o, key);
	if (v && !json_object_is_type(v, json_type_object) && !json_object_is_type(v, json_type_array))
	{
		copy_str(v, out, outlen);
		rc = 0;
	}
	json_object_put(o);
	return rc;
}

static void
postmark_one(json_object *e, EspResult *r)
{
	json_object *code = member(e, "ErrorCode");

	if (code == NULL)
		return;
	r->code = (long) json_object_get_int64(code);
	r->ok = (r->code == 0);
	copy_str(member(e, "MessageID"), r->id, sizeof(r->id));
	copy_str(member(e, "Message"), r->error, sizeof(r->error));
}

int
esp_postmark_results(const char *body, size_t len, EspResult *r, int n)
{
	json_object *o = parse(body, len);
	int			got = 0;
	int			i;

	clear(r, n);
	if (o && json_object_is_type(o, json_type_array))
	{
		for (i = 0; i < n && i < (int) json_object_array_length(o); i++, got++)
			postmark_one(json_object_array_get_idx(o, i), &r[i]);
	}
	else if (o && n > 0)
	{
		postmark_one(o, &r[0]);
		got = 1;
	}
	json_object_put(o);
	return got;
}

int
esp_mailjet_results(const char *body, size_t len, EspResult *r, int n)
{
	json_object *o = parse(body, len);
	json_object *msgs = member(o, "Messages");
	int			got = 0;
	int			i;

	clear(r, n);
	if (msgs && json_object_is_type(msgs, json_type_array))
	{
		for (i = 0; i < n && i < (int) json_object_array_length(msgs); i++, got++)
		{
			json_object *e = json_object_array_get_idx(msgs, i);
			const char *st = json_object_get_string(member(e, "Status"));

			if (st == NULL)
				continue;		/* unreadable: left "not in the answer" (retried) */
			if (strcmp(st, "success") == 0)
			{
				json_object *to = member(e, "To");
				json_object *t0 = to && json_object_is_type(to, json_type_array) &&
					json_object_array_length(to) > 0 ? json_object_array_get_idx(to, 0) : NULL;

				r[i].ok = 1;
				copy_str(member(t0, "MessageID"), r[i].id, sizeof(r[i].id));
			}
			else
			{
				json_object *errs = member(e, "Errors");
				json_object *e0 = errs && json_object_is_type(errs, json_type_array) &&
					json_object_array_length(errs) > 0 ? json_object_array_get_idx(errs, 0) : NULL;
				char		ident[64];

				r[i].ok = 0;
				r[i].code = (long) json_object_get_int64(member(e0, "StatusCode"));
				ident[0] = '\0';
				copy_str(member(e0, "ErrorCode"), ident, sizeof(ident));
				snprintf(r[i].error, sizeof(r[i].error), "%s: %s", ident[0] ? ident : st,
						 json_object_get_string(member(e0, "ErrorMessage")) ?
						 json_object_get_string(member(e0, "ErrorMessage")) : "error");
			}
		}
	}
	json_object_put(o);
	return got;
}

int
esp_resend_results(const char *body, size_t len, EspResult *r, int n)
{
	json_object *o = parse(body, len);
	json_object *data = member(o, "data");
	json_object *errs = member(o, "errors");
	int			i;
	int			j = 0;
	int			got = 0;

	clear(r, n);
	/* the refused first: data[] lists the accepted ones in request order */
	if (errs && json_object_is_type(errs, json_type_array))
	{
		for (i = 0; i < (int) json_object_array_length(errs); i++)
		{
			json_object *e = json_object_array_get_idx(errs, i);
			json_object *ix = member(e, "index");
			int			idx;

			/* an entry that names no message cannot be mapped: skip it */
			if (ix == NULL || !json_object_is_type(ix, json_type_int))
				continue;
			idx = json_object_get_int(ix);
			if (idx < 0 || idx >= n)
				continue;
			r[idx].ok = 0;
			copy_str(member(e, "message"), r[idx].error, sizeof(r[idx].error));
			got++;
		}
	}
	if (data && json_object_is_type(data, json_type_array))
	{
		for (i = 0; i < (int) json_object_array_length(data); i++)
		{
			while (j < n && r[j].ok == 0)
				j++;
			if (j >= n)
				break;
			r[j].ok = 1;
			copy_str(member(json_object_array_get_idx(data, i), "id"), r[j].id, sizeof(r[j].id));
			j++;
			got++;
		}
	}
	json_object_put(o);
	return got;
}

int
esp_sparkpost_result(const char *body, size_t len, char *id, size_t idlen,
					 long *accepted, long *rejected, char *errors, size_t errlen)
{
	json_object *o = parse(body, len);
	json_object *res = member(o, "results");
	json_object *errs = member(res, "rcpt_to_errors");
	size_t		used = 0;
	int			i;

	*accepted = 0;
	*rejected = 0;
	if (errlen > 0)
		errors[0] = '\0';
	if (res == NULL)
	{
		json_object_put(o);
		return -1;
	}
	copy_str(member(res, "id"), id, idlen);
	*accepted = (long) json_object_get_int64(member(res, "total_accepted_recipients"));
	*rejected = (long) json_object_get_int64(member(res, "total_rejected_recipients"));
	if (errs && json_object_is_type(errs, json_type_array))
	{
		for (i = 0; i < (int) json_object_array_length(errs) && used + 1 < errlen; i++)
		{
			json_object *e = json_object_array_get_idx(errs, i);
			const char *d = json_object_get_string(member(e, "description"));
			const char *m = json_object_get_string(member(e, "message"));
			int			w;

			w = snprintf(errors + used, errlen - used, "%s%s: %s", used ? "\n" : "",
						 m ? m : "rejected", d ? d : "");
			if (w < 0)
				break;
			used += (size_t) w;
			if (used >= errlen)
				used = errlen - 1;
		}
	}
	json_object_put(o);
	return 0;
}
