/*-------------------------------------------------------------------------
 *
 * provider_ses.c
 *	  Amazon SES v2 SendEmail with raw MIME content.
 *
 * Raw content keeps our List-Unsubscribe headers as built; SES replaces
 * the Message-ID, so the MessageId it returns is what history keeps, and
 * our message id travels as an EmailTag (and the configuration set, if
 * any, routes the events).  Requests are signed by libcurl (SigV4,
 * service "ses"), with the STS session token when the credentials have
 * one.  SES's bulk endpoint only sends stored templates, so every message
 * is its own request; max_connections of them run at once.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/base64.h"
#include "lib/stringinfo.h"

#include "be_sender.h"
#include "compose.h"
#include "esp_json.h"

/* the 24-hour quota frees up as its window moves: probe again in an hour */
#define SES_QUOTA_PAUSE_S 3600

static void
ses_setup(BeIntegration *ig, BeTransfer *x)
{
	BeMessage  *m = x->msg;
	const char *region = ig->region ? ig->region : "us-east-1";
	StringInfoData b;
	int			enc_len = pg_b64_enc_len(m->body_len);
	char	   *enc = palloc(enc_len + 1);
	int			n;

	n = pg_b64_encode(m->body, m->body_len, enc, enc_len);
	enc[Max(n, 0)] = '\0';

	initStringInfo(&b);
	appendStringInfo(&b, "{\"Destination\":{\"ToAddresses\":[%s]},", be_json_quote(m->email));
	appendStringInfo(&b, "\"Content\":{\"Raw\":{\"Data\":\"%s\"}},", enc);
	appendStringInfo(&b, "\"EmailTags\":[{\"Name\":\"message_id\",\"Value\":%s}]",
					 be_json_quote(m->message_id));
	if (ig->configuration_set)
		appendStringInfo(&b, ",\"ConfigurationSetName\":%s", be_json_quote(ig->configuration_set));
	appendStringInfoChar(&b, '}');
	pfree(enc);

	curl_easy_setopt(x->easy, CURLOPT_URL,
					 be_api_url(ig, psprintf("https://email.%s.amazonaws.com", region),
								"/v2/email/outbound-emails"));
	curl_easy_setopt(x->easy, CURLOPT_AWS_SIGV4, psprintf("aws:amz:%s:ses", region));
	curl_easy_setopt(x->easy, CURLOPT_USERNAME, ig->access_key_id ? ig->access_key_id : "");
	curl_easy_setopt(x->easy, CURLOPT_PASSWORD, ig->secret ? ig->secret : "");
	if (ig->session_token)
		x->headers = curl_slist_append(NULL, psprintf("X-Amz-Security-Token: %s", ig->session_token));
	be_set_json_post(x, b.data, b.len, true);
}

/* the AWS error name, from x-amzn-ErrorType ("Name:" or "Name:detail") or the body */
static char *
error_type(BeTransfer *x)
{
	char	   *t = be_header_value(&x->resp_headers, "x-amzn-ErrorType");
	char		buf[128];

	if (t == NULL)
	{
		if (esp_json_member(x->resp_body.data, x->resp_body.len, "__type", buf, sizeof(buf)) == 0 ||
			esp_json_member(x->resp_body.data, x->resp_body.len, "type", buf, sizeof(buf)) == 0)
			t = pstrdup(buf);
		else
			return pstrdup("");
	}
	t[strcspn(t, ":")] = '\0';
	if (strchr(t, '#'))
		t = strchr(t, '#') + 1;
	return t;
}

