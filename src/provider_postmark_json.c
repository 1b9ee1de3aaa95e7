/*-------------------------------------------------------------------------
 *
 * provider_postmark_json.c
 *	  Postmark's message object and its ErrorCode answers (the pure half of
 *	  provider_postmark.c: see provider_json.h).
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
compose_postmark_json(ComposeBroadcast *b, ComposeCtx *c, const ComposeInput *in, ComposeOutput *out)
{
	json_object *m;
	json_object *md;

	(void) b;
	if (compose_esp_begin(c, in, out) != 0)
		return -1;
	m = json_object_new_object();
	compose_esp_address(compose_esp_key(c), out->from_email, out->from_name);
	json_object_object_add(m, "From", compose_esp_str(compose_buf_str(compose_esp_key(c))));
	json_object_object_add(m, "To", compose_esp_str(in->email));
	json_object_object_add(m, "Subject", compose_esp_str(compose_esp_subject(c)));
	json_object_object_add(m, "HtmlBody", json_object_new_string_len(out->html, out->html_len));
	if (out->text_len > 0)
		json_object_object_add(m, "TextBody", json_object_new_string_len(out->text, out->text_len));
	if (out->reply_to)
		json_object_object_add(m, "ReplyTo", compose_esp_str(out->reply_to));
	if (out->list_unsubscribe[0])
	{
		json_object *hs = json_object_new_array();
		json_object *h = json_object_new_object();

		json_object_object_add(h, "Name", compose_esp_str("List-Unsubscribe"));
		json_object_object_add(h, "Value", compose_esp_str(out->list_unsubscribe));
		json_object_array_add(hs, h);
		if (compose_esp_one_click(out))
		{
			h = json_object_new_object();
			json_object_object_add(h, "Name", compose_esp_str("List-Unsubscribe-Post"));
			json_object_object_add(h, "Value", compose_esp_str(MIME_LIST_UNSUB_POST_VALUE));
			json_object_array_add(hs, h);
		}
		json_object_object_add(m, "Headers", hs);
	}
	md = json_object_new_object();
	json_object_object_add(md, "message_id", compose_esp_str(in->message_id));
	json_object_object_add(m, "Metadata", md);
	out->batch_key = NULL;
	return compose_esp_finish(c, m, out);
}

static void
postmark_one_result(json_object *e, EspResult *r)
{
	json_object *code = esp_member(e, "ErrorCode");

	if (code == NULL)
		return;
	r->code = (long) json_object_get_int64(code);
	r->ok = (r->code == 0);
	esp_copy_str(esp_member(e, "MessageID"), r->id, sizeof(r->id));
	esp_copy_str(esp_member(e, "Message"), r->error, sizeof(r->error));
}

int
esp_postmark_results(const char *body, size_t len, EspResult *r, int n)
{
	json_object *o = esp_parse(body, len);
	int			got = 0;
	int			i;

	esp_clear(r, n);
	if (o && json_object_is_type(o, json_type_array))
	{
		for (i = 0; i < n && i < (int) json_object_array_length(o); i++, got++)
			postmark_one_result(json_object_array_get_idx(o, i), &r[i]);
	}
	else if (o && n > 0)
	{
		postmark_one_result(o, &r[0]);
		got = 1;
	}
	json_object_put(o);
	return got;
}
