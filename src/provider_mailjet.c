/*-------------------------------------------------------------------------
 *
 * provider_mailjet.c
 *	  Mailjet Send API v3.1: up to 50 messages per call.
 *
 * Basic auth with the public key (config api_key) and the secret key,
 * CustomID carrying our message id.  The answer lists each message's
 * Status in request order, with HTTP 400 when any failed: the successful
 * ones are sent and only the failed ones are retried or dead-lettered.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "be_sender.h"
#include "provider_json.h"

#define MAILJET_BATCH_MAX 50

static void
mailjet_setup(BeIntegration *ig, BeTransfer *x)
{
	StringInfoData b;
	int			i;

	initStringInfo(&b);
	appendStringInfoString(&b, "{\"Messages\":[");
	for (i = 0; i < x->nmsgs; i++)
	{
		if (i > 0)
			appendStringInfoChar(&b, ',');
		appendBinaryStringInfo(&b, x->msgs[i]->body, x->msgs[i]->body_len);
	}
	appendStringInfoString(&b, "]}");

	curl_easy_setopt(x->easy, CURLOPT_URL, be_api_url(ig, "https://api.mailjet.com", "/v3.1/send"));
	curl_easy_setopt(x->easy, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
	curl_easy_setopt(x->easy, CURLOPT_USERNAME, ig->api_key ? ig->api_key : "");
	curl_easy_setopt(x->easy, CURLOPT_PASSWORD, ig->secret ? ig->secret : "");
	be_set_json_post(x, b.data, b.len, false);
}

static void
mailjet_result(BeIntegration *ig, BeTransfer *x, CURLcode rc, long code)
{
	EspResult  *r;
	int			got;
	int			i;

	if (rc != CURLE_OK || !((code >= 200 && code < 300) || code == 400))
	{
		be_classify_http(ig, x, rc, code);
		be_copy_outcome(x);
		return;
	}
	r = palloc(sizeof(EspResult) * x->nmsgs);
	got = esp_mailjet_results(x->resp_body.data, x->resp_body.len, r, x->nmsgs);
	if (got == 0 && code == 400)
	{
		/* the request itself was refused, not one of its messages */
		be_request_failed(ig, x, rc, code);
		pfree(r);
		return;
	}
	for (i = 0; i < x->nmsgs; i++)
	{
		BeMessage  *m = x->msgs[i];

		if (r[i].ok == 1)
		{
			m->outcome = BE_OUT_SENT;
			m->provider_message_id = pstrdup(r[i].id);
		}
		else if (r[i].ok == 0 && (r[i].code == 429 || r[i].code >= 500))
		{
			m->outcome = BE_OUT_RETRY;
			m->error = psprintf("mailjet: temporary failure (%ld) %s", r[i].code, r[i].error);
		}
		else if (r[i].ok == 0)
		{
			m->outcome = BE_OUT_DEAD;
			m->error = psprintf("mailjet rejected the message (%ld) %s", r[i].code, r[i].error);
		}
		else
		{
			m->outcome = BE_OUT_RETRY;
			m->provider_failure = true;
			m->error = pstrdup("mailjet: no result for this message in the answer");
		}
	}
	pfree(r);
}

const BeProvider be_provider_mailjet = {
	"mailjet", MAILJET_BATCH_MAX, compose_mailjet_json, mailjet_setup, mailjet_result
};
