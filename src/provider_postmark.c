/*-------------------------------------------------------------------------
 *
 * provider_postmark.c
 *	  Postmark: /email for one message, /email/batch for up to 500.
 *
 * X-Postmark-Server-Token auth, the broadcast message stream unless the
 * integration names another, Metadata carrying our message id.  The batch
 * endpoint always answers 200 with one result per message, in request
 * order: each message gets its own outcome (ErrorCode 406, an inactive
 * recipient, is permanent), so only the failed ones are retried.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "be_sender.h"
#include "compose.h"
#include "esp_json.h"

#define POSTMARK_BATCH_MAX 500

static void
postmark_setup(BeIntegration *ig, BeTransfer *x)
{
	const char *stream = ig->message_stream ? ig->message_stream : "broadcast";
	char	   *prefix = psprintf("{\"MessageStream\":%s,", be_json_quote(stream));
	bool		batch = x->nmsgs > 1;
	StringInfoData b;
	int			i;

	/* each composed message is a JSON object: the stream goes in front */
	initStringInfo(&b);
	if (batch)
		appendStringInfoChar(&b, '[');
	for (i = 0; i < x->nmsgs; i++)
	{
		BeMessage  *m = x->msgs[i];

		if (i > 0)
			appendStringInfoChar(&b, ',');
		appendStringInfoString(&b, prefix);
		appendBinaryStringInfo(&b, m->body + 1, m->body_len - 1);
	}
	if (batch)
		appendStringInfoChar(&b, ']');

	curl_easy_setopt(x->easy, CURLOPT_URL,
					 be_api_url(ig, "https://api.postmarkapp.com", batch ? "/email/batch" : "/email"));
	x->headers = curl_slist_append(NULL, "Accept: application/json");
	x->headers = curl_slist_append(x->headers,
								   psprintf("X-Postmark-Server-Token: %s", ig->secret ? ig->secret : ""));
	be_set_json_post(x, b.data, b.len, false);
}

/* one message's ErrorCode */
static void
postmark_one(BeIntegration *ig, BeMessage *m, const EspResult *r)
{
	if (r->ok == 1)
	{
		m->outcome = BE_OUT_SENT;
		m->provider_message_id = pstrdup(r->id);
	}
	else if (r->ok == 0 && r->code == 406)
	{
		m->outcome = BE_OUT_DEAD;
		m->error = psprintf("postmark: inactive recipient (ErrorCode 406): %s", r->error);
	}
	else if (r->ok == 0 && r->code == 10)
	{
		m->outcome = BE_OUT_DEAD;
		m->error = psprintf("postmark integration \"%s\" was refused: the server token is not accepted (ErrorCode 10)",
							ig->integration_id);
	}
	else if (r->ok == 0 && (r->code == 429 || r->code >= 500))
	{
		m->outcome = BE_OUT_RETRY;
		m->error = psprintf("postmark: temporary failure (ErrorCode %ld): %s", r->code, r->error);
	}
	else if (r->ok == 0)
	{
		m->outcome = BE_OUT_DEAD;
		m->error = psprintf("postmark rejected the message (ErrorCode %ld): %s", r->code, r->error);
	}
	else
	{
		/* not in the answer: we cannot know, so at least once */
		m->outcome = BE_OUT_RETRY;
		m->provider_failure = true;
		m->error = pstrdup("postmark: no result for this message in the batch answer");
	}
}

static void
postmark_result(BeIntegration *ig, BeTransfer *x, CURLcode rc, long code)
{
	EspResult  *r;
	int			i;

	/* 422 on /email is one message's own ErrorCode; on the batch, the request's */
	if (rc != CURLE_OK || !((code >= 200 && code < 300) || (code == 422 && x->nmsgs == 1)))
	{
		be_request_failed(ig, x, rc, code);
		return;
	}
	r = palloc(sizeof(EspResult) * x->nmsgs);
	esp_postmark_results(x->resp_body.data, x->resp_body.len, r, x->nmsgs);
	for (i = 0; i < x->nmsgs; i++)
		postmark_one(ig, x->msgs[i], &r[i]);
	pfree(r);
}

const BeProvider be_provider_postmark = {
	"postmark", POSTMARK_BATCH_MAX, compose_postmark_json, postmark_setup, postmark_result
};
