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
#include "storage/itemptr.h"

#include "be_buf.h"

/*
 * Cache and bucket keys: ids (at most 63 characters, never a control
 * character) joined by \x1f; rate-limit keys also start with a kind letter
 * and end with the integration's incarnation (see ratelimit.c).
 */
#define BE_KEY_LEN 192

/* what happened to one message */
typedef enum BeOutcome
{
	BE_OUT_NONE = 0,
	BE_OUT_SENT,				/* accepted by the provider */
	BE_OUT_RETRY,				/* transient: back to the queue with a delay */
	BE_OUT_DEAD					/* permanent, or out of attempts */
} BeOutcome;

struct BeProvider;

/* how an SMTP integration protects its connection (config "tls") */
typedef enum BeTlsMode
{
	BE_TLS_STARTTLS = 0,		/* the default, and any value not below */
	BE_TLS_IMPLICIT,
	BE_TLS_NONE
} BeTlsMode;

extern BeTlsMode be_tls_mode(const char *tls);

/* A provider account as a workspace uses it (cached by each sender). */
typedef struct BeIntegration
{
	char	   *workspace_id;
	char	   *integration_id;
	char	   *provider;
	char	   *shared_id;
	char	   *incarnation;	/* uuid of this integrations row's creation */
	char	   *shared_incarnation; /* and of its shared integration's */
	char	   *secret;
	/* config */
	char	   *endpoint;		/* HTTP APIs: base URL */
	char	   *host;			/* smtp */
	int			port;
	char	   *tls;			/* smtp: starttls, implicit, none */
	BeTlsMode	tls_mode;		/* the same, parsed */
	char	   *username;
	char	   *ehlo_name;
	char	   *ca_file;
	char	   *domain;			/* mailgun: the sending domain */
	char	   *region;			/* mailgun, sparkpost: us/eu; ses: AWS region */
	char	   *message_stream;	/* postmark */
	char	   *access_key_id;	/* ses */
	char	   *session_token;	/* ses: STS credentials, or NULL */
	char	   *configuration_set;	/* ses */
	char	   *api_key;		/* mailjet: the public key (secret is the private one) */
	char	   *bounce_domain;	/* smtp: VERP return path domain, or NULL (off) */
	char	   *bounce_local;	/* smtp: its local part before "+token" */
	char	   *verp_secret;	/* the workspace's secret that signs VERP tokens */
	size_t		verp_secret_len;
	double		rate;			/* this workspace's limit, 0 = none */
	double		account_rate;	/* a shared account's limit, 0 = none */
	char		account_key[BE_KEY_LEN];	/* the provider account (breaker) */
	char		pair_key[BE_KEY_LEN];	/* this workspace on it */
	TimestampTz loaded_at;
	uint64		generation;		/* cache generation it was loaded under */
	const struct BeProvider *ops;
	char	   *refused;		/* why nothing can be sent through it, or NULL */
	bool		insecure;		/* plain http, or SMTP without TLS */
} BeIntegration;

/* One claimed queue row and what became of it. */
typedef struct BeMessage
{
	ItemPointerData tid;		/* the queue row, as the claim left it */
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
	char	   *batch_key;		/* only messages with equal keys share a request */
	uint32		batch_key_hash; /* of batch_key, so unequal keys differ at once */
	/* result */
	BeOutcome	outcome;
	bool		deferred;		/* left unsent for want of time or budget: due again at once */
	bool		provider_failure;	/* counts toward the circuit breaker */
	int			retry_after_s;	/* from the provider, 0 = none */
	char	   *provider_message_id;
	char	   *error;
} BeMessage;

/* the most messages one request can carry, whatever the provider */
#define BE_BATCH_MAX 1000

/*
 * One transfer: a request carrying msgs[0..nmsgs) (one message for SMTP and
 * the single-message APIs, up to the provider's batch_max otherwise), and
 * its capture buffers (transport.c owns them).
 */
struct BeFlight;

