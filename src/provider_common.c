/*-------------------------------------------------------------------------
 *
 * provider_common.c
 *	  The provider registry and what the HTTP providers share: URLs, JSON
 *	  POST bodies, joining several messages into one batch request, and
 *	  spreading one answer over every message a request carried.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/json.h"

#include "be_sender.h"

const BeProvider *
be_provider_for(const char *name)
{
	static const BeProvider *const all[] = {
		&be_provider_smtp, &be_provider_sendgrid, &be_provider_mailgun,
		&be_provider_postmark, &be_provider_ses, &be_provider_sparkpost,
		&be_provider_mailjet, &be_provider_resend
	};
	int			i;

	for (i = 0; i < lengthof(all); i++)
		if (strcmp(name, all[i]->name) == 0)
			return all[i];
	return NULL;
}

/* an SMTP integration's "tls" setting; anything else means STARTTLS */
BeTlsMode
be_tls_mode(const char *tls)
{
	if (tls == NULL)
		return BE_TLS_STARTTLS;
	if (strcmp(tls, "implicit") == 0)
		return BE_TLS_IMPLICIT;
	if (strcmp(tls, "none") == 0)
		return BE_TLS_NONE;
	return BE_TLS_STARTTLS;
}

/* the integration's endpoint (a mock, a region) or the provider's, plus path */
char *
be_api_url(BeIntegration *ig, const char *default_base, const char *path)
{
	const char *base = ig->endpoint ? ig->endpoint : default_base;
	size_t		blen = strlen(base);

	while (blen > 0 && base[blen - 1] == '/')
		blen--;
	return psprintf("%.*s%s", (int) blen, base, path);
}

/*
 * POSTs body as JSON; x->headers already holds the provider's auth header.
 * Signed requests keep curl's default Expect handling: libcurl would sign
 * a removed "Expect:" header as if it were sent.
 */
void
be_set_json_post(BeTransfer *x, char *body, size_t len, bool signed_request)
{
	CURL	   *h = x->easy;

	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	x->headers = curl_slist_append(x->headers, "Content-Type: application/json");
	/* no "Expect: 100-continue" round trip */
	if (!signed_request)
		x->headers = curl_slist_append(x->headers, "Expect:");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->headers);
	x->req_body = body;
	x->req_len = len;
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
}

/* the request's own outcome (in msgs[0]) is every message's */
void
be_copy_outcome(BeTransfer *x)
{
	BeMessage  *m0 = x->msgs[0];
	int			i;

	for (i = 1; i < x->nmsgs; i++)
	{
		BeMessage  *m = x->msgs[i];

		m->outcome = m0->outcome;
		m->provider_failure = m0->provider_failure;
		m->retry_after_s = m0->retry_after_s;
		m->error = m0->error;
		m->provider_message_id = m0->provider_message_id;
	}
}

/*
 * A batch rejected whole as invalid (400/422) or too large (413) without
 * saying which message was at fault: send each message again on its own,
 * so only the bad one fails.
 */
bool
be_batch_refused(BeTransfer *x, long code)
{
	if (x->nmsgs > 1 && (code == 400 || code == 413 || code == 422))
	{
		x->split = true;
		return true;
	}
	return false;
}

/*
 * The request failed as a whole (no answer, or a status that is not a
 * success): a refused batch is split to go again one by one, anything
 * else is classified once and every message of the request shares it.
 */
void
be_request_failed(BeIntegration *ig, BeTransfer *x, CURLcode rc, long code)
{
	if (rc == CURLE_OK && be_batch_refused(x, code))
		return;
	be_classify_http(ig, x, rc, code);
	be_copy_outcome(x);
}

/*
 * The account cannot send now (a quota used up, sending disabled): a pause
 * of the integration, not these messages' failure.  Nothing more is
 * started, and every message goes back to the queue without spending an
 * attempt; rate_limits() shows the pause and why until it ends, or until
 * an operator calls resume_integration().
 */
void
be_pause_account(BeTransfer *x, int seconds, const char *why)
{
	int			i;

	x->split = false;
	x->pause = true;
	for (i = 0; i < x->nmsgs; i++)
	{
		BeMessage  *m = x->msgs[i];

		m->outcome = BE_OUT_NONE;
		m->provider_failure = false;
		m->provider_message_id = NULL;
		m->retry_after_s = Max(seconds, 1);
		m->error = pstrdup(why);
	}
}

/* s as a JSON string literal, quotes included */
char *
be_json_quote(const char *s)
{
	StringInfoData b;

	initStringInfo(&b);
	escape_json(&b, s);
	return b.data;
}
