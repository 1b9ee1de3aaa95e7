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

/* each provider's own answer reader: provider_json.h */

#endif							/* ESP_JSON_H */
