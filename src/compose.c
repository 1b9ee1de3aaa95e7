/*-------------------------------------------------------------------------
 *
 * compose.c
 *	  Rendering a recipient's message from a broadcast's pinned templates.
 *
 * A ComposeBroadcast holds the compiled templates of every variation (one
 * compile per template version per worker) and the data that is the same
 * for every recipient.  A ComposeCtx holds the buffers reused from one
 * message to the next, so the per-message cost is the JSON parse of the
 * contact's data, the renders and the encoding, with no allocation churn.
 *
 *-------------------------------------------------------------------------
 */
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compose.h"
#include "mime.h"
#include "provider_json.h"
#include "tmpl.h"
#include "tracking.h"
#include "unsub_token.h"

typedef struct ComposeTemplate
{
	char	   *template_id;
	int			version;
	Template   *subject;
	Template   *html;
	Template   *text;			/* NULL: derive from HTML */
	char	   *from_email;
	char	   *from_name;
	char	   *reply_to;
} ComposeTemplate;

struct ComposeBroadcast
{
	char	   *workspace_id;
	char	   *domain;			/* Message-ID domain, or NULL */
	char	   *unsub_base;
	char	   *unsub_mailto;
	char	   *track_base;		/* first-party tracking on: the edge's /t */
	char	   *confirm_base;	/* a double opt-in confirmation: the edge's /c */
	uint8_t    *secret;
	size_t		secret_len;
	json_object *workspace;		/* {"id", "name"} */
	json_object *broadcast;		/* {"id", "name"} */
	json_object *lists;			/* list_id -> name */
	int			nvariations;
	ComposeTemplate variations[COMPOSE_MAX_VARIATIONS];
};

struct ComposeCtx
{
	TmplRenderCtx *tmpl;
	BeBuf		subject;
	BeBuf		html;
	BeBuf		text;
	BeBuf		token;
	BeBuf		url;
	BeBuf		list_unsub;
	BeBuf		body;
	BeBuf		scratch;
	BeBuf		tracked;		/* the HTML with tracking links */
	BeBuf		track_scratch;
	BeBuf		confirm;		/* the confirmation URL */
};

/* a base URL without its final slashes (malloc'd), or NULL */
static char *
base_url_dup(const char *s)
{
	char	   *d;
	size_t		n;

	if (s == NULL || s[0] == '\0')
		return NULL;
	d = strdup(s);
	if (d == NULL)
		return NULL;
	n = strlen(d);
	while (n > 0 && d[n - 1] == '/')
		d[--n] = '\0';
	return d;
}

