/*
 * Unit tests for the composer's SendGrid JSON body (src/compose.c): the
 * body is written directly, not through json-c, so every string in it is
 * checked by parsing the body back with json-c and comparing the values,
 * for strings with quotes, backslashes, control bytes and UTF-8 at every
 * offset around the 8-byte scanning step.
 */
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compose.h"
#include "tracking.h"
#include "provider_json.h"
#include "unit.h"

static ComposeBroadcast *
make_broadcast(const char *html, const char *text)
{
	ComposeBroadcastSrc src;
	char		err[256];
	ComposeBroadcast *b;
	static const uint8_t secret[32] = {1, 2, 3};

	memset(&src, 0, sizeof(src));
	src.workspace_id = "ws";
	src.workspace_name = "Workspace";
	src.broadcast_id = "b1";
	src.broadcast_name = "Weekly";
	src.sending_domain = "news.example.com";
	src.unsub_base_url = "https://example.com/u";
	src.secret = secret;
	src.secret_len = sizeof(secret);
	src.lists_json = "{\"l\": \"Readers\"}";
	src.nvariations = 1;
	src.variations[0].template_id = "t";
	src.variations[0].version = 1;
	src.variations[0].subject = "Hi {{ contact.first_name }}";
	src.variations[0].html = html;
	src.variations[0].text_body = text;
	src.variations[0].from_email = "news@example.com";
	src.variations[0].from_name = "News \"Desk\"";
	b = compose_broadcast_create(&src, err, sizeof(err));
	if (b == NULL)
		printf("# compose_broadcast_create: %s\n", err);
	return b;
}

/* renders for one contact and returns the parsed SendGrid body (or NULL) */
static json_object *
sendgrid_body(ComposeBroadcast *b, ComposeCtx *c, const char *contact, ComposeOutput *out)
{
	ComposeInput in;

	memset(&in, 0, sizeof(in));
	in.email = "ada@example.com";
	in.list_id = "l";
	in.message_id = "7d9f0a52-4c1e-4f4e-9a43-3f1f0c8e2b11";
	in.contact_json = contact;
	in.date = 1700000000;
	if (compose_render(b, c, &in, out) != 0 || compose_sendgrid_json(b, c, &in, out) != 0)
	{
		printf("# compose: %s\n", out->error);
		return NULL;
	}
	return json_tokener_parse(out->body);
}

static const char *
content_value(json_object *root, int idx)
{
	json_object *content;
	json_object *part;
	json_object *v;

	if (!json_object_object_get_ex(root, "content", &content))
		return NULL;
	part = json_object_array_get_idx(content, idx);
	if (part == NULL || !json_object_object_get_ex(part, "value", &v))
		return NULL;
	return json_object_get_string(v);
}

static void
test_shape(void)
{
	ComposeCtx *c = compose_ctx_create();
	ComposeBroadcast *b = make_broadcast("<p>Hello {{ contact.first_name }}</p>", "Hello {{ contact.first_name }}");
	ComposeOutput out;
	json_object *root;
	json_object *v;

	UNIT_CHECK(b != NULL && c != NULL, "shape: broadcast and context created");
	root = sendgrid_body(b, c, "{\"first_name\": \"Ada\", \"email\": \"ada@example.com\"}", &out);
	UNIT_CHECK(root != NULL, "shape: the body is JSON");
	UNIT_STREQ(content_value(root, 0), "Hello Ada", "shape: text/plain first, personalised");
	UNIT_STREQ(content_value(root, 1), "<p>Hello Ada</p>", "shape: text/html second");
	UNIT_CHECK(json_object_object_get_ex(root, "subject", &v) && strcmp(json_object_get_string(v), "Hi Ada") == 0,
			   "shape: subject rendered");
	UNIT_CHECK(json_object_object_get_ex(root, "from", &v) &&
			   strcmp(json_object_get_string(json_object_object_get(v, "name")), "News \"Desk\"") == 0,
			   "shape: from name with quotes survives");
	UNIT_CHECK(json_object_object_get_ex(root, "personalizations", &v) &&
			   strcmp(json_object_get_string(json_object_object_get(json_object_object_get(json_object_array_get_idx(v, 0), "custom_args"), "message_id")),
					  "7d9f0a52-4c1e-4f4e-9a43-3f1f0c8e2b11") == 0,
			   "shape: custom_args carry the message id");
	UNIT_CHECK(json_object_object_get_ex(root, "headers", &v) &&
			   strncmp(json_object_get_string(json_object_object_get(v, "List-Unsubscribe")), "<https://example.com/u", 22) == 0 &&
			   strcmp(json_object_get_string(json_object_object_get(v, "List-Unsubscribe-Post")), "List-Unsubscribe=One-Click") == 0,
			   "shape: one-click unsubscribe headers");
	json_object_put(root);
	compose_broadcast_free(b);
	compose_ctx_free(c);
}

