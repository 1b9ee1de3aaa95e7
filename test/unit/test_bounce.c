/*
 * test_bounce.c
 *	  Unit tests of src/bounce.c: VERP tokens, and the corpus of returned
 *	  mail in test/unit/bounces/ (see its README.md for sources and
 *	  licences), each file with the kind, class, recipient, returned
 *	  Message-ID and VERP message id listed in bounces/expected.tsv.  Every
 *	  file is also parsed truncated at many lengths and with bytes flipped,
 *	  for valgrind and ASan to watch.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bounce.h"
#include "unit.h"

#define SECRET "0123456789abcdef0123456789abcdef"

static char *
read_file(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	char	   *buf;
	long		n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(n + 1);
	if (buf == NULL || fread(buf, 1, n, f) != (size_t) n)
	{
		free(buf);
		fclose(f);
		return NULL;
	}
	buf[n] = '\0';
	fclose(f);
	*len = n;
	return buf;
}

static void
uuid_text(const uint8_t u[16], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	int			i,
				n = 0;

	for (i = 0; i < 16; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[n++] = '-';
		out[n++] = hex[u[i] >> 4];
		out[n++] = hex[u[i] & 15];
	}
	out[n] = '\0';
}

static void
test_tokens(void)
{
	uint8_t		id[16];
	uint8_t		back[16];
	char		tok[BOUNCE_TOKEN_LEN + 1];
	char		upper[BOUNCE_TOKEN_LEN + 1];
	char		text[37];
	int			i;
	const char *uuid = "0190f3a1-7c2e-7b4d-9a11-3c5e7f901234";

	UNIT_CHECK(bounce_uuid_parse(uuid, id), "uuid parses");
	uuid_text(id, text);
	UNIT_STREQ(text, uuid, "uuid round trip");
	UNIT_CHECK(!bounce_uuid_parse("0190f3a1-7c2e-7b4d-9a11-3c5e7f90123", id) &&
			   !bounce_uuid_parse("0190f3a1x7c2e-7b4d-9a11-3c5e7f901234", id) &&
			   !bounce_uuid_parse("0190f3a1-7c2e-7b4d-9a11-3c5e7f90123g", id), "malformed uuids refused");
	bounce_uuid_parse(uuid, id);
	bounce_verp_token((const uint8_t *) SECRET, 32, "acme", id, tok);
	UNIT_CHECK(strlen(tok) == BOUNCE_TOKEN_LEN && strspn(tok, "abcdefghijklmnopqrstuvwxyz234567") == BOUNCE_TOKEN_LEN,
			   "token: 42 lower-case base32 characters");
	memset(back, 0, sizeof(back));
	UNIT_CHECK(bounce_verp_check((const uint8_t *) SECRET, 32, "acme", tok, strlen(tok), back) &&
			   memcmp(back, id, 16) == 0, "token verifies and gives the message id");
	for (i = 0; i <= BOUNCE_TOKEN_LEN; i++)
		upper[i] = (tok[i] >= 'a' && tok[i] <= 'z') ? tok[i] - 32 : tok[i];
	UNIT_CHECK(bounce_verp_check((const uint8_t *) SECRET, 32, "acme", upper, strlen(upper), back),
			   "token verifies in upper case (MTAs may change the case)");
	UNIT_CHECK(!bounce_verp_check((const uint8_t *) SECRET, 32, "acme2", tok, strlen(tok), back),
			   "another workspace's token is refused");
	UNIT_CHECK(!bounce_verp_check((const uint8_t *) "another secret, 32 bytes long...", 32, "acme", tok, strlen(tok), back),
			   "a token under another secret is refused");
	for (i = 0; i < BOUNCE_TOKEN_LEN; i++)
	{
		char		t2[BOUNCE_TOKEN_LEN + 1];

		memcpy(t2, tok, sizeof(t2));
		t2[i] = t2[i] == 'a' ? 'b' : 'a';
		if (bounce_verp_check((const uint8_t *) SECRET, 32, "acme", t2, strlen(t2), back))
			break;
	}
	UNIT_CHECK(i == BOUNCE_TOKEN_LEN, "every changed character is refused");
	UNIT_CHECK(!bounce_verp_check((const uint8_t *) SECRET, 32, "acme", tok, strlen(tok) - 1, back) &&
			   !bounce_verp_check((const uint8_t *) SECRET, 32, "acme", "!", 1, back),
			   "short or foreign tokens are refused");
}

static void
test_classify(void)
{
	UNIT_STREQ(bounce_class_name(bounce_classify("failed", "5.1.1", "")), "hard", "5.1.1 is hard");
	UNIT_STREQ(bounce_class_name(bounce_classify("failed", "4.4.1", "")), "soft", "4.4.1 is soft");
	UNIT_STREQ(bounce_class_name(bounce_classify("failed", "5.2.2", "")), "soft", "mailbox full is soft");
	UNIT_STREQ(bounce_class_name(bounce_classify("failed", "5.7.1", "")), "soft", "policy refusal is soft");
	UNIT_STREQ(bounce_class_name(bounce_classify("failed", "5.0.0", "smtp; 550 5.1.1 no such user")), "hard",
			   "5.0.0 with the server's 5.1.1 is hard");
	UNIT_STREQ(bounce_class_name(bounce_classify("delayed", "4.4.7", "")), "none", "delayed is nothing to act on");
	UNIT_STREQ(bounce_class_name(bounce_classify("failed", "", "550 unknown user")), "hard", "a basic 550 is hard");
	UNIT_STREQ(bounce_class_name(bounce_classify("failed", "", "452 too many recipients")), "soft", "a basic 452 is soft");
	UNIT_STREQ(bounce_class_name(bounce_classify("failed", "", "")), "hard", "failed without a code is hard");
}

static void
test_robust(const char *name, const char *raw, size_t len)
{
	BounceReport r;
	size_t		cut;
	char	   *copy = malloc(len ? len : 1);
	bool		ok = true;
	size_t		i;

	/* truncated anywhere: no crash, no read past the end (valgrind, ASan) */
	for (cut = 1; cut < len; cut += (len / 97) + 1)
	{
		memcpy(copy, raw, cut);
		if (bounce_parse(copy, cut, &r) != BOUNCE_OK)
			ok = false;
	}
	/* bytes flipped into the characters the parser looks for */
	memcpy(copy, raw, len);
	for (i = 0; i < len; i += 7)
		copy[i] = "\n:;<>@+-\r\0"[i % 10];
	if (bounce_parse(copy, len, &r) != BOUNCE_OK)
		ok = false;
	free(copy);
	{
		char		label[160];

		snprintf(label, sizeof(label), "%s: truncated and mangled copies parse safely", name);
		UNIT_CHECK(ok, label);
	}
}

