/*-------------------------------------------------------------------------
 *
 * bounce.h
 *	  Returned mail: VERP return-path tokens and the bounce parser.
 *
 * VERP.  An SMTP integration with a bounce domain sends each message with
 * the envelope sender  <local>+<token>@<domain>,  where
 *
 *	token = base32(message_id (16 bytes) || mac (10 bytes)), 42 characters
 *	mac	  = first 10 bytes of HMAC-SHA256(workspace secret,
 *			  "be-verp:" || workspace_id || 0x00 || message_id)
 *
 * in RFC 4648 base32, lower case, unpadded; read back case-insensitively,
 * since some MTAs change the case of local parts.
 *
 * The parser reads a whole returned message (RFC 5322, LF or CRLF or CR
 * line ends): RFC 3464 delivery status notifications, RFC 5965 ARF
 * feedback reports, and the text bounces of Exim, qmail and similar
 * servers.  It reports the recipients with their action and status, the
 * class (hard, soft, complaint, or nothing to act on), candidate VERP tokens
 * from the addresses the bounce was sent to, and the Message-ID of the
 * returned message.
 *
 * Server independent: malloc/free only, every failure is a return code.
 *
 *-------------------------------------------------------------------------
 */
#ifndef BE_BOUNCE_H
#define BE_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BOUNCE_TOKEN_LEN	42		/* base32 of 26 bytes */
#define BOUNCE_MAC_LEN		10
#define BOUNCE_INPUT_MAX	(2 * 1024 * 1024)	/* larger messages are refused */
#define BOUNCE_MAX_RCPT		8
#define BOUNCE_MAX_TOKENS	4
#define BOUNCE_ADDR_MAX		256
#define BOUNCE_TEXT_MAX		256

/* return codes */
#define BOUNCE_OK			0
#define BOUNCE_EINVAL		(-1)	/* too large, or not a message at all */
#define BOUNCE_ENOMEM		(-2)

typedef enum BounceKind
{
	BOUNCE_KIND_NONE = 0,		/* not a bounce we can read */
	BOUNCE_KIND_DSN,			/* RFC 3464 */
	BOUNCE_KIND_ARF,			/* RFC 5965 */
	BOUNCE_KIND_TEXT			/* a non-standard text bounce */
} BounceKind;

typedef enum BounceClass
{
	BOUNCE_CLASS_NONE = 0,		/* delayed, delivered, relayed: nothing to do */
	BOUNCE_CLASS_HARD,
	BOUNCE_CLASS_SOFT,
	BOUNCE_CLASS_COMPLAINT
} BounceClass;

typedef struct BounceRcpt
{
	char		email[BOUNCE_ADDR_MAX]; /* lower case; "" when unknown */
	char		action[16];		/* failed, delayed, ... ("" when none) */
	char		status[16];		/* the enhanced code, e.g. "5.1.1", or a basic "550" */
	char		diagnostic[BOUNCE_TEXT_MAX];
	BounceClass cls;
} BounceRcpt;

typedef struct BounceReport
{
	BounceKind	kind;
	BounceClass cls;			/* of the first recipient that has one */
	char		message_id[BOUNCE_ADDR_MAX];	/* of the returned message, without <> */
	char		feedback_type[32];	/* ARF */
	char		date[64];		/* the report's Date header, comments removed */
	int			ntokens;
	char		tokens[BOUNCE_MAX_TOKENS][BOUNCE_TOKEN_LEN + 1];	/* lower case */
	int			nrcpt;
	BounceRcpt	rcpt[BOUNCE_MAX_RCPT];
} BounceReport;

/* Parses raw (len bytes, at most BOUNCE_INPUT_MAX) into *r. */
extern int	bounce_parse(const char *raw, size_t len, BounceReport *r);

/* hard, soft, complaint or none */
extern const char *bounce_class_name(BounceClass c);
extern const char *bounce_kind_name(BounceKind k);

/* The class of a recipient's action, status and diagnostic text. */
extern BounceClass bounce_classify(const char *action, const char *status, const char *diagnostic);

/* Writes the token (BOUNCE_TOKEN_LEN characters and a NUL) for a message. */
extern void bounce_verp_token(const uint8_t *secret, size_t secret_len, const char *workspace_id,
							  const uint8_t message_id[16], char out[BOUNCE_TOKEN_LEN + 1]);

/* The message id of a genuine token (any case); false for anything else. */
extern bool bounce_verp_check(const uint8_t *secret, size_t secret_len, const char *workspace_id,
							  const char *token, size_t len, uint8_t message_id[16]);

/* "0b2c...-..." (36 characters) to 16 bytes; false when malformed */
extern bool bounce_uuid_parse(const char *s, uint8_t out[16]);

#endif							/* BE_BOUNCE_H */
