/*
 * mime_dump.c
 *	  Writes a few dozen varied messages for test/unit/check_mime.py, which
 *	  parses them with Python's email package.
 *
 *	  mime_dump <outdir>
 *
 * For each case N it writes N.eml (the built message) and N.in (the raw
 * inputs, one "key hex" per line) so the checker can compare independently.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime.h"

static const char *outdir;
static int	ncase = 0;

static void
put_hex(FILE *f, const char *key, const char *v, size_t len)
{
	size_t		i;

	fprintf(f, "%s ", key);
	for (i = 0; i < len; i++)
		fprintf(f, "%02x", (unsigned char) v[i]);
	fputc('\n', f);
}

static void
put_str(FILE *f, const char *key, const char *v)
{
	if (v)
		put_hex(f, key, v, strlen(v));
}

static void
dump(const char *label, const MimeMessage *m)
{
	char		path[4096];
	BeBuf		out;
	char		err[256];
	FILE	   *f;
	size_t		i;
	int			rc;

	be_buf_init(&out);
	rc = mime_build(m, &out, err, sizeof(err));
	if (rc != MIME_OK)
	{
		fprintf(stderr, "case %d (%s): build failed: %s\n", ncase, label, err);
		exit(2);
	}
	snprintf(path, sizeof(path), "%s/%03d.eml", outdir, ncase);
	f = fopen(path, "wb");
	if (!f || fwrite(out.data, 1, out.len, f) != out.len || fclose(f) != 0)
	{
		perror(path);
		exit(2);
	}
	be_buf_free(&out);

	snprintf(path, sizeof(path), "%s/%03d.in", outdir, ncase);
	f = fopen(path, "wb");
	if (!f)
	{
		perror(path);
		exit(2);
	}
	put_str(f, "label", label);
	put_str(f, "from_email", m->from_email);
	put_str(f, "from_name", m->from_name);
	put_str(f, "to_email", m->to_email);
	put_str(f, "to_name", m->to_name);
	put_str(f, "reply_to", m->reply_to);
	put_str(f, "reply_to_name", m->reply_to_name);
	put_str(f, "subject", m->subject);
	if (m->html)
		put_hex(f, "html", m->html, m->html_len ? m->html_len : strlen(m->html));
	if (m->text)
		put_hex(f, "text", m->text, m->text_len ? m->text_len : strlen(m->text));
	if (m->no_derive_text)
		put_str(f, "no_derive_text", "1");
	put_str(f, "message_id", m->message_id);
	put_str(f, "domain", m->domain);
	fprintf(f, "date %lld\n", (long long) m->date);
	put_str(f, "unsubscribe_url", m->unsubscribe_url);
	put_str(f, "unsubscribe_mailto", m->unsubscribe_mailto);
	for (i = 0; i < m->n_extra; i++)
	{
		put_str(f, "xname", m->extra[i].name);
		put_str(f, "xvalue", m->extra[i].value ? m->extra[i].value : "");
	}
	fclose(f);
	ncase++;
}

static MimeMessage
base(void)
{
	MimeMessage m;

	memset(&m, 0, sizeof(m));
	m.from_email = "news@example.com";
	m.from_name = "Example News";
	m.to_email = "alice@example.org";
	m.to_name = "Alice Smith";
	m.subject = "Hello Alice";
	m.html = "<p>Hello <b>Alice</b></p>";
	m.text = "Hello Alice\n";
	m.message_id = "0f8fad5b-d9cb-469f-a165-70867728950e";
	m.domain = "mail.example.com";
	m.date = 1700000000;
	m.unsubscribe_url = "https://u.example.com/u/AQIDBA.xyz";
	return m;
}

static uint32_t rng = 12345;

static uint32_t
next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

/* tricky fragments for random text: all valid UTF-8 */
static const char *const frags[] = {
	"a", "Hello", " ", "  ", "\t", "\r\n", "\n", "\r", "=", "=?", "?=",
	"=?utf-8?q?x?=", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
	"\xd0\x9f\xd1\x80\xd0\xb8", "\xe6\x97\xa5\xe6\x9c\xac", "\"", "\\",
	"<", ">", ",", ";", ":", "@", "(", ")", ".", "From ", "--", "--=_be_",
	"\r\nBcc: evil@example.net", "\nX-Injected: 1", "\x01", "\x7f", "\x1b[0m",
	"_", "?", "%", "''", "longwordlongwordlongwordlongwordlongwordlongword",
	NULL
};

