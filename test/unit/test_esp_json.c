/*
 * test_esp_json.c
 *	  Unit tests of src/esp_json.c: reading the providers' JSON answers.
 *
 * esp_json.c is pure C with json-c (no PostgreSQL headers), so it links
 * here alone.  Covered: JSON string escapes in the values read (quotes,
 * backslashes, \uXXXX, surrogate pairs, an escaped NUL), each provider's
 * answer shapes (SES / Mailgun / Resend single ids, Postmark /email and
 * /email/batch, Mailjet v3.1 Messages[], Resend /emails/batch data[] and
 * errors[], SparkPost transmissions), truncation into the fixed buffers,
 * and malformed input: empty, NULL, truncated, wrong types, not
 * NUL-terminated (exact-size heap copies, so ASan and valgrind see any
 * read past len), deep nesting.
 *
 * Request bodies are not built here: the composers (src/compose.c) build
 * them with json-c, and provider_common.c's be_json_quote() uses
 * PostgreSQL's escape_json(); neither is in esp_json.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esp_json.h"
#include "provider_json.h"
#include "unit.h"

/* an exact-size heap copy without a NUL: any read past len is caught */
static char *
exact(const char *s, size_t *len)
{
	size_t		n = strlen(s);
	char	   *p = malloc(n ? n : 1);

	memcpy(p, s, n);
	*len = n;
	return p;
}

static int
member(const char *body, const char *key, char *out, size_t outlen)
{
	size_t		len;
	char	   *b = exact(body, &len);
	int			rc = esp_json_member(b, len, key, out, outlen);

	free(b);
	return rc;
}

static int
postmark(const char *body, EspResult *r, int n)
{
	size_t		len;
	char	   *b = exact(body, &len);
	int			got = esp_postmark_results(b, len, r, n);

	free(b);
	return got;
}

static int
mailjet(const char *body, EspResult *r, int n)
{
	size_t		len;
	char	   *b = exact(body, &len);
	int			got = esp_mailjet_results(b, len, r, n);

	free(b);
	return got;
}

static int
resend(const char *body, EspResult *r, int n)
{
	size_t		len;
	char	   *b = exact(body, &len);
	int			got = esp_resend_results(b, len, r, n);

	free(b);
	return got;
}

static int
sparkpost(const char *body, char *id, size_t idlen, long *acc, long *rej, char *err, size_t errlen)
{
	size_t		len;
	char	   *b = exact(body, &len);
	int			rc = esp_sparkpost_result(b, len, id, idlen, acc, rej, err, errlen);

	free(b);
	return rc;
}

static void
fill(EspResult *r, int n)
{
	int			i;

	/* garbage the functions must overwrite */
	for (i = 0; i < n; i++)
	{
		r[i].ok = 7;
		r[i].code = 12345;
		strcpy(r[i].id, "stale");
		strcpy(r[i].error, "stale");
	}
}

/* every entry "not in the answer" (ok -1, code 0, empty strings) */
static int
all_absent(const EspResult *r, int n)
{
	int			i;

	for (i = 0; i < n; i++)
		if (r[i].ok != -1 || r[i].code != 0 || r[i].id[0] || r[i].error[0])
			return 0;
	return 1;
}

