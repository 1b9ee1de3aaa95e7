/*-------------------------------------------------------------------------
 *
 * provider_sendgrid.c
 *	  SendGrid v3 mail/send.
 *
 * Bearer auth, a JSON body (text/plain before text/html, List-Unsubscribe
 * headers, custom_args carrying our message id), 202 with the provider's
 * id in X-Message-Id.  429 waits until X-RateLimit-Reset; 401 "Maximum
 * credits exceeded" pauses the integration.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <time.h>

#include "be_sender.h"
#include "provider_json.h"

static void
sendgrid_setup(BeIntegration *ig, BeTransfer *x)
{
	CURL	   *h = x->easy;
	const char *base = ig->endpoint ? ig->endpoint : "https://api.sendgrid.com";
	char	   *url;
	size_t		blen = strlen(base);

	while (blen > 0 && base[blen - 1] == '/')
		blen--;
	url = psprintf("%.*s/v3/mail/send", (int) blen, base);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	x->headers = curl_slist_append(NULL, psprintf("Authorization: Bearer %s", ig->secret ? ig->secret : ""));
	x->headers = curl_slist_append(x->headers, "Content-Type: application/json");
	/* no "Expect: 100-continue" round trip */
	x->headers = curl_slist_append(x->headers, "Expect:");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->headers);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) x->msg->body_len);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, x->msg->body);
}

/* X-RateLimit-Reset is a Unix time (SendGrid's rate-limits page): seconds from now */
static int
sendgrid_reset_seconds(BeTransfer *x)
{
	char	   *v = be_header_value(&x->resp_headers, "X-RateLimit-Reset");
	long		reset;
	long		now = (long) time(NULL);

	if (v == NULL || v[0] < '0' || v[0] > '9')
		return 0;
	reset = atol(v);
	/* a small number is a count of seconds, not a time */
	if (reset < 1000000000L)
		return (int) Min(Max(reset, 1), 3600);
	return (int) Min(Max(reset - now, 1), 3600);
}

/* SendGrid does not say when credits come back: probe again in an hour */
#define SENDGRID_PAUSE_S 3600

static void
sendgrid_result(BeIntegration *ig, BeTransfer *x, CURLcode rc, long code)
{
	/*
	 * 401 "Maximum credits exceeded" (the mail-send errors page) is the
	 * account's plan, not the key: a pause, not every message dead.
	 */
	if (rc == CURLE_OK && code == 401 && x->resp_body.data &&
		strstr(x->resp_body.data, "Maximum credits exceeded") != NULL)
	{
		be_pause_account(x, SENDGRID_PAUSE_S,
						 psprintf("sendgrid integration \"%s\" cannot send now: maximum credits exceeded (HTTP 401)",
								  ig->integration_id));
		return;
	}
	be_classify_http(ig, x, rc, code);
	if (rc == CURLE_OK && code == 429 && x->msg->retry_after_s == 0)
		x->msg->retry_after_s = sendgrid_reset_seconds(x);
	if (x->msg->outcome == BE_OUT_SENT)
		x->msg->provider_message_id = be_header_value(&x->resp_headers, "X-Message-Id");
}

const BeProvider be_provider_sendgrid = {
	"sendgrid", 1, compose_sendgrid_json, sendgrid_setup, sendgrid_result
};
