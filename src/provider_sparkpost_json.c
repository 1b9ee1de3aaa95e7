/*-------------------------------------------------------------------------
 *
 * provider_sparkpost_json.c
 *	  SparkPost's recipient and content, and its transmission answer (the pure half of
 *	  provider_sparkpost.c: see provider_json.h).
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
compose_sparkpost_json(ComposeBroadcast *b, ComposeCtx *c, const ComposeInput *in, ComposeOutput *out)
{
	json_object *r;
	json_object *addr;
	json_object *md;
	json_object *content;
	json_object *from;
	json_object *hs;
	const char *s;
	size_t		len;

	(void) b;
	if (compose_esp_begin(c, in, out) != 0)
		return -1;

	/*
	 * The real subject, bodies and headers are the transmission's content:
	 * SparkPost tracks no link that arrives in a substitution value
	 * (provider_sparkpost.c).  The content is the batch key, so only
	 * recipients whose rendered message is the same share a transmission;
	 * a personalised message (its own unsubscribe link) goes alone.
	 */
	content = json_object_new_object();
	from = json_object_new_object();
	json_object_object_add(from, "email", compose_esp_str(out->from_email));
	if (out->from_name && out->from_name[0])
		json_object_object_add(from, "name", compose_esp_str(out->from_name));
	json_object_object_add(content, "from", from);
	if (out->reply_to)
		json_object_object_add(content, "reply_to", compose_esp_str(out->reply_to));
	json_object_object_add(content, "subject", compose_esp_str(compose_esp_subject(c)));
	json_object_object_add(content, "html", json_object_new_string_len(out->html, out->html_len));
	if (out->text_len > 0)
		json_object_object_add(content, "text", json_object_new_string_len(out->text, out->text_len));
	hs = compose_esp_headers(out);
	if (hs)
		json_object_object_add(content, "headers", hs);
	s = json_object_to_json_string_length(content, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	be_buf_reset(compose_esp_key(c));
	be_buf_append(compose_esp_key(c), s, len);
	json_object_put(content);
	if (compose_esp_key(c)->oom)
	{
		snprintf(out->error, sizeof(out->error), "out of memory");
		return -1;
	}
	out->batch_key = compose_buf_str(compose_esp_key(c));

	r = json_object_new_object();
	addr = json_object_new_object();
	json_object_object_add(addr, "email", compose_esp_str(in->email));
	json_object_object_add(r, "address", addr);
	md = json_object_new_object();
	json_object_object_add(md, "message_id", compose_esp_str(in->message_id));
	json_object_object_add(r, "metadata", md);
	return compose_esp_finish(c, r, out);
}

int
esp_sparkpost_result(const char *body, size_t len, char *id, size_t idlen,
					 long *accepted, long *rejected, char *errors, size_t errlen)
{
	json_object *o = esp_parse(body, len);
	json_object *res = esp_member(o, "results");
	json_object *errs = esp_member(res, "rcpt_to_errors");
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
	esp_copy_str(esp_member(res, "id"), id, idlen);
	*accepted = (long) json_object_get_int64(esp_member(res, "total_accepted_recipients"));
	*rejected = (long) json_object_get_int64(esp_member(res, "total_rejected_recipients"));
	if (errs && json_object_is_type(errs, json_type_array))
	{
		for (i = 0; i < (int) json_object_array_length(errs) && used + 1 < errlen; i++)
		{
			json_object *e = json_object_array_get_idx(errs, i);
			const char *d = json_object_get_string(esp_member(e, "description"));
			const char *m = json_object_get_string(esp_member(e, "message"));
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