static void
test_member(void)
{
	char		out[160];
	char		small[8];
	int			rc;

	/* SES v2 SendEmail, Mailgun, Resend /emails: one top-level id */
	rc = member("{\"MessageId\":\"0100018c-abc-000000\"}", "MessageId", out, sizeof(out));
	UNIT_CHECK(rc == 0, "member: SES MessageId found");
	UNIT_STREQ(out, "0100018c-abc-000000", "member: SES MessageId value");
	rc = member("{\"id\":\"<20240101.1@mg.example.com>\",\"message\":\"Queued. Thank you.\"}", "id", out, sizeof(out));
	UNIT_CHECK(rc == 0, "member: Mailgun id found");
	UNIT_STREQ(out, "<20240101.1@mg.example.com>", "member: Mailgun id value (angle brackets kept)");
	rc = member("{\"id\":\"49a3999c-0ce1-4ea6-ab68-afcd6dc2e794\"}", "id", out, sizeof(out));
	UNIT_STREQ(out, "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794", "member: Resend id");
	/* Resend 409 and SES error names */
	member("{\"statusCode\":409,\"name\":\"concurrent_idempotent_requests\",\"message\":\"x\"}", "name", out, sizeof(out));
	UNIT_STREQ(out, "concurrent_idempotent_requests", "member: Resend error name");
	member("{\"__type\":\"com.amazon#TooManyRequestsException\",\"message\":\"Rate exceeded\"}", "__type", out, sizeof(out));
	UNIT_STREQ(out, "com.amazon#TooManyRequestsException", "member: SES __type");

	/* key lookup is exact and top-level only */
	rc = member("{\"MessageID\":\"x\"}", "MessageId", out, sizeof(out));
	UNIT_CHECK(rc == -1, "member: keys are case-sensitive");
	rc = member("{\"a\":{\"id\":\"nested\"}}", "id", out, sizeof(out));
	UNIT_CHECK(rc == -1, "member: a nested key is not a top-level member");
	rc = member("{\"id\":\"first\",\"id\":\"second\"}", "id", out, sizeof(out));
	UNIT_CHECK(rc == 0 && strcmp(out, "second") == 0, "member: a duplicated key reads the last value");

	/* non-string scalars read as their JSON text */
	rc = member("{\"id\":123456789012345}", "id", out, sizeof(out));
	UNIT_STREQ(out, "123456789012345", "member: a number reads as its digits");
	rc = member("{\"ok\":true}", "ok", out, sizeof(out));
	UNIT_STREQ(out, "true", "member: a boolean reads as true");
	/* json-c stores a JSON null as a NULL object: it reads as absent */
	rc = member("{\"id\":null}", "id", out, sizeof(out));
	UNIT_CHECK(rc == -1, "member: null reads as not found");

	/* objects and arrays are not values */
	strcpy(out, "stale");
	rc = member("{\"id\":{\"x\":1}}", "id", out, sizeof(out));
	UNIT_CHECK(rc == -1, "member: an object value is refused");
	rc = member("{\"id\":[\"a\"]}", "id", out, sizeof(out));
	UNIT_CHECK(rc == -1, "member: an array value is refused");
	/* on -1 the output is the empty string, never what was there before */
	UNIT_STREQ(out, "", "member: on -1 the output is emptied");

	/* escapes inside the value */
	member("{\"m\":\"say \\\"hi\\\" \\\\ back\\/slash\"}", "m", out, sizeof(out));
	UNIT_STREQ(out, "say \"hi\" \\ back/slash", "escape: quote, backslash, solidus");
	member("{\"m\":\"a\\tb\\nc\\rd\\be\\ff\"}", "m", out, sizeof(out));
	UNIT_STREQ(out, "a\tb\nc\rd\be\ff", "escape: control character escapes");
	member("{\"m\":\"caf\\u00e9 \\u20ac\"}", "m", out, sizeof(out));
	UNIT_STREQ(out, "caf\xc3\xa9 \xe2\x82\xac", "escape: \\u00e9 and \\u20ac become UTF-8");
	member("{\"m\":\"\\ud83d\\ude00\"}", "m", out, sizeof(out));
	UNIT_STREQ(out, "\xf0\x9f\x98\x80", "escape: a surrogate pair becomes one 4-byte character");
	member("{\"m\":\"caf\xc3\xa9\"}", "m", out, sizeof(out));
	UNIT_STREQ(out, "caf\xc3\xa9", "escape: raw UTF-8 is kept as is");
	member("{\"m\":\"ab\\u0000cd\"}", "m", out, sizeof(out));
	UNIT_STREQ(out, "ab", "escape: an escaped NUL ends the C string");
	member("{\"k\\\"ey\":\"v\"}", "k\"ey", out, sizeof(out));
	UNIT_STREQ(out, "v", "escape: an escaped quote in a key matches the unescaped key");
	rc = member("{\"m\":\"\\ud800x\"}", "m", out, sizeof(out));
	UNIT_CHECK(rc == 0 || rc == -1, "escape: a lone surrogate does not crash");
	rc = member("{\"m\":\"\\x41\"}", "m", out, sizeof(out));
	UNIT_CHECK(rc == -1, "escape: an invalid escape is a malformed answer");
	rc = member("{\"m\":\"\\u12G4\"}", "m", out, sizeof(out));
	UNIT_CHECK(rc == -1, "escape: a bad \\u escape is a malformed answer");

	/* truncation into the caller's buffer */
	rc = member("{\"id\":\"0123456789abcdef\"}", "id", small, sizeof(small));
	UNIT_CHECK(rc == 0, "truncation: found");
	UNIT_STREQ(small, "0123456", "truncation: outlen - 1 bytes and a NUL");
	strcpy(small, "keep");
	rc = member("{\"id\":\"x\"}", "id", small, 0);
	UNIT_CHECK(rc == 0 && strcmp(small, "keep") == 0, "truncation: outlen 0 writes nothing");
	rc = member("{\"id\":\"x\"}", "id", small, 1);
	UNIT_CHECK(rc == 0 && small[0] == '\0', "truncation: outlen 1 gives the empty string");

	/* malformed input */
	UNIT_CHECK(esp_json_member(NULL, 0, "id", out, sizeof(out)) == -1, "malformed: NULL body");
	UNIT_CHECK(esp_json_member("{\"id\":\"x\"}", 0, "id", out, sizeof(out)) == -1, "malformed: zero length");
	UNIT_CHECK(member("", "id", out, sizeof(out)) == -1, "malformed: empty body");
	UNIT_CHECK(member("   ", "id", out, sizeof(out)) == -1, "malformed: blanks only");
	UNIT_CHECK(member("{\"id\":\"x\"", "id", out, sizeof(out)) == -1, "malformed: truncated object");
	UNIT_CHECK(member("{\"id\":\"x", "id", out, sizeof(out)) == -1, "malformed: truncated string");
	UNIT_CHECK(member("<html>502 Bad Gateway</html>", "id", out, sizeof(out)) == -1, "malformed: an HTML error page");
	UNIT_CHECK(member("[{\"id\":\"x\"}]", "id", out, sizeof(out)) == -1, "malformed: a top-level array has no members");
	UNIT_CHECK(member("\"id\"", "id", out, sizeof(out)) == -1, "malformed: a top-level string has no members");
	UNIT_CHECK(member("{\"id\" \"x\"}", "id", out, sizeof(out)) == -1, "malformed: missing colon");
	/* json-c's non-strict mode (the default) takes single-quoted strings */
	rc = member("{'id':'x'}", "id", out, sizeof(out));
	UNIT_CHECK(rc == 0 && strcmp(out, "x") == 0, "lenient: single-quoted strings are accepted (json-c non-strict)");
	/* only len bytes are read, whatever follows in memory */
	{
		const char *twice = "{\"id\":\"one\"}{\"id\":\"two\"}";

		rc = esp_json_member(twice, 12, "id", out, sizeof(out));
		UNIT_CHECK(rc == 0 && strcmp(out, "one") == 0, "length: only the first len bytes are parsed");
		rc = esp_json_member(twice, 11, "id", out, sizeof(out));
		UNIT_CHECK(rc == -1, "length: one byte short is truncated");
	}
	/*
	 * Current behaviour: a complete value followed by other bytes is
	 * accepted (json-c stops at the end of the first value).
	 */
	rc = member("{\"id\":\"x\"} trailing", "id", out, sizeof(out));
	UNIT_CHECK(rc == 0 && strcmp(out, "x") == 0, "lenient: trailing bytes after the object are ignored");
	/* deep nesting: json-c's depth limit refuses it, no stack overflow */
	{
		size_t		depth = 100000;
		char	   *deep = malloc(2 * depth + 1);

		memset(deep, '[', depth);
		memset(deep + depth, ']', depth);
		deep[2 * depth] = '\0';
		UNIT_CHECK(member(deep, "id", out, sizeof(out)) == -1, "malformed: 100,000 nested arrays");
		free(deep);
	}
}

