/*-------------------------------------------------------------------------
 *
 * provider_resend.c
 *	  Resend: /emails for one message, /emails/batch for up to 100.
 *
 * Bearer auth, a message_id tag, and an Idempotency-Key so a retry after
 * a crash cannot send twice: our message id for one message, a digest of
 * the message ids for a batch.  Batches use permissive validation, so an
 * invalid entry fails alone.  409 concurrent_idempotent_requests (the
 * first request is still running) is retried; 409 invalid_idempotent_request
 * means the key was already used and accepted, so the message went out.
 * 429 waits for retry-after (or ratelimit-reset), and a success that leaves
 * no requests in the window pauses the integration until the reset.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "be_sender.h"
#include "provider_json.h"
#include "sha256.h"

#define RESEND_BATCH_MAX 100
/* a quota answer without retry-after: probe again in an hour */
#define RESEND_QUOTA_PAUSE_S 3600

/* the batch's idempotency key: the same messages give the same key */
static char *
batch_key(BeTransfer *x)
{
	Sha256Ctx	ctx;
	uint8_t		d[SHA256_DIGEST_LEN];
	char	   *hex = palloc(SHA256_DIGEST_LEN * 2 + 7);
	int			i;

	sha256_init(&ctx);
	for (i = 0; i < x->nmsgs; i++)
		sha256_update(&ctx, x->msgs[i]->message_id, strlen(x->msgs[i]->message_id) + 1);
	sha256_final(&ctx, d);
	strcpy(hex, "batch-");
	for (i = 0; i < SHA256_DIGEST_LEN; i++)
		sprintf(hex + 6 + 2 * i, "%02x", d[i]);
	return hex;
}

static void
resend_setup(BeIntegration *ig, BeTransfer *x)
{
	bool		batch = x->nmsgs > 1;
	StringInfoData b;
	int			i;

	initStringInfo(&b);
	if (batch)
		appendStringInfoChar(&b, '[');
	for (i = 0; i < x->nmsgs; i++)
	{
		if (i > 0)
			appendStringInfoChar(&b, ',');
		appendBinaryStringInfo(&b, x->msgs[i]->body, x->msgs[i]->body_len);
	}
	if (batch)
		appendStringInfoChar(&b, ']');

	curl_easy_setopt(x->easy, CURLOPT_URL,
					 be_api_url(ig, "https://api.resend.com", batch ? "/emails/batch" : "/emails"));
	x->headers = curl_slist_append(NULL, psprintf("Authorization: Bearer %s", ig->secret ? ig->secret : ""));
	x->headers = curl_slist_append(x->headers,
								   psprintf("Idempotency-Key: %s", batch ? batch_key(x) : x->msg->message_id));
	if (batch)
		x->headers = curl_slist_append(x->headers, "x-batch-validation: permissive");
	be_set_json_post(x, b.data, b.len, false);
}

static int
header_int(BeTransfer *x, const char *name, int dflt)
{
	char	   *v = be_header_value(&x->resp_headers, name);

	return (v && v[0] >= '0' && v[0] <= '9') ? Min(atoi(v), 3600) : dflt;
}

static void
resend_result(BeIntegration *ig, BeTransfer *x, CURLcode rc, long code)
{
	char		name[64];
	int			i;

	if (rc == CURLE_OK && code == 409)
	{
		esp_json_member(x->resp_body.data, x->resp_body.len, "name", name, sizeof(name));
		for (i = 0; i < x->nmsgs; i++)
		{
			BeMessage  *m = x->msgs[i];

			if (strcmp(name, "invalid_idempotent_request") == 0)
			{
				/* only accepted requests keep their key: this one went out */
				m->outcome = BE_OUT_SENT;
				m->error = pstrdup("resend: already accepted under this idempotency key");
			}
			else
			{
				m->outcome = BE_OUT_RETRY;
				m->retry_after_s = Max(1, be_retry_after_seconds(&x->resp_headers));
				m->error = psprintf("resend: %s (HTTP 409)", name[0] ? name : "conflict");
			}
		}
		return;
	}
	if (rc == CURLE_OK && code == 429)
	{
		/*
		 * daily_quota_exceeded and monthly_quota_exceeded (Resend's errors
		 * page) are the account's quota, not a rate: a pause until it
		 * resets, spending no attempt.
		 */
		esp_json_member(x->resp_body.data, x->resp_body.len, "name", name, sizeof(name));
		if (strcmp(name, "daily_quota_exceeded") == 0 || strcmp(name, "monthly_quota_exceeded") == 0)
		{
			int			wait = be_retry_after_seconds(&x->resp_headers);

			be_pause_account(x, wait > 0 ? wait : RESEND_QUOTA_PAUSE_S,
							 psprintf("resend integration \"%s\" cannot send now: %s (HTTP 429)",
									  ig->integration_id, name));
			return;
		}
	}
	if (rc != CURLE_OK || code < 200 || code >= 300)
	{
		if (rc == CURLE_OK && be_batch_refused(x, code))
			return;
		be_classify_http(ig, x, rc, code);
		if (x->msg->outcome == BE_OUT_RETRY && code == 429 && x->msg->retry_after_s == 0)
			x->msg->retry_after_s = header_int(x, "ratelimit-reset", 1);
		be_copy_outcome(x);
		return;
	}

	if (x->nmsgs == 1)
	{
		char		id[160];

		x->msg->outcome = BE_OUT_SENT;
		if (esp_json_member(x->resp_body.data, x->resp_body.len, "id", id, sizeof(id)) == 0)
			x->msg->provider_message_id = pstrdup(id);
	}
	else
	{
		EspResult  *r = palloc(sizeof(EspResult) * x->nmsgs);

		esp_resend_results(x->resp_body.data, x->resp_body.len, r, x->nmsgs);
		for (i = 0; i < x->nmsgs; i++)
		{
			BeMessage  *m = x->msgs[i];

			if (r[i].ok == 1)
			{
				m->outcome = BE_OUT_SENT;
				m->provider_message_id = pstrdup(r[i].id);
			}
			else if (r[i].ok == 0)
			{
				m->outcome = BE_OUT_DEAD;
				m->error = psprintf("resend rejected the message: %s", r[i].error);
			}
			else
			{
				m->outcome = BE_OUT_RETRY;
				m->provider_failure = true;
				m->error = pstrdup("resend: no result for this message in the batch answer");
			}
		}
		pfree(r);
	}

	/* the window is used up: pause the integration until it resets */
	if (header_int(x, "ratelimit-remaining", 1) == 0)
	{
		int			reset = header_int(x, "ratelimit-reset", 1);

		for (i = 0; i < x->nmsgs; i++)
			x->msgs[i]->retry_after_s = Max(x->msgs[i]->retry_after_s, reset);
	}
}

const BeProvider be_provider_resend = {
	"resend", RESEND_BATCH_MAX, compose_resend_json, resend_setup, resend_result
};
