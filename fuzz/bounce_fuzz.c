/*
 * bounce_fuzz.c
 *	  libFuzzer target for the bounce parser (src/bounce.c): every input is
 *	  parsed as a returned message.  Besides ASan/UBSan findings it traps
 *	  when a report breaks its own bounds: more recipients or tokens than
 *	  the arrays hold, an unterminated field, a token that is not 42 base32
 *	  characters, recipients without a kind, or a complaint that is not
 *	  from a feedback report.  Each token is also
 *	  checked as a VERP token (it must not verify under a fixed key, since
 *	  the fuzzer cannot forge HMAC-SHA256).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bounce.h"

int			LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len);

static void
check_field(const char *s, size_t cap)
{
	if (memchr(s, '\0', cap) == NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len)
{
	BounceReport r;
	int			rc = bounce_parse((const char *) buf, len, &r);
	int			i;

	if (rc == BOUNCE_ENOMEM)
		return 0;
	if (rc != BOUNCE_OK)
	{
		if (len != 0 && len <= BOUNCE_INPUT_MAX)
			abort();
		return 0;
	}
	if (r.nrcpt < 0 || r.nrcpt > BOUNCE_MAX_RCPT || r.ntokens < 0 || r.ntokens > BOUNCE_MAX_TOKENS)
		abort();
	check_field(r.message_id, sizeof(r.message_id));
	check_field(r.feedback_type, sizeof(r.feedback_type));
	check_field(r.date, sizeof(r.date));
	for (i = 0; i < r.nrcpt; i++)
	{
		check_field(r.rcpt[i].email, sizeof(r.rcpt[i].email));
		check_field(r.rcpt[i].action, sizeof(r.rcpt[i].action));
		check_field(r.rcpt[i].status, sizeof(r.rcpt[i].status));
		check_field(r.rcpt[i].diagnostic, sizeof(r.rcpt[i].diagnostic));
		/* complaints come only from feedback reports, never from a text bounce */
		if (r.rcpt[i].cls == BOUNCE_CLASS_COMPLAINT &&
			(r.kind == BOUNCE_KIND_TEXT || strcmp(r.rcpt[i].action, "complaint") != 0))
			abort();
	}
	if (r.kind == BOUNCE_KIND_NONE && (r.nrcpt != 0 || r.cls != BOUNCE_CLASS_NONE))
		abort();
	for (i = 0; i < r.ntokens; i++)
	{
		uint8_t		id[16];

		if (strlen(r.tokens[i]) != BOUNCE_TOKEN_LEN ||
			strspn(r.tokens[i], "abcdefghijklmnopqrstuvwxyz234567") != BOUNCE_TOKEN_LEN)
			abort();
		if (bounce_verp_check((const uint8_t *) "fuzz-key-fuzz-key-fuzz-key-fuzz!", 32, "ws",
							  r.tokens[i], BOUNCE_TOKEN_LEN, id))
			abort();
	}
	return 0;
}