/* every escape at every offset around the 8-byte step round-trips */
static void
test_escapes(void)
{
	static const char *specials[] = {"\"", "\\", "\n", "\r", "\t", "\x01", "\x1f", "\x7f", "\xc3\xa9", "\xe2\x82\xac", "/"};
	ComposeCtx *c = compose_ctx_create();
	int			bad = 0;
	int			total = 0;
	size_t		k;
	int			pad;

	for (k = 0; k < sizeof(specials) / sizeof(specials[0]); k++)
	{
		for (pad = 0; pad < 20; pad++)
		{
			char		html[128];
			ComposeBroadcast *b;
			ComposeOutput out;
			json_object *root;

			/* the special byte(s) after pad plain bytes, then more plain bytes */
			snprintf(html, sizeof(html), "%.*s%s%s", pad, "abcdefghijklmnopqrstuvwxyz", specials[k], "tail-12345678");
			b = make_broadcast(html, "plain text");
			total++;
			if (b == NULL)
			{
				bad++;
				continue;
			}
			root = sendgrid_body(b, c, "{\"first_name\": \"Ada\"}", &out);
			if (root == NULL || content_value(root, 1) == NULL || strcmp(content_value(root, 1), html) != 0)
			{
				bad++;
				printf("# escape %zu at offset %d: %s\n", k, pad, out.body_len ? out.body : "(none)");
			}
			if (root)
				json_object_put(root);
			compose_broadcast_free(b);
		}
	}
	UNIT_CHECK(bad == 0, "escapes: quotes, backslashes, control bytes and UTF-8 round-trip at every offset");
	printf("# %d bodies checked\n", total);
	compose_ctx_free(c);
}

/* a contact value with every ASCII byte comes back unchanged */
static void
test_all_bytes(void)
{
	ComposeCtx *c = compose_ctx_create();
	ComposeBroadcast *b = make_broadcast("{{ contact.first_name }}", "x");
	ComposeOutput out;
	json_object *contact;
	json_object *root;
	char		name[300];
	int			i;
	int			n = 0;

	/* ASCII 1..127 (json-c's parser refuses invalid UTF-8), less what HTML escaping may touch */
	for (i = 1; i < 128; i++)
		if (i != '<' && i != '>' && i != '&' && i != '"' && i != '\'')
			name[n++] = (char) i;
	name[n] = '\0';
	contact = json_object_new_object();
	json_object_object_add(contact, "first_name", json_object_new_string(name));
	root = sendgrid_body(b, c, json_object_to_json_string(contact), &out);
	UNIT_CHECK(root != NULL && content_value(root, 1) != NULL && strcmp(content_value(root, 1), name) == 0,
			   "all bytes: every ASCII byte in a contact value round-trips through the JSON body");
	if (root)
		json_object_put(root);
	json_object_put(contact);
	compose_broadcast_free(b);
	compose_ctx_free(c);
}

static int
count_of(const char *s, const char *needle)
{
	int			n = 0;

	while ((s = strstr(s, needle)) != NULL)
	{
		n++;
		s += strlen(needle);
	}
	return n;
}