/* the contact's opt-out of tracking: properties.tracking_opt_out = true */
static bool
tracking_opted_out(json_object *contact)
{
	json_object *props;
	json_object *v;

	return json_object_object_get_ex(contact, "properties", &props) &&
		json_object_is_type(props, json_type_object) &&
		json_object_object_get_ex(props, "tracking_opt_out", &v) &&
		json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* the snippets pinned with a variation: {"name": source} */
static bool
pinned_snippet(void *arg, const char *name, size_t namelen, const char **src, size_t *srclen)
{
	json_object *pinned = arg;
	json_object *v;
	char		key[256];

	if (pinned == NULL || namelen >= sizeof(key))
		return false;
	memcpy(key, name, namelen);
	key[namelen] = '\0';
	if (!json_object_object_get_ex(pinned, key, &v) || !json_object_is_type(v, json_type_string))
		return false;
	*src = json_object_get_string(v);
	*srclen = (size_t) json_object_get_string_len(v);
	return true;
}

static Template *
compile_field(const char *src, const char *what, const char *template_id,
			  json_object *snippets, char *errbuf, size_t errlen)
{
	TmplError	err;
	Template   *t;

	t = tmpl_compile_ex(src, strlen(src), pinned_snippet, snippets, &err);
	if (t == NULL)
		snprintf(errbuf, errlen, "template \"%.60s\" %s does not compile at line %d, column %d: %.120s",
				 template_id, what, err.line, err.column, err.message);
	return t;
}

static int
specialize_one(Template **t, json_object *constant, char *errbuf, size_t errlen)
{
	TmplError	err;
	Template   *st;

	if (*t == NULL)
		return 0;
	st = tmpl_specialize(*t, constant, &err);
	if (st == NULL)
	{
		snprintf(errbuf, errlen, "could not prepare the template: %.200s", err.message);
		return -1;
	}
	tmpl_free(*t);
	*t = st;
	return 0;
}

static int
specialize_all(ComposeBroadcast *b, ComposeTemplate *ct, char *errbuf, size_t errlen)
{
	json_object *constant = json_object_new_object();
	int			rc;

	json_object_object_add(constant, "workspace", json_object_get(b->workspace));
	json_object_object_add(constant, "broadcast", json_object_get(b->broadcast));
	rc = specialize_one(&ct->subject, constant, errbuf, errlen);
	if (rc == 0)
		rc = specialize_one(&ct->html, constant, errbuf, errlen);
	if (rc == 0)
		rc = specialize_one(&ct->text, constant, errbuf, errlen);
	/* each specialised template keeps its own reference */
	json_object_put(constant);
	return rc;
}

ComposeBroadcast *
compose_broadcast_create(const ComposeBroadcastSrc *src, char *errbuf, size_t errlen)
{
	ComposeBroadcast *b;
	json_object *snippets = NULL;
	int			i;

	b = calloc(1, sizeof(ComposeBroadcast));
	if (b == NULL)
	{
		snprintf(errbuf, errlen, "out of memory");
		return NULL;
	}
	b->workspace_id = strdup(src->workspace_id);
	b->domain = dup_or_null(src->sending_domain);
	b->unsub_base = dup_or_null(src->unsub_base_url);
	b->unsub_mailto = dup_or_null(src->unsub_mailto);
	b->track_base = base_url_dup(src->track_base_url);
	b->confirm_base = base_url_dup(src->confirm_base_url);
	if (src->secret_len > 0)
	{
		b->secret = malloc(src->secret_len);
		if (b->secret)
			memcpy(b->secret, src->secret, src->secret_len);
		b->secret_len = src->secret_len;
	}
	b->workspace = json_object_new_object();
	json_object_object_add(b->workspace, "id", json_object_new_string(src->workspace_id));
	json_object_object_add(b->workspace, "name",
						   src->workspace_name ? json_object_new_string(src->workspace_name) : NULL);
	json_object_object_add(b->workspace, "timezone",
						   json_object_new_string(src->workspace_timezone ? src->workspace_timezone : "UTC"));
	b->broadcast = json_object_new_object();
	json_object_object_add(b->broadcast, "id", json_object_new_string(src->broadcast_id));
	json_object_object_add(b->broadcast, "name",
						   src->broadcast_name ? json_object_new_string(src->broadcast_name) : NULL);
	b->lists = src->lists_json ? json_tokener_parse(src->lists_json) : NULL;
	if (b->lists == NULL || !json_object_is_type(b->lists, json_type_object))
	{
		json_object_put(b->lists);
		b->lists = json_object_new_object();
	}

	for (i = 0; i < src->nvariations && i < COMPOSE_MAX_VARIATIONS; i++)
	{
		const ComposeTemplateSrc *ts = &src->variations[i];
		ComposeTemplate *ct = &b->variations[i];

		b->nvariations = i + 1;
		ct->template_id = strdup(ts->template_id);
		ct->version = ts->version;
		ct->from_email = dup_or_null(ts->from_email);
		ct->from_name = dup_or_null(ts->from_name);
		ct->reply_to = dup_or_null(ts->reply_to);
		json_object_put(snippets);
		snippets = ts->snippets_json ? json_tokener_parse(ts->snippets_json) : NULL;
		ct->subject = compile_field(ts->subject, "subject", ts->template_id, snippets, errbuf, errlen);
		if (ct->subject == NULL)
			goto fail;
		ct->html = compile_field(ts->html, "html", ts->template_id, snippets, errbuf, errlen);
		if (ct->html == NULL)
			goto fail;
		if (ts->text_body != NULL)
		{
			ct->text = compile_field(ts->text_body, "text_body", ts->template_id, snippets,
									 errbuf, errlen);
			if (ct->text == NULL)
				goto fail;
		}
		/*
		 * What depends only on the broadcast and the workspace is the same
		 * for every recipient: render it once, now (byte-identical output).
		 */
		if (specialize_all(b, ct, errbuf, errlen) != 0)
			goto fail;
		if (ct->from_email == NULL)
		{
			snprintf(errbuf, errlen, "template \"%.60s\" has no from_email and the workspace no default_from_email",
					 ts->template_id);
			goto fail;
		}
	}
	json_object_put(snippets);
	return b;

fail:
	json_object_put(snippets);
	compose_broadcast_free(b);
	return NULL;
}

void
compose_broadcast_free(ComposeBroadcast *b)
{
	int			i;

	if (b == NULL)
		return;
	for (i = 0; i < b->nvariations; i++)
	{
		ComposeTemplate *ct = &b->variations[i];

		free(ct->template_id);
		free(ct->from_email);
		free(ct->from_name);
		free(ct->reply_to);
		if (ct->subject)
			tmpl_free(ct->subject);
		if (ct->html)
			tmpl_free(ct->html);
		if (ct->text)
			tmpl_free(ct->text);
	}
	json_object_put(b->workspace);
	json_object_put(b->broadcast);
	json_object_put(b->lists);
	free(b->workspace_id);
	free(b->domain);
	free(b->unsub_base);
	free(b->unsub_mailto);
	free(b->track_base);
	free(b->confirm_base);
	free(b->secret);
	free(b);
}

ComposeCtx *
compose_ctx_create(void)
{
	ComposeCtx *c = calloc(1, sizeof(ComposeCtx));

	if (c == NULL)
		return NULL;
	c->tmpl = tmpl_ctx_create();
	be_buf_init(&c->subject);
	be_buf_init(&c->html);
	be_buf_init(&c->text);
	be_buf_init(&c->token);
	be_buf_init(&c->url);
	be_buf_init(&c->list_unsub);
	be_buf_init(&c->body);
	be_buf_init(&c->scratch);
	be_buf_init(&c->tracked);
	be_buf_init(&c->track_scratch);
	be_buf_init(&c->confirm);
	return c;
}

void
compose_ctx_set_tz_resolver(ComposeCtx *c, TmplTzResolver fn, void *arg)
{
	tmpl_ctx_set_tz_resolver(c->tmpl, fn, arg);
}

void
compose_ctx_free(ComposeCtx *c)
{
	if (c == NULL)
		return;
	tmpl_ctx_free(c->tmpl);
	be_buf_free(&c->subject);
	be_buf_free(&c->html);
	be_buf_free(&c->text);
	be_buf_free(&c->token);
	be_buf_free(&c->url);
	be_buf_free(&c->list_unsub);
	be_buf_free(&c->body);
	be_buf_free(&c->scratch);
	be_buf_free(&c->tracked);
	be_buf_free(&c->track_scratch);
	be_buf_free(&c->confirm);
	free(c);
}

static const char *
buf_str(BeBuf *b)
{
	return b->data ? b->data : "";
}

static int
render_one(ComposeCtx *c, Template *t, json_object *data, BeBuf *out, const char *what,
		   ComposeOutput *res)
{
	TmplError	err;
	TmplLimits	lim;

	tmpl_default_limits(&lim);
	be_buf_reset(out);
	if (!be_buf_reserve(out, 0) ||
		tmpl_render(t, c->tmpl, data, &lim, out, &err) != 0)
	{
		snprintf(res->error, sizeof(res->error), "rendering the %s failed at line %d, column %d: %.180s",
				 what, err.line, err.column, err.message);
		return -1;
	}
	return 0;
}

int
compose_render(ComposeBroadcast *b, ComposeCtx *c, const ComposeInput *in, ComposeOutput *out)
{
	ComposeTemplate *ct;
	json_object *data;
	json_object *contact;
	json_object *list;
	json_object *list_name = NULL;
	int			rc = -1;

	memset(out, 0, sizeof(*out));
	if (in->variation < 0 || in->variation >= b->nvariations)
	{
		snprintf(out->error, sizeof(out->error), "no template for variation %d", in->variation);
		return -1;
	}
	ct = &b->variations[in->variation];

	/* the one-click unsubscribe URL carries a token signed for this message */
	be_buf_reset(&c->url);
	be_buf_reset(&c->list_unsub);
	if (b->unsub_base && b->secret_len > 0)
	{
		size_t		blen = strlen(b->unsub_base);

		be_buf_reset(&c->token);
		if (unsub_token_make(b->secret, b->secret_len, b->workspace_id, in->list_id,
							 in->email, in->message_id, &c->token) != UNSUB_OK)
		{
			snprintf(out->error, sizeof(out->error), "could not make the unsubscribe token");
			return -1;
		}
		while (blen > 0 && b->unsub_base[blen - 1] == '/')
			blen--;
		be_buf_append(&c->url, b->unsub_base, blen);
		be_buf_putc(&c->url, '/');
		be_buf_append(&c->url, c->token.data, c->token.len);
	}
	if (c->url.len > 0 || b->unsub_mailto)
	{
		char		err[128];

		if (mime_list_unsubscribe_value(c->url.len ? c->url.data : NULL, b->unsub_mailto,
										&c->list_unsub, err, sizeof(err)) != MIME_OK)
		{
			snprintf(out->error, sizeof(out->error), "bad unsubscribe settings: %s", err);
			return -1;
		}
	}

	/* a double opt-in confirmation carries its signed /c/ link */
	be_buf_reset(&c->confirm);
	if (b->confirm_base && b->secret_len > 0 && in->list_id)
	{
		be_buf_puts(&c->confirm, b->confirm_base);
		be_buf_putc(&c->confirm, '/');
		if (be_token_make(CONFIRM_MAC_CONTEXT, b->secret, b->secret_len, b->workspace_id, in->list_id,
						  in->email, in->message_id, &c->confirm) != UNSUB_OK)
		{
			snprintf(out->error, sizeof(out->error), "could not make the confirmation token");
			return -1;
		}
	}

	contact = in->contact_json ? json_tokener_parse(in->contact_json) : NULL;
	if (contact == NULL)
	{
		contact = json_object_new_object();
		json_object_object_add(contact, "email", json_object_new_string(in->email));
	}
	if (in->list_id)
		json_object_object_get_ex(b->lists, in->list_id, &list_name);
	list = json_object_new_object();
	json_object_object_add(list, "id", in->list_id ? json_object_new_string(in->list_id) : NULL);
	json_object_object_add(list, "name", json_object_get(list_name));

	data = json_object_new_object();
	json_object_object_add(data, "contact", contact);
	json_object_object_add(data, "workspace", json_object_get(b->workspace));
	json_object_object_add(data, "broadcast", json_object_get(b->broadcast));
	json_object_object_add(data, "list", list);
	json_object_object_add(data, "unsubscribe_url", json_object_new_string(buf_str(&c->url)));
	json_object_object_add(data, "message_id", json_object_new_string(in->message_id));
	if (b->confirm_base)
		json_object_object_add(data, "confirm_url", json_object_new_string(buf_str(&c->confirm)));

	if (render_one(c, ct->subject, data, &c->subject, "subject", out) != 0 ||
		render_one(c, ct->html, data, &c->html, "html", out) != 0)
		goto done;
	/* tracking off (the common case): the HTML is used as rendered */
	if (b->track_base && b->secret_len > 0 && !tracking_opted_out(contact))
	{
		TrackParams tp;
		BeBuf		swap;

		tp.base_url = b->track_base;
		tp.secret = b->secret;
		tp.secret_len = b->secret_len;
		tp.workspace_id = b->workspace_id;
		tp.message_id = in->message_id;
		tp.unsubscribe_url = buf_str(&c->url);
		tp.skip_prefix = b->confirm_base;
		if (track_rewrite_html(buf_str(&c->html), c->html.len, &tp, &c->tracked,
							   &c->track_scratch, &c->token) < 0)
		{
			snprintf(out->error, sizeof(out->error), "out of memory adding the tracking links");
			goto done;
		}
		swap = c->html;
		c->html = c->tracked;
		c->tracked = swap;
	}
	if (ct->text)
	{
		if (render_one(c, ct->text, data, &c->text, "text body", out) != 0)
			goto done;
	}
	else
	{
		be_buf_reset(&c->text);
		if (mime_html_to_text(buf_str(&c->html), c->html.len, &c->text) != MIME_OK)
		{
			snprintf(out->error, sizeof(out->error), "out of memory deriving the text part");
			goto done;
		}
	}
	out->subject = buf_str(&c->subject);
	out->html = buf_str(&c->html);
	out->html_len = c->html.len;
	out->text = buf_str(&c->text);
	out->text_len = c->text.len;
	out->from_email = ct->from_email;
	out->from_name = ct->from_name;
	out->reply_to = ct->reply_to;
	out->unsubscribe_url = buf_str(&c->url);
	out->list_unsubscribe = buf_str(&c->list_unsub);
	out->template_id = ct->template_id;
	out->template_version = ct->version;
	rc = 0;

done:
	json_object_put(data);
	return rc;
}

static const char *
message_domain(ComposeBroadcast *b, const ComposeOutput *out)
{
	const char *at;

	if (b->domain)
		return b->domain;
	at = strrchr(out->from_email, '@');
	return at ? at + 1 : "localhost";
}

int
compose_mime(ComposeBroadcast *b, ComposeCtx *c, const ComposeInput *in, ComposeOutput *out)
{
	MimeMessage m;

	memset(&m, 0, sizeof(m));
	m.from_email = out->from_email;
	m.from_name = out->from_name;
	m.to_email = in->email;
	m.reply_to = out->reply_to;
	m.subject = out->subject;
	m.html = out->html;
	m.html_len = out->html_len;
	m.text = out->text;
	m.text_len = out->text_len;
	m.no_derive_text = true;
	m.message_id = in->message_id;
	m.domain = message_domain(b, out);
	m.date = in->date;
	m.unsubscribe_url = out->unsubscribe_url[0] ? out->unsubscribe_url : NULL;
	m.unsubscribe_mailto = b->unsub_mailto;

	be_buf_reset(&c->body);
	if (mime_build_ex(&m, &c->body, &c->scratch, out->error, sizeof(out->error)) != MIME_OK)
		return -1;
	out->body = buf_str(&c->body);
	out->body_len = c->body.len;
	return 0;
}

/* ---- what the providers' body composers share (src/provider_*_json.c) ---- */

/*
 * Appends s[0..len) as a JSON string.  Runs of bytes that need no escape
 * are copied in one piece: a 5 KB HTML part is mostly such runs, and
 * building a json-c tree and printing it byte by byte cost more than
 * rendering the template.  UTF-8 passes through, as json-c prints it.
 */
void
compose_json_put_str(BeBuf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t		run = 0;
	size_t		i;

	be_buf_putc(b, '"');
	for (i = 0; i < len; i++)
	{
		unsigned char ch;
		char		esc[7];
		size_t		n = 2;

		/* eight bytes at a time while none is a control byte, '"' or '\\' */
		while (i + 8 <= len)
		{
			uint64_t	w;

			memcpy(&w, s + i, 8);
			if (((w - UINT64_C(0x2020202020202020)) |
				 ((w ^ UINT64_C(0x2222222222222222)) - UINT64_C(0x0101010101010101)) |
				 ((w ^ UINT64_C(0x5c5c5c5c5c5c5c5c)) - UINT64_C(0x0101010101010101))) &
				~w & UINT64_C(0x8080808080808080))
				break;
			i += 8;
		}
		if (i >= len)
			break;
		ch = (unsigned char) s[i];
		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		be_buf_append(b, s + run, i - run);
		run = i + 1;
		esc[0] = '\\';
		switch (ch)
		{
			case '"':
				esc[1] = '"';
				break;
			case '\\':
				esc[1] = '\\';
				break;
			case '\n':
				esc[1] = 'n';
				break;
			case '\r':
				esc[1] = 'r';
				break;
			case '\t':
				esc[1] = 't';
				break;
			default:
				memcpy(esc + 1, "u00", 3);
				esc[4] = hex[ch >> 4];
				esc[5] = hex[ch & 15];
				n = 6;
				break;
		}
		be_buf_append(b, esc, n);
	}
	be_buf_append(b, s + run, len - run);
	be_buf_putc(b, '"');
}

/* {"email": ..., "name": ...} */
void
compose_json_put_address(BeBuf *b, const char *email, const char *name)
{
	be_buf_puts(b, "{\"email\":");
	compose_json_put_str(b, email, strlen(email));
	if (name && name[0])
	{
		be_buf_puts(b, ",\"name\":");
		compose_json_put_str(b, name, strlen(name));
	}
	be_buf_putc(b, '}');
}

/*
 * What every provider body starts from: checked addresses and a subject
 * cleaned to one header-safe line (in c->scratch).
 */
int
compose_esp_begin(ComposeCtx *c, const ComposeInput *in, ComposeOutput *out)
{
	if (!mime_address_valid(out->from_email) || !mime_address_valid(in->email) ||
		(out->reply_to && !mime_address_valid(out->reply_to)))
	{
		snprintf(out->error, sizeof(out->error), "invalid from, reply-to or to address");
		return -1;
	}
	be_buf_reset(&c->scratch);
	if (mime_header_value_clean(out->subject, strlen(out->subject), &c->scratch) != MIME_OK)
	{
		snprintf(out->error, sizeof(out->error), "invalid subject");
		return -1;
	}
	return 0;
}

const char *
compose_esp_subject(ComposeCtx *c)
{
	return buf_str(&c->scratch);
}

/* one-click unsubscribe (RFC 8058) needs an https URL */
bool
compose_esp_one_click(const ComposeOutput *out)
{
	return out->list_unsubscribe[0] && strncmp(out->unsubscribe_url, "https://", 8) == 0;
}

/* "Name" <email>, the display name quoted and stripped of control characters */
void
compose_esp_address(BeBuf *b, const char *email, const char *name)
{
	const unsigned char *p;

	be_buf_reset(b);
	if (name == NULL || name[0] == '\0')
	{
		be_buf_append(b, email, strlen(email));
		return;
	}
	be_buf_putc(b, '"');
	for (p = (const unsigned char *) name; *p; p++)
	{
		if (*p < 0x20 || *p == 0x7f)
			continue;
		if (*p == '"' || *p == '\\')
			be_buf_putc(b, '\\');
		be_buf_putc(b, (char) *p);
	}
	be_buf_append(b, "\" <", 3);
	be_buf_append(b, email, strlen(email));
	be_buf_putc(b, '>');
}

json_object *
compose_esp_str(const char *s)
{
	return json_object_new_string(s ? s : "");
}

/* serialises root into c->body (root is freed) */
int
compose_esp_finish(ComposeCtx *c, json_object *root, ComposeOutput *out)
{
	const char *s;
	size_t		len;

	s = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	be_buf_reset(&c->body);
	be_buf_append(&c->body, s, len);
	json_object_put(root);
	if (c->body.oom)
	{
		snprintf(out->error, sizeof(out->error), "out of memory");
		return -1;
	}
	out->body = buf_str(&c->body);
	out->body_len = c->body.len;
	return 0;
}

json_object *
compose_esp_headers(const ComposeOutput *out)
{
	json_object *hs;

	if (!out->list_unsubscribe[0])
		return NULL;
	hs = json_object_new_object();
	json_object_object_add(hs, "List-Unsubscribe", compose_esp_str(out->list_unsubscribe));
	if (compose_esp_one_click(out))
		json_object_object_add(hs, "List-Unsubscribe-Post", compose_esp_str(MIME_LIST_UNSUB_POST_VALUE));
	return hs;
}


/* the buffers a body composer may use: the body, the batch key, the subject */
BeBuf *
compose_esp_body(ComposeCtx *c)
{
	return &c->body;
}

BeBuf *
compose_esp_key(ComposeCtx *c)
{
	return &c->token;
}

size_t
compose_esp_subject_len(ComposeCtx *c)
{
	return c->scratch.len;
}

const char *
compose_buf_str(BeBuf *b)
{
	return buf_str(b);
}