static void
test_postmark(void)
{
	EspResult	r[4];
	int			got;

	/* /email: one object */
	fill(r, 1);
	got = postmark("{\"To\":\"a@example.com\",\"SubmittedAt\":\"2024-01-01T00:00:00Z\","
				   "\"MessageID\":\"b7bc2f4a-e38e-4336-af7d-e6c392c2f817\",\"ErrorCode\":0,\"Message\":\"OK\"}", r, 1);
	UNIT_CHECK(got == 1, "postmark /email: one result");
	UNIT_CHECK(r[0].ok == 1 && r[0].code == 0, "postmark /email: ErrorCode 0 is accepted");
	UNIT_STREQ(r[0].id, "b7bc2f4a-e38e-4336-af7d-e6c392c2f817", "postmark /email: MessageID");
	UNIT_STREQ(r[0].error, "OK", "postmark /email: Message kept");

	/* /email 422 with its own ErrorCode */
	fill(r, 1);
	got = postmark("{\"ErrorCode\":300,\"Message\":\"Invalid email request\"}", r, 1);
	UNIT_CHECK(got == 1 && r[0].ok == 0 && r[0].code == 300, "postmark /email 422: ErrorCode 300 refused");
	UNIT_STREQ(r[0].id, "", "postmark /email 422: no MessageID");
	UNIT_STREQ(r[0].error, "Invalid email request", "postmark /email 422: the message");

	/* /email/batch: per message, in request order */
	fill(r, 3);
	got = postmark("[{\"ErrorCode\":0,\"Message\":\"OK\",\"MessageID\":\"id-1\"},"
				   "{\"ErrorCode\":406,\"Message\":\"You tried to send to recipient(s) that have been marked as inactive.\"},"
				   "{\"ErrorCode\":0,\"Message\":\"OK\",\"MessageID\":\"id-3\"}]", r, 3);
	UNIT_CHECK(got == 3, "postmark batch: three results");
	UNIT_CHECK(r[0].ok == 1 && strcmp(r[0].id, "id-1") == 0, "postmark batch: first accepted with its id");
	UNIT_CHECK(r[1].ok == 0 && r[1].code == 406 && r[1].id[0] == '\0', "postmark batch: 406 inactive recipient refused");
	UNIT_STREQ(r[1].error, "You tried to send to recipient(s) that have been marked as inactive.", "postmark batch: 406 message");
	UNIT_CHECK(r[2].ok == 1 && strcmp(r[2].id, "id-3") == 0, "postmark batch: third accepted with its id");

	/* shorter answer than the request: the rest are absent */
	fill(r, 4);
	got = postmark("[{\"ErrorCode\":0,\"MessageID\":\"a\"},{\"ErrorCode\":0,\"MessageID\":\"b\"}]", r, 4);
	UNIT_CHECK(got == 2 && r[1].ok == 1 && all_absent(r + 2, 2), "postmark batch: missing entries read as absent");
	/* longer answer: only n read, nothing written past r[n-1] */
	fill(r, 4);
	got = postmark("[{\"ErrorCode\":0,\"MessageID\":\"a\"},{\"ErrorCode\":0,\"MessageID\":\"b\"},"
				   "{\"ErrorCode\":0,\"MessageID\":\"c\"}]", r, 2);
	UNIT_CHECK(got == 2 && strcmp(r[1].id, "b") == 0 && r[2].ok == 7, "postmark batch: extra entries ignored");
	/* an entry without ErrorCode is absent, not accepted */
	fill(r, 2);
	got = postmark("[{\"MessageID\":\"a\"},{\"ErrorCode\":0,\"MessageID\":\"b\"}]", r, 2);
	UNIT_CHECK(r[0].ok == -1 && r[0].id[0] == '\0' && r[1].ok == 1, "postmark batch: no ErrorCode reads as absent");
	fill(r, 3);
	got = postmark("[1,\"x\",null]", r, 3);
	UNIT_CHECK(all_absent(r, 3), "postmark batch: non-object entries read as absent");
	/* ErrorCode as a string is read as its number */
	fill(r, 1);
	got = postmark("[{\"ErrorCode\":\"406\",\"Message\":\"x\"}]", r, 1);
	UNIT_CHECK(r[0].ok == 0 && r[0].code == 406, "postmark: ErrorCode \"406\" (a string) reads as 406");
	/* long fields are truncated into the fixed buffers */
	{
		char		body[1200];
		char		longid[400];

		memset(longid, 'x', sizeof(longid) - 1);
		longid[sizeof(longid) - 1] = '\0';
		snprintf(body, sizeof(body), "{\"ErrorCode\":0,\"MessageID\":\"%s\",\"Message\":\"%s\"}", longid, longid);
		fill(r, 1);
		postmark(body, r, 1);
		UNIT_CHECK(r[0].ok == 1 && strlen(r[0].id) == sizeof(r[0].id) - 1 &&
				   strlen(r[0].error) == sizeof(r[0].error) - 1, "postmark: long id and message truncated to the buffers");
	}

	/* malformed */
	fill(r, 2);
	got = postmark("[{\"ErrorCode\":0,", r, 2);
	UNIT_CHECK(got == 0 && all_absent(r, 2), "postmark malformed: truncated array, all absent");
	fill(r, 2);
	got = postmark("", r, 2);
	UNIT_CHECK(got == 0 && all_absent(r, 2), "postmark malformed: empty body, all absent");
	fill(r, 2);
	got = esp_postmark_results(NULL, 0, r, 2);
	UNIT_CHECK(got == 0 && all_absent(r, 2), "postmark malformed: NULL body, all absent");
	got = postmark("{\"ErrorCode\":0,\"MessageID\":\"a\"}", r, 0);
	UNIT_CHECK(got == 0, "postmark: n = 0 reads nothing");
}

