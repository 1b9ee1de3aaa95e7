/*-------------------------------------------------------------------------
 *
 * provider_mailjet_json.c
 *	  Mailjet's v3.1 message and its Messages[] answer (the pure half of
 *	  provider_mailjet.c: see provider_json.h).
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
compose_mailjet_json(ComposeBroadcast *b, ComposeCtx *c, const ComposeInput *in, ComposeOutput *out)
{
	json_object *m;
	json_object *to;
	json_object *hs;

	(void) b;
	if (compose_esp_begin(c, in, out) != 0)
		return -1;
	m = json_object_new_object();
	{
		json_object *from = json_object_new_object();

		json_object_object_add(from, "Email", compose_esp_str(out->from_email));
		if (out->from_name && out->from_name[0])
			json_object_object_add(from, "Name", compose_esp_str(out->from_name));
		json_object_object_add(m, "From", from);
	}
	to = json_object_new_array();
	{
		json_object *t = json_object_new_object();

		json_object_object_add(t, "Email", compose_esp_str(in->email));
		json_object_array_add(to, t);
	}
	json_object_object_add(m, "To", to);
	if (out->reply_to)
	{
		json_object *r = json_object_new_object();

		json_object_object_add(r, "Email", compose_esp_str(out->reply_to));
		json_object_object_add(m, "ReplyTo", r);
	}
	json_object_object_add(m, "Subject", compose_esp_str(compose_esp_subject(c)));
	if (out->text_len > 0)
		json_object_object_add(m, "TextPart", json_object_new_string_len(out->text, out->text_len));
	json_object_object_add(m, "HTMLPart", json_object_new_string_len(out->html, out->html_len));
	hs = compose_esp_headers(out);
	if (hs)
		json_object_object_add(m, "Headers", hs);
	json_object_object_add(m, "CustomID", compose_esp_str(in->message_id));
	out->batch_key = NULL;
	return compose_esp_finish(c, m, out);
}

int
esp_mailjet_results(const char *body, size_t len, EspResult *r, int n)
{
	json_object *o = esp_parse(body, len);
	json_object *msgs = esp_member(o, "Messages");
	int			got = 0;
	int			i;

	esp_clear(r, n);
	if (msgs && json_object_is_type(msgs, json_type_array))
	{
		for (i = 0; i < n && i < (int) json_object_array_length(msgs); i++, got++)
		{
			json_object *e = json_object_array_get_idx(msgs, i);
			const char *st = json_object_get_string(esp_member(e, "Status"));

			if (st == NULL)
				continue;		/* unreadable: left "not in the answer" (retried) */
			if (strcmp(st, "success") == 0)
			{
				json_object *to = esp_member(e, "To");
				json_object *t0 = to && json_object_is_type(to, json_type_array) &&
					json_object_array_length(to) > 0 ? json_object_array_get_idx(to, 0) : NULL;

				r[i].ok = 1;
				esp_copy_str(esp_member(t0, "MessageID"), r[i].id, sizeof(r[i].id));
			}
			else
			{
				json_object *errs = esp_member(e, "Errors");
				json_object *e0 = errs && json_object_is_type(errs, json_type_array) &&
					json_object_array_length(errs) > 0 ? json_object_array_get_idx(errs, 0) : NULL;
				char		ident[64];

				r[i].ok = 0;
				r[i].code = (long) json_object_get_int64(esp_member(e0, "StatusCode"));
				ident[0] = '\0';
				esp_copy_str(esp_member(e0, "ErrorCode"), ident, sizeof(ident));
				snprintf(r[i].error, sizeof(r[i].error), "%s: %s", ident[0] ? ident : st,
						 json_object_get_string(esp_member(e0, "ErrorMessage")) ?
						 json_object_get_string(esp_member(e0, "ErrorMessage")) : "error");
			}
		}
	}
	json_object_put(o);
	return got;
}
