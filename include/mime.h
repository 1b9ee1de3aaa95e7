/*-------------------------------------------------------------------------
 *
 * mime.h
 *	  RFC 5322 / MIME message builder for outgoing broadcast mail.
 *
 * Output is pure 7-bit ASCII with CRLF line endings: bodies are
 * quoted-printable or base64 (whichever is shorter), non-ASCII header text
 * is RFC 2047-encoded, every line is at most 998 octets (header lines are
 * folded to 78 where there is whitespace; encoded body lines are <= 76).
 *
 * Injection policy: free-text fields (display names, subject, extra header
 * values) have CR, LF, NUL and other control characters replaced by spaces
 * (a CRLF pair becomes one space) and invalid UTF-8 replaced by U+FFFD;
 * structural fields (addresses, message id, domain, URLs, header names) are
 * rejected with MIME_EINVAL if they contain anything outside their syntax.
 *
 * Server independent: malloc/free only, every failure is a return code.
 *
 *-------------------------------------------------------------------------
 */
#ifndef BE_MIME_H
#define BE_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "be_buf.h"

/* return codes */
#define MIME_OK			0
#define MIME_EINVAL		(-1)	/* errbuf says which field and why */
#define MIME_ENOMEM		(-2)

#define MIME_LINE_MAX			998 /* RFC 5322 2.1.1 hard limit */
#define MIME_QP_LINE_MAX		76	/* RFC 2045 6.7 */
#define MIME_EW_MAX				75	/* RFC 2047 2: encoded-word length */
#define MIME_EXTRA_HEADERS_MAX	64
#define MIME_URL_MAX			900 /* keeps List-Unsubscribe under 998 */

#define MIME_LIST_UNSUB_POST_VALUE	"List-Unsubscribe=One-Click"

typedef struct MimeHeader
{
	const char *name;
	const char *value;
} MimeHeader;

typedef struct MimeMessage
{
	const char *from_email;		/* required: local@domain, ASCII */
	const char *from_name;		/* optional display name, UTF-8 */
	const char *to_email;		/* required */
	const char *to_name;		/* optional */
	const char *reply_to;		/* optional address */
	const char *reply_to_name;	/* optional */
	const char *subject;		/* UTF-8; NULL = empty */
	const char *html;			/* UTF-8 body; NULL or "" = none */
	size_t		html_len;		/* 0 = strlen(html) */
	const char *text;			/* UTF-8 body; NULL or "" = none */
	size_t		text_len;		/* 0 = strlen(text) */
	bool		no_derive_text; /* don't derive text from html */
	const char *message_id;		/* required: left part of Message-ID */
	const char *domain;			/* required: right part of Message-ID */
	time_t		date;
	const char *unsubscribe_url;	/* optional https:// URL (RFC 8058 one-click;
									 * http:// gets no List-Unsubscribe-Post) */
	const char *unsubscribe_mailto; /* optional: "mailto:..." or address */
	const MimeHeader *extra;	/* optional caller headers */
	size_t		n_extra;
} MimeMessage;

/*
 * Build the complete message and append it to "out" (which the caller may
 * reuse across messages: be_buf_reset() between calls, no reallocation once
 * it is large enough).  "scratch" is a caller-owned work buffer (may be
 * NULL: then one is allocated and freed per call when needed).  On error
 * returns MIME_EINVAL / MIME_ENOMEM, writes a message to errbuf (may be
 * NULL) and leaves out->len as it was on entry.
 */
extern int	mime_build_ex(const MimeMessage *m, BeBuf *out, BeBuf *scratch,
						  char *errbuf, size_t errlen);
extern int	mime_build(const MimeMessage *m, BeBuf *out,
					   char *errbuf, size_t errlen);

/*
 * Header values for providers that take headers as JSON (SendGrid, ...):
 * Message-ID, List-Unsubscribe (when a URL or mailto is set),
 * List-Unsubscribe-Post (when the URL is https) and the extra headers,
 * validated exactly as for mime_build.  Values are clean UTF-8, neither folded nor 2047-encoded
 * (the provider does that).  Strings are stored in "store"; hdrs[i] point
 * into it, so don't touch store until done with hdrs.
 */
extern int	mime_header_values(const MimeMessage *m, BeBuf *store,
							   MimeHeader *hdrs, size_t maxhdrs, size_t *nhdrs,
							   char *errbuf, size_t errlen);

/* "<https://...>" or "<https://...>, <mailto:...>"; either may be NULL */
extern int	mime_list_unsubscribe_value(const char *url, const char *mailto,
										BeBuf *out, char *errbuf, size_t errlen);

/*
 * Sanitise one free-text header value: control characters (incl. CR, LF,
 * NUL, TAB, DEL) become spaces, a CRLF pair one space, invalid UTF-8
 * U+FFFD, leading and trailing spaces are dropped.  Appends to out.
 */
extern int	mime_header_value_clean(const char *in, size_t len, BeBuf *out);

/* RFC 5322 field-name: 1*(%d33-57 / %d59-126), at most 76 chars */
extern bool mime_field_name_valid(const char *name);

/* addr-spec (dot-atom local part, ASCII host name), <= 254 chars */
extern bool mime_address_valid(const char *addr);

/* "Tue, 02 Jan 2030 03:04:05 +0000" (UTC); buf must hold 32 bytes */
extern void mime_format_date(time_t t, char *buf);

/* Append "name <addr>" with the display name quoted or 2047-encoded. */
extern int	mime_format_address(const char *addr, const char *name,
								BeBuf *out, char *errbuf, size_t errlen);

/* HTML to plain text (see docs/messages.md for the rules).  Appends. */
extern int	mime_html_to_text(const char *html, size_t len, BeBuf *out);

/*
 * Body encoders, exported for tests.  Both canonicalise line breaks (LF, CR
 * or CRLF) to CRLF as RFC 2045 requires for text, and append no final
 * CRLF (the one before the next boundary belongs to the boundary).
 */
extern bool mime_qp_encode(const char *in, size_t len, BeBuf *out);
/*
 * As above, but returns 1 when done, 0 when out of memory and -1 (leaving
 * out unchanged) when the output would exceed "limit" bytes.
 */
extern int	mime_qp_encode_limit(const char *in, size_t len, BeBuf *out,
								 size_t limit);
extern bool mime_base64_encode(const char *in, size_t len, BeBuf *out);

/* Predicted encoded sizes used to pick the encoding (cheap byte counts). */
extern size_t mime_qp_size_estimate(const char *in, size_t len);
extern size_t mime_base64_size(size_t len);

/*
 * RFC 2047 encode "in" (UTF-8, already cleaned) as a run of encoded-words,
 * each <= 75 chars, never splitting a UTF-8 sequence, separated by CRLF SP.
 * "col" is the column where the first word starts (for the 78 limit).
 * Uses Q or B, whichever is shorter, with the Q set safe inside phrases.
 */
extern bool mime_encode_words(const char *in, size_t len, size_t col, BeBuf *out);

/*
 * Append "Name: value" + CRLF as an unstructured header: value is cleaned,
 * ASCII values are folded at spaces, others are 2047-encoded.
 */
extern bool mime_put_unstructured(BeBuf *out, const char *name,
								  const char *value, size_t len);

#endif							/* BE_MIME_H */