static void
test_mailjet(void)
{
	EspResult	r[3];
	int			got;

	fill(r, 3);
	got = mailjet("{\"Messages\":["
				  "{\"Status\":\"success\",\"CustomID\":\"m1\",\"To\":[{\"Email\":\"a@example.com\","
				  "\"MessageUUID\":\"1ab23cd4-e567-8901-2345-6789f0gh1i2j\",\"MessageID\":1152921504606846976,"
				  "\"MessageHref\":\"https://api.mailjet.com/v3/REST/message/1152921504606846976\"}],\"Cc\":[],\"Bcc\":[]},"
				  "{\"Status\":\"error\",\"Errors\":[{\"ErrorIdentifier\":\"88b5ca9f\",\"ErrorCode\":\"mj-0013\","
				  "\"StatusCode\":400,\"ErrorMessage\":\"\\\"b@\\\" is an invalid email address.\","
				  "\"ErrorRelatedTo\":[\"To[0].Email\"]}]},"
				  "{\"Status\":\"success\",\"To\":[{\"Email\":\"c@example.com\",\"MessageID\":\"42\"}]}]}", r, 3);
	UNIT_CHECK(got == 3, "mailjet: three results");
	UNIT_CHECK(r[0].ok == 1, "mailjet: success accepted");
	UNIT_STREQ(r[0].id, "1152921504606846976", "mailjet: To[0].MessageID (a 64-bit number) as text");
	UNIT_CHECK(r[1].ok == 0 && r[1].code == 400, "mailjet: error refused with Errors[0].StatusCode");
	UNIT_STREQ(r[1].error, "mj-0013: \"b@\" is an invalid email address.", "mailjet: ErrorCode: ErrorMessage (escaped quotes)");
	UNIT_CHECK(r[2].ok == 1 && strcmp(r[2].id, "42") == 0, "mailjet: MessageID as a string");

	/* a 429 / 5xx entry keeps its status code for the retry decision */
	fill(r, 1);
	mailjet("{\"Messages\":[{\"Status\":\"error\",\"Errors\":[{\"ErrorCode\":\"mj-0002\",\"StatusCode\":500,"
			"\"ErrorMessage\":\"Internal\"}]}]}", r, 1);
	UNIT_CHECK(r[0].ok == 0 && r[0].code == 500, "mailjet: StatusCode 500 kept");

	/* success without a To[] entry: accepted, no id */
	fill(r, 2);
	got = mailjet("{\"Messages\":[{\"Status\":\"success\",\"To\":[]},{\"Status\":\"success\"}]}", r, 2);
	UNIT_CHECK(got == 2 && r[0].ok == 1 && r[0].id[0] == '\0' && r[1].ok == 1 && r[1].id[0] == '\0',
			   "mailjet: success with empty or missing To[] is accepted without an id");

	/* error without Errors[]: refused, code 0 */
	fill(r, 1);
	mailjet("{\"Messages\":[{\"Status\":\"error\"}]}", r, 1);
	UNIT_CHECK(r[0].ok == 0 && r[0].code == 0, "mailjet: error without Errors[] refused with code 0");
	UNIT_STREQ(r[0].error, "error: error", "mailjet: error without Errors[] names its Status");

	/*
	 * An entry with no Status cannot be read: absent (retried), as in
	 * Postmark's reader; a Status other than "success" is a refusal.
	 */
	fill(r, 2);
	mailjet("{\"Messages\":[{},{\"Status\":\"queued\"}]}", r, 2);
	UNIT_CHECK(all_absent(r, 1) && r[1].ok == 0, "mailjet: no Status reads as absent, another Status as refused");

	/* answer shorter than the request; the request-level 400 has no Messages */
	fill(r, 3);
	got = mailjet("{\"Messages\":[{\"Status\":\"success\",\"To\":[{\"MessageID\":1}]}]}", r, 3);
	UNIT_CHECK(got == 1 && r[0].ok == 1 && all_absent(r + 1, 2), "mailjet: missing entries read as absent");
	fill(r, 2);
	got = mailjet("{\"ErrorIdentifier\":\"x\",\"StatusCode\":400,\"ErrorMessage\":\"Invalid JSON\"}", r, 2);
	UNIT_CHECK(got == 0 && all_absent(r, 2), "mailjet: a request-level error reads no results");
	fill(r, 2);
	got = mailjet("{\"Messages\":{\"Status\":\"success\"}}", r, 2);
	UNIT_CHECK(got == 0 && all_absent(r, 2), "mailjet malformed: Messages not an array");
	fill(r, 2);
	got = mailjet("{\"Messages\":[{\"Status\":\"success\"", r, 2);
	UNIT_CHECK(got == 0 && all_absent(r, 2), "mailjet malformed: truncated");
	fill(r, 2);
	got = mailjet("[]", r, 2);
	UNIT_CHECK(got == 0 && all_absent(r, 2), "mailjet malformed: top-level array");
}