/* first-party tracking: links rewritten, the pixel added, the opt-out and the fast path kept */
static void
test_tracking(void)
{
	static const char html[] = "<html><body><a href=\"https://shop.example/a?x=1&amp;y=2\">A</a>"
		"<a href='{{ unsubscribe_url }}'>U</a><a href=\"mailto:a@example.com\">M</a>"
		"<A HREF=http://b.example/>B</A></body></html>";
	static const uint8_t secret[32] = {1, 2, 3};
	ComposeBroadcastSrc src;
	ComposeBroadcast *tracked;
	ComposeBroadcast *plain;
	ComposeCtx *c = compose_ctx_create();
	ComposeInput in;
	ComposeOutput out;
	char		err[256];
	char	   *first;
	TrackParams tp;
	BeBuf		o;
	BeBuf		sc;
	BeBuf		tk;
	size_t		len;
	int			bad = 0;

	memset(&src, 0, sizeof(src));
	src.workspace_id = "ws";
	src.broadcast_id = "b1";
	src.unsub_base_url = "https://example.com/u";
	src.track_base_url = "https://example.com/t/";
	src.secret = secret;
	src.secret_len = sizeof(secret);
	src.nvariations = 1;
	src.variations[0].template_id = "t";
	src.variations[0].version = 1;
	src.variations[0].subject = "Hi";
	src.variations[0].html = html;
	src.variations[0].from_email = "news@example.com";
	tracked = compose_broadcast_create(&src, err, sizeof(err));
	src.track_base_url = NULL;
	plain = compose_broadcast_create(&src, err, sizeof(err));
	UNIT_CHECK(tracked != NULL && plain != NULL && c != NULL, "tracking: broadcasts created");

	memset(&in, 0, sizeof(in));
	in.email = "ada@example.com";
	in.list_id = "l";
	in.message_id = "01890000-0000-7000-8000-000000000001";
	in.contact_json = "{\"email\": \"ada@example.com\", \"properties\": {}}";
	UNIT_CHECK(compose_render(tracked, c, &in, &out) == 0, "tracking: renders");
	UNIT_CHECK(count_of(out.html, "https://example.com/t/c/") == 2 && count_of(out.html, "https://example.com/t/o/") == 1,
			   "tracking: two web links rewritten, one pixel");
	UNIT_CHECK(strstr(out.html, "href='https://example.com/u/") != NULL && strstr(out.html, "mailto:a@example.com") != NULL
			   && strstr(out.html, "shop.example") == NULL, "tracking: unsubscribe and mailto links kept");
	UNIT_CHECK(strstr(out.html, "<img src=\"https://example.com/t/o/") < strstr(out.html, "</body>"),
			   "tracking: the pixel before </body>");
	first = strdup(out.html);

	in.contact_json = "{\"email\": \"ada@example.com\", \"properties\": {\"tracking_opt_out\": true}}";
	UNIT_CHECK(compose_render(tracked, c, &in, &out) == 0 && strstr(out.html, "/t/") == NULL
			   && strstr(out.html, "https://shop.example/a?x=1&amp;y=2") != NULL,
			   "tracking: a contact's opt-out keeps the links as written");
	UNIT_CHECK(compose_render(plain, c, &in, &out) == 0 && strstr(out.html, "/t/") == NULL
			   && count_of(out.html, "<a") + count_of(out.html, "<A") == 4, "tracking off: the HTML as rendered");
	in.contact_json = "{\"email\": \"ada@example.com\"}";
	UNIT_CHECK(compose_render(tracked, c, &in, &out) == 0 && strcmp(out.html, first) == 0,
			   "tracking: the same message renders the same links (the buffers swap back cleanly)");
	free(first);

	/* every prefix of a tag soup: no read past the end, links counted in order */
	memset(&tp, 0, sizeof(tp));
	tp.base_url = "https://e/t";
	tp.secret = secret;
	tp.secret_len = sizeof(secret);
	tp.workspace_id = "ws";
	tp.message_id = "m";
	be_buf_init(&o);
	be_buf_init(&sc);
	be_buf_init(&tk);
	{
		static const char soup[] = "<a\thref = \"https://x/&#38;\" ><a href='https://y/'<a href=https://z/ "
			"<a href=\"https://w/&copy;\"><a hrefx=\"https://v/\" href=\"\"><a = href=\"https://u/\"></BODY>";

		for (len = 0; len <= sizeof(soup) - 1; len++)
		{
			char	   *cut = malloc(len + 1);
			int			n;

			memcpy(cut, soup, len);
			cut[len] = '\0';
			n = track_rewrite_html(cut, len, &tp, &o, &sc, &tk);
			if (n < 0 || n > 4 || count_of(o.data, "https://e/t/o/") != 1)
				bad++;
			free(cut);
		}
		UNIT_CHECK(bad == 0, "tracking: every prefix of tag soup rewrites without error, one pixel each");
		UNIT_CHECK(track_rewrite_html(soup, sizeof(soup) - 1, &tp, &o, &sc, &tk) == 3,
				   "tracking: three links rewritten in the soup (not &copy;, an empty href or hrefx)");
	}
	be_buf_free(&o);
	be_buf_free(&sc);
	be_buf_free(&tk);
	compose_broadcast_free(tracked);
	compose_broadcast_free(plain);
	compose_ctx_free(c);
}

typedef int (*BeComposeFnUnit) (ComposeBroadcast *b, ComposeCtx *c, const ComposeInput *in, ComposeOutput *out);

