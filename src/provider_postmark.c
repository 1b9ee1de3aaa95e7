/*-------------------------------------------------------------------------
 *
 * provider_postmark.c
 *	  Postmark: /email for one message, /email/batch for up to 500.
 *
 * X-Postmark-Server-Token auth, the broadcast message stream unless the
 * integration names another, Metadata carrying our message id.  The batch
 * endpoint always answers 200 with one result per message, in request
 * order: each message gets its own outcome, read from Postmark's ErrorCode
 * table (406, an inactive recipient, is permanent; 405, 412 and 413 are
 * the account's state and pause the integration), so only the failed ones
 * are retried.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "be_sender.h"
#include "provider_json.h"

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

/*
 * Postmark's ErrorCode table (postmarkapp.com/developer/api/overview#error-codes):
 * the codes are Postmark's own numbers, not HTTP statuses, so 1226
 * (message stream not found) is a permanent configuration error, not a
 * server error to retry.
 */
typedef enum
{
	PM_SENT,
	PM_RETRY,					/* 100 maintenance, 429 rate limit */
	PM_PAUSE,					/* 405 out of credits, 412 pending, 413 may not send */
	PM_AUTH,					/* 10 bad or missing server token */
	PM_SPLIT,					/* 410 too many batch messages */
	PM_DEAD						/* the message (406 inactive recipient, 300...) or settings */
} PostmarkClass;

static PostmarkClass
postmark_class(long ec)
{
	switch (ec)
	{
		case 0:
			return PM_SENT;
		case 10:
			return PM_AUTH;
		case 100:
		case 429:
			return PM_RETRY;
		case 405:
		case 412:
		case 413:
			return PM_PAUSE;
		case 410:
			return PM_SPLIT;
		default:
			return PM_DEAD;
	}
}

/* the account cannot send until someone acts: probe again in an hour */
#define POSTMARK_PAUSE_S 3600

static const char *
postmark_pause_why(long ec)
{
	switch (ec)
	{
		case 405:
			return "not allowed to send: the account has run out of credits";
		case 412:
			return "the account is pending approval";
		default:
			return "the account may not send";
	}
}

/* one message's ErrorCode; true when it pauses the account */
static bool
postmark_one(BeIntegration *ig, BeMessage *m, const EspResult *r)
{
	if (r->ok == -1)
	{
		/* not in the answer: we cannot know, so at least once */
		m->outcome = BE_OUT_RETRY;
		m->provider_failure = true;
		m->error = pstrdup("postmark: no result for this message in the batch answer");
		return false;
	}
	switch (postmark_class(r->code))
	{
		case PM_SENT:
			m->outcome = BE_OUT_SENT;
			m->provider_message_id = pstrdup(r->id);
			break;
		case PM_AUTH:
			m->outcome = BE_OUT_DEAD;
			m->error = psprintf("postmark integration \"%s\" was refused: the server token is not accepted (ErrorCode 10)",
								ig->integration_id);
			break;
		case PM_RETRY:
			m->outcome = BE_OUT_RETRY;
			m->provider_failure = (r->code == 100);
			m->error = psprintf("postmark: temporary failure (ErrorCode %ld): %s", r->code, r->error);
			break;
		case PM_PAUSE:
			m->outcome = BE_OUT_NONE;
			m->retry_after_s = POSTMARK_PAUSE_S;
			m->error = psprintf("postmark integration \"%s\" cannot send now (ErrorCode %ld, %s): %s",
								ig->integration_id, r->code, postmark_pause_why(r->code), r->error);
			return true;
		case PM_SPLIT:
		case PM_DEAD:
			m->outcome = BE_OUT_DEAD;
			if (r->code == 406)
				m->error = psprintf("postmark: inactive recipient (ErrorCode 406): %s", r->error);
			else
				m->error = psprintf("postmark rejected the message (ErrorCode %ld): %s", r->code, r->error);
			break;
	}
	return false;
}

static void
postmark_result(BeIntegration *ig, BeTransfer *x, CURLcode rc, long code)
{
	EspResult  *r;
	bool		paused = false;
	int			i;

	r = palloc(sizeof(EspResult) * x->nmsgs);
	if (rc == CURLE_OK && !(code >= 200 && code < 300))
	{
		/*
		 * A refusal of the whole request (401, 413, 422): its ErrorCode says
		 * why.  429 and 5xx are HTTP's own, and an answer without an
		 * ErrorCode is not Postmark's (a proxy, say): both read as HTTP.
		 */
		if (code < 400 || code >= 500 || code == 429 ||
			esp_postmark_results(x->resp_body.data, x->resp_body.len, r, 1) != 1 || r[0].ok == -1)
		{
			be_request_failed(ig, x, rc, code);
			return;
		}
		if (postmark_class(r[0].code) == PM_PAUSE)
		{
			postmark_one(ig, x->msgs[0], &r[0]);
			be_pause_account(x, POSTMARK_PAUSE_S, x->msgs[0]->error);
			return;
		}
		/* a batch refused whole, too large or too long: each message alone */
		if (x->nmsgs > 1 && (postmark_class(r[0].code) == PM_SPLIT ||
							 (postmark_class(r[0].code) == PM_DEAD && be_batch_refused(x, code == 413 ? 413 : 422))))
		{
			x->split = true;
			return;
		}
		postmark_one(ig, x->msgs[0], &r[0]);
		be_copy_outcome(x);
		return;
	}
	if (rc != CURLE_OK)
	{
		be_request_failed(ig, x, rc, code);
		return;
	}
	esp_postmark_results(x->resp_body.data, x->resp_body.len, r, x->nmsgs);
	for (i = 0; i < x->nmsgs; i++)
		paused |= postmark_one(ig, x->msgs[i], &r[i]);
	if (paused)
		x->pause = true;
	pfree(r);
}

const BeProvider be_provider_postmark = {
	"postmark", POSTMARK_BATCH_MAX, compose_postmark_json, postmark_setup, postmark_result
};