static void
test_resend(void)
{
	EspResult	r[4];
	int			got;

	/* all accepted: data[] in request order */
	fill(r, 3);
	got = resend("{\"data\":[{\"id\":\"ae2014de-c168-4c61-8267-70d2662a1ce1\"},{\"id\":\"faccb7a5-8a28-4e9a-ac64-8da1cc3bc1cb\"},"
				 "{\"id\":\"3\"}]}", r, 3);
	UNIT_CHECK(got == 3 && r[0].ok == 1 && r[1].ok == 1 && r[2].ok == 1, "resend: all accepted");
	UNIT_STREQ(r[0].id, "ae2014de-c168-4c61-8267-70d2662a1ce1", "resend: first id");
	UNIT_STREQ(r[2].id, "3", "resend: third id");

	/* permissive validation: errors[] names the refused, data[] lists the others in order */
	fill(r, 4);
	got = resend("{\"data\":[{\"id\":\"A\"},{\"id\":\"C\"}],"
				 "\"errors\":[{\"index\":1,\"message\":\"The `to` field must be a valid email.\"},"
				 "{\"index\":3,\"message\":\"Invalid \\\"from\\\"\"}]}", r, 4);
	UNIT_CHECK(got == 4, "resend permissive: four results");
	UNIT_CHECK(r[0].ok == 1 && strcmp(r[0].id, "A") == 0, "resend permissive: index 0 gets data[0]");
	UNIT_CHECK(r[1].ok == 0 && r[1].id[0] == '\0', "resend permissive: index 1 refused");
	UNIT_STREQ(r[1].error, "The `to` field must be a valid email.", "resend permissive: index 1 message");
	UNIT_CHECK(r[2].ok == 1 && strcmp(r[2].id, "C") == 0, "resend permissive: index 2 gets data[1]");
	UNIT_STREQ(r[3].error, "Invalid \"from\"", "resend permissive: index 3 message (escaped quotes)");
	UNIT_CHECK(r[3].ok == 0, "resend permissive: index 3 refused");

	/* fewer ids than messages: the rest absent; more: ignored */
	fill(r, 3);
	got = resend("{\"data\":[{\"id\":\"A\"}]}", r, 3);
	UNIT_CHECK(got == 1 && r[0].ok == 1 && all_absent(r + 1, 2), "resend: missing ids read as absent");
	fill(r, 4);
	got = resend("{\"data\":[{\"id\":\"A\"},{\"id\":\"B\"},{\"id\":\"C\"}]}", r, 2);
	UNIT_CHECK(got == 2 && strcmp(r[1].id, "B") == 0 && r[2].ok == 7, "resend: extra ids ignored");
	/* error indexes out of range are skipped */
	fill(r, 2);
	got = resend("{\"data\":[{\"id\":\"A\"},{\"id\":\"B\"}],\"errors\":[{\"index\":-1,\"message\":\"x\"},"
				 "{\"index\":2,\"message\":\"y\"},{\"index\":99999999999,\"message\":\"z\"}]}", r, 2);
	UNIT_CHECK(got == 2 && r[0].ok == 1 && r[1].ok == 1, "resend: out-of-range error indexes skipped");
	/* a data entry without an id: accepted, empty id */
	fill(r, 1);
	got = resend("{\"data\":[{}]}", r, 1);
	UNIT_CHECK(got == 1 && r[0].ok == 1 && r[0].id[0] == '\0', "resend: data entry without id accepted with an empty id");
	/* an errors[] entry without a numeric "index" names no message: ignored */
	fill(r, 2);
	got = resend("{\"data\":[{\"id\":\"A\"},{\"id\":\"B\"}],\"errors\":[{\"message\":\"no index\"}]}", r, 2);
	UNIT_CHECK(r[0].ok == 1 && strcmp(r[0].id, "A") == 0 && r[1].ok == 1 && strcmp(r[1].id, "B") == 0,
			   "resend: an error without index refuses nothing and the ids stay in order");

	/* malformed */
	fill(r, 2);
	got = resend("{\"data\":{\"id\":\"A\"}}", r, 2);
	UNIT_CHECK(got == 0 && all_absent(r, 2), "resend malformed: data not an array");
	fill(r, 2);
	got = resend("[{\"id\":\"A\"}]", r, 2);
	UNIT_CHECK(got == 0 && all_absent(r, 2), "resend malformed: top-level array");
	fill(r, 2);
	got = resend("{\"data\":[{\"id\":\"A\"}", r, 2);
	UNIT_CHECK(got == 0 && all_absent(r, 2), "resend malformed: truncated");
	fill(r, 2);
	got = esp_resend_results(NULL, 0, r, 2);
	UNIT_CHECK(got == 0 && all_absent(r, 2), "resend malformed: NULL body");
}

