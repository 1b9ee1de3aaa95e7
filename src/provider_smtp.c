/*-------------------------------------------------------------------------
 *
 * provider_smtp.c
 *	  Sending through an SMTP server with libcurl.
 *
 * STARTTLS or implicit TLS, AUTH when a username is configured, and the
 * EHLO name from the config (libcurl takes it from the URL's path).  The
 * multi handle keeps the session open, so one connection carries many
 * messages.  The server's queue id is read from its final reply; a 4xx
 * reply is retried and a 5xx reply is permanent.  With the config key
 * bounce_domain, each message's envelope sender is a VERP address that
 * names the message (see verp_return_path).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "be_sender.h"
#include "bounce.h"
#include "compose.h"

/*
 * With a bounce domain, the envelope sender is <local>+<token>@<domain>: a
 * bounce names the message it is about, signed with the workspace's secret
 * (src/bounce.c), so record_bounce_message() needs no guesswork.  NULL when
 * VERP is off.
 */
static char *
verp_return_path(BeIntegration *ig, BeMessage *m)
{
	uint8_t		id[16];
	char		token[BOUNCE_TOKEN_LEN + 1];

	if (ig->bounce_domain == NULL || ig->verp_secret == NULL || ig->verp_secret_len == 0)
		return NULL;
	/* queue rows' message ids are uuids (the column's type) */
	if (!bounce_uuid_parse(m->message_id, id))
	{
		Assert(false);
		return NULL;
	}
	bounce_verp_token((const uint8_t *) ig->verp_secret, ig->verp_secret_len, ig->workspace_id,
					  id, token);
	return psprintf("<%s+%s@%s>", ig->bounce_local ? ig->bounce_local : "bounces", token,
					ig->bounce_domain);
}

static void
smtp_setup(BeIntegration *ig, BeTransfer *x)
{
	CURL	   *h = x->easy;
	bool		implicit = ig->tls_mode == BE_TLS_IMPLICIT;
	bool		none = ig->tls_mode == BE_TLS_NONE;
	char	   *url;
	char	   *from;
	char	   *to;

	url = psprintf("%s://%s:%d/%s", implicit ? "smtps" : "smtp", ig->host,
				   ig->port > 0 ? ig->port : (implicit ? 465 : 587),
				   ig->ehlo_name ? ig->ehlo_name : "localhost");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(h, CURLOPT_USE_SSL, none ? (long) CURLUSESSL_NONE : (long) CURLUSESSL_ALL);
	if (ig->username)
	{
		curl_easy_setopt(h, CURLOPT_USERNAME, ig->username);
		curl_easy_setopt(h, CURLOPT_PASSWORD, ig->secret ? ig->secret : "");
	}
	from = verp_return_path(ig, x->msg);
	if (from == NULL)
		from = psprintf("<%s>", x->msg->from_email);
	to = psprintf("<%s>", x->msg->email);
	curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
	x->rcpt = curl_slist_append(NULL, to);
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT, x->rcpt);
	curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t) x->msg->body_len);
}

/* the last reply line, e.g. "250 2.0.0 Ok: queued as 4F2A1" */
static char *
last_reply(BeTransfer *x)
{
	const char *data = x->resp_headers.data;
	const char *start;
	const char *end;

	if (data == NULL || x->resp_headers.len == 0)
		return NULL;
	end = data + x->resp_headers.len;
	while (end > data && (end[-1] == '\n' || end[-1] == '\r'))
		end--;
	start = end;
	while (start > data && start[-1] != '\n')
		start--;
	/* the server's words go into errors and history: bounded and printable */
	return be_excerpt(start, end - start, BE_EXCERPT_MAX);
}

static void
smtp_result(BeIntegration *ig, BeTransfer *x, CURLcode rc, long code)
{
	BeMessage  *m = x->msg;
	char	   *reply = last_reply(x);

	if (rc == CURLE_OK)
	{
		const char *q = reply ? strstr(reply, "queued as ") : NULL;

		m->outcome = BE_OUT_SENT;
		m->provider_message_id = q ? pstrdup(q + 10) : reply;
		return;
	}
	if (code >= 500 && code < 600)
	{
		m->outcome = BE_OUT_DEAD;
		if (code == 535 || code == 530)
			m->error = psprintf("smtp integration \"%s\" was refused: authentication failed (%ld)",
								ig->integration_id, code);
		else
			m->error = psprintf("SMTP %ld: %s", code, reply ? reply : curl_easy_strerror(rc));
	}
	else
	{
		/* 4xx, or no reply at all (connection, TLS, timeout) */
		m->outcome = BE_OUT_RETRY;
		m->provider_failure = (code < 400);
		m->error = code >= 400 ? psprintf("SMTP %ld: %s", code, reply ? reply : "")
			: psprintf("%s: %s", curl_easy_strerror(rc), x->errbuf);
	}
}

const BeProvider be_provider_smtp = {
	"smtp", 1, compose_mime, smtp_setup, smtp_result
};
