/*-------------------------------------------------------------------------
 *
 * tracking.c
 *	  First-party open and click tracking: the links of a rendered HTML body
 *	  rewritten to the edge's /t/c/<token>, and the open pixel /t/o/<token>.
 *
 * A tracking token has the layout of the unsubscribe tokens (unsub_token.c)
 * under its own MAC context ("be-track:"), with the fields
 *
 *	workspace_id	the workspace
 *	list_id			"o" for the open pixel, else the link's index (decimal,
 *					from 0, in document order)
 *	email			"-" for the open pixel, else the link's target URL
 *	message_id		the message
 *
 * The target is read from the signed token, never from anything else in
 * the request: the edge redirects only to a URL this server put in this
 * message, so a tracking link is no open redirect.  A URL that cannot be
 * carried (longer than a token field, control characters, an HTML
 * character reference we do not decode) keeps its original link.
 *
 * Pure C (no PostgreSQL headers), like compose.c, which calls it.
 *
 *-------------------------------------------------------------------------
 */
#include "tracking.h"

#include <stdio.h>
#include <string.h>

#include "unsub_token.h"

static int
lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

static bool
is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static bool
prefix_ci(const char *s, size_t len, const char *p)
{
	size_t		n = strlen(p);
	size_t		i;

	if (len < n)
		return false;
	for (i = 0; i < n; i++)
		if (lower((unsigned char) s[i]) != p[i])
			return false;
	return true;
}

/*
 * The attribute value as a browser reads it, for the few character
 * references links carry; false for anything else (the link is kept).
 */
static bool
decode_attr(const char *v, size_t len, BeBuf *out)
{
	static const struct
	{
		const char *ref;
		char		c;
	}			refs[] = {
		{"&amp;", '&'}, {"&#38;", '&'}, {"&quot;", '"'}, {"&#34;", '"'},
		{"&#39;", '\''}, {"&apos;", '\''}, {"&lt;", '<'}, {"&gt;", '>'}
	};
	size_t		i = 0;

	be_buf_reset(out);
	while (i < len)
	{
		unsigned char c = (unsigned char) v[i];

		if (c < 0x20 || c == 0x7f)
			return false;
		if (c == '&')
		{
			size_t		k;
			size_t		j;
			bool		found = false;

			for (k = 0; k < sizeof(refs) / sizeof(refs[0]); k++)
			{
				size_t		n = strlen(refs[k].ref);

				if (len - i >= n && memcmp(v + i, refs[k].ref, n) == 0)
				{
					be_buf_putc(out, refs[k].c);
					i += n;
					found = true;
					break;
				}
			}
			if (found)
				continue;
			/* "&name;" we do not know: keep the link as it is */
			for (j = i + 1; j < len && j < i + 32; j++)
			{
				if (v[j] == ';')
					return false;
				if (!((v[j] >= 'a' && v[j] <= 'z') || (v[j] >= 'A' && v[j] <= 'Z') ||
					  (v[j] >= '0' && v[j] <= '9') || v[j] == '#'))
					break;
			}
		}
		be_buf_putc(out, (char) c);
		i++;
	}
	return !out->oom && out->len > 0 && out->len <= UNSUB_FIELD_MAX;
}

static bool
put_url(BeBuf *out, const char *base, const char *kind, BeBuf *token)
{
	return be_buf_puts(out, base) && be_buf_puts(out, kind) &&
		be_buf_append(out, token->data, token->len);
}

int
track_rewrite_html(const char *html, size_t len, const TrackParams *p, BeBuf *out, BeBuf *scratch,
				   BeBuf *token)
{
	size_t		i = 0;
	size_t		copied = 0;
	int			index = 0;
	const char *body_end = NULL;
	size_t		k;
	char		idx[16];

	be_buf_reset(out);
	while (i < len)
	{
		size_t		j;

		if (html[i] != '<' || len - i < 3 || lower((unsigned char) html[i + 1]) != 'a' ||
			!is_space((unsigned char) html[i + 2]))
		{
			i++;
			continue;
		}
		j = i + 2;
		/* the attributes of <a ...> up to its '>' */
		while (j < len && html[j] != '>')
		{
			size_t		ns;
			size_t		ne;
			size_t		vs;
			size_t		ve;

			while (j < len && (is_space((unsigned char) html[j]) || html[j] == '/'))
				j++;
			ns = j;
			while (j < len && !is_space((unsigned char) html[j]) && html[j] != '=' && html[j] != '>' &&
				   html[j] != '/')
				j++;
			ne = j;
			while (j < len && is_space((unsigned char) html[j]))
				j++;
			if (j >= len || html[j] != '=')
			{
				if (ne == ns && j < len && html[j] != '>')
					j++;		/* a stray character: step over it */
				continue;
			}
			j++;
			while (j < len && is_space((unsigned char) html[j]))
				j++;
			if (j < len && (html[j] == '"' || html[j] == '\''))
			{
				char		q = html[j++];

				vs = j;
				while (j < len && html[j] != q)
					j++;
				ve = j;
				if (j < len)
					j++;
			}
			else
			{
				vs = j;
				while (j < len && !is_space((unsigned char) html[j]) && html[j] != '>')
					j++;
				ve = j;
			}
			if (ne - ns != 4 || !prefix_ci(html + ns, 4, "href"))
				continue;
			/* only web links; not the unsubscribe or confirmation link */
			if (!decode_attr(html + vs, ve - vs, scratch))
				continue;
			be_buf_putc(scratch, '\0');
			scratch->len--;
			if (!(prefix_ci(scratch->data, scratch->len, "http://") ||
				  prefix_ci(scratch->data, scratch->len, "https://")))
				continue;
			if ((p->unsubscribe_url && p->unsubscribe_url[0] &&
				 strcmp(scratch->data, p->unsubscribe_url) == 0) ||
				(p->skip_prefix && p->skip_prefix[0] &&
				 strncmp(scratch->data, p->skip_prefix, strlen(p->skip_prefix)) == 0))
				continue;
			snprintf(idx, sizeof(idx), "%d", index);
			be_buf_reset(token);
			if (be_token_make(TRACK_MAC_CONTEXT, p->secret, p->secret_len, p->workspace_id, idx,
							  scratch->data, p->message_id, token) != UNSUB_OK)
				continue;		/* not a field we can sign: keep the link */
			index++;
			/* the text before the value, then the tracking URL in the same quotes */
			be_buf_append(out, html + copied, vs - copied);
			put_url(out, p->base_url, "/c/", token);
			copied = ve;
		}
		i = j;
	}

	/* the pixel, before the last </body> when there is one */
	for (k = len; k >= 7 && k - 7 >= copied; k--)
	{
		if (prefix_ci(html + k - 7, 7, "</body>"))
		{
			body_end = html + k - 7;
			break;
		}
		if (k == 7)
			break;
	}
	if (body_end)
		be_buf_append(out, html + copied, (size_t) (body_end - html) - copied);
	else
		be_buf_append(out, html + copied, len - copied);
	be_buf_reset(token);
	if (be_token_make(TRACK_MAC_CONTEXT, p->secret, p->secret_len, p->workspace_id, "o", "-",
					  p->message_id, token) != UNSUB_OK)
		return -1;
	be_buf_puts(out, "<img src=\"");
	put_url(out, p->base_url, "/o/", token);
	be_buf_puts(out, "\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;width:1px;height:1px;border:0\">");
	if (body_end)
		be_buf_append(out, body_end, len - (size_t) (body_end - html));
	return out->oom ? -1 : index;
}