static void
test_sparkpost(void)
{
	char		id[160];
	char		err[256];
	char		tiny[16];
	long		acc = -1,
				rej = -1;
	int			rc;

	rc = sparkpost("{\"results\":{\"total_rejected_recipients\":0,\"total_accepted_recipients\":1000,"
				   "\"id\":\"11668787484950529\"}}", id, sizeof(id), &acc, &rej, err, sizeof(err));
	UNIT_CHECK(rc == 0 && acc == 1000 && rej == 0, "sparkpost: counts");
	UNIT_STREQ(id, "11668787484950529", "sparkpost: transmission id");
	UNIT_STREQ(err, "", "sparkpost: no errors");

	rc = sparkpost("{\"results\":{\"total_rejected_recipients\":2,\"total_accepted_recipients\":1,\"id\":7,"
				   "\"rcpt_to_errors\":[{\"message\":\"Invalid recipient address\",\"code\":\"1100\","
				   "\"description\":\"invalid address: b@\"},{\"code\":\"1902\",\"description\":\"c@example.com \\\"x\\\"\"}]}}",
				   id, sizeof(id), &acc, &rej, err, sizeof(err));
	UNIT_CHECK(rc == 0 && acc == 1 && rej == 2, "sparkpost rejections: counts");
	UNIT_STREQ(id, "7", "sparkpost rejections: numeric id as text");
	UNIT_STREQ(err, "Invalid recipient address: invalid address: b@\nrejected: c@example.com \"x\"",
			   "sparkpost rejections: one line per error, 'rejected' without a message");

	/* joined errors truncated into errlen, NUL-terminated */
	rc = sparkpost("{\"results\":{\"id\":\"1\",\"rcpt_to_errors\":[{\"message\":\"aaaaaaaaaa\",\"description\":\"bbbbbbbbbb\"},"
				   "{\"message\":\"cc\",\"description\":\"dd\"}]}}", id, sizeof(id), &acc, &rej, tiny, sizeof(tiny));
	UNIT_CHECK(rc == 0 && strlen(tiny) == sizeof(tiny) - 1, "sparkpost: errors truncated to errlen - 1");
	UNIT_STREQ(tiny, "aaaaaaaaaa: bbb", "sparkpost: truncated text");
	rc = sparkpost("{\"results\":{\"id\":\"1\",\"rcpt_to_errors\":[{\"message\":\"m\"}]}}", id, sizeof(id), &acc, &rej, tiny, 0);
	UNIT_CHECK(rc == 0, "sparkpost: errlen 0 accepted");
	/* counts as strings */
	rc = sparkpost("{\"results\":{\"id\":\"1\",\"total_accepted_recipients\":\"5\"}}", id, sizeof(id), &acc, &rej, err, sizeof(err));
	UNIT_CHECK(rc == 0 && acc == 5 && rej == 0, "sparkpost: counts as strings, missing count 0");

	/* an error answer (4xx/5xx shape): no results */
	strcpy(id, "stale");
	rc = sparkpost("{\"errors\":[{\"message\":\"Unauthorized.\"}]}", id, sizeof(id), &acc, &rej, err, sizeof(err));
	UNIT_CHECK(rc == -1 && acc == 0 && rej == 0 && err[0] == '\0', "sparkpost: an errors answer has no results");
	UNIT_STREQ(id, "stale", "sparkpost: on -1 the id is left untouched (the caller clears it)");
	rc = sparkpost("{\"results\":[]}", id, sizeof(id), &acc, &rej, err, sizeof(err));
	UNIT_CHECK(rc == 0 && id[0] == '\0' && acc == 0, "sparkpost malformed: results not an object reads as empty");
	rc = sparkpost("{\"results\":{\"id\":\"1\",\"rcpt_to_errors\":{\"message\":\"x\"}}}", id, sizeof(id), &acc, &rej, err, sizeof(err));
	UNIT_CHECK(rc == 0 && err[0] == '\0', "sparkpost malformed: rcpt_to_errors not an array is ignored");
	rc = sparkpost("{\"results\":{\"id\":", id, sizeof(id), &acc, &rej, err, sizeof(err));
	UNIT_CHECK(rc == -1 && acc == 0 && rej == 0, "sparkpost malformed: truncated");
	rc = esp_sparkpost_result(NULL, 0, id, sizeof(id), &acc, &rej, err, sizeof(err));
	UNIT_CHECK(rc == -1, "sparkpost malformed: NULL body");
}

