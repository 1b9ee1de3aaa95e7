/*-------------------------------------------------------------------------
 *
 * provider_json.h
 *	  The pure half of each HTTP provider: its request body and its answer.
 *
 * A provider X lives in two files side by side:
 *	src/provider_X.c		the BeProvider (be_sender.h): URL, headers and
 *							batching of a request, the reading of its answer
 *							into each message's outcome, the config hook
 *	src/provider_X_json.c	pure C with json-c (no PostgreSQL headers, so
 *							the unit tests link it): compose_X, one message's
 *							body after compose_render, and esp_X_results,
 *							the provider's JSON answer read into EspResults
 * Its webhook normaliser is broadcast._events_X() in SQL (see
 * docs/providers/README.md, "Adding a provider").
 *
 * This header gives both halves what they share: the composers' kit (from
 * compose.c) and the answer readers' kit (from esp_json.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PROVIDER_JSON_H
#define PROVIDER_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <json.h>

#include "be_buf.h"
#include "compose.h"
#include "esp_json.h"

/* ---- composing (compose.c) ---- */

/* checked from/reply-to/to addresses and the subject as one clean line; -1 with out->error */
extern int	compose_esp_begin(ComposeCtx *c, const ComposeInput *in, ComposeOutput *out);
/* the clean subject, after compose_esp_begin */
extern const char *compose_esp_subject(ComposeCtx *c);
extern size_t compose_esp_subject_len(ComposeCtx *c);
/* whether List-Unsubscribe-Post goes with List-Unsubscribe (an https URL) */
extern bool compose_esp_one_click(const ComposeOutput *out);
/* "Name" <email> into b */
extern void compose_esp_address(BeBuf *b, const char *email, const char *name);
/* a JSON string ("" for NULL) */
extern json_object *compose_esp_str(const char *s);
/* {"List-Unsubscribe": ..., "List-Unsubscribe-Post": ...}, or NULL without one */
extern json_object *compose_esp_headers(const ComposeOutput *out);
/* root serialised as out->body (root is freed); -1 with out->error */
extern int	compose_esp_finish(ComposeCtx *c, json_object *root, ComposeOutput *out);
/* the body buffer, and the batch-key buffer (out->batch_key may point into it) */
extern BeBuf *compose_esp_body(ComposeCtx *c);
extern BeBuf *compose_esp_key(ComposeCtx *c);
extern const char *compose_buf_str(BeBuf *b);
/* s[0..len) as a JSON string literal; {"email": ..., "name": ...} */
extern void compose_json_put_str(BeBuf *b, const char *s, size_t len);
extern void compose_json_put_address(BeBuf *b, const char *email, const char *name);

/* ---- reading answers (esp_json.c) ---- */

/* the parsed body, or NULL (json_object_put it) */
extern json_object *esp_parse(const char *body, size_t len);
/* o's member key, or NULL when o is not an object or has none */
extern json_object *esp_member(json_object *o, const char *key);
/* v as a string into out ("" for NULL or JSON null) */
extern void esp_copy_str(json_object *v, char *out, size_t outlen);
/* every result "not in the answer" */
extern void esp_clear(EspResult *r, int n);

/* ---- each provider's half (src/provider_X_json.c) ---- */

/* After compose_render: a SendGrid v3 mail/send JSON body in out->body. */
extern int	compose_sendgrid_json(ComposeBroadcast *b, ComposeCtx *c, const ComposeInput *in,
								  ComposeOutput *out);

/*
 * After compose_render: one message in each provider's own terms (the
 * provider joins several into a batch request).
 *	 mailgun	the recipient's recipient-variables object; batch_key holds
 *				the from and reply-to fields shared by the call
 *	 postmark	one element of /email/batch
 *	 mailjet	one element of the v3.1 Messages array
 *	 resend		one element of /emails/batch
 *	 sparkpost	one recipient object (address, metadata); batch_key is the
 *				transmission's content: the real rendered message
 */
extern int	compose_mailgun_vars(ComposeBroadcast *b, ComposeCtx *c, const ComposeInput *in,
								 ComposeOutput *out);
extern int	compose_postmark_json(ComposeBroadcast *b, ComposeCtx *c, const ComposeInput *in,
								  ComposeOutput *out);
extern int	compose_mailjet_json(ComposeBroadcast *b, ComposeCtx *c, const ComposeInput *in,
								 ComposeOutput *out);
extern int	compose_resend_json(ComposeBroadcast *b, ComposeCtx *c, const ComposeInput *in,
								ComposeOutput *out);
extern int	compose_sparkpost_json(ComposeBroadcast *b, ComposeCtx *c, const ComposeInput *in,
								   ComposeOutput *out);

/* Postmark: /email (object) or /email/batch (array, in request order); results read */
extern int	esp_postmark_results(const char *body, size_t len, EspResult *r, int n);

/* Mailjet v3.1: Messages[] in request order */
extern int	esp_mailjet_results(const char *body, size_t len, EspResult *r, int n);

/* Resend /emails/batch: data[] for the accepted, errors[{index,message}] (permissive) */
extern int	esp_resend_results(const char *body, size_t len, EspResult *r, int n);

/*
 * SparkPost transmissions: the transmission id, the accepted and rejected
 * counts, and the rcpt_to_errors descriptions joined by newlines.
 */
extern int	esp_sparkpost_result(const char *body, size_t len, char *id, size_t idlen,
								 long *accepted, long *rejected, char *errors, size_t errlen);

#endif							/* PROVIDER_JSON_H */
