/*-------------------------------------------------------------------------
 *
 * be_sender.h
 *	  The sender: queue claims, rate limits, providers and transport.
 *
 *-------------------------------------------------------------------------
 */
#ifndef BE_SENDER_H
#define BE_SENDER_H

#include "postgres.h"

#include <curl/curl.h>

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

#include "be_buf.h"

#define BE_KEY_LEN 160

/* what happened to one message */
typedef enum BeOutcome
{
	BE_OUT_NONE = 0,
	BE_OUT_SENT,				/* accepted by the provider */
	BE_OUT_RETRY,				/* transient: back to the queue with a delay */
	BE_OUT_DEAD					/* permanent, or out of attempts */
} BeOutcome;

struct BeProvider;

/* A provider account as a workspace uses it (cached by each sender). */
typedef struct BeIntegration
{
	char	   *workspace_id;
	char	   *integration_id;
	char	   *provider;
	char	   *shared_id;
	char	   *secret;
	/* config */
	char	   *endpoint;		/* HTTP APIs: base URL */
	char	   *host;			/* smtp */
	int			port;
	char	   *tls;			/* smtp: starttls, implicit, none */
	char	   *username;
	char	   *ehlo_name;
	char	   *ca_file;
	double		rate;			/* this workspace's limit, 0 = none */
	double		account_rate;	/* a shared account's limit, 0 = none */
	char		account_key[BE_KEY_LEN];	/* the provider account (breaker) */
	char		pair_key[BE_KEY_LEN];	/* this workspace on it */
	TimestampTz loaded_at;
	const struct BeProvider *ops;
	char	   *refused;		/* why nothing can be sent through it, or NULL */
	bool		insecure;		/* plain http, or SMTP without TLS */
} BeIntegration;

/* One claimed queue row and what became of it. */
typedef struct BeMessage
{
	char	   *broadcast_id;
	char	   *email;
	char	   *list_id;
	char	   *message_id;
	int			variation;
	int			attempts;		/* including this one */
	char	   *contact_json;
	/* composed */
	char	   *body;
	size_t		body_len;
	char	   *from_email;
	char	   *template_id;
	int			template_version;
	/* result */
	BeOutcome	outcome;
	bool		provider_failure;	/* counts toward the circuit breaker */
	int			retry_after_s;	/* from the provider, 0 = none */
	char	   *provider_message_id;
	char	   *error;
} BeMessage;

/* One transfer's capture buffers (transport.c owns them). */
typedef struct BeTransfer
{
	CURL	   *easy;
	BeMessage  *msg;
	struct curl_slist *headers;
	struct curl_slist *rcpt;
	size_t		upload_off;
	BeBuf		resp_headers;
	BeBuf		resp_body;
	char		errbuf[CURL_ERROR_SIZE];
} BeTransfer;

typedef struct BeProvider
{
	const char *name;
	bool		needs_mime;		/* body is the RFC 5322 message */
	/* sets URL, headers and body on the easy handle */
	void		(*setup) (BeIntegration *ig, BeTransfer *x);
	/* reads the answer into msg->outcome, provider id, error */
	void		(*result) (BeIntegration *ig, BeTransfer *x, CURLcode rc, long code);
} BeProvider;

/* providers */
extern const BeProvider be_provider_smtp;
extern const BeProvider be_provider_sendgrid;
extern const BeProvider *be_provider_for(const char *name);

/* transport.c */
extern void be_transport_send(BeIntegration *ig, BeMessage **msgs, int n);
extern void be_classify_http(BeIntegration *ig, BeTransfer *x, CURLcode rc, long code);
extern char *be_header_value(const BeBuf *headers, const char *name);

/* ratelimit.c */
extern Size be_ratelimit_shmem_size(void);
extern void be_ratelimit_shmem_init(void);
extern int	be_rate_acquire(BeIntegration *ig, int want, int fair_share, TimestampTz *next_ok);
extern void be_rate_refund(BeIntegration *ig, int unused);
extern void be_rate_report(BeIntegration *ig, int ok, int failed, int retry_after_s);

/* guc.c (sender parameters) */
extern int	be_sender_batch_size;
extern int	be_max_connections;
extern int	be_connect_timeout_ms;
extern int	be_request_timeout_ms;
extern int	be_max_attempts;
extern int	be_retry_base_ms;
extern int	be_breaker_threshold;
extern int	be_breaker_cooldown_ms;
extern bool be_allow_insecure_transport;

#endif							/* BE_SENDER_H */