/* a batch answer as large as fastmock's for 1,000 messages */
static void
test_large(void)
{
	int			n = 1000;
	size_t		cap = (size_t) n * 64 + 64;
	char	   *body = malloc(cap);
	size_t		used = 0;
	EspResult  *r = malloc(sizeof(EspResult) * n);
	int			i,
				ok = 1,
				got;

	used += snprintf(body + used, cap - used, "[");
	for (i = 0; i < n; i++)
		used += snprintf(body + used, cap - used, "%s{\"ErrorCode\":%d,\"MessageID\":\"m-%d\"}",
						 i ? "," : "", i % 100 == 99 ? 406 : 0, i);
	snprintf(body + used, cap - used, "]");
	got = postmark(body, r, n);
	for (i = 0; i < n; i++)
	{
		char		want[32];

		snprintf(want, sizeof(want), "m-%d", i);
		if (r[i].ok != (i % 100 == 99 ? 0 : 1) || strcmp(r[i].id, want) != 0)
			ok = 0;
	}
	UNIT_CHECK(got == n && ok, "postmark: a 1,000-entry batch answer maps back in order");
	free(body);
	free(r);
}

int
main(void)
{
	test_member();
	test_postmark();
	test_mailjet();
	test_resend();
	test_sparkpost();
	test_large();
	UNIT_DONE();
}