static void
test_corpus(void)
{
	char		path[512];
	char		line[1024];
	FILE	   *f;
	int			n = 0;

	snprintf(path, sizeof(path), "%s/expected.tsv", BOUNCE_CORPUS);
	f = fopen(path, "r");
	UNIT_CHECK(f != NULL, "corpus: expected.tsv opens");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f))
	{
		char	   *fields[6];
		char	   *save = NULL;
		char	   *p;
		int			k = 0;
		char	   *raw;
		size_t		len;
		BounceReport r;
		char		label[256];
		const char *email;
		char		verp[40] = "-";

		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		for (p = strtok_r(line, "\t", &save); p && k < 6; p = strtok_r(NULL, "\t", &save))
			fields[k++] = p;
		if (k != 6)
		{
			UNIT_CHECK(false, "corpus: a line of expected.tsv has 6 fields");
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", BOUNCE_CORPUS, fields[0]);
		raw = read_file(path, &len);
		snprintf(label, sizeof(label), "%s: readable", fields[0]);
		UNIT_CHECK(raw != NULL, label);
		if (raw == NULL)
			continue;
		n++;
		snprintf(label, sizeof(label), "%s: parses", fields[0]);
		UNIT_CHECK(bounce_parse(raw, len, &r) == BOUNCE_OK, label);
		snprintf(label, sizeof(label), "%s: kind", fields[0]);
		UNIT_STREQ(bounce_kind_name(r.kind), fields[1], label);
		snprintf(label, sizeof(label), "%s: class", fields[0]);
		UNIT_STREQ(bounce_class_name(r.cls), fields[2], label);
		email = r.nrcpt > 0 && r.rcpt[0].email[0] ? r.rcpt[0].email : "-";
		snprintf(label, sizeof(label), "%s: recipient", fields[0]);
		UNIT_STREQ(email, fields[3], label);
		snprintf(label, sizeof(label), "%s: returned Message-ID", fields[0]);
		UNIT_STREQ(r.message_id[0] ? r.message_id : "-", fields[4], label);
		/* the VERP token, checked with the corpus's workspace "acme" and SECRET */
		{
			int			i;
			uint8_t		id[16];

			for (i = 0; i < r.ntokens; i++)
				if (bounce_verp_check((const uint8_t *) SECRET, 32, "acme", r.tokens[i],
									  strlen(r.tokens[i]), id))
				{
					uuid_text(id, verp);
					break;
				}
		}
		snprintf(label, sizeof(label), "%s: VERP message id", fields[0]);
		UNIT_STREQ(verp, fields[5], label);
		test_robust(fields[0], raw, len);
		free(raw);
	}
	fclose(f);
	snprintf(line, sizeof(line), "corpus: %d samples read", n);
	UNIT_CHECK(n >= 15, line);
}

static void
test_limits(void)
{
	BounceReport r;
	static const char tiny[] = "From: x\n\nhello";

	UNIT_CHECK(bounce_parse(NULL, 0, &r) == BOUNCE_EINVAL, "no input is refused");
	UNIT_CHECK(bounce_parse(tiny, BOUNCE_INPUT_MAX + 1, &r) == BOUNCE_EINVAL,
			   "input over BOUNCE_INPUT_MAX is refused unread");
	UNIT_CHECK(bounce_parse(tiny, sizeof(tiny) - 1, &r) == BOUNCE_OK && r.kind == BOUNCE_KIND_NONE,
			   "a plain message is no bounce");
}

/* test_bounce --dump FILE...: what the parser reads (to write expected.tsv) */
static void
dump(const char *path)
{
	size_t		len;
	char	   *raw = read_file(path, &len);
	BounceReport r;
	int			i;

	if (raw == NULL || bounce_parse(raw, len, &r) != BOUNCE_OK)
	{
		printf("%s: unreadable\n", path);
		free(raw);
		return;
	}
	printf("%s\t%s\t%s\tmid=%s\tntok=%d\tdate=%s\tfbl=%s\n", path, bounce_kind_name(r.kind),
		   bounce_class_name(r.cls), r.message_id, r.ntokens, r.date, r.feedback_type);
	for (i = 0; i < r.nrcpt; i++)
		printf("   rcpt %s action=%s status=%s class=%s diag=%s\n", r.rcpt[i].email, r.rcpt[i].action,
			   r.rcpt[i].status, bounce_class_name(r.rcpt[i].cls), r.rcpt[i].diagnostic);
	free(raw);
}

int
main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "--dump") == 0)
	{
		int			i;

		for (i = 2; i < argc; i++)
			dump(argv[i]);
		return 0;
	}
	test_tokens();
	test_classify();
	test_limits();
	test_corpus();
	UNIT_DONE();
}
