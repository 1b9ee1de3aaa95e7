/*-------------------------------------------------------------------------
 *
 * provider_sendgrid_json.c
 *	  SendGrid's v3 mail/send body (the pure half of
 *	  provider_sendgrid.c: see provider_json.h).
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
compose_sendgrid_json(ComposeBroadcast *b, ComposeCtx *c, const ComposeInput *in, ComposeOutput *out)
{
	BeBuf	   *j = compose_esp_body(c);

	/* header values sent as JSON must be single clean lines, like in MIME */
	if (compose_esp_begin(c, in, out) != 0)
		return -1;
	(void) b;

	be_buf_reset(j);
	be_buf_puts(j, "{\"personalizations\":[{\"to\":[");
	compose_json_put_address(j, in->email, NULL);
	be_buf_puts(j, "],\"custom_args\":{\"message_id\":");
	compose_json_put_str(j, in->message_id, strlen(in->message_id));
	be_buf_puts(j, "}}],\"from\":");
	compose_json_put_address(j, out->from_email, out->from_name);
	if (out->reply_to)
	{
		be_buf_puts(j, ",\"reply_to\":");
		compose_json_put_address(j, out->reply_to, NULL);
	}
	be_buf_puts(j, ",\"subject\":");
	compose_json_put_str(j, compose_esp_subject(c), compose_esp_subject_len(c));

	/* SendGrid requires text/plain before text/html */
	be_buf_puts(j, ",\"content\":[");
	if (out->text_len > 0)
	{
		be_buf_puts(j, "{\"type\":\"text/plain\",\"value\":");
		compose_json_put_str(j, out->text, out->text_len);
		be_buf_puts(j, "},");
	}
	be_buf_puts(j, "{\"type\":\"text/html\",\"value\":");
	compose_json_put_str(j, out->html, out->html_len);
	be_buf_puts(j, "}]");

	if (out->list_unsubscribe[0])
	{
		be_buf_puts(j, ",\"headers\":{\"List-Unsubscribe\":");
		compose_json_put_str(j, out->list_unsubscribe, strlen(out->list_unsubscribe));
		if (strncmp(out->unsubscribe_url, "https://", 8) == 0)
		{
			be_buf_puts(j, ",\"List-Unsubscribe-Post\":");
			compose_json_put_str(j, MIME_LIST_UNSUB_POST_VALUE, strlen(MIME_LIST_UNSUB_POST_VALUE));
		}
		be_buf_putc(j, '}');
	}
	be_buf_putc(j, '}');
	if (j->oom)
	{
		snprintf(out->error, sizeof(out->error), "out of memory");
		return -1;
	}
	out->body = compose_buf_str(j);
	out->body_len = j->len;
	return 0;
}