typedef struct BeTransfer
{
	CURL	   *easy;
	struct BeFlight *flight;	/* the batch it belongs to, NULL when idle */
	BeMessage  *msg;			/* msgs[0] */
	BeMessage **msgs;
	int			nmsgs;
	struct curl_slist *headers;
	struct curl_slist *rcpt;
	curl_mime  *form;			/* multipart/form-data bodies */
	char	   *req_body;		/* a request body the provider built */
	size_t		req_len;
	size_t		upload_off;
	BeBuf		resp_headers;
	BeBuf		resp_body;
	char		errbuf[CURL_ERROR_SIZE];
	/* set by the provider's result() */
	bool		split;			/* the batch was refused whole: resend one by one */
	bool		pause;			/* the account is paused: start nothing more */
	/* set by the open-socket callback: a connection it refused, and why */
	const char *blocked;
	char		blocked_addr[64];
} BeTransfer;

/*
 * One pair's batch in flight on the sender's multi handle (transport.c).
 * The sender fills ig, msgs, nmsgs, cxt and start_by; the transport runs
 * its transfers next to other pairs' and sets done when every message has
 * an outcome or was never started (BE_OUT_NONE).
 */
typedef struct BeFlight
{
	BeIntegration *ig;
	BeMessage **msgs;
	int			nmsgs;
	MemoryContext cxt;			/* results and request bodies are allocated here */
	TimestampTz start_by;		/* no transfer starts after this (the lease) */
	/* the transport's own */
	bool	   *taken;
	BeMessage **solo;			/* refused whole: to send again one by one */
	int			nsolo;
	int			first;
	bool		more;
	int			failures;		/* transfers in a row that the provider failed */
	bool		paused;
	int			active;			/* transfers running */
	bool		done;
} BeFlight;

struct BeExec;

/*
 * One pair's batch from its claim to its record.  Everything it holds is in
 * cxt, a child of TopMemoryContext, freed once the batch is recorded: the
 * batch outlives the cycle that claimed it while its transfers run next to
 * other pairs'.  Its integration is a copy, since the cache may reload the
 * pair's entry meanwhile.
 */
typedef struct BeSendBatch
{
	MemoryContext cxt;
	char	   *workspace_id;
	char	   *integration_id;
	BeIntegration *ig;
	BeMessage **msgs;
	int			nmsgs;
	int			want;
	int			nudged;
	size_t		bytes;			/* held against sender_batch_bytes */
	/* caps (88_windows_caps.sql): the periods the claim reserved in */
	bool		capped;
	TimestampTz cap_hour;
	TimestampTz cap_day;
	TimestampTz cap_until;		/* nothing granted: the pair waits until then */
	int			parked;			/* due rows moved to their window's opening */
	BeFlight	flight;
	TimestampTz t_claim;
	TimestampTz t_claimed;
	TimestampTz t_composed;
} BeSendBatch;

/* sender_record.c: batches in flight and their record */
extern bool be_run_pair_unit(struct BeExec *ex, void (*fn) (void *), void *arg, const char *ws,
							 const char *integ, const char *what, bool *abandoned);
extern bool be_run_pair_unit_retry(struct BeExec *ex, void (*fn) (void *), void *arg,
								   const char *ws, const char *integ, const char *what,
								   bool *abandoned, int retries);

/* tries of a batch's record after a lock timeout or deadlock */
#define BE_RECORD_RETRIES 3
extern BeIntegration *be_copy_integration(const BeIntegration *src);
extern double be_batch_lease_s(int want);
extern void be_cap_add(BeSendBatch *b, int n);
extern void be_batch_launch(BeSendBatch *b);
extern BeSendBatch *be_batch_in_flight(const char *ws, const char *integ);
extern int	be_batches_in_flight(void);
extern size_t be_batch_bytes_in_flight(void);
extern int	be_batches_record_done(struct BeExec *ex, long wait_ms);
extern bool be_batches_wait(struct BeExec *ex, long wait_ms);
extern void be_batches_abort(void);

struct ComposeBroadcast;
struct ComposeCtx;
struct ComposeInput;
struct ComposeOutput;

typedef int (*BeComposeFn) (struct ComposeBroadcast *b, struct ComposeCtx *c,
							const struct ComposeInput *in, struct ComposeOutput *out);

