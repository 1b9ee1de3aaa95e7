/*-------------------------------------------------------------------------
 *
 * provider_mailgun.c
 *	  Mailgun messages API, batch sending with recipient-variables.
 *
 * Basic auth "api:KEY", a multipart form to /v3/{domain}/messages (EU
 * region: api.eu.mailgun.net).  One call carries recipients that share a
 * sender, up to 1,000 and within 16 KB of recipient-variables: subject,
 * List-Unsubscribe link and v:message_id are %recipient.x% substitutions,
 * and recipient-variables gives each recipient its own values (so nobody
 * sees the other addresses).  The bodies are either each recipient's own
 * variables too, or, for a large body that is the same for several
 * recipients but for their unsubscribe URL, the call's text and html sent
 * once with %recipient.unsubscribe_url% (compose_mailgun_vars decides and
 * says so in the batch key).  A lone recipient's large values go as the
 * plain fields.  v: variables are visible to the recipient as
 * X-Mailgun-Variables: only our message id goes there.  The id Mailgun
 * returns is the call's, shared by its recipients; events tell them apart
 * by user-variables.  A call refused whole (400, 413) is sent again one
 * recipient per call, so only the bad address fails.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "be_sender.h"
#include "provider_json.h"

#define MAILGUN_BATCH_MAX 1000
/*
 * Mailgun support states a 16 KB limit on recipient-variables; the message
 * limit is 25 MB.  The transport fills a call up to this many bytes of
 * composed values (each recipient's own, plus its address and JSON), so a
 * call stays under both; a recipient whose values alone pass it goes in a
 * call of its own, with the values as the fields themselves.
 */
#define MAILGUN_VARS_MAX (16 * 1024)

static void
add_field(curl_mime *form, const char *name, const char *value, size_t len)
{
	curl_mimepart *part = curl_mime_addpart(form);

	curl_mime_name(part, name);
	curl_mime_data(part, value, len);
}

static void
add_text(curl_mime *form, const char *name, const char *value)
{
	add_field(form, name, value, CURL_ZERO_TERMINATED);
}

static void
mailgun_setup(BeIntegration *ig, BeTransfer *x)
{
	bool		eu = ig->region && strcmp(ig->region, "eu") == 0;
	char	   *key = pstrdup(x->msg->batch_key ? x->msg->batch_key : "\n\n00");
	char	   *from = key;
	char	   *reply_to;
	char	   *flags;
	char	   *shared;
	char	   *domain;
	StringInfoData vars;
	curl_mime  *form;
	int			i;

	/*
	 * batch key: from, reply-to, then List-Unsubscribe / one-click flags,
	 * then for a shared body {"html", "text"} (compose_mailgun_vars)
	 */
	reply_to = strchr(from, '\n');
	*reply_to++ = '\0';
	flags = strchr(reply_to, '\n');
	*flags++ = '\0';
	shared = strchr(flags, '\n');
	if (shared)
		*shared++ = '\0';

	domain = curl_easy_escape(x->easy, ig->domain ? ig->domain : "", 0);
	curl_easy_setopt(x->easy, CURLOPT_URL,
					 be_api_url(ig, eu ? "https://api.eu.mailgun.net" : "https://api.mailgun.net",
								psprintf("/v3/%s/messages", domain)));
	curl_free(domain);
	curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(x->easy, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
	curl_easy_setopt(x->easy, CURLOPT_USERNAME, "api");
	curl_easy_setopt(x->easy, CURLOPT_PASSWORD, ig->secret ? ig->secret : "");
	x->headers = curl_slist_append(NULL, "Expect:");
	curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);

	form = curl_mime_init(x->easy);
	x->form = form;
	add_text(form, "from", from);
	if (reply_to[0])
		add_text(form, "h:Reply-To", reply_to);
	if (x->nmsgs == 1 && shared == NULL)
	{
		/*
		 * One recipient: its values are the fields themselves, so a large
		 * message never needs recipient-variables (bounded at 16 KB).
		 */
		BeMessage  *m = x->msg;
		size_t		cap = m->body_len + 1;
		char	   *val = palloc(cap);

		add_text(form, "to", m->email);
		esp_json_member(m->body, m->body_len, "subject", val, cap);
		add_text(form, "subject", val);
		esp_json_member(m->body, m->body_len, "text", val, cap);
		add_text(form, "text", val);
		esp_json_member(m->body, m->body_len, "html", val, cap);
		add_text(form, "html", val);
		esp_json_member(m->body, m->body_len, "list_unsubscribe", val, cap);
		if (flags[0] == '1')
			add_text(form, "h:List-Unsubscribe", val);
		if (flags[0] && flags[1] == '1')
			add_text(form, "h:List-Unsubscribe-Post", "List-Unsubscribe=One-Click");
		esp_json_member(m->body, m->body_len, "message_id", val, cap);
		add_text(form, "v:message_id", val);
		pfree(val);
		curl_easy_setopt(x->easy, CURLOPT_MIMEPOST, form);
		return;
	}
	initStringInfo(&vars);
	appendStringInfoChar(&vars, '{');
	for (i = 0; i < x->nmsgs; i++)
	{
		BeMessage  *m = x->msgs[i];

		add_text(form, "to", m->email);
		if (i > 0)
			appendStringInfoChar(&vars, ',');
		appendStringInfo(&vars, "%s:", be_json_quote(m->email));
		appendBinaryStringInfo(&vars, m->body, m->body_len);
	}
	appendStringInfoChar(&vars, '}');
	add_text(form, "subject", "%recipient.subject%");
	if (shared)
	{
		/* the body once, each recipient's unsubscribe URL substituted */
		size_t		len = strlen(shared);
		char	   *val = palloc(len + 1);

		esp_json_member(shared, len, "text", val, len + 1);
		if (val[0])
			add_text(form, "text", val);
		esp_json_member(shared, len, "html", val, len + 1);
		add_text(form, "html", val);
	}
	else
	{
		add_text(form, "text", "%recipient.text%");
		add_text(form, "html", "%recipient.html%");
	}
	if (flags[0] == '1')
		add_text(form, "h:List-Unsubscribe", "%recipient.list_unsubscribe%");
	if (flags[0] && flags[1] == '1')
		add_text(form, "h:List-Unsubscribe-Post", "List-Unsubscribe=One-Click");
	add_text(form, "v:message_id", "%recipient.message_id%");
	add_field(form, "recipient-variables", vars.data, vars.len);
	pfree(vars.data);
	curl_easy_setopt(x->easy, CURLOPT_MIMEPOST, form);
}

static void
mailgun_result(BeIntegration *ig, BeTransfer *x, CURLcode rc, long code)
{
	char		id[160];

	if (rc == CURLE_OK && code == 404)
	{
		/* "can be temporal" (a domain being set up): retried */
		x->msg->outcome = BE_OUT_RETRY;
		x->msg->error = psprintf("mailgun: domain \"%s\" not found (HTTP 404)", ig->domain ? ig->domain : "");
		be_copy_outcome(x);
		return;
	}
	if (rc != CURLE_OK || code < 200 || code >= 300)
	{
		be_request_failed(ig, x, rc, code);
		return;
	}
	x->msg->outcome = BE_OUT_SENT;
	if (esp_json_member(x->resp_body.data, x->resp_body.len, "id", id, sizeof(id)) == 0)
		x->msg->provider_message_id = pstrdup(id);
	be_copy_outcome(x);
}

const BeProvider be_provider_mailgun = {
	"mailgun", MAILGUN_BATCH_MAX, compose_mailgun_vars, mailgun_setup, mailgun_result, NULL,
	MAILGUN_VARS_MAX - 2
};
