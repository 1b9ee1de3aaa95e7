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

/*
 * A body at least this large goes once per call, as the call's own text
 * and html, whenever it is the same for several recipients; smaller ones
 * travel in each recipient's variables, which batches them whatever their
 * personalisation.
 */
#define MAILGUN_SHARED_MIN 2048

static const char unsub_var[] = "%recipient.unsubscribe_url%";

/* a memmem that needs no _GNU_SOURCE */
static const char *
find_bytes(const char *s, size_t len, const char *what, size_t wlen)
{
	size_t		i;

	if (wlen == 0 || wlen > len)
		return NULL;
	for (i = 0; i + wlen <= len; i++)
		if (s[i] == what[0] && memcmp(s + i, what, wlen) == 0)
			return s + i;
	return NULL;
}

/*
 * s[0..len) into b with each occurrence of url replaced by the unsubscribe
 * variable.  False when s has a "%recipient." of its own, which Mailgun
 * would substitute: such a body is never shared.
 */
static bool
put_shared(BeBuf *b, const char *s, size_t len, const char *url)
{
	size_t		ulen = strlen(url);
	const char *p = s;
	const char *end = s + len;
	const char *hit;

	be_buf_reset(b);
	if (find_bytes(s, len, "%recipient.", 11) != NULL)
		return false;
	while (ulen > 0 && (hit = find_bytes(p, end - p, url, ulen)) != NULL)
	{
		be_buf_append(b, p, hit - p);
		be_buf_append(b, unsub_var, sizeof(unsub_var) - 1);
		p = hit + ulen;
	}
	be_buf_append(b, p, end - p);
	return !b->oom;
}

/*
 * The batch key is the from, reply-to and header-flags lines, then for a
 * shared body a JSON object {"html", "text"}: the body with the
 * recipient's unsubscribe URL as %recipient.unsubscribe_url%, so that
 * recipients whose messages differ only in that URL share a call and the
 * body is sent once.  The recipient's variables are then small (subject,
 * unsubscribe link and URL, message id); otherwise they carry the whole
 * rendered subject, text and html.
 */
int
compose_mailgun_vars(ComposeBroadcast *b, ComposeCtx *c, const ComposeInput *in, ComposeOutput *out)
{
	json_object *v;
	bool		one_click = compose_esp_one_click(out);
	BeBuf	   *key = compose_esp_key(c);
	bool		shared = false;
	BeBuf		html;
	BeBuf		text;

	(void) b;
	if (compose_esp_begin(c, in, out) != 0)
		return -1;

	/* from, reply-to and which headers are present: one line each */
	compose_esp_address(key, out->from_email, out->from_name);
	be_buf_putc(key, '\n');
	if (out->reply_to)
		be_buf_append(key, out->reply_to, strlen(out->reply_to));
	be_buf_putc(key, '\n');
	be_buf_putc(key, out->list_unsubscribe[0] ? '1' : '0');
	be_buf_putc(key, one_click ? '1' : '0');

	be_buf_init(&html);
	be_buf_init(&text);
	if (out->html_len + out->text_len >= MAILGUN_SHARED_MIN &&
		put_shared(&html, out->html, out->html_len, out->unsubscribe_url) &&
		put_shared(&text, out->text, out->text_len, out->unsubscribe_url))
	{
		shared = true;
		be_buf_puts(key, "\n{\"html\":");
		compose_json_put_str(key, html.data ? html.data : "", html.len);
		be_buf_puts(key, ",\"text\":");
		compose_json_put_str(key, text.data ? text.data : "", text.len);
		be_buf_putc(key, '}');
	}
	be_buf_free(&html);
	be_buf_free(&text);
	if (key->oom)
	{
		snprintf(out->error, sizeof(out->error), "out of memory");
		return -1;
	}
	out->batch_key = compose_buf_str(key);

	v = json_object_new_object();
	json_object_object_add(v, "message_id", compose_esp_str(in->message_id));
	json_object_object_add(v, "subject", compose_esp_str(compose_esp_subject(c)));
	if (shared)
		json_object_object_add(v, "unsubscribe_url", compose_esp_str(out->unsubscribe_url));
	else
	{
		json_object_object_add(v, "text", json_object_new_string_len(out->text, out->text_len));
		json_object_object_add(v, "html", json_object_new_string_len(out->html, out->html_len));
	}
	json_object_object_add(v, "list_unsubscribe", compose_esp_str(out->list_unsubscribe));
	return compose_esp_finish(c, v, out);
}