static void
ses_result(BeIntegration *ig, BeTransfer *x, CURLcode rc, long code)
{
	BeMessage  *m = x->msg;
	char	   *type;
	char		msg[256];

	if (rc != CURLE_OK)
	{
		be_classify_http(ig, x, rc, code);
		return;
	}
	if (code >= 200 && code < 300)
	{
		char		id[160];

		m->outcome = BE_OUT_SENT;
		if (esp_json_member(x->resp_body.data, x->resp_body.len, "MessageId", id, sizeof(id)) == 0)
			m->provider_message_id = pstrdup(id);
		return;
	}
	type = error_type(x);
	if (esp_json_member(x->resp_body.data, x->resp_body.len, "message", msg, sizeof(msg)) != 0 &&
		esp_json_member(x->resp_body.data, x->resp_body.len, "Message", msg, sizeof(msg)) != 0)
		msg[0] = '\0';
	/* the first line says it (signature errors go on with the canonical request) */
	msg[strcspn(msg, "\r\n")] = '\0';

	if (strcmp(type, "LimitExceededException") == 0 || strstr(msg, "Daily message quota exceeded"))
	{
		/*
		 * The 24-hour sending quota is used up (manage-sending-quotas-errors):
		 * the account's state, not this message's; it frees up as the
		 * window moves, so probe again in an hour, spending no attempt.
		 */
		be_pause_account(x, Max(SES_QUOTA_PAUSE_S, be_retry_after_seconds(&x->resp_headers)),
						 psprintf("ses integration \"%s\" cannot send now: the sending quota is used up (%s): %s",
								  ig->integration_id, type[0] ? type : "HTTP 429", msg));
	}
	else if (code == 429 || strstr(type, "Throttl") || strcmp(type, "TooManyRequestsException") == 0)
	{
		/* over the send rate: SES drops nothing we retry */
		m->outcome = BE_OUT_RETRY;
		m->retry_after_s = be_retry_after_seconds(&x->resp_headers);
		m->error = psprintf("throttled by ses (%s): %s", type[0] ? type : "HTTP 429", msg);
	}
	else if (strcmp(type, "SendingPausedException") == 0 || strcmp(type, "AccountSuspendedException") == 0)
	{
		/* the account cannot send now: a pause, not this message's failure */
		m->outcome = BE_OUT_NONE;
		m->retry_after_s = Max(60, be_retry_after_seconds(&x->resp_headers));
		m->error = psprintf("ses integration \"%s\" cannot send now (%s): %s",
							ig->integration_id, type, msg);
		x->pause = true;
	}
	else if (code == 401 || code == 403 || strstr(type, "Signature") || strstr(type, "Token") ||
			 strstr(type, "UnrecognizedClient") || strstr(type, "AccessDenied"))
	{
		m->outcome = BE_OUT_DEAD;
		m->error = psprintf("ses integration \"%s\" was refused: the credentials are not accepted (%s, HTTP %ld): %s",
							ig->integration_id, type[0] ? type : "auth", code, msg);
	}
	else if (code >= 500)
		be_classify_http(ig, x, rc, code);
	else
	{
		m->outcome = BE_OUT_DEAD;
		m->error = psprintf("ses rejected the message (%s, HTTP %ld): %s",
							type[0] ? type : "error", code, msg);
	}
}

/*
 * SES temporary credentials come as {"secret_access_key": ..., "session_token": ...};
 * JSON that does not parse refuses the integration rather than failing the cycle.
 */
static void
ses_load(BeIntegration *ig)
{
	const char *json = ig->secret;
	size_t		len;
	char	   *key;
	char	   *token;

	if (json == NULL || json[strspn(json, " \t\r\n")] != '{')
		return;				/* a plain secret access key */
	len = strlen(json);
	key = palloc(len + 1);
	token = palloc(len + 1);

	if (esp_json_member(json, len, "secret_access_key", key, len + 1) != 0 || key[0] == '\0')
	{
		ig->refused = psprintf("ses integration \"%s\" has a JSON secret without a valid \"secret_access_key\"",
							   ig->integration_id);
		return;
	}
	ig->secret = key;
	if (esp_json_member(json, len, "session_token", token, len + 1) == 0 && token[0] != '\0')
		ig->session_token = token;
}

const BeProvider be_provider_ses = {
	"ses", 1, compose_mime, ses_setup, ses_result, ses_load
};
