/*-------------------------------------------------------------------------
 *
 * provider_resend_json.c
 *	  Resend's email object and its batch answer (the pure half of
 *	  provider_resend.c: see provider_json.h).
 *
 *-------------------------------------------------------------------------
 */
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime.h"
#include "provider_json.h"

int
compose_resend_json(ComposeBroadcast *b, ComposeCtx *c, const ComposeInput *in, ComposeOutput *out)
{
	json_object *m;
	json_object *to;
	json_object *hs;
	json_object *tags;
	json_object *tag;

	(void) b;
	if (compose_esp_begin(c, in, out) != 0)
		return -1;
	m = json_object_new_object();
	compose_esp_address(compose_esp_key(c), out->from_email, out->from_name);
	json_object_object_add(m, "from", compose_esp_str(compose_buf_str(compose_esp_key(c))));
	to = json_object_new_array();
	json_object_array_add(to, compose_esp_str(in->email));
	json_object_object_add(m, "to", to);
	if (out->reply_to)
		json_object_object_add(m, "reply_to", compose_esp_str(out->reply_to));
	json_object_object_add(m, "subject", compose_esp_str(compose_esp_subject(c)));
	json_object_object_add(m, "html", json_object_new_string_len(out->html, out->html_len));
	if (out->text_len > 0)
		json_object_object_add(m, "text", json_object_new_string_len(out->text, out->text_len));
	hs = compose_esp_headers(out);
	if (hs)
		json_object_object_add(m, "headers", hs);
	/* a UUID is letters, digits and dashes: a valid tag value */
	tags = json_object_new_array();
	tag = json_object_new_object();
	json_object_object_add(tag, "name", compose_esp_str("message_id"));
	json_object_object_add(tag, "value", compose_esp_str(in->message_id));
	json_object_array_add(tags, tag);
	json_object_object_add(m, "tags", tags);
	out->batch_key = NULL;
	return compose_esp_finish(c, m, out);
}

int
esp_resend_results(const char *body, size_t len, EspResult *r, int n)
{
	json_object *o = esp_parse(body, len);
	json_object *data = esp_member(o, "data");
	json_object *errs = esp_member(o, "errors");
	int			i;
	int			j = 0;
	int			got = 0;

	esp_clear(r, n);
	/* the refused first: data[] lists the accepted ones in request order */
	if (errs && json_object_is_type(errs, json_type_array))
	{
		for (i = 0; i < (int) json_object_array_length(errs); i++)
		{
			json_object *e = json_object_array_get_idx(errs, i);
			json_object *ix = esp_member(e, "index");
			int			idx;

			/* an entry that names no message cannot be mapped: skip it */
			if (ix == NULL || !json_object_is_type(ix, json_type_int))
				continue;
			idx = json_object_get_int(ix);
			if (idx < 0 || idx >= n)
				continue;
			r[idx].ok = 0;
			esp_copy_str(esp_member(e, "message"), r[idx].error, sizeof(r[idx].error));
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
			esp_copy_str(esp_member(json_object_array_get_idx(data, i), "id"), r[j].id, sizeof(r[j].id));
			j++;
			got++;
		}
	}
	json_object_put(o);
	return got;
}
