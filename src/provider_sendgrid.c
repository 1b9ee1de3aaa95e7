/*-------------------------------------------------------------------------
 *
 * provider_sendgrid.c
 *	  SendGrid v3 mail/send.
 *
 * Bearer auth, a JSON body (text/plain before text/html, List-Unsubscribe
 * headers, custom_args carrying our message id), 202 with the provider's
 * id in X-Message-Id.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "be_sender.h"
#include "compose.h"

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

static void
sendgrid_result(BeIntegration *ig, BeTransfer *x, CURLcode rc, long code)
{
	be_classify_http(ig, x, rc, code);
	if (x->msg->outcome == BE_OUT_SENT)
		x->msg->provider_message_id = be_header_value(&x->resp_headers, "X-Message-Id");
}

const BeProvider be_provider_sendgrid = {
	"sendgrid", 1, compose_sendgrid_json, sendgrid_setup, sendgrid_result
};