static char *
rand_text(size_t maxfrags)
{
	size_t		nf = 0;
	size_t		n = next_rand() % (maxfrags + 1);
	size_t		i;
	BeBuf		b;

	while (frags[nf])
		nf++;
	be_buf_init(&b);
	be_buf_puts(&b, "");
	for (i = 0; i < n; i++)
		be_buf_puts(&b, frags[next_rand() % nf]);
	return b.data;
}

int
main(int argc, char **argv)
{
	MimeMessage m;
	static char longascii[4000];
	static char longword[3000];
	static char longutf8[4000];
	static char bigbody[70000];
	MimeHeader	xh[4];
	int			i;

	if (argc != 2)
	{
		fprintf(stderr, "usage: mime_dump <outdir>\n");
		return 2;
	}
	outdir = argv[1];

	m = base();
	dump("plain ascii", &m);

	m = base();
	m.subject = "Gr\xc3\xbc\xc3\x9f""e aus M\xc3\xbcnchen \xe2\x80\x93 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x8e\x89";
	m.from_name = "M\xc3\xbcller & S\xc3\xb6hne";
	m.to_name = "\xe5\xb1\xb1\xe7\x94\xb0 \xe5\xa4\xaa\xe9\x83\x8e";
	m.html = "<p>Sch\xc3\xb6ne Gr\xc3\xbc\xc3\x9f""e \xe2\x82\xac 5</p>";
	m.text = "Sch\xc3\xb6ne Gr\xc3\xbc\xc3\x9f""e \xe2\x82\xac 5\n";
	dump("non-ascii subject, names and body", &m);

	m = base();
	for (i = 0; i < 60; i++)
		strcat(longascii, "word ");
	strcat(longascii, "end");
	m.subject = longascii;
	dump("long ascii subject is folded", &m);

	m = base();
	memset(longword, 'x', 2500);
	m.subject = longword;
	dump("2500-char word subject", &m);

	m = base();
	for (i = 0; i < 120; i++)
		strcat(longutf8, "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xf0\x9f\x98\x80");
	m.subject = longutf8;
	m.from_name = longutf8 + 1700;
	dump("long utf-8 subject and name", &m);

	m = base();
	m.subject = "Literal =?utf-8?q?not_encoded?= text";
	m.from_name = "=?utf-8?q?fake?=";
	dump("literal encoded-word lookalikes", &m);

	m = base();
	m.from_name = "Smith, John \"Johnny\" \\ <boss@evil.com>; (x)";
	m.to_name = "a@b.c";
	dump("display name specials are quoted", &m);

	m = base();
	m.subject = "Hi\r\nBcc: victim@example.net\r\n\r\nbody";
	m.from_name = "Evil\r\nX-Injected: yes";
	m.to_name = "Name\nTo: other@example.net";
	m.reply_to = "reply@example.com";
	m.reply_to_name = "R\r\n\r\n";
	xh[0].name = "X-Campaign";
	xh[0].value = "c1\r\nX-Injected: 1";
	m.extra = xh;
	m.n_extra = 1;
	dump("CRLF injection in free text is neutralised", &m);

	m = base();
	m.subject = "ctl \x01\x02\x1b\x7f\t end  ";
	m.from_name = "\t  Tab Name  \t";
	dump("control characters become spaces", &m);

	m = base();
	m.text = NULL;
	m.html = "<html><head><title>T</title><style>p{}</style></head><body>"
		"<h1>Title</h1><p>Para &amp; more<br>line two</p>"
		"<ul><li>one</li><li>two</li></ul>"
		"<p><a href=\"https://example.com/x?a=1&amp;b=2\">Click</a></p></body></html>";
	dump("html only: text derived", &m);

	m = base();
	m.text = NULL;
	m.no_derive_text = true;
	dump("html only, no derived text: single part html", &m);

	m = base();
	m.html = NULL;
	dump("text only: single part", &m);

	m = base();
	memset(bigbody, 'y', 2000);
	strcpy(bigbody + 2000, "\nline with trailing space \nand tab\t\n.\n.leading dot\nFrom the start\n=3D==\n--=_be_0000000000000000\n--=_be_0000000000000000--\r\nCRLF line\rCR line\r\n\r\n");
	m.text = bigbody;
	m.html = bigbody;
	dump("long lines, trailing ws, dots, From, boundary lookalikes", &m);

	m = base();
	{
		static char cyr[20000];

		for (i = 0; i < 300; i++)
			strcat(cyr, "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82, \xd0\xbc\xd0\xb8\xd1\x80!\n");
		m.text = cyr;
		m.html = cyr;
	}
	dump("cyrillic body (base64)", &m);

	m = base();
	{
		static char mixed[12000];

		memset(mixed, 'a', 1100);
		mixed[1100] = '\n';
		for (i = 0; i < 500; i++)
			strcat(mixed, "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82\n");
		m.text = mixed;
	}
	dump("ascii start, cyrillic rest (qp gives up, base64)", &m);

	m = base();
	m.unsubscribe_mailto = "unsub+abc@example.com";
	dump("list-unsubscribe with mailto address", &m);

	m = base();
	m.unsubscribe_url = NULL;
	m.unsubscribe_mailto = "mailto:unsub@example.com?subject=unsubscribe";
	dump("mailto only", &m);

	m = base();
	m.unsubscribe_url = NULL;
	dump("no list-unsubscribe", &m);

	m = base();
	m.unsubscribe_url = "http://u.example.com/u/plain-http";
	m.unsubscribe_mailto = "u@example.com";
	dump("http unsubscribe url: no one-click post", &m);

	m = base();
	xh[0].name = "X-Campaign-ID";
	xh[0].value = "spring-2030";
	xh[1].name = "X-Note";
	xh[1].value = "Caf\xc3\xa9 \xe2\x98\x95 long long long long long long long long long long long long long long long value";
	xh[2].name = "Precedence";
	xh[2].value = "bulk";
	xh[3].name = "X-Empty";
	xh[3].value = "";
	m.extra = xh;
	m.n_extra = 4;
	m.reply_to = "support@example.com";
	m.reply_to_name = "Support Team";
	dump("extra headers and reply-to", &m);

	m = base();
	m.subject = "bad \xff utf8 \xc3 here";
	m.from_name = "\xfe\xfe";
	dump("invalid utf-8 in headers becomes U+FFFD", &m);

	m = base();
	m.subject = "";
	m.from_name = NULL;
	m.to_name = "";
	dump("empty subject, no display names", &m);

	m = base();
	m.html = "x\0y<p>nul</p>";
	m.html_len = 13;
	m.text = "a\0b";
	m.text_len = 3;
	dump("NUL bytes in bodies are encoded", &m);

	m = base();
	m.from_email = "o'brien+tag@sub-domain.example.co.uk";
	m.to_email = "x.y_z~{}@example.museum";
	dump("unusual but valid addresses", &m);

	m = base();
	m.date = 0;
	dump("epoch date", &m);

	/* random messages built from tricky fragments */
	for (i = 0; i < 25; i++)
	{
		char	   *subj = rand_text(12);
		char	   *fn = rand_text(6);
		char	   *tn = rand_text(6);
		char	   *html = rand_text(200);
		char	   *text = rand_text(200);
		char	   *xv = rand_text(8);
		char		label[64];

		m = base();
		m.subject = subj;
		m.from_name = fn;
		m.to_name = tn;
		m.html = (i % 5 == 1) ? NULL : html;
		m.text = (i % 5 == 2) ? NULL : text;
		xh[0].name = "X-Random";
		xh[0].value = xv;
		m.extra = xh;
		m.n_extra = 1;
		snprintf(label, sizeof(label), "random message %d", i);
		dump(label, &m);
		free(subj);
		free(fn);
		free(tn);
		free(html);
		free(text);
		free(xv);
	}
	printf("%d messages written to %s\n", ncase, outdir);
	return 0;
}
