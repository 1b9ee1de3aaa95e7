/*-------------------------------------------------------------------------
 *
 * provider_sparkpost.c
 *	  SparkPost transmissions: many recipients per call.
 *
 * The raw API key in Authorization.  A transmission's content is the
 * real rendered message, with open and click tracking on: SparkPost tracks
 * no link inside a substitution value, so the HTML is never one.  The
 * content is the batch key (compose.c), so recipients share a transmission
 * only when their whole message is the same; each recipient's metadata
 * carries our message id (rcpt_meta in events), and every recipient of a
 * transmission shares its id.
 *
 * Rejections: rcpt_to_errors entries name no recipient (SparkPost's own
 * examples carry none), so they are never matched to an address.  A
 * transmission of one recipient, the usual case, is unambiguous; all
 * rejected or none rejected is too.  A part-rejected transmission of
 * several identical messages is recorded as sent, and SparkPost's
 * per-recipient policy_rejection events (with rcpt_meta) mark the
 * rejected ones failed and suppressed.
 *
 * HTTP 420 (the account's sending limit) is a pause: nothing more is
 * started, and the untried and refused messages go back to the queue
 * without spending an attempt.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "be_sender.h"
#include "provider_json.h"

/* SparkPost suggests 2,000-10,000 recipients per call; a claimed batch caps it */
#define SPARKPOST_BATCH_MAX 1000

static void
sparkpost_setup(BeIntegration *ig, BeTransfer *x)
{
	bool		eu = ig->region && strcmp(ig->region, "eu") == 0;
	StringInfoData b;
	char	   *path;
	int			i;

	initStringInfo(&b);
	appendStringInfoString(&b, "{\"options\":{\"transactional\":false,\"open_tracking\":true,\"click_tracking\":true},\"content\":");
	appendStringInfoString(&b, x->msg->batch_key ? x->msg->batch_key : "{}");
	appendStringInfoString(&b, ",\"recipients\":[");
	for (i = 0; i < x->nmsgs; i++)
	{
		if (i > 0)
			appendStringInfoChar(&b, ',');
		appendBinaryStringInfo(&b, x->msgs[i]->body, x->msgs[i]->body_len);
	}
	appendStringInfoString(&b, "]}");

	path = psprintf("/api/v1/transmissions?num_rcpt_errors=%d", x->nmsgs);
	curl_easy_setopt(x->easy, CURLOPT_URL,
					 be_api_url(ig, eu ? "https://api.eu.sparkpost.com" : "https://api.sparkpost.com", path));
	x->headers = curl_slist_append(NULL, psprintf("Authorization: %s", ig->secret ? ig->secret : ""));
	be_set_json_post(x, b.data, b.len, false);
}

static void
sparkpost_result(BeIntegration *ig, BeTransfer *x, CURLcode rc, long code)
{
	char		id[160];
	char	   *errors;
	long		accepted;
	long		rejected;
	int			i;

	if (rc == CURLE_OK && code == 420)
	{
		/* the sending limit: a pause, not these messages' failure */
		int			wait = be_retry_after_seconds(&x->resp_headers);

		for (i = 0; i < x->nmsgs; i++)
		{
			x->msgs[i]->outcome = BE_OUT_NONE;
			x->msgs[i]->retry_after_s = wait > 0 ? wait : 60;
			x->msgs[i]->error = pstrdup("sparkpost: the account's sending limit is reached (HTTP 420); paused");
		}
		x->pause = true;
		return;
	}
	if (rc != CURLE_OK || code < 200 || code >= 300)
	{
		be_request_failed(ig, x, rc, code);
		return;
	}

	errors = palloc(16 * 1024);
	if (esp_sparkpost_result(x->resp_body.data, x->resp_body.len, id, sizeof(id),
							 &accepted, &rejected, errors, 16 * 1024) != 0)
	{
		/* a 2xx without results: the request was taken, its outcome unknown */
		id[0] = '\0';
		accepted = x->nmsgs;
		rejected = 0;
	}
	for (i = 0; i < x->nmsgs; i++)
	{
		BeMessage  *m = x->msgs[i];

		if (rejected > 0 && accepted == 0)
		{
			/* every recipient refused: each message's own failure */
			m->outcome = BE_OUT_DEAD;
			m->error = psprintf("sparkpost rejected the recipient: %.*s",
								(int) strcspn(errors, "\n"), errors);
		}
		else
		{
			m->outcome = BE_OUT_SENT;
			m->provider_message_id = id[0] ? pstrdup(id) : NULL;
			if (rejected > 0)
				m->error = psprintf("sparkpost rejected %ld of the %d recipients of this transmission; its policy_rejection events name them",
									rejected, x->nmsgs);
		}
	}
	pfree(errors);
}

const BeProvider be_provider_sparkpost = {
	"sparkpost", SPARKPOST_BATCH_MAX, compose_sparkpost_json, sparkpost_setup, sparkpost_result
};