typedef struct BeProvider
{
	const char *name;
	int			batch_max;		/* messages per request (1: no batching) */
	/* renders a message's body (after compose_render) */
	BeComposeFn compose;
	/* sets URL, headers and body on the easy handle for x->msgs */
	void		(*setup) (BeIntegration *ig, BeTransfer *x);
	/* reads the answer into each message's outcome, provider id, error */
	void		(*result) (BeIntegration *ig, BeTransfer *x, CURLcode rc, long code);
	/* optional: finishes a freshly loaded integration (sets ig->refused on bad settings) */
	void		(*load) (BeIntegration *ig);
	/* optional: most bytes of composed bodies per request (0: no bound) */
	size_t		batch_bytes;
} BeProvider;

/* providers */
extern const BeProvider be_provider_smtp;
extern const BeProvider be_provider_sendgrid;
extern const BeProvider be_provider_mailgun;
extern const BeProvider be_provider_postmark;
extern const BeProvider be_provider_ses;
extern const BeProvider be_provider_sparkpost;
extern const BeProvider be_provider_mailjet;
extern const BeProvider be_provider_resend;
extern const BeProvider *be_provider_for(const char *name);

/* provider_common.c: helpers shared by the HTTP providers */
extern char *be_api_url(BeIntegration *ig, const char *default_base, const char *path);
extern void be_set_json_post(BeTransfer *x, char *body, size_t len, bool signed_request);
extern void be_copy_outcome(BeTransfer *x);
extern bool be_batch_refused(BeTransfer *x, long code);
extern void be_request_failed(BeIntegration *ig, BeTransfer *x, CURLcode rc, long code);
extern void be_pause_account(BeTransfer *x, int seconds, const char *why);
extern char *be_json_quote(const char *s);

/* transport.c */
extern void be_transport_start(BeFlight *f);
extern void be_transport_pump(long timeout_ms);
extern int	be_transport_active(void);
extern void be_transport_abort(void);
extern void be_classify_http(BeIntegration *ig, BeTransfer *x, CURLcode rc, long code);
extern char *be_header_value(const BeBuf *headers, const char *name);
extern int	be_retry_after_seconds(const BeBuf *headers);

/* isolation.c: pairs whose work keeps failing, backed off */
extern Size be_isolation_shmem_size(void);
extern void be_isolation_shmem_init(void);
extern TimestampTz be_pair_isolated_until(const char *ws, const char *integ);
extern bool be_error_is_process_level(int sqlstate);
extern TimestampTz be_pair_failed(const char *ws, const char *integ, int sqlstate,
								  const char *what, const char *error);
extern void be_pair_succeeded(const char *ws, const char *integ);

/* ratelimit.c */
extern Size be_ratelimit_shmem_size(void);
extern void be_ratelimit_shmem_init(void);
extern int	be_rate_acquire(BeIntegration *ig, int want, int fair_share, TimestampTz *next_ok);
extern void be_rate_refund(BeIntegration *ig, int unused);
extern void be_rate_report(BeIntegration *ig, int ok, int failed, int retry_after_s);
#define BE_PAUSE_REASON_LEN 160
extern void be_rate_pause(BeIntegration *ig, int seconds, const char *reason);
extern void be_rate_keys(BeIntegration *ig);

/* guc.c (sender parameters) */
extern int	be_sender_batch_size;
extern int	be_max_connections;
extern int	be_max_connections_per_integration;
extern int	be_sender_max_batches;
extern int	be_sender_batch_bytes_kb;
extern int	be_connect_timeout_ms;
extern int	be_request_timeout_ms;
extern int	be_max_attempts;
extern int	be_retry_base_ms;
extern int	be_breaker_threshold;
extern int	be_breaker_cooldown_ms;
extern int	be_rate_buckets;
extern int	be_rate_bucket_idle_s;
extern bool be_allow_insecure_transport;
extern bool be_allow_private_endpoints;

/* endpoint.c: where the sender may connect, what a tenant may read */
#define BE_EXCERPT_MAX 200		/* bytes of a provider's own words in an error */
#define BE_ERROR_MAX 400		/* bytes of a whole error text */
struct sockaddr;
extern const char *be_sockaddr_forbidden(const struct sockaddr *sa, size_t len);
extern void be_sockaddr_text(const struct sockaddr *sa, char *buf, size_t buflen);
extern const char *be_host_forbidden(const char *host);
extern char *be_excerpt(const char *s, size_t len, size_t max);
extern char *be_sanitize_text(const char *s);

#endif							/* BE_SENDER_H */