/* renders for one contact with a provider's composer; 0 on success */
static int
provider_body(ComposeBroadcast *b, ComposeCtx *c, const char *email, BeComposeFnUnit fn, ComposeOutput *out)
{
	ComposeInput in;

	memset(&in, 0, sizeof(in));
	in.email = email;
	in.list_id = "l";
	in.message_id = "7d9f0a52-4c1e-4f4e-9a43-3f1f0c8e2b11";
	in.contact_json = "{\"first_name\": \"Ada\"}";
	in.date = 1700000000;
	if (compose_render(b, c, &in, out) != 0 || fn(b, c, &in, out) != 0)
	{
		printf("# compose: %s\n", out->error);
		return -1;
	}
	return 0;
}

/*
 * Issue 15: SparkPost's content is the real HTML (links inside
 * substitution values are not tracked), and the recipient carries only its
 * address and metadata.
 */
static void
test_sparkpost(void)
{
	ComposeCtx *c = compose_ctx_create();
	ComposeBroadcast *b = make_broadcast("<p>Hi {{ contact.first_name }} <a href=\"https://example.org/x\">x</a></p>", NULL);
	ComposeOutput out;
	json_object *r;
	json_object *v;

	UNIT_CHECK(b && provider_body(b, c, "ada@example.com", compose_sparkpost_json, &out) == 0,
			   "sparkpost: composed");
	UNIT_CHECK(out.batch_key && strstr(out.batch_key, "<a href=\\\"https://example.org/x\\\">") != NULL
			   && strstr(out.batch_key, "Hi Ada") != NULL && strstr(out.batch_key, "{{") == NULL,
			   "sparkpost: the content (batch key) holds the rendered HTML, no substitution");
	r = json_tokener_parse(out.body);
	UNIT_CHECK(r && !json_object_object_get_ex(r, "substitution_data", &v)
			   && json_object_object_get_ex(r, "metadata", &v),
			   "sparkpost: the recipient has metadata and no substitution_data");
	json_object_put(r);
	compose_broadcast_free(b);
	compose_ctx_free(c);
}

/*
 * Issue 15: a large Mailgun body the same for every recipient but the
 * unsubscribe URL is shared (the batch key), with small variables; a
 * personalised one stays in the variables.
 */
static void
test_mailgun(void)
{
	ComposeCtx *c = compose_ctx_create();
	char	   *big = malloc(6000);
	ComposeBroadcast *same;
	ComposeBroadcast *own;
	ComposeOutput out;
	char	   *key1;
	json_object *r;
	json_object *v;

	memset(big, 'x', 5000);
	strcpy(big + 5000, "<a href=\"{{ unsubscribe_url }}\">u</a>");
	same = make_broadcast(big, "text");
	UNIT_CHECK(same && provider_body(same, c, "ada@example.com", compose_mailgun_vars, &out) == 0,
			   "mailgun: composed");
	UNIT_CHECK(out.batch_key && strstr(out.batch_key, "%recipient.unsubscribe_url%") != NULL
			   && strstr(out.batch_key, out.unsubscribe_url) == NULL,
			   "mailgun: a large body goes in the batch key with the unsubscribe URL as a variable");
	r = json_tokener_parse(out.body);
	UNIT_CHECK(r && !json_object_object_get_ex(r, "html", &v) && json_object_object_get_ex(r, "unsubscribe_url", &v)
			   && out.body_len < 1024, "mailgun: the recipient's variables are small");
	json_object_put(r);
	key1 = strdup(out.batch_key);
	UNIT_CHECK(provider_body(same, c, "bob@example.com", compose_mailgun_vars, &out) == 0
			   && strcmp(key1, out.batch_key) == 0, "mailgun: two recipients share the key");
	free(key1);

	strcpy(big + 5000, "{{ contact.first_name }}");
	own = make_broadcast(big, "text %recipient.x%");
	UNIT_CHECK(own && provider_body(own, c, "ada@example.com", compose_mailgun_vars, &out) == 0,
			   "mailgun: composed (a literal %recipient. in the text)");
	r = json_tokener_parse(out.body);
	UNIT_CHECK(r && json_object_object_get_ex(r, "html", &v) && strchr(out.batch_key, '{') == NULL,
			   "mailgun: a body with its own %recipient. is never shared");
	json_object_put(r);
	compose_broadcast_free(same);
	compose_broadcast_free(own);
	compose_ctx_free(c);
	free(big);
}

int
main(void)
{
	test_tracking();
	test_shape();
	test_escapes();
	test_all_bytes();
	test_sparkpost();
	test_mailgun();
	UNIT_DONE();
}
