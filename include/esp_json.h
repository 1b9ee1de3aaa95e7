/*-------------------------------------------------------------------------
 *
 * esp_json.h
 *	  Reading the providers' JSON answers: per-message results of batch
 *	  endpoints, ids and error names.
 *
 * Pure C with json-c (no PostgreSQL headers, see compose.h), never fails
 * by longjmp: a malformed answer reads as "no result" and the provider
 * decides what that means.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ESP_JSON_H
#define ESP_JSON_H

#include <stddef.h>

/* one message's result inside an answer */
typedef struct EspResult
{
	int			ok;				/* 1 accepted, 0 refused, -1 not in the answer */
	long		code;			/* the provider's error code (or HTTP status), 0 if none */
	char		id[160];		/* the provider's message id */
	char		error[256];		/* the provider's error text */
} EspResult;

/* a top-level string (or number) member, e.g. "id", "MessageId", "name"; 0 if found */
extern int	esp_json_member(const char *body, size_t len, const char *key, char *out, size_t outlen);

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

#endif							/* ESP_JSON_H */
