/*-------------------------------------------------------------------------
 *
 * unsub_token.h
 *	  Signed one-click unsubscribe tokens (RFC 8058 List-Unsubscribe URLs).
 *
 * TOKEN = b64url(payload) "." b64url(mac)
 *
 *	payload = version(1 byte, = 1) field field field field
 *			  (workspace_id, list_id, email, message_id; see unsub_token.c)
 *	mac		= first 16 bytes of HMAC-SHA256(secret, "be-unsub:" || payload)
 *
 * b64url is RFC 4648 section 5 without padding.  The payload is readable
 * without the secret, so the server can learn workspace_id, fetch that
 * workspace's secret and then verify.  Never trust parsed fields before
 * unsub_token_verify() succeeded.
 *
 * Server independent: malloc/free only, every failure is a return code.
 *
 *-------------------------------------------------------------------------
 */
#ifndef BE_UNSUB_TOKEN_H
#define BE_UNSUB_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "be_buf.h"

#define UNSUB_TOKEN_VERSION		1
#define UNSUB_MAC_LEN			16	/* truncated HMAC-SHA256: 128 bits */
#define UNSUB_FIELD_MAX			1024	/* bytes per field */
#define UNSUB_TOKEN_MAX			8192	/* longer input is rejected unread */

/* MAC contexts: one per purpose, so a token of one is never valid as another */
#define UNSUB_MAC_CONTEXT		"be-unsub:"
#define CONFIRM_MAC_CONTEXT		"be-confirm:"
#define TRACK_MAC_CONTEXT		"be-track:"

/* return codes */
#define UNSUB_OK				0
#define UNSUB_EINVAL			(-1)	/* malformed input / token */
#define UNSUB_ENOMEM			(-2)
#define UNSUB_EVERSION			(-3)	/* well-formed but unknown version */

typedef struct UnsubToken
{
	int			version;
	/* NUL-terminated UTF-8, all pointing into one allocation */
	char	   *workspace_id;
	char	   *list_id;		/* "" = all lists (global unsubscribe) */
	char	   *email;
	char	   *message_id;		/* may be "" */
	/* what the MAC covers, kept for unsub_token_verify_parsed() */
	uint8_t    *payload;
	size_t		payload_len;
	uint8_t		mac[UNSUB_MAC_LEN];
	void	   *storage;
} UnsubToken;

/*
 * Append a token for the given fields to "out".  workspace_id and email must
 * be non-empty; list_id and message_id may be NULL or "".  Fields must be
 * valid UTF-8 without control characters and at most UNSUB_FIELD_MAX bytes.
 * The secret must be non-empty (32 random bytes recommended).
 */
extern int	unsub_token_make(const uint8_t *secret, size_t secret_len,
							 const char *workspace_id, const char *list_id,
							 const char *email, const char *message_id,
							 BeBuf *out);

/* Decode a token without checking the MAC.  On success free with unsub_token_free. */
extern int	unsub_token_parse(const char *token, size_t len, UnsubToken *tok);
extern void unsub_token_free(UnsubToken *tok);

/* Constant-time MAC check of a parsed token. */
extern bool unsub_token_verify_parsed(const UnsubToken *tok,
									  const uint8_t *secret, size_t secret_len);

/* parse + verify in one call; false for anything malformed or forged */
extern bool unsub_token_verify(const char *token, size_t len,
							   const uint8_t *secret, size_t secret_len);

/* the same with the MAC context of another purpose (*_MAC_CONTEXT) */
extern int	be_token_make(const char *context, const uint8_t *secret, size_t secret_len,
						  const char *workspace_id, const char *list_id,
						  const char *email, const char *message_id,
						  BeBuf *out);
extern bool be_token_verify_parsed(const char *context, const UnsubToken *tok,
								   const uint8_t *secret, size_t secret_len);
extern bool be_token_verify(const char *context, const char *token, size_t len,
							const uint8_t *secret, size_t secret_len);

/* RFC 4648 base64url, no padding.  Encode appends to out. */
extern bool unsub_b64url_encode(const uint8_t *in, size_t len, BeBuf *out);

/*
 * Strict decode: rejects padding, any character outside the alphabet, a
 * length of 1 mod 4 and non-zero trailing bits (so every byte string has
 * exactly one encoding).  Returns decoded length, or -1 if invalid or if
 * the output would exceed outcap.
 */
extern long unsub_b64url_decode(const char *in, size_t len,
								uint8_t *out, size_t outcap);

#endif							/* BE_UNSUB_TOKEN_H */
