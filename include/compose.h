/*-------------------------------------------------------------------------
 *
 * compose.h
 *	  Turning a queue row into a message: the template data, rendering,
 *	  the MIME message and the providers' JSON bodies.
 *
 * Pure C (json-c, no PostgreSQL headers: json-c's json_object type clashes
 * with PostgreSQL's json_object() function), so the sender's PostgreSQL
 * code hands plain strings in and gets bytes out.
 *
 *-------------------------------------------------------------------------
 */
#ifndef COMPOSE_H
#define COMPOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "be_buf.h"
#include "tmpl.h"

#define COMPOSE_MAX_VARIATIONS 8

typedef struct ComposeBroadcast ComposeBroadcast;
typedef struct ComposeCtx ComposeCtx;

/* one pinned template version, as loaded by the sender */
typedef struct ComposeTemplateSrc
{
	const char *template_id;
	int			version;
	const char *subject;
	const char *html;
	const char *text_body;		/* NULL: derived from the HTML */
	const char *from_email;
	const char *from_name;
	const char *reply_to;
	const char *snippets_json;	/* {"name": source} pinned; NULL: none */
} ComposeTemplateSrc;

typedef struct ComposeBroadcastSrc
{
	const char *workspace_id;
	const char *workspace_name;
	const char *workspace_timezone;	/* templates' workspace.timezone */
	const char *broadcast_id;
	const char *broadcast_name;
	const char *sending_domain; /* Message-ID right part; NULL: from's domain */
	const char *unsub_base_url; /* NULL: no List-Unsubscribe URL */
	const char *unsub_mailto;
	const char *track_base_url; /* NULL: no first-party tracking */
	const char *confirm_base_url;	/* non-NULL: a double opt-in confirmation */
	const uint8_t *secret;
	size_t		secret_len;
	const char *lists_json;		/* {"list_id": "List name", ...} */
	int			nvariations;
	ComposeTemplateSrc variations[COMPOSE_MAX_VARIATIONS];
} ComposeBroadcastSrc;

/* One recipient. */
typedef struct ComposeInput
{
	const char *email;
	const char *list_id;
	const char *message_id;
	const char *contact_json;	/* the contact's template data, JSON text */
	int			variation;
	time_t		date;
} ComposeInput;

/* The rendered message; buffers are owned by the ComposeCtx and reused. */
typedef struct ComposeOutput
{
	const char *subject;
	const char *html;
	size_t		html_len;
	const char *text;
	size_t		text_len;
	const char *from_email;
	const char *from_name;
	const char *reply_to;
	const char *unsubscribe_url;	/* "" when none */
	const char *list_unsubscribe;	/* header value, "" when none */
	const char *template_id;
	int			template_version;
	const char *body;			/* MIME message or provider JSON */
	size_t		body_len;
	const char *batch_key;		/* what must be equal to share a request, or NULL */
	char		error[256];
} ComposeOutput;

/* Compiles every variation once; NULL with *errbuf set on error. */
extern ComposeBroadcast *compose_broadcast_create(const ComposeBroadcastSrc *src,
												  char *errbuf, size_t errlen);
extern void compose_broadcast_free(ComposeBroadcast *b);

extern ComposeCtx *compose_ctx_create(void);
extern void compose_ctx_free(ComposeCtx *c);
/* how the "date" filter resolves zone names (see tmpl_ctx_set_tz_resolver) */
extern void compose_ctx_set_tz_resolver(ComposeCtx *c, TmplTzResolver fn, void *arg);

/* Renders subject, HTML and text; 0 on success, -1 with out->error set. */
extern int	compose_render(ComposeBroadcast *b, ComposeCtx *c, const ComposeInput *in,
						   ComposeOutput *out);

/* After compose_render: the full RFC 5322 message in out->body. */
extern int	compose_mime(ComposeBroadcast *b, ComposeCtx *c, const ComposeInput *in,
						 ComposeOutput *out);

/* the HTTP providers' bodies: provider_json.h */

#endif							/* COMPOSE_H */
