/*
 * bench_mime.c
 *	  Throughput of the MIME builder for N personalised recipients.
 *
 *	  bench_mime [N]		(default 1000000)
 *
 * Bodies are pre-rendered once (~5 KB and ~20 KB of newsletter HTML plus
 * the text part derived from it), then each recipient gets its own names,
 * addresses, message id and unsubscribe URL.  The baseline is a memcpy of
 * the same number of output bytes into the same reused buffer, measured in
 * the same run, so the ratio is robust to machine load.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mime.h"
#include "unsub_token.h"

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* newsletter-like HTML of about "target" bytes */
static void
make_html(BeBuf *b, size_t target)
{
	int			i = 0;

	be_buf_puts(b, "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Weekly</title>"
				"<style>body{font-family:Arial,sans-serif}</style></head>"
				"<body style=\"margin:0;padding:0\"><table width=\"100%\" cellpadding=\"0\" cellspacing=\"0\">\n");
	while (b->len < target - 200)
	{
		char		blk[1024];

		snprintf(blk, sizeof(blk),
				 "<tr><td style=\"padding:16px 24px;color:#333333;font-size:15px\">\n"
				 "<h2 style=\"margin:0 0 8px\">Story %d: caf\xc3\xa9 prices up 5 \xe2\x82\xac</h2>\n"
				 "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
				 "incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud "
				 "exercitation ullamco laboris.</p>\n"
				 "<p><a href=\"https://example.com/story/%d?utm_source=newsletter&amp;utm_medium=email\" "
				 "style=\"color:#0066cc\">Read more</a></p></td></tr>\n", i, i);
		be_buf_puts(b, blk);
		i++;
	}
	be_buf_puts(b, "</table><p style=\"font-size:12px\">You receive this because you subscribed. "
				"<a href=\"https://example.com/unsub\">Unsubscribe</a></p></body></html>\n");
}

static void
run(const char *label, size_t html_target, long n)
{
	BeBuf		html,
				text,
				out,
				scratch,
				tok;
	MimeMessage m;
	char		name[64],
				email[64],
				mid[64],
				url[256];
	char		err[256];
	double		t0,
				t_build,
				t_copy,
				t_tok;
	size_t		total = 0;
	size_t		msglen = 0;
	char	   *sink;
	long		i;
	static const uint8_t secret[32] = "0123456789abcdef0123456789abcdef";

	be_buf_init(&html);
	be_buf_init(&text);
	be_buf_init(&out);
	be_buf_init(&scratch);
	be_buf_init(&tok);
	make_html(&html, html_target);
	mime_html_to_text(html.data, html.len, &text);

	memset(&m, 0, sizeof(m));
	m.from_email = "news@example.com";
	m.from_name = "Example Weekly";
	m.subject = "Your weekly digest \xe2\x80\x94 caf\xc3\xa9 edition";
	m.html = html.data;
	m.html_len = html.len;
	m.text = text.data;
	m.text_len = text.len;
	m.domain = "mail.example.com";
	m.date = 1700000000;
	m.to_email = email;
	m.to_name = name;
	m.message_id = mid;
	m.unsubscribe_url = url;
	m.unsubscribe_mailto = "unsub@example.com";

	t0 = now();
	for (i = 0; i < n; i++)
	{
		snprintf(name, sizeof(name), "Recipient %ld", i);
		snprintf(email, sizeof(email), "user%ld@example.org", i);
		snprintf(mid, sizeof(mid), "b%ld.c42", i);
		snprintf(url, sizeof(url), "https://u.example.com/u/AQ%ldx", i);
		be_buf_reset(&out);
		if (mime_build_ex(&m, &out, &scratch, err, sizeof(err)) != MIME_OK)
		{
			fprintf(stderr, "build failed: %s\n", err);
			exit(1);
		}
		total += out.len;
	}
	t_build = now() - t0;
	msglen = out.len;

	/* baseline: copy the same bytes into the same reused buffer */
	sink = malloc(msglen + 64);
	{
		char	   *src = malloc(msglen + 64);
		volatile size_t acc = 0;

		memcpy(src, out.data, msglen);
		t0 = now();
		for (i = 0; i < n; i++)
		{
			src[i % msglen] = (char) i; /* defeat hoisting */
			memcpy(sink, src, msglen);
			acc += (unsigned char) sink[(size_t) i % msglen];
		}
		t_copy = now() - t0;
		(void) acc;
		free(src);
	}

	/* unsubscribe token per recipient (HMAC-SHA256), for reference */
	{
		long		nt = n / 4 > 0 ? n / 4 : 1;

		t0 = now();
		for (i = 0; i < nt; i++)
		{
			snprintf(email, sizeof(email), "user%ld@example.org", i);
			be_buf_reset(&tok);
			unsub_token_make(secret, 32, "6f1c2d3e-4a5b-4c6d-8e7f-901234567890",
							 "0b9e8d7c-6b5a-4948-8726-354433221100", email,
							 "0f8fad5b-d9cb-469f-a165-70867728950e", &tok);
		}
		t_tok = (now() - t0) * ((double) n / nt);
	}

	printf("%s: %.0f msgs/s, %.0f MB/s out (html %zu B + text %zu B -> %zu B message) "
		   "(baseline memcpy: %.0f msgs/s, ratio %.3f)\n",
		   label, n / t_build, total / t_build / 1e6, html.len, text.len, msglen,
		   n / t_copy, (n / t_build) / (n / t_copy));
	printf("%s_token: %.0f tokens/s\n", label, n / t_tok);

	free(sink);
	be_buf_free(&html);
	be_buf_free(&text);
	be_buf_free(&out);
	be_buf_free(&scratch);
	be_buf_free(&tok);
}

int
main(int argc, char **argv)
{
	long		n = argc > 1 ? atol(argv[1]) : 1000000;

	if (n <= 0)
		n = 1000000;
	run("mime_5k", 5000, n);
	run("mime_20k", 20000, n / 4 > 0 ? n / 4 : 1);
	return 0;
}
