/*-------------------------------------------------------------------------
 *
 * provider_mailgun_json.c
 *	  Mailgun's recipient-variables for one recipient (the pure half of
 *	  provider_mailgun.c: see provider_json.h).
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
compose_mailgun_vars(ComposeBroadcast *b, ComposeCtx *c, const ComposeInput *in, ComposeOutput *out)
{
	json_object *v;
	bool		one_click = compose_esp_one_click(out);

	(void) b;
	if (compose_esp_begin(c, in, out) != 0)
		return -1;
	v = json_object_new_object();
	json_object_object_add(v, "message_id", compose_esp_str(in->message_id));
	json_object_object_add(v, "subject", compose_esp_str(compose_esp_subject(c)));
	json_object_object_add(v, "text", json_object_new_string_len(out->text, out->text_len));
	json_object_object_add(v, "html", json_object_new_string_len(out->html, out->html_len));
	json_object_object_add(v, "list_unsubscribe", compose_esp_str(out->list_unsubscribe));

	/* from, reply-to and which headers are present: one line each */
	compose_esp_address(compose_esp_key(c), out->from_email, out->from_name);
	be_buf_putc(compose_esp_key(c), '\n');
	if (out->reply_to)
		be_buf_append(compose_esp_key(c), out->reply_to, strlen(out->reply_to));
	be_buf_putc(compose_esp_key(c), '\n');
	be_buf_putc(compose_esp_key(c), out->list_unsubscribe[0] ? '1' : '0');
	be_buf_putc(compose_esp_key(c), one_click ? '1' : '0');
	out->batch_key = compose_buf_str(compose_esp_key(c));
	return compose_esp_finish(c, v, out);
}
