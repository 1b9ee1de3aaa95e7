/*
 * test_tmpl.c
 *	  Unit tests for the template engine (src/tmpl/).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json.h>

#include "tmpl.h"
#include "unit.h"

static const char *default_json =
"{\"contact\": {\"first_name\": \"Ann\", \"last_name\": \"O'Neil & <Co>\","
" \"email\": \"ann@example.com\", \"tags\": [\"vip\", \"beta\"], \"score\": 42,"
" \"ratio\": 1.5, \"active\": true, \"deleted\": false, \"nothing\": null,"
" \"empty_str\": \"\", \"spaces\": \"  \\t \", \"signup\": \"2026-03-01T10:00:00Z\","
" \"signup_pg\": \"2026-03-01 10:00:00+02\", \"signup_unix\": 1772359200,"
" \"nums\": [3, 1, 2], \"empty_list\": [], \"meta\": {\"city\": \"Paris\", \"first name\": \"A\"},"
" \"key\": \"city\", \"idx\": 1, \"bio\": \"  hello world  \","
" \"long\": \"The quick brown fox jumps over the lazy dog\", \"utf\": \"h\\u00e9llo w\\u00f6rld\"},"
" \"broadcast\": {\"subject\": \"News\", \"articles\": ["
"   {\"title\": \"One\", \"url\": \"https://e.com/1\", \"featured\": true},"
"   {\"title\": \"Two\", \"url\": \"https://e.com/2\", \"featured\": false},"
"   {\"title\": \"Three <3>\", \"url\": \"https://e.com/3\"}]},"
" \"list\": {\"name\": \"Weekly\"}, \"workspace\": {\"name\": \"Acme\"},"
" \"unsubscribe_url\": \"https://e.com/u?a=1&b=2\", \"message_id\": \"m-1\"}";

static struct json_object *data;
static char result[1 << 16];

/*
 * Every template rendered by the tests is also specialised with several
 * splits of the data into constant and per-recipient parts; the result
 * must equal the plain render (checked once at the end).
 */
#define NSPLITS 3
static struct json_object *splits[NSPLITS];
static int	spec_checked;
static int	spec_mismatch;
static char spec_first_bad[512];

/* Render t and its specialisation by each split; 0 when they all agree. */
static int
spec_compare(Template *t, const char *src, const TmplLimits *lim)
{
	TmplRenderCtx *c = tmpl_ctx_create();
	BeBuf		a;
	BeBuf		b;
	TmplError	err;
	TmplError	err2;
	int			bad = 0;
	int			i;
	int			rc;

	be_buf_init(&a);
	rc = tmpl_render(t, c, data, lim, &a, &err);
	for (i = 0; i < NSPLITS; i++)
	{
		Template   *st = tmpl_specialize(t, splits[i], &err2);
		int			rc2;

		be_buf_init(&b);
		if (st == NULL)
			bad = 1;
		else
		{
			/* twice: the context must not carry state between renders */
			rc2 = tmpl_render(st, c, data, lim, &b, &err2);
			be_buf_reset(&b);
			rc2 |= tmpl_render(st, c, data, lim, &b, &err2);
			if (rc != rc2 || (rc == 0 && (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len) != 0))) ||
				(rc != 0 && err.kind != err2.kind))
				bad = 1;
		}
		be_buf_free(&b);
		tmpl_free(st);
	}
	spec_checked++;
	if (bad && spec_mismatch++ == 0)
		snprintf(spec_first_bad, sizeof(spec_first_bad), "%s", src);
	be_buf_free(&a);
	tmpl_ctx_free(c);
	return bad;
}

static void
make_splits(void)
{
	static const char *const keys[NSPLITS][4] = {
		{"broadcast", "list", "workspace", NULL},	/* what the sender does */
		{"contact", "message_id", NULL, NULL},
		{NULL}
	};
	int			i;
	int			k;

	for (i = 0; i < NSPLITS; i++)
	{
		splits[i] = json_object_new_object();
		for (k = 0; k < 4 && keys[i][k]; k++)
		{
			struct json_object *v;

			if (json_object_object_get_ex(data, keys[i][k], &v))
				json_object_object_add(splits[i], keys[i][k], json_object_get(v));
		}
	}
}

/* Render with limits; returns the output or "ERROR line:col message". */
static const char *
render_lim(const char *src, const TmplLimits *lim)
{
	TmplError	err;
	Template   *t = tmpl_compile(src, strlen(src), &err);
	TmplRenderCtx *c;
	BeBuf		out;

	if (t == NULL)
	{
		snprintf(result, sizeof(result), "ERROR %d:%d %s", err.line, err.column, err.message);
		return result;
	}
	/* inputs that read the clock may straddle a second */
	if (strstr(src, "now") == NULL && strstr(src, "today") == NULL)
		spec_compare(t, src, lim);
	c = tmpl_ctx_create();
	be_buf_init(&out);
	if (tmpl_render(t, c, data, lim, &out, &err) != 0)
		snprintf(result, sizeof(result), "ERROR %d:%d %s", err.line, err.column, err.message);
	else
		snprintf(result, sizeof(result), "%s", out.data ? out.data : "");
	be_buf_free(&out);
	tmpl_ctx_free(c);
	tmpl_free(t);
	return result;
}

static const char *
R(const char *src)
{
	return render_lim(src, NULL);
}

static bool
starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void
test_output(void)
{
	UNIT_STREQ(R("Hi {{ contact.first_name }}!"), "Hi Ann!", "dotted path");
	UNIT_STREQ(R("{{contact.first_name}}"), "Ann", "no spaces");
	UNIT_STREQ(R("{{ contact['first_name'] }}"), "Ann", "bracket key single quotes");
	UNIT_STREQ(R("{{ contact[\"meta\"][\"first name\"] }}"), "A", "bracket key with space");
	UNIT_STREQ(R("{{ contact.tags[0] }}/{{ contact.tags[-1] }}/{{ contact.tags[5] }}"), "vip/beta/", "array index");
	UNIT_STREQ(R("{{ contact.meta[contact.key] }}"), "Paris", "dynamic key");
	UNIT_STREQ(R("{{ contact.tags[contact.idx] }}"), "beta", "dynamic index");
	UNIT_STREQ(R("{{ ['contact'].first_name }}"), "Ann", "root bracket");
	UNIT_STREQ(R("{{ contact.tags.size }} {{ contact.tags.first }} {{ contact.tags.last }} {{ contact.first_name.size }}"),
			   "2 vip beta 3", "size first last properties");
	UNIT_STREQ(R("{{ contact.meta.size }}"), "2", "object size");
	UNIT_STREQ(R("[{{ nope }}][{{ contact.nope.deeper }}][{{ contact.first_name.x }}]"), "[][][]", "unknown variables render empty");
	UNIT_STREQ(R("{{ contact.score }} {{ contact.ratio }} {{ contact.active }} {{ contact.deleted }} [{{ contact.nothing }}]"),
			   "42 1.5 true false []", "scalar types");
	UNIT_STREQ(R("{{ 'a' }}{{ \"b\" }}{{ 12 }}{{ -3 }}{{ 2.50 }}{{ true }}{{ nil }}{{ empty }}"), "ab12-32.5true", "literals");
	UNIT_STREQ(R("{{ contact.nums }}"), "312", "array renders joined");
	UNIT_STREQ(R("{{ contact.meta }}"), "{\"city\":\"Paris\",\"first name\":\"A\"}", "object renders as json");
	UNIT_STREQ(R("{{ message_id }} {{ list.name }} {{ workspace.name }}"), "m-1 Weekly Acme", "top-level keys");
	UNIT_STREQ(R("{{ }}x{{}}"), "x", "empty output tag");
	UNIT_STREQ(R("a { b } {x %} }} %}"), "a { b } {x %} }} %}", "stray braces are text");
	UNIT_STREQ(R(""), "", "empty template");
	UNIT_STREQ(R("{{ 10000000000000000.0 }} {{ 0.0001 }} {{ 0.00001 }} {{ 1.0 }}"), "1.0e+16 0.0001 1.0e-05 1.0",
			   "float formatting like ruby");
}

static void
test_whitespace(void)
{
	UNIT_STREQ(R("a  {{- 'x' -}}  \n b"), "axb", "output trim both");
	UNIT_STREQ(R("a \n{%- if true -%}\n x \n{%- endif -%}\n b"), "axb", "tag trim");
	UNIT_STREQ(R("a {{ 'x' -}} b"), "a xb", "right trim only");
	UNIT_STREQ(R("a {{- 'x' }} b"), "ax b", "left trim only");
	UNIT_STREQ(R("{%- assign x = 1 -%}  {{- x -}}  "), "1", "trim around assign");
}

static void
test_filters(void)
{
	UNIT_STREQ(R("{{ contact.first_name | upcase }}"), "ANN", "upcase");
	UNIT_STREQ(R("{{ 'HeLLo' | downcase }}"), "hello", "downcase");
	UNIT_STREQ(R("{{ 'hELLO world' | capitalize }}"), "Hello world", "capitalize");
	UNIT_STREQ(R("{{ contact.last_name | escape }}"), "O&#39;Neil &amp; &lt;Co&gt;", "escape");
	UNIT_STREQ(R("{{ '\"q\"' | h }}"), "&quot;q&quot;", "h alias");
	UNIT_STREQ(R("{{ '&amp; & &#39; &#x41; &lt' | escape_once }}"), "&amp; &amp; &#39; &#x41; &amp;lt", "escape_once");
	UNIT_STREQ(R("{{ 'a b&c/d~e.f_g-h' | url_encode }}"), "a+b%26c%2Fd~e.f_g-h", "url_encode");
	UNIT_STREQ(R("[{{ contact.bio | strip }}][{{ contact.bio | lstrip }}][{{ contact.bio | rstrip }}]"),
			   "[hello world][hello world  ][  hello world]", "strip lstrip rstrip");
	UNIT_STREQ(R("{{ 'a\nb\r\nc' | strip_newlines }}"), "abc", "strip_newlines");
	UNIT_STREQ(R("{{ 'a\nb\r\nc' | newline_to_br }}"), "a<br />\nb<br />\nc", "newline_to_br");
	UNIT_STREQ(R("{{ contact.long | truncate: 20 }}"), "The quick brown f...", "truncate");
	UNIT_STREQ(R("{{ contact.long | truncate: 20, '!' }}"), "The quick brown fox!", "truncate custom ellipsis");
	UNIT_STREQ(R("{{ contact.long | truncate: 2, '...' }}"), "...", "truncate shorter than ellipsis");
	UNIT_STREQ(R("{{ 'short' | truncate: 20 }}"), "short", "truncate no-op");
	UNIT_STREQ(R("{{ contact.utf | truncate: 4, '' }}"), "h\xc3\xa9ll", "truncate counts characters");
	UNIT_STREQ(R("{{ contact.long | truncatewords: 3 }}"), "The quick brown...", "truncatewords");
	UNIT_STREQ(R("{{ 'a  b' | truncatewords: 3 }}"), "a  b", "truncatewords no-op");
	UNIT_STREQ(R("{{ 'a' | append: 'b' | prepend: 'c' }}"), "cab", "append prepend");
	UNIT_STREQ(R("{{ 'a' | append: contact.score }}"), "a42", "append number");
	UNIT_STREQ(R("{{ 'aXbXc' | replace: 'X', '--' }}"), "a--b--c", "replace");
	UNIT_STREQ(R("{{ 'aXbXc' | replace: 'X' }}"), "abc", "replace with empty");
	UNIT_STREQ(R("{{ 'aXbXc' | replace_first: 'X', '-' }}"), "a-bXc", "replace_first");
	UNIT_STREQ(R("{{ 'aXbXc' | remove: 'X' }}|{{ 'aXbXc' | remove_first: 'X' }}"), "abc|abXc", "remove remove_first");
	/* Ruby's gsub("") / sub(""): before every character (not byte) */
	UNIT_STREQ(R("{{ 'abc' | replace: '', 'x' }}|{{ 'éa' | replace: nil, '-' }}|{{ 'abc' | replace_first: '', 'x' }}"),
			   "xaxbxcx|-é-a-|xabc", "replace of an empty or nil pattern");
	/* a [key, value] pair is an array of two, as in Liquid */
	UNIT_STREQ(R("{% assign p = contact.meta.first %}{{ p.first }}|{{ p.last }}|{{ p.size }}|{% for x in p %}<{{ x }}>{% endfor %}|{% if p == p %}eq{% endif %}|{% if p contains 'city' %}has{% endif %}|{{ p | concat: p | join: ',' }}"),
			   "city|Paris|2|<city><Paris>|eq|has|city,Paris,city,Paris", "pairs behave as arrays of two");
	UNIT_STREQ(R("{% assign x = false | default %}{% if x %}t{% else %}f{% endif %}"), "t",
			   "default without argument is '' (truthy)");
	UNIT_CHECK(starts_with(R("{{ 'abc' | truncate: 2.5 }}"), "ERROR") &&
			   strcmp(R("{{ 'abcdef' | truncate: ' 4 ' }}"), "a...") == 0,
			   "truncate lengths are integers or integer strings");
	UNIT_STREQ(R("{{ '\x80\x80\x80' | replace: '', 'xyz' }}"), "xyz\x80\x80\x80xyz",
			   "replace of an empty pattern over continuation bytes stays in bounds");
	UNIT_STREQ(R("{{ false | default }}|{{ 'a' | default }}|{{ contact.meta.first | join: '=' }}|{{ contact.meta | first | last }}"),
			   "|a|city=Paris|Paris", "default without argument, first of an object");
	UNIT_STREQ(R("{% if true %}x{% liquid endif %}"),
			   "ERROR 1:25 \"endif\" cannot close a block opened outside a \"liquid\" tag",
			   "a liquid tag cannot close an outer block");
	UNIT_STREQ(R("{% liquid for i in (1..2)\necho i\n%}{% endfor %}"),
			   "ERROR 3:3 \"endfor\" cannot close a block opened inside a \"liquid\" tag",
			   "a block opened in a liquid tag ends there");
	UNIT_CHECK(starts_with(R("{% assign x? = 1 %}"), "ERROR 1:"), "assign refuses a trailing ?");
	UNIT_CHECK(starts_with(R("{{ 'a b c' | truncatewords: nil }}"), "ERROR 1:"),
			   "truncatewords: a nil length is an error");
	UNIT_STREQ(R("{{ contact.tags | size }} {{ contact.first_name | size }} {{ contact.utf | size }} {{ nope | size }}"),
			   "2 3 11 0", "size");
	UNIT_STREQ(R("{{ contact.tags | first }}-{{ contact.tags | last }}-{{ 'x' | first }}"), "vip-beta-x", "first last");
	UNIT_STREQ(R("{{ contact.tags | join }}|{{ contact.tags | join: ', ' }}|{{ 'x' | join: ',' }}"), "vip beta|vip, beta|x", "join");
	UNIT_STREQ(R("{{ 5 | plus: 3 }} {{ 5 | minus: 7 }} {{ 4 | times: 2.5 }} {{ 7 | divided_by: 2 }} {{ -7 | divided_by: 2 }} {{ 7 | divided_by: 2.0 }} {{ -7 | modulo: 3 }} {{ '3' | plus: '1.5' }}"),
			   "8 -2 10.0 3 -4 3.5 2 4.5", "arithmetic");
	UNIT_STREQ(R("{{ 9223372036854775807 | plus: 1 }}"), "9.223372036854776e+18", "integer overflow falls back to float");
	UNIT_STREQ(R("{{ -9223372036854775807 | minus: 1 | divided_by: -1 }}"), "9.223372036854776e+18", "INT64_MIN / -1");
	UNIT_STREQ(R("{{ 5 | modulo: -1 }}"), "0", "modulo -1");
	UNIT_STREQ(R("{{ 1 | divided_by: 0 }}"), "ERROR 1:8 divided by 0", "divide by zero is an error with position");
	UNIT_STREQ(R("{{ 1 | modulo: 0 }}"), "ERROR 1:8 divided by 0", "modulo by zero");
	/* default */
	UNIT_STREQ(R("{{ nope | default: 'x' }}|{{ contact.empty_str | default: 'x' }}|{{ contact.deleted | default: 'x' }}|{{ contact.empty_list | default: 'x' }}|{{ contact.first_name | default: 'x' }}|{{ 0 | default: 'x' }}"),
			   "x|x|x|x|Ann|0", "default");
	UNIT_STREQ(R("{{ contact.deleted | default: 'x', allow_false: true }}"), "false", "default allow_false");
	UNIT_STREQ(R("{{ contact.spaces | default: 'x' | size }}"), "4", "default keeps whitespace");
	/* date */
	UNIT_STREQ(R("{{ contact.signup | date: '%Y-%m-%d %H:%M:%S %Z' }}"), "2026-03-01 10:00:00 UTC", "date iso");
	UNIT_STREQ(R("{{ contact.signup_pg | date: '%Y-%m-%d %H:%M' }}"), "2026-03-01 08:00", "date postgres offset");
	UNIT_STREQ(R("{{ contact.signup_unix | date: '%a %A %b %B %e %j %y %p %I' }}"), "Sun Sunday Mar March  1 060 26 AM 10",
			   "date unix seconds and names");
	UNIT_STREQ(R("{{ '1772359200' | date: '%-d/%-m %H%%' }}"), "1/3 10%", "date numeric string, no-pad flag");
	UNIT_STREQ(R("{{ '2024-02-29' | date: '%d %b %Y %F %T' }}"), "29 Feb 2024 2024-02-29 00:00:00", "date only, leap day");
	UNIT_STREQ(R("{{ '2026-12-31T23:59:59.123-05:30' | date: '%Y-%m-%d %H:%M' }}"), "2027-01-01 05:29", "fractional seconds and offset");
	UNIT_STREQ(R("{{ 'not a date' | date: '%Y' }}|{{ nope | date: '%Y' }}|{{ '2026-02-30' | date: '%Y' }}"),
			   "not a date||2026-02-30", "unparseable dates pass through");
	UNIT_STREQ(R("{{ 0 | date: '%Y %Q %s' }}"), "1970 %Q 0", "unknown conversion kept");
	UNIT_STREQ(R("{{ -86400 | date: '%Y-%m-%d %a' }}"), "1969-12-31 Wed", "negative epoch");
	UNIT_STREQ(R("{{ 1772359200 | date: '%I %p' }}{{ 1772402400 | date: ' %I %p %l' }}"), "10 AM 10 PM 10", "12 hour clock");
	UNIT_CHECK(strlen(R("{{ 'now' | date: '%Y' }}")) == 4, "date now");
	UNIT_CHECK(strlen(R("{{ 'today' | date: '%Y-%m-%d' }}")) == 10, "date today");
	/* chains */
	UNIT_STREQ(R("{{ contact.last_name | upcase | escape | truncate: 12 }}"), "O&#39;NEI...", "filter chain");
}

/* Filters added for Liquid conformance; expected values from Shopify Liquid. */
static void
test_liquid_filters(void)
{
	/* decimal results print as Liquid's BigDecimal arithmetic gives them */
	UNIT_STREQ(R("{{ 19.99 | times: 0.8 }}"), "15.992", "times float decimal");
	UNIT_STREQ(R("{{ 0.1 | plus: 0.2 }}"), "0.3", "plus float decimal");
	UNIT_STREQ(R("{{ 1.1 | minus: 1 }}"), "0.1", "minus float decimal");
	UNIT_STREQ(R("{{ 5.5 | modulo: 2 }}"), "1.5", "modulo float");
	UNIT_STREQ(R("{{ 2.0 | times: 3 }}"), "6.0", "float stays float");
	UNIT_STREQ(R("{{ 10 | divided_by: 4 }}"), "2", "integer division");
	UNIT_STREQ(R("{{ -17 | abs }} {{ '-1.5' | abs }} {{ 'x' | abs }}"), "17 1.5 0", "abs");
	UNIT_STREQ(R("{{ 4 | at_least: 5 }} {{ 4 | at_most: 5 }} {{ 4.5 | at_least: 2 }}"), "5 4 4.5", "at_least at_most");
	UNIT_STREQ(R("{{ 1.2 | ceil }} {{ 1.8 | floor }} {{ '3.5' | ceil }} {{ -1.5 | floor }}"), "2 1 4 -2", "ceil floor");
	UNIT_STREQ(R("{{ 1.5 | round }} {{ 2.5 | round }} {{ 1.005 | round: 2 }} {{ 183.357 | round: 2 }} {{ 5.666 | round: -2 }}"),
			   "2 3 1.01 183.36 0", "round half away from zero");
	UNIT_STREQ(R("{{ 'a-b-a' | replace_last: 'a', 'x' }} {{ 'a-b-a' | remove_last: 'a' }} {{ 'abc' | replace_last: 'z', 'y' }}"),
			   "a-b-x a-b- abc", "replace_last remove_last");
	UNIT_STREQ(R("{{ 'caf%C3%A9+au+lait%2' | url_decode }}"), "café au lait%2", "url_decode");
	UNIT_STREQ(R("{{ '%FF' | url_decode }}"), "ERROR 1:12 url_decode: invalid byte sequence in UTF-8", "url_decode not UTF-8");
	UNIT_STREQ(R("{{ 'one two three' | base64_encode }} {{ 'b25lIHR3byB0aHJlZQ==' | base64_decode }}"),
			   "b25lIHR3byB0aHJlZQ== one two three", "base64");
	UNIT_STREQ(R("{{ 'a?b>c' | base64_url_safe_encode }} {{ 'YT9iPmM' | base64_url_safe_decode }}"),
			   "YT9iPmM= a?b>c", "base64 url safe");
	UNIT_STREQ(R("{{ 'b25l*' | base64_decode }}"), "ERROR 1:14 invalid base64 provided to base64_decode", "base64 invalid");
	UNIT_STREQ(R("{{ '<p>Hi <b>there</b></p><script>x()</script><!-- c --><style>p{}</style>!' | strip_html }}"),
			   "Hi there!", "strip_html");
	UNIT_STREQ(R("{{ 'Liquid' | slice: 0 }} {{ 'Liquid' | slice: 2, 5 }} {{ 'Liquid' | slice: -3, 2 }} [{{ 'Liquid' | slice: 9 }}]"),
			   "L quid ui []", "slice");
	UNIT_STREQ(R("{{ 'ünïcödé' | slice: 1, 3 }}"), "nïc", "slice counts characters");
	UNIT_STREQ(R("{{ 'éàçñøþÿ straße łódź αβγσς ά привет ёж' | upcase }}|{{ 'ÉÀÇŸ ŁÓDŹ ΑΒΓΣ Ά ПРИВЕТ ЁЖ' | downcase }}|{{ 'émile ZOLA' | capitalize }}"),
			   "ÉÀÇÑØÞŸ STRAßE ŁÓDŹ ΑΒΓΣΣ Ά ПРИВЕТ ЁЖ|éàçÿ łódź αβγσ ά привет ёж|Émile zola", "case mapping beyond ASCII");
	UNIT_STREQ(R("{{ 'March 14, 2016' | date: '%Y-%m-%d %H:%M' }}|{{ 'Mon, 14 Mar 2016 10:30:00 +0100' | date: '%Y-%m-%d %H:%M' }}|{{ '14th Sept. 2016' | date: '%F' }}|{{ 'Sept 14 2016 9:05 UTC' | date: '%F %H:%M' }}"),
			   "2016-03-14 00:00|2016-03-14 09:30|2016-09-14|2016-09-14 09:05", "date: human and RFC 2822 inputs");
	UNIT_STREQ(R("{{ 'Mar 32, 2016' | date: '%F' }}|{{ 'foo 2016' | date: '%F' }}|{{ '-86400' | date: '%F' }}|{{ 'March 14, 2016' | date: '%s' }}"),
			   "Mar 32, 2016|foo 2016|-86400|1457913600", "date: unparsable inputs stay as they are");
	UNIT_STREQ(R("{{ 'Liquid' | slice: 2.2 }}"), "ERROR 1:15 slice: invalid integer", "slice float offset");
}

/* Tags and semantics added for Liquid conformance. */
/* Arrays built during a render (tmpl_filter_arr.c) */
static void
test_array_filters(void)
{
	TmplLimits	lim;

	UNIT_STREQ(R("{{ 'a,b,,c,,' | split: ',' | join: '|' }}"), "a|b||c", "split drops trailing empties");
	UNIT_STREQ(R("{{ '  a  b c ' | split: ' ' | join: '|' }}"), "a|b|c", "split on a space splits on runs");
	UNIT_STREQ(R("{{ 'h\u00e9' | split: '' | join: '|' }}"), "h|\u00e9", "split into characters");
	UNIT_STREQ(R("{% assign l = 'x,y,z' | split: ',' %}{{ l.size }}{{ l[1] }}{{ l.last }}{{ l | last }}"),
			   "3yzz", "a built array indexes like data");
	UNIT_STREQ(R("{% assign s = 'a,b' %}{% assign l = s | split: ',' %}{% assign s = 'zzzzzzzz' %}{{ l | join: '-' }}"),
			   "a-b", "a built array survives reassigning its source");
	UNIT_STREQ(R("{% assign ws = 'c b a' | split: ' ' | sort %}{% for w in ws reversed %}{{ forloop.index }}{{ w }}{% endfor %}"),
			   "1c2b3a", "for over a built array");
	UNIT_STREQ(R("{% capture t %}{{ broadcast.articles | map: 'title' | join: ',' }}{% endcapture %}{{ t }}"),
			   "One,Two,Three <3>", "map in capture");
	UNIT_STREQ(R("{{ broadcast.articles | where: 'featured' | map: 'url' | join }}"), "https://e.com/1", "where 1 arg");
	UNIT_STREQ(R("{{ broadcast.articles | where: 'featured', false | size }}"), "1", "where 2 args");
	UNIT_STREQ(R("{{ broadcast.articles | reject: 'featured' | size }}"), "2", "reject");
	UNIT_STREQ(R("{{ broadcast.articles | find: 'title', 'Two' | map: 'url' | first }}"), "https://e.com/2", "find");
	UNIT_STREQ(R("{{ broadcast.articles | find_index: 'title', 'Two' }}|{{ broadcast.articles | has: 'title', 'Four' }}"),
			   "1|false", "find_index has");
	UNIT_STREQ(R("{{ contact.nums | sort | join }}|{{ contact.nums | reverse | join }}|{{ contact.nums | sum }}"),
			   "1 2 3|2 1 3|6", "sort reverse sum");
	UNIT_STREQ(R("{{ 'b,A,a,B' | split: ',' | sort_natural | join }}|{{ 'b,A,a,B' | split: ',' | sort | join }}"),
			   "A a b B|A B a b", "sort_natural is case-insensitive and stable");
	UNIT_STREQ(R("{{ 'a,b,a' | split: ',' | uniq | join }}|{{ contact.tags | concat: contact.nums | join: ',' }}"),
			   "a b|vip,beta,3,1,2", "uniq concat");
	UNIT_STREQ(R("{{ broadcast.articles | map: 'featured' | compact | size }}"), "2", "compact");
	UNIT_STREQ(R("{{ contact.nums | slice: 1, 2 | join }}|{{ 'hello' | slice: 1, 3 }}"), "1 2|ell", "slice");
	UNIT_STREQ(R("{{ '0.1,0.2' | split: ',' | sum }}"), "0.3", "sum in decimal");
	UNIT_STREQ(R("{{ contact.nums | concat: 'x' }}"), "ERROR 1:19 concat filter requires an array argument",
			   "concat needs an array");
	UNIT_STREQ(R("{{ contact.nums | sort: 1 | join }}"), "1 3 2", "sort by a property of an integer (a bit, as Ruby)");
	UNIT_STREQ(R("{{ contact.nums | sort: 'x' }}"), "ERROR 1:19 cannot select the property 'x'", "integers have no named property");
	UNIT_STREQ(R("{{ contact.tags | concat: contact.nums | sort }}"),
			   "ERROR 1:42 cannot sort values of incompatible types", "sort of mixed types");
	UNIT_STREQ(R("{% assign l = broadcast.articles | map: 'title' %}{% for a in broadcast.articles %}"
				 "{{ l | join: contact.first_name }}{{ l[forloop.index0] | append: contact.first_name }}|{% endfor %}"),
			   "OneAnnTwoAnnThree <3>OneAnn|OneAnnTwoAnnThree <3>TwoAnn|OneAnnTwoAnnThree <3>Three <3>Ann|",
			   "a list built per broadcast read per recipient");
	UNIT_STREQ(R("{% assign l = 'a,b' | split: ',' %}{% if l == contact.tags %}eq{% endif %}{% if l contains 'b' %}c{% endif %}"),
			   "c", "built arrays compare and contain");

	tmpl_default_limits(&lim);
	lim.max_iterations = 10;
	UNIT_STREQ(render_lim("{{ '1,2,3,4,5' | split: ',' | join }}", &lim), "1 2 3 4 5", "built items under the limit");
	UNIT_STREQ(render_lim("{{ '1,2,3,4,5' | split: ',' | reverse | sort | join }}", &lim),
			   "ERROR 1:41 template loops exceed the limit of 10 iterations", "built items count as iterations");
	tmpl_default_limits(&lim);
	UNIT_STREQ(render_lim("{{ (1..2000) | uniq | size }}", &lim), "2000", "uniq of 2,000 values");
	UNIT_STREQ(render_lim("{{ (1..4000) | uniq | size }}", &lim),
			   "ERROR 1:16 template loops exceed the limit of 100000 iterations", "uniq comparisons are bounded");
	tmpl_default_limits(&lim);
	lim.max_output = 10;
	UNIT_STREQ(render_lim("{% assign l = 'abcdef,ghijkl' | split: ',' %}", &lim),
			   "ERROR 1:33 template output exceeds the limit of 10 bytes", "built strings count as output");
}

static void
test_liquid_tags(void)
{
	UNIT_STREQ(R("{% case 2 %} ignored {% when 1 %}one{% when 2, 3 %}two{% else %}other{% endcase %}"), "two", "case when comma");
	UNIT_STREQ(R("{% case 'b' %}{% when 'a' or 'b' %}ab{% endcase %}"), "ab", "case when or");
	UNIT_STREQ(R("{% case 9 %}{% when 1 %}one{% else %}other{% endcase %}"), "other", "case else");
	UNIT_STREQ(R("{% case 1 %}{% when 1 %}a{% when 1, 1 %}b{% endcase %}"), "abb", "every matching value renders, as Liquid");
	UNIT_STREQ(R("{% case 1 %}{% else %}e{% endcase %}[{% case 1 %}{% endcase %}]"), "e[]", "case without when");
	UNIT_STREQ(R("{% case 1 %}{% when 1 %}"), "ERROR 1:1 \"case\" tag was never closed", "case unclosed");
	UNIT_STREQ(R("{% case 1 %}{% else %}a{% when 1 %}b{% endcase %}"), "ERROR 1:24 unexpected \"when\"", "when after else");
	UNIT_STREQ(R("{% for i in (1..2) %}{% for j in (1..2) %}{{ forloop.parentloop.index }}{{ forloop.index }} {% endfor %}{% endfor %}"),
			   "11 12 21 22 ", "forloop.parentloop");
	UNIT_STREQ(R("{% for i in (1..2) %}{% for j in (1..1) %}{% for k in (1..1) %}{{ forloop.parentloop.parentloop.index }}{{ forloop.parentloop.parentloop.parentloop.index }}{% endfor %}{% endfor %}{% endfor %}|{{ forloop.parentloop.index }}"),
			   "12|", "parentloop of parentloop; none outside loops");
	UNIT_STREQ(R("{{ (1..5) | join: ',' }} {{ (3..1) | join: ',' }}[{{ (1 .. 3) }}] {{ (1..4) | size }} {{ (2..4) | first }}{{ (2..4) | last }}"),
			   "1,2,3,4,5 [1..3] 4 24", "ranges are values");
	UNIT_STREQ(R("{% assign r = (1..3) %}{% for i in r %}{{ i }}{% endfor %}{% for i in r reversed %}{{ i }}{% endfor %}"),
			   "123321", "for over an assigned range");
	UNIT_STREQ(R("{% assign n = 3 %}{% if (1..n) %}t{% endif %}{{ (1.9..'3') | join }}"), "t1 2 3", "range truthy, bounds to integers");
	UNIT_STREQ(R("{% if true %}\n  {% assign a = 1 %}\n  {% capture b %}x{% endcapture %}\n{% endif %}|{% for i in (1..3) %} {% endfor %}|{% if true %} x {% endif %}"),
			   "|| x ", "blank blocks render nothing");
	UNIT_STREQ(R("{% for p in contact.meta %}{{ p[0] }}={{ p[1] }};{{ p | first }}{{ p | size }}|{% endfor %}{% for p in broadcast reversed %}{{ p[0] }}{% endfor %}"),
			   "city=Paris;city2|first name=A;first name2|articlessubject", "for over an object: pairs");
	UNIT_STREQ(R("{% for p in list %}{{ p }}{{ forloop.length }}{% endfor %}{% for p in contact.meta offset: 1 %}{{ p[-2] }}{% endfor %}"),
			   "nameWeekly1first name", "pairs print as key and value");
	UNIT_STREQ(R("{% liquid\n  # a note\n  assign n = contact.first_name | upcase\n\n  if n == 'ANN'\n    echo n | append: '!'\n  else\n    echo 'no'\n  endif\n  case 2\n  when 2\n    echo ' two'\n  endcase\n%}|{% liquid liquid echo 'x' %}"),
			   "ANN! two|x", "liquid tag");
	UNIT_STREQ(R("{% liquid\n  echo 'a'\n  bogus 1\n%}"), "ERROR 3:3 unknown tag \"bogus\"", "liquid tag error position");
	UNIT_STREQ(R("{% liquid\n  raw\n%}"), "ERROR 2:3 \"raw\" is not allowed inside a \"liquid\" tag", "no raw in liquid");
	UNIT_STREQ(R("{% # one\n   # two %}ok"), "ok", "inline comment over lines");
	UNIT_STREQ(R("{% # one\n   two %}ok"), "ERROR 2:4 every line of an inline comment must start with \"#\"", "inline comment lines need #");
	/* the specialiser unrolls the inner loop: parentloop must still reach the outer one */
	UNIT_STREQ(R("{% for t in contact.tags %}{% for i in (1..2) %}{{ forloop.parentloop.index }}{{ forloop.index }}{{ t }} {% endfor %}{% endfor %}"),
			   "11vip 12vip 21beta 22beta ", "parentloop across an unrolled loop");
	UNIT_STREQ(R("{% if blank == empty %}eq{% else %}ne{% endif %}{% if empty == blank %}eq{% else %}ne{% endif %}{% if '' == blank and '' == empty %}+{% endif %}"),
			   "nene+", "blank and empty differ from each other");
	UNIT_STREQ(R("{% if 'abc' contains nil %}T{% else %}F{% endif %}"), "F", "string contains nil");
	UNIT_STREQ(R("{% assign a = 'x' | split_missing %}"), "ERROR 1:21 unknown filter \"split_missing\"", "unknown filter in assign");
	UNIT_STREQ(R("{% for i in (1..3) offset: continue %}{{ i }}{% endfor %}"), "123", "offset continue from nothing");
	UNIT_STREQ(R("{% for a in broadcast.articles limit: 1 %}{{ a.title }}{% endfor %}|"
				 "{% for a in broadcast.articles offset: continue %}{{ a.title }}{{ contact.first_name }}{% endfor %}|"
				 "{% for a in broadcast.articles offset: continue %}x{% else %}none{% endfor %}"),
			   "One|TwoAnnThree <3>Ann|none", "offset continue over data a broadcast shares");
	UNIT_STREQ(R("{% for i in contact.nums limit: 2 %}{% break %}{% endfor %}{% for i in contact.nums offset: continue %}{{ i }}{% endfor %}"
				 "{% for j in contact.nums offset: continue %}{{ j }}{% endfor %}"),
			   "2312", "offset continue after a break, per variable name");
	UNIT_STREQ(R("{% for a in broadcast.articles %}{% cycle 'odd', 'even' %}{% cycle g: contact.first_name, 2 %}{% endfor %}"
				 "{% cycle 'odd', 'even' %}{% cycle 'h': 1, 2 %}{% cycle 'h': 1, 2 %}"),
			   "oddAnneven2oddAnneven12", "cycle groups over data a broadcast shares");
	UNIT_STREQ(R("{% for a in broadcast.articles %}{% ifchanged %}{{ a.featured | default: contact.first_name }}{% endifchanged %}{% endfor %}"
				 "{% ifchanged %}Ann{% endifchanged %}{% ifchanged %}x{% break %}{% endifchanged %}y"),
			   "trueAnnx", "ifchanged over data a broadcast shares, with break");
	UNIT_STREQ(R("{% ifchanged %}x"), "ERROR 1:1 \"ifchanged\" tag was never closed", "ifchanged unclosed");
	UNIT_STREQ(R("{% cycle 'a' 'b' %}"), "ERROR 1:14 expected \",\" but found \"'b'\"", "cycle needs commas");
}

/* tablerow, increment/decrement, doc and forloop.name (Shopify's docs) */
static void
test_tablerow_counters_doc(void)
{
	UNIT_STREQ(R("{% tablerow a in broadcast.articles cols: 2 %}{{ a.title | escape }}{% endtablerow %}"),
			   "<tr class=\"row1\">\n<td class=\"col1\">One</td><td class=\"col2\">Two</td></tr>\n"
			   "<tr class=\"row2\"><td class=\"col1\">Three &lt;3&gt;</td></tr>\n", "tablerow: rows of cols cells");
	UNIT_STREQ(R("{% tablerow t in contact.tags %}{{ t }}{% endtablerow %}"),
			   "<tr class=\"row1\">\n<td class=\"col1\">vip</td><td class=\"col2\">beta</td></tr>\n",
			   "tablerow without cols: one row");
	UNIT_STREQ(R("{% tablerow i in (1..5) cols: 2 limit: 4 offset: 1 %}{{ tablerowloop.col }}{{ tablerowloop.col0 }}"
				 "{{ tablerowloop.row }}{{ tablerowloop.index }}{{ tablerowloop.index0 }}{{ tablerowloop.rindex }}"
				 "{{ tablerowloop.rindex0 }}{{ tablerowloop.length }}{% if tablerowloop.first %}F{% endif %}"
				 "{% if tablerowloop.last %}L{% endif %}{% if tablerowloop.col_first %}f{% endif %}"
				 "{% if tablerowloop.col_last %}l{% endif %}={{ i }}{% endtablerow %}"),
			   "<tr class=\"row1\">\n<td class=\"col1\">10110434Ff=2</td><td class=\"col2\">21121324l=3</td></tr>\n"
			   "<tr class=\"row2\"><td class=\"col1\">10232214f=4</td><td class=\"col2\">21243104Ll=5</td></tr>\n",
			   "tablerowloop properties");
	UNIT_STREQ(R("[{% tablerow i in contact.nothing %}x{% endtablerow %}][{% tablerow i in contact.empty_list %}x{% endtablerow %}]"
				 "[{% tablerow i in 5 %}x{% endtablerow %}]"),
			   "[][<tr class=\"row1\">\n</tr>\n][<tr class=\"row1\">\n</tr>\n]", "tablerow over nil, an empty array, a number");
	UNIT_STREQ(R("{% tablerow p in contact.meta cols: 0 %}{{ p[0] }}{% endtablerow %}"),
			   "<tr class=\"row1\">\n<td class=\"col1\">city</td><td class=\"col2\">first name</td></tr>\n",
			   "tablerow over an object, cols 0: one row");
	UNIT_STREQ(R("{% for a in broadcast.articles limit: 2 %}{% tablerow t in contact.tags cols: 1 %}{{ forloop.index }}{{ t }}"
				 "{% if t == 'vip' %}{% continue %}{% endif %}!{% if forloop.last %}{% break %}{% endif %}{% endtablerow %}{% endfor %}"),
			   "<tr class=\"row1\">\n<td class=\"col1\">1vip</td></tr>\n<tr class=\"row2\"><td class=\"col1\">1beta!</td></tr>\n"
			   "<tr class=\"row1\">\n<td class=\"col1\">2vip</td></tr>\n<tr class=\"row2\"><td class=\"col1\">2beta!</td></tr>\n",
			   "forloop in a tablerow is the enclosing for; continue and break leave the cell");
	UNIT_STREQ(R("{% tablerow i in (1..2) %}{% tablerow j in (1..1) %}{{ tablerowloop.length }}{% endtablerow %}{{ tablerowloop.length }}{% endtablerow %}{{ tablerowloop.col }}"),
			   "<tr class=\"row1\">\n<td class=\"col1\"><tr class=\"row1\">\n<td class=\"col1\">1</td></tr>\n2</td>"
			   "<td class=\"col2\"><tr class=\"row1\">\n<td class=\"col1\">1</td></tr>\n2</td></tr>\n", "nested tablerows");
	UNIT_STREQ(R("{% tablerow i in (1..2) reversed %}{% endtablerow %}"),
			   "ERROR 1:25 expected \"cols\", \"limit\" or \"offset\" but found \"reversed\"", "tablerow: no reversed");
	UNIT_STREQ(R("{% tablerow i in (1..2) %}"), "ERROR 1:1 \"tablerow\" tag was never closed", "tablerow unclosed");
	UNIT_STREQ(R("{% tablerow i in (1..2) %}{% else %}{% endtablerow %}"), "ERROR 1:27 unexpected \"else\"", "tablerow: no else");
	{
		TmplLimits	lim;

		tmpl_default_limits(&lim);
		lim.max_output = 40;
		UNIT_CHECK(starts_with(render_lim("{% tablerow i in (1..9) %}{{ i }}{% endtablerow %}", &lim),
							   "ERROR 1:1 template output exceeds"), "tablerow cells count as output");
		tmpl_default_limits(&lim);
		lim.max_iterations = 3;
		UNIT_CHECK(starts_with(render_lim("{% tablerow i in (1..9) %}{% endtablerow %}", &lim),
							   "ERROR 1:1 template loops exceed"), "tablerow cells count as iterations");
	}

	UNIT_STREQ(R("{% increment n %}{% increment n %}{% decrement m %}{% decrement m %}{% increment m %}|{{ n }}{{ m }}"),
			   "01-1-2-2|2-1", "increment renders then adds, decrement subtracts then renders");
	UNIT_STREQ(R("{% assign n = 10 %}{% increment n %}{% increment n %}{{ n }}|{% capture k %}x{% endcapture %}{% decrement k %}{{ k }}"),
			   "0110|-1x", "a counter does not change an assigned name");
	UNIT_STREQ(R("{% increment i %}{% for i in (5..6) %}{{ i }}{% increment i %}{% endfor %}{{ i }}"),
			   "051623", "a loop variable hides the counter, which shows again after");
	UNIT_STREQ(R("{% increment contact %}{{ contact }}{% for a in broadcast.articles %}{% increment x %}{% endfor %}{{ x }}"),
			   "01" "0123", "counters never read the data; counting over data a broadcast shares");
	UNIT_STREQ(R("{% if contact.active %}{% assign c = broadcast.subject %}{% endif %}{% increment c %}{{ c }}"),
			   "0News", "a counter after an assign in a branch");
	UNIT_STREQ(R("{% assign c = broadcast.subject %}{% increment c %}{{ c }}{% for a in broadcast.articles %}{% increment a %}{{ a.title }}{% endfor %}"),
			   "0News0One1Two2Three <3>", "a counter after a pre-rendered assign, in an unrolled loop");
	UNIT_STREQ(R("{% liquid\nincrement a\nincrement a\ndecrement a %}"), "011", "counters in liquid");
	UNIT_STREQ(R("{% increment %}"), "ERROR 1:13 expected a counter name but the tag ended", "increment needs a name");
	UNIT_STREQ(R("{% increment a b %}"), "ERROR 1:16 expected end of tag but found \"b\"", "one name");

	UNIT_STREQ(R("a{% doc %}{{ not parsed {% if %}{% enddoc %}b\n {%- doc -%} x {%- enddoc -%} \nc"), "abc",
			   "doc: not parsed, not rendered, whitespace control");
	UNIT_STREQ(R("{% doc %}x"), "ERROR 1:1 \"doc\" tag was never closed", "doc unclosed");
	UNIT_STREQ(R("{% doc %}{% doc %}{% enddoc %}"), "ERROR 1:10 \"doc\" tags cannot be nested", "no nested doc");
	UNIT_STREQ(R("{% doc x %}{% enddoc %}"), "ERROR 1:8 \"doc\" takes no arguments", "doc takes no arguments");
	UNIT_STREQ(R("{% liquid\ndoc\n%}"), "ERROR 2:1 \"doc\" is not allowed inside a \"liquid\" tag", "no doc in liquid");
	UNIT_STREQ(R("{% if true %}{% doc %} {% enddoc %}{% endif %}x"), "x", "doc in a blank block");

	UNIT_STREQ(R("{% for a in broadcast.articles limit: 1 %}{{ forloop.name }}{% for t in contact.tags limit: 1 %}"
				 "|{{ forloop.name }}|{{ forloop.parentloop.name }}{% endfor %}{% endfor %}|{{ forloop.name }}"),
			   "a-broadcast.articles|t-contact.tags|a-broadcast.articles|", "forloop.name");
}

static void
test_if(void)
{
	UNIT_STREQ(R("{% if contact.active %}y{% endif %}"), "y", "if true");
	UNIT_STREQ(R("{% if contact.deleted %}y{% else %}n{% endif %}"), "n", "if false else");
	UNIT_STREQ(R("{% if contact.nothing %}y{% else %}n{% endif %}"), "n", "nil is falsy");
	UNIT_STREQ(R("{% if contact.empty_str %}y{% endif %}{% if 0 %}z{% endif %}{% if contact.empty_list %}w{% endif %}"),
			   "yzw", "empty string, zero, empty list are truthy");
	UNIT_STREQ(R("{% if contact.score > 50 %}a{% elsif contact.score > 40 %}b{% else %}c{% endif %}"), "b", "elsif");
	UNIT_STREQ(R("{% unless contact.deleted %}u{% endunless %}"), "u", "unless");
	UNIT_STREQ(R("{% unless contact.active %}u{% else %}e{% endunless %}"), "e", "unless else");
	UNIT_STREQ(R("{% if contact.score == 42 %}1{% endif %}{% if contact.score != 42 %}2{% endif %}{% if contact.score < 43 %}3{% endif %}{% if contact.score >= 42 %}4{% endif %}{% if contact.score <= 41 %}5{% endif %}{% if contact.ratio > 1 %}6{% endif %}{% if contact.score <> 1 %}7{% endif %}"),
			   "13467", "comparisons");
	UNIT_STREQ(R("{% if contact.first_name == 'Ann' %}a{% endif %}{% if 'abc' < 'abd' %}b{% endif %}{% if 'a' < 1 %}c{% endif %}{% if 1 == 1.0 %}d{% endif %}{% if '1' == 1 %}e{% endif %}"),
			   "abd", "string and mixed comparisons");
	UNIT_STREQ(R("{% if contact.first_name contains 'nn' %}a{% endif %}{% if contact.tags contains 'vip' %}b{% endif %}{% if contact.tags contains 'x' %}c{% endif %}{% if contact.meta contains 'city' %}d{% endif %}{% if contact.nums contains 2 %}e{% endif %}"),
			   "abde", "contains");
	UNIT_STREQ(R("{% if true and false %}a{% endif %}{% if true or false %}b{% endif %}{% if false or true and false %}c{% endif %}"),
			   "b", "and or");
	/* right-associative: true or (false and false) is true */
	UNIT_STREQ(R("{% if true or false and false %}a{% endif %}"), "a", "right-associative and/or");
	UNIT_STREQ(R("{% if false and false or true %}a{% else %}b{% endif %}"), "b", "right-associative: false and (false or true)");
	UNIT_STREQ(R("{% if contact.empty_str == empty %}a{% endif %}{% if contact.empty_list == empty %}b{% endif %}{% if contact.first_name == empty %}c{% endif %}{% if contact.nothing == empty %}d{% endif %}"),
			   "ab", "empty");
	UNIT_STREQ(R("{% if contact.spaces == blank %}a{% endif %}{% if contact.nothing == blank %}b{% endif %}{% if contact.deleted == blank %}c{% endif %}{% if contact.first_name == blank %}d{% endif %}{% if contact.first_name != blank %}e{% endif %}"),
			   "abce", "blank");
	UNIT_STREQ(R("{% if contact.nothing == nil %}a{% endif %}{% if nope == nil %}b{% endif %}{% if contact.tags == contact.tags %}c{% endif %}"),
			   "abc", "nil and json equality");
	UNIT_STREQ(R("{% if a %}{% if b %}x{% else %}y{% endif %}{% else %}z{% endif %}"), "z", "nested if");
}

static void
test_for(void)
{
	UNIT_STREQ(R("{% for a in broadcast.articles %}{{ a.title }},{% endfor %}"), "One,Two,Three <3>,", "for");
	UNIT_STREQ(R("{% for a in broadcast.articles %}{{ forloop.index }}{{ forloop.index0 }}{{ forloop.rindex }}{{ forloop.rindex0 }}{{ forloop.length }}{% if forloop.first %}F{% endif %}{% if forloop.last %}L{% endif %};{% endfor %}"),
			   "10323F;21213;32103L;", "forloop variables");
	UNIT_STREQ(R("{% for i in (1..5) limit: 2 offset: 1 %}{{ i }}{% endfor %}"), "23", "range limit offset");
	UNIT_STREQ(R("{% for i in (1..5) reversed %}{{ i }}{% endfor %}"), "54321", "reversed");
	UNIT_STREQ(R("{% for i in (1..5) reversed offset: 1 limit: 3 %}{{ i }}{% endfor %}"), "432", "reversed applies after slicing");
	UNIT_STREQ(R("{% for i in (contact.idx..contact.nums.size) %}{{ i }}{% endfor %}"), "123", "range from variables");
	UNIT_STREQ(R("{% for i in (3..1) %}{{ i }}{% else %}none{% endfor %}"), "none", "empty range else");
	UNIT_STREQ(R("{% for x in nope %}{{ x }}{% else %}empty{% endfor %}"), "empty", "for else on nil");
	UNIT_STREQ(R("{% for x in contact.empty_list %}{{ x }}{% else %}empty{% endfor %}"), "empty", "for else on empty array");
	UNIT_STREQ(R("{% for x in contact.first_name %}[{{ x }}]{% endfor %}"), "[Ann]", "string iterates once");
	UNIT_STREQ(R("{% for i in (1..10) %}{% if i == 3 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}"),
			   "124", "break continue");
	UNIT_STREQ(R("{% for i in (1..2) %}{% for j in (1..3) %}{% if j == 2 %}{% break %}{% endif %}{{ i }}{{ j }}{{ forloop.length }} {% endfor %}{{ forloop.index }};{% endfor %}"),
			   "113 1;213 2;", "nested loops and break");
	UNIT_STREQ(R("{% assign x = 'outer' %}{% for x in (1..2) %}{{ x }}{% endfor %}{{ x }}"), "12outer", "loop variable restored");
	UNIT_STREQ(R("{% for x in (1..2) %}{% assign x = 'in' %}{{ x }}{% endfor %}"), "inin", "assign to loop variable");
	UNIT_STREQ(R("{% for i in (1..3) limit: contact.idx %}{{ i }}{% endfor %}|{% for i in (1..3) limit: -1 %}{{ i }}{% endfor %}|{% for i in (1..3) offset: 10 %}{{ i }}{% endfor %}"),
			   "1||", "limit and offset edge cases");
	UNIT_STREQ(R("{{ forloop.index }}"), "", "forloop outside loop");
	UNIT_STREQ(R("{% break %}a"), "", "break outside loop stops rendering");
}

static void
test_assign_capture(void)
{
	UNIT_STREQ(R("{% assign n = contact.first_name | upcase %}{{ n }} {{ n | size }}"), "ANN 3", "assign with filter");
	UNIT_STREQ(R("{% assign s = 'a' %}{% for i in (1..3) %}{% assign s = s | append: i %}{% endfor %}{{ s }}"), "a123", "assign accumulates");
	UNIT_STREQ(R("{% assign s = '  x  ' %}{% assign s = s | strip %}[{{ s }}]"), "[x]", "assign substring of itself");
	UNIT_STREQ(R("{% assign t = contact.tags %}{{ t[1] }}"), "beta", "assign array");
	UNIT_STREQ(R("{% assign contact = 'shadow' %}{{ contact }}"), "shadow", "assign shadows data");
	UNIT_STREQ(R("{% capture greeting %}Hi {{ contact.first_name }}{% endcapture %}{{ greeting | upcase }}"), "HI ANN", "capture");
	UNIT_STREQ(R("{% capture x %}a{% capture y %}b{% endcapture %}c{% endcapture %}{{ x }}{{ y }}"), "acb", "nested capture");
	UNIT_STREQ(R("{% capture x %}1{% endcapture %}{% capture x %}{{ x }}2{% endcapture %}{{ x }}"), "12", "capture referencing itself");
	UNIT_STREQ(R("{% capture 'q' %}v{% endcapture %}{{ q }}"), "v", "capture quoted name");
	UNIT_STREQ(R("{% echo contact.first_name | downcase %}"), "ann", "echo tag");
}

static void
test_comment_raw(void)
{
	UNIT_STREQ(R("a{% comment %} {{ x }} {% if %} {% comment %}n{% endcomment %} {% endcomment %}b"), "ab", "comment nested");
	UNIT_STREQ(R("a{% # inline comment %}b"), "ab", "inline comment");
	UNIT_STREQ(R("{% raw %}{{ x }} {% if %}{% endraw %}"), "{{ x }} {% if %}", "raw");
	UNIT_STREQ(R("a {%- raw -%} {{x}} {%- endraw -%} b"), "a{{x}}b", "raw with whitespace control");
	UNIT_STREQ(R("{% raw %}{% endraw %}x"), "x", "empty raw");
}

static void
test_errors(void)
{
	UNIT_STREQ(R("Hello\n  {{ x | upcaes }}"), "ERROR 2:10 unknown filter \"upcaes\", did you mean \"upcase\"?", "unknown filter position");
	UNIT_STREQ(R("a\nb {% if x %}"), "ERROR 2:3 \"if\" tag was never closed", "unclosed if");
	UNIT_STREQ(R("{% for x in y %}\n{% endif %}"), "ERROR 2:1 unexpected \"endif\"", "mismatched end");
	UNIT_STREQ(R("x\n\n   {% endfor %}"), "ERROR 3:4 unexpected \"endfor\"", "unexpected endfor");
	UNIT_STREQ(R("{% frobnicate %}"), "ERROR 1:1 unknown tag \"frobnicate\"", "unknown tag");
	UNIT_STREQ(R("{% iff x %}{% endif %}"), "ERROR 1:1 unknown tag \"iff\", did you mean \"if\"?", "tag hint");
	UNIT_STREQ(R("{% captur x %}{% endcapture %}"), "ERROR 1:1 unknown tag \"captur\", did you mean \"capture\"?", "tag hint, one letter");
	UNIT_STREQ(R("{{ x | truncate_words: 2 }}"), "ERROR 1:8 unknown filter \"truncate_words\", did you mean \"truncatewords\"?", "filter hint");
	UNIT_STREQ(R("{{ x | zzzzzz }}"), "ERROR 1:8 unknown filter \"zzzzzz\"", "no hint when nothing is near");
	UNIT_STREQ(R("ab {{ x "), "ERROR 1:4 \"{{\" was never closed", "unclosed output");
	UNIT_STREQ(R("{% if x"), "ERROR 1:1 \"{%\" was never closed", "unclosed tag");
	UNIT_STREQ(R("{{ 'abc }}"), "ERROR 1:4 unterminated string literal", "unterminated string");
	UNIT_STREQ(R("{{ x | truncate: 1, 2, 3 }}"), "ERROR 1:8 wrong number of arguments for filter \"truncate\" (given 3, expected 0 to 2)",
			   "too many filter args");
	UNIT_STREQ(R("{{ x | append }}"), "ERROR 1:8 wrong number of arguments for filter \"append\" (given 0, expected 1)", "missing filter arg");
	UNIT_STREQ(R("{{ x | upcase: foo: 1 }}"), "ERROR 1:16 unknown argument \"foo\" for filter \"upcase\"", "unknown keyword arg");
	UNIT_STREQ(R("{{ x y }}"), "ERROR 1:6 expected end of tag but found \"y\"", "junk after value");
	UNIT_STREQ(R("{% if %}{% endif %}"), "ERROR 1:6 expected a condition but the tag ended", "empty condition");
	UNIT_STREQ(R("{% for in x %}{% endfor %}"), "ERROR 1:11 expected \"in\" but found \"x\"", "bad for");
	UNIT_STREQ(R("{% for x in y foo %}{% endfor %}"), "ERROR 1:15 expected \"limit\", \"offset\" or \"reversed\" but found \"foo\"", "bad for option");
	UNIT_STREQ(R("{% assign = 1 %}"), "ERROR 1:11 expected a variable name but found \"=\"", "bad assign");
	UNIT_STREQ(R("{% assign x 1 %}"), "ERROR 1:13 expected \"=\" but found \"1\"", "assign without =");
	UNIT_STREQ(R("{% if x %}{% else %}{% else %}{% endif %}"), "ERROR 1:21 unexpected \"else\"", "double else");
	UNIT_STREQ(R("{% if x %}{% else %}{% elsif y %}{% endif %}"), "ERROR 1:21 unexpected \"elsif\"", "elsif after else");
	UNIT_STREQ(R("{% else %}"), "ERROR 1:1 unexpected \"else\"", "else at top level");
	UNIT_STREQ(R("{% comment %}x"), "ERROR 1:1 \"comment\" tag was never closed", "unclosed comment");
	UNIT_STREQ(R("{% raw %}x"), "ERROR 1:1 \"raw\" tag was never closed", "unclosed raw");
	UNIT_STREQ(R("{% capture x %}"), "ERROR 1:1 \"capture\" tag was never closed", "unclosed capture");
	UNIT_STREQ(R("{% unless x %}"), "ERROR 1:1 \"unless\" tag was never closed", "unclosed unless");
	UNIT_STREQ(R("{% for x in y %}"), "ERROR 1:1 \"for\" tag was never closed", "unclosed for");
	UNIT_STREQ(R("{%  %}"), "ERROR 1:1 empty tag", "empty tag");
	UNIT_STREQ(R("{{ x | 1 }}"), "ERROR 1:8 expected a filter name but found \"1\"", "bad filter name");
	UNIT_STREQ(R("{{ x ; }}"), "ERROR 1:6 unexpected character \";\"", "bad character");
	UNIT_STREQ(R("{{ a. }}"), "ERROR 1:6 expected a property name but the tag ended", "dangling dot");
	UNIT_STREQ(R("{{ a[1 }}"), "ERROR 1:7 expected \"]\" but the tag ended", "unclosed bracket");
	UNIT_STREQ(R("{% for i in (1..) %}{% endfor %}"), "ERROR 1:17 expected a value but found \")\"", "bad range");
	UNIT_STREQ(R("{{ 1234567890123456789012345678901234567890123456789012345678901234567890 }}"),
			   "ERROR 1:4 number literal is too long", "long number");
	UNIT_STREQ(R("{{ 99999999999999999999 }}"), "1.0e+20", "big integer literal becomes float");
	UNIT_STREQ(R("\xc3\xa9\n\t{{ x \x01 }}"), "ERROR 2:7 unexpected byte 0x01", "column counts bytes");
}

static void
test_limits(void)
{
	TmplLimits	lim;
	char	   *deep;
	int			i;
	size_t		k = 0;

	tmpl_default_limits(&lim);
	lim.max_output = 10;
	UNIT_STREQ(render_lim("0123456789", &lim), "0123456789", "output at limit");
	UNIT_STREQ(render_lim("01234567890", &lim), "ERROR 1:1 template output exceeds the limit of 10 bytes", "output over limit");
	UNIT_STREQ(render_lim("{% for i in (1..100) %}{{ i }}{% endfor %}", &lim),
			   "ERROR 1:24 template output exceeds the limit of 10 bytes", "output limit in loop");
	UNIT_STREQ(render_lim("{{ (1..100000000) | join: '' }}", &lim),
			   "ERROR 1:21 template output exceeds the limit of 10 bytes", "range join is bounded");
	UNIT_STREQ(render_lim("{% capture x %}{% for i in (1..100) %}x{% endfor %}{% endcapture %}", &lim),
			   "ERROR 1:39 template output exceeds the limit of 10 bytes", "captured bytes count");
	UNIT_STREQ(render_lim("{% assign s = 'x' %}{% for i in (1..40) %}{% assign s = s | append: s %}{% endfor %}", &lim),
			   "ERROR 1:61 template output exceeds the limit of 10 bytes", "string doubling is bounded");
	UNIT_STREQ(render_lim("{{ 'abcdef' | replace: 'a', 'xxxxxxxxxxxxxxxxx' }}", &lim),
			   "ERROR 1:15 template output exceeds the limit of 10 bytes", "replace growth bounded");

	tmpl_default_limits(&lim);
	lim.max_iterations = 10;
	UNIT_STREQ(render_lim("{% for i in (1..10) %}{% endfor %}", &lim), "", "iterations at limit");
	UNIT_STREQ(render_lim("{% for i in (1..5) %}{% for j in (1..5) %}{% endfor %}{% endfor %}", &lim),
			   "ERROR 1:22 template loops exceed the limit of 10 iterations", "nested iterations counted");
	tmpl_default_limits(&lim);
	UNIT_STREQ(render_lim("{% for i in (1..9223372036854775807) %}{% for j in (-9223372036854775807..9223372036854775807) %}{% endfor %}{% endfor %}", &lim),
			   "ERROR 1:40 template loops exceed the limit of 100000 iterations", "huge ranges");

	tmpl_default_limits(&lim);
	lim.max_depth = 2;
	UNIT_STREQ(render_lim("{% if true %}{% if true %}x{% endif %}{% endif %}", &lim), "x", "depth at limit");
	UNIT_STREQ(render_lim("{% if true %}{% for i in (1..2) %}{% if true %}x{% endif %}{% endfor %}{% endif %}", &lim),
			   "ERROR 1:35 template nesting depth exceeds the limit of 2", "depth over limit");

	/* compile-time nesting bound */
	deep = malloc(64 * 1024);
	for (i = 0; i < 70; i++)
		k += (size_t) sprintf(deep + k, "{%% if true %%}");
	deep[k] = '\0';
	UNIT_CHECK(starts_with(R(deep), "ERROR 1:833 blocks are nested more than 64 levels deep"), "compile depth limit");
	k = 0;
	for (i = 0; i < 2000; i++)
		k += (size_t) sprintf(deep + k, "a[");
	deep[k] = '\0';
	{
		char	   *src = malloc(k + 16);

		sprintf(src, "{{ %s }}", deep);
		UNIT_CHECK(starts_with(R(src), "ERROR 1:"), "deep index expression rejected");
		free(src);
	}
	/* long chains are iterative, not recursive */
	k = (size_t) sprintf(deep, "{%% if true");
	for (i = 0; i < 3000; i++)
		k += (size_t) sprintf(deep + k, " or false");
	k += (size_t) sprintf(deep + k, " %%}ok{%% endif %%}");
	UNIT_STREQ(R(deep), "ok", "long and/or chain");
	k = (size_t) sprintf(deep, "{{ 'a'");
	for (i = 0; i < 3000; i++)
		k += (size_t) sprintf(deep + k, " | upcase");
	k += (size_t) sprintf(deep + k, " }}");
	UNIT_STREQ(R(deep), "A", "long filter chain");
	free(deep);
}

static void
test_reuse(void)
{
	/* one compiled template, one context, many renders with different data */
	const char *src = "{% assign g = contact.first_name | default: 'friend' %}Hi {{ g }}{% for t in contact.tags %},{{ t }}{% endfor %}";
	TmplError	err;
	Template   *t = tmpl_compile(src, strlen(src), &err);
	TmplRenderCtx *c = tmpl_ctx_create();
	struct json_object *d1 = json_tokener_parse("{\"contact\": {\"first_name\": \"Bob\", \"tags\": [\"a\"]}}");
	struct json_object *d2 = json_tokener_parse("{\"contact\": {}}");
	BeBuf		out;
	int			i;
	bool		ok = true;

	be_buf_init(&out);
	for (i = 0; i < 100 && ok; i++)
	{
		be_buf_reset(&out);
		ok = tmpl_render(t, c, (i % 2) ? d2 : d1, NULL, &out, &err) == 0 &&
			strcmp(out.data, (i % 2) ? "Hi friend" : "Hi Bob,a") == 0;
	}
	UNIT_CHECK(ok, "repeated renders with a reused context");
	be_buf_reset(&out);
	UNIT_CHECK(tmpl_render(t, c, NULL, NULL, &out, &err) == 0 && strcmp(out.data, "Hi friend") == 0, "NULL data");
	/* output is appended */
	be_buf_reset(&out);
	be_buf_puts(&out, "pre:");
	tmpl_render(t, c, d1, NULL, &out, &err);
	UNIT_STREQ(out.data, "pre:Hi Bob,a", "render appends to the buffer");
	be_buf_free(&out);
	json_object_put(d1);
	json_object_put(d2);
	tmpl_ctx_free(c);
	tmpl_free(t);

	{
		struct json_object *o = tmpl_data_parse("{\"a\": 1}", 8);

		UNIT_CHECK(o != NULL, "tmpl_data_parse valid");
		tmpl_data_free(o);
		UNIT_CHECK(tmpl_data_parse("{\"a\": ", 6) == NULL, "tmpl_data_parse invalid");
	}
}

static void
test_fast_paths(void)
{
	TmplLimits	lim;
	TmplError	err;
	const char *s1 = "{{ contact.meta.city }}|{{ contact.first_name }}";
	const char *s2 = "{{ contact.email }}/{{ contact.meta.city | upcase }}";
	Template   *t1 = tmpl_compile(s1, strlen(s1), &err);
	Template   *t2 = tmpl_compile(s2, strlen(s2), &err);
	TmplRenderCtx *c = tmpl_ctx_create();
	BeBuf		out;

	/* escaping across 16-byte blocks, specials at block edges */
	UNIT_STREQ(R("{{ 'abcdefghijklmno&pqrstuvwxyz0123456789ABCDEF<' | escape }}"),
			   "abcdefghijklmno&amp;pqrstuvwxyz0123456789ABCDEF&lt;", "escape across blocks");
	UNIT_STREQ(R("{{ 'abcdefghijklmnopqrstuvwxyz0123456789\"' | escape | append: '!' }}"),
			   "abcdefghijklmnopqrstuvwxyz0123456789&quot;!", "escape in the middle of a chain");
	UNIT_STREQ(R("{{ '0123456789abcdef0123456789abcdef' | escape }}"), "0123456789abcdef0123456789abcdef",
			   "escape with nothing to escape");
	UNIT_STREQ(R("{{ 'abcdefghij\xc3\xa9klmnop' | truncate: 12, '' }}"), "abcdefghij\xc3\xa9k",
			   "truncate after an ascii run");
	UNIT_STREQ(R("{{ 'abcdefghijklmnop' | truncate: 16 }}"), "abcdefghijklmnop", "truncate exactly at length");
	tmpl_default_limits(&lim);
	lim.max_output = 8;
	UNIT_STREQ(render_lim("{{ '<<<<' | escape }}", &lim), "ERROR 1:1 template output exceeds the limit of 8 bytes",
			   "escaped output counts against the limit");

	/* one context alternating between templates (per-template caches) */
	be_buf_init(&out);
	tmpl_render(t1, c, data, NULL, &out, &err);
	be_buf_puts(&out, ";");
	tmpl_render(t2, c, data, NULL, &out, &err);
	be_buf_puts(&out, ";");
	tmpl_render(t1, c, data, NULL, &out, &err);
	UNIT_STREQ(out.data, "Paris|Ann;ann@example.com/PARIS;Paris|Ann", "context shared by two templates");
	be_buf_free(&out);
	tmpl_ctx_free(c);
	tmpl_free(t1);
	tmpl_free(t2);

	/* cached paths follow the loop variable */
	UNIT_STREQ(R("{% for a in broadcast.articles %}{{ a.title | size }}{{ a.url | size }}{% endfor %}"),
			   "315315915", "path cache keyed by root");
}

static void
test_hostile(void)
{
	/* embedded NULs and binary garbage must not crash */
	static const char bin[] = "{{ a\0b }}{% if \0 %}\xff\xfe{{";
	TmplError	err;
	Template   *t = tmpl_compile(bin, sizeof(bin) - 1, &err);

	UNIT_CHECK(t == NULL && err.line == 1, "embedded NUL rejected with position");
	tmpl_free(t);
	UNIT_STREQ(R("{{{{{{"), "ERROR 1:1 \"{{\" was never closed", "brace soup");
	UNIT_STREQ(R("{%%}"), "ERROR 1:1 empty tag", "empty tag no spaces");
	UNIT_STREQ(R("{{-}}{%--%}x"), "ERROR 1:6 empty tag", "dash only tags");
	UNIT_STREQ(R("{{ x | default: x | default: x }}"), "", "self default chain");
}

/* Specialisation on templates that mix constant and per-recipient data. */
static void
test_specialize(void)
{
	static const char *const tricky[] = {
		"{% for a in broadcast.articles %}{% assign t = a.title | upcase %}{% if contact.active %}{{ t }}{% endif %}{% endfor %}{{ t }}",
		"{% assign x = broadcast.subject %}{% if contact.active %}{% assign x = 'changed' %}{% endif %}{{ x }}",
		"{% assign x = broadcast.subject %}{% if contact.deleted %}{% assign x = 'changed' %}{% endif %}{{ x }}",
		"{% assign n = 0 %}{% for t in contact.tags %}{% assign n = n | plus: 1 %}{% endfor %}{{ n }}",
		"{% assign n = 5 %}{% for a in broadcast.articles %}{% if contact.score > n %}{% assign n = n | plus: 10 %}{% endif %}{{ n }}{% endfor %}{{ n }}",
		"{% capture c %}{{ broadcast.subject }}-{{ contact.first_name }}{% endcapture %}{{ c | upcase }}",
		"{% capture c %}{{ list.name }}{% endcapture %}{% for t in contact.tags %}{% capture c %}{{ c }}{{ t }}{% endcapture %}{% endfor %}{{ c }}",
		"{% if contact.active %}{% capture x %}{{ list.name }}{% endcapture %}{% endif %}{{ x }}",
		"{% for a in broadcast.articles %}{{ forloop.index }}/{{ forloop.length }}{% for t in contact.tags %}{{ forloop.index }}{{ t }}{% endfor %}{% if forloop.last %}L{{ contact.first_name }}{% endif %}{% endfor %}",
		"{% for t in contact.tags %}{% for a in broadcast.articles %}{{ forloop.index }}{{ a.title }}{{ t }}{% endfor %}{{ forloop.rindex }}{% endfor %}",
		"{% if broadcast.subject == 'News' and contact.active %}A{% elsif list.name == 'Weekly' %}B{% else %}C{% endif %}",
		"{% if contact.deleted or broadcast.subject %}x{% endif %}{% if broadcast.nope or contact.deleted %}y{% else %}z{% endif %}",
		"{% unless contact.first_name == list.name %}u{{ workspace.name }}{% endunless %}",
		"{% if list.name %}{% if contact.first_name %}{% if workspace.name %}{{ contact.first_name }}{% endif %}{% endif %}{% endif %}",
		"{% for a in broadcast.articles %}{% if contact.score > 40 and forloop.index == 2 %}{% break %}{% endif %}{{ a.title }}{% endfor %}",
		"{% for a in broadcast.articles %}{% if forloop.index == 2 %}{% continue %}{% endif %}{{ a.title }}{{ contact.first_name }}{% endfor %}",
		"{{ contact.first_name }}{% if broadcast.subject %}{% break %}{% endif %}after",
		"{{ contact.first_name }}{% if contact.active %}{% break %}{% endif %}after",
		"{% for t in contact.tags %}{% if list.name %}{% break %}{% endif %}{{ t }}{% endfor %}",
		"{% for t in contact.tags %}{% capture z %}{{ t }}{% if list.name %}{% continue %}{% endif %}{% endcapture %}{{ z }}{% endfor %}{{ z }}",
		"{% assign a = 'outer' %}{% for a in broadcast.articles %}{{ a.title }}{{ contact.first_name }}{% endfor %}{{ a }}",
		"{% for a in broadcast.articles %}{% for a in contact.tags %}{{ a }}{% endfor %}{{ a.title }}{% endfor %}{{ a }}",
		"{% for contact in broadcast.articles %}{{ contact.title }}{% endfor %}{{ contact.first_name }}",
		"{% for a in broadcast.articles %}{% assign a = contact.first_name %}{{ a }}{% endfor %}{{ a }}",
		"{% assign broadcast = contact %}{{ broadcast.first_name }}",
		"{% if contact.active %}{% assign list = 'x' %}{% endif %}{{ list.name }}{{ list }}",
		"{% for i in (1..broadcast.articles.size) %}{{ i }}{{ contact.tags[i] }}{% endfor %}",
		"{% for x in broadcast.nothing %}{{ x }}{% else %}none {{ contact.first_name }}{% endfor %}",
		"{% for x in broadcast.subject %}{{ x }}{{ contact.first_name }}{% endfor %}",
		"{{ broadcast.articles[contact.idx].title }}|{{ contact.tags[broadcast.articles.size] }}|{{ broadcast.articles[contact.key] }}",
		"{% for a in broadcast.articles limit: contact.idx %}{{ a.title }}{% endfor %}",
		"{% for a in broadcast.articles offset: 1 limit: 1 %}{{ a.title }}{{ contact.email }}{% endfor %}",
		"{% for a in broadcast.articles reversed %}{{ a.title }}{{ contact.email }}{% endfor %}",
		"{{ broadcast }}{{ contact.meta }}{{ list }}",
		"{% capture c %}{% for i in (1..20) %}{{ broadcast.subject }}{% endfor %}{% endcapture %}{{ contact.first_name }}",
		"{% for i in (1..30) %}{{ broadcast.subject }}{% endfor %}{{ contact.first_name }}{% for i in (1..30) %}{{ list.name }}{% endfor %}",
		"{{ broadcast.subject | append: 'x' | append: 'y' | upcase }}{{ contact.first_name | append: list.name }}",
		"{% for a in broadcast.articles %}{% for t in contact.tags %}{% for i in (1..3) %}{{ i }}{{ a.title }}{% endfor %}{% endfor %}{% endfor %}",
		"{% assign s = broadcast.subject %}{% for i in (1..3) %}{% assign s = s | append: contact.first_name %}{% endfor %}{{ s }}",
		"{% assign k = 'first_name' %}{{ contact[k] }}{% assign k = contact.key %}{{ contact.meta[k] }}",
		"{% for a in broadcast.articles %}{% capture row %}{{ a.title }}:{{ contact.first_name }}{% endcapture %}{{ row }}{% endfor %}{{ row }}",
		"{% if contact.tags contains 'vip' %}{% for a in broadcast.articles %}{{ a.url }}{% endfor %}{% endif %}",
		"{% for a in broadcast.articles %}{% if contact.tags contains a.title %}*{% endif %}{{ a.title | escape }}{% endfor %}",
		"{% assign x = contact.first_name %}{% for a in broadcast.articles %}{% assign y = a.title %}{% endfor %}{{ x }}{{ y }}",
		"{% for a in broadcast.articles %}{% if forloop.first %}{% assign first = a.title %}{% endif %}{% if contact.active %}{{ first }}{% endif %}{% endfor %}",
		"{% if contact.active %}{% for a in broadcast.articles %}{% assign last = a.title %}{% endfor %}{% endif %}{{ last }}",
		"{% for i in (1..3) %}{% if contact.active %}{% assign v = i %}{% endif %}{{ v }}{% endfor %}{{ v }}",
		"{% for i in (1..2) %}{% for j in (1..2) %}{% if contact.score > 40 %}{% break %}{% endif %}{{ i }}{{ j }}{% endfor %}{% endfor %}",
		"{{ broadcast.subject | divided_by: 0 }}{{ contact.first_name }}",
		"{{ contact.first_name }}{% for i in (1..5) %}{{ i | divided_by: 0 }}{% endfor %}",
		"{% for i in (1..100000000) %}x{% endfor %}{{ contact.first_name }}",
		"{% for i in (1..4) %}{% for a in broadcast.articles %}{% for t in contact.tags %}{{ t }}{% endfor %}{% endfor %}{% endfor %}",
		"{% capture a %}{% capture b %}{{ list.name }}{% endcapture %}{{ b }}{{ contact.first_name }}{% endcapture %}{{ a }}{{ b }}",
	};
	static const TmplLimits lims[] = {
		{1024 * 1024, 100000, 32},
		{0, 100000, 32},
		{10, 100000, 32},
		{40, 100000, 32},
		{120, 100000, 32},
		{1024 * 1024, 0, 32},
		{1024 * 1024, 1, 32},
		{1024 * 1024, 3, 32},
		{1024 * 1024, 7, 32},
		{1024 * 1024, 100000, 0},
		{1024 * 1024, 100000, 1},
		{1024 * 1024, 100000, 2},
		{1024 * 1024, 100000, 3},
		{30, 5, 2},
	};
	size_t		i;
	size_t		k;
	char		name[128];

	for (i = 0; i < sizeof(tricky) / sizeof(tricky[0]); i++)
	{
		TmplError	err;
		Template   *t = tmpl_compile(tricky[i], strlen(tricky[i]), &err);
		int			bad = 0;

		if (t == NULL)
		{
			printf("# %s: %s\n", tricky[i], err.message);
			bad = 1;
		}
		for (k = 0; t && k < sizeof(lims) / sizeof(lims[0]); k++)
			bad |= spec_compare(t, tricky[i], &lims[k]);
		snprintf(name, sizeof(name), "specialised equals plain: tricky template %zu", i);
		UNIT_CHECK(!bad, name);
		if (bad)
			printf("#   %s\n", tricky[i]);
		tmpl_free(t);
	}

	/* a loop variable gets back a string assigned before the loop */
	UNIT_STREQ(R("{% assign x = 'abcdef' %}{% for x in (1..2) %}{% assign x = 'q' %}{% endfor %}"
				 "{% assign y = 'qqqqqqqqqqqqqqq' | append: 'z' %}{{ x | prepend: 'zz' }}{{ x }}"),
			   "zzabcdefabcdef", "loop variable restored after the loop");

	/* pre-rendered text is there, and limits still see it */
	{
		const char *src = "{% for a in broadcast.articles %}<{{ a.title }}>{% endfor %}{{ contact.first_name }}";
		TmplError	err;
		Template   *t = tmpl_compile(src, strlen(src), &err);
		Template   *st = tmpl_specialize(t, splits[0], &err);
		TmplError	err2;
		Template   *st2 = st ? tmpl_specialize(st, splits[0], &err2) : NULL;
		TmplRenderCtx *c = tmpl_ctx_create();
		TmplLimits	lim = {20, 100000, 32};
		BeBuf		out;

		be_buf_init(&out);
		UNIT_CHECK(st != NULL && tmpl_render(st, c, data, NULL, &out, &err) == 0 &&
				   strcmp(out.data, "<One><Two><Three <3>>Ann") == 0, "specialised render");
		be_buf_reset(&out);
		UNIT_CHECK(tmpl_render(st, c, NULL, NULL, &out, &err) == 0 &&
				   strcmp(out.data, "<One><Two><Three <3>>") == 0, "constant data kept without data");
		be_buf_reset(&out);
		UNIT_CHECK(tmpl_render(st, c, data, &lim, &out, &err) != 0 && err.kind == TMPL_ERR_LIMIT,
				   "pre-rendered text counts toward max_output");
		lim.max_output = 1000;
		lim.max_iterations = 2;
		UNIT_CHECK(tmpl_render(st, c, data, &lim, &out, &err) != 0 && err.kind == TMPL_ERR_LIMIT,
				   "unrolled iterations count toward max_iterations");
		UNIT_CHECK(st2 == NULL && err2.kind == TMPL_ERR_RUNTIME, "specialising twice is refused");
		be_buf_free(&out);
		tmpl_ctx_free(c);
		tmpl_free(st);
		tmpl_free(t);		/* the specialisation outlives the original */
	}
}

/*
 * Time zones, with a fake resolver: Paris switches to summer time on
 * 2026-03-29 at 01:00 UTC, New York is a fixed -05:00, nothing else.
 */
static int	tz_calls;

static bool
fake_tz(void *arg, const char *zone, long long secs, int *off, char *abbr, size_t cap)
{
	tz_calls++;
	if (strcmp(zone, "Europe/Paris") == 0)
	{
		bool		summer = secs >= 1774746000LL;

		*off = summer ? 7200 : 3600;
		snprintf(abbr, cap, "%s", summer ? "CEST" : "CET");
		return true;
	}
	if (strcmp(zone, "America/New_York") == 0)
	{
		*off = -5 * 3600;
		snprintf(abbr, cap, "EST");
		return true;
	}
	return false;
}

/*
 * Render src with the JSON data and the fake resolver (when tz), and its
 * specialisation by {"workspace": ...} rendered the same way: they must
 * agree, else the result says so.
 */
static const char *
RZ(const char *src, const char *json, bool tz)
{
	struct json_object *d = json_tokener_parse(json);
	struct json_object *ws = NULL;
	struct json_object *k = json_object_new_object();
	TmplError	err;
	Template   *t = tmpl_compile(src, strlen(src), &err);
	Template   *st = NULL;
	TmplRenderCtx *c = tmpl_ctx_create();
	BeBuf		out;
	BeBuf		out2;
	int			rc,
				rc2;

	if (tz)
		tmpl_ctx_set_tz_resolver(c, fake_tz, NULL);
	be_buf_init(&out);
	be_buf_init(&out2);
	if (t == NULL)
		snprintf(result, sizeof(result), "ERROR %d:%d %s", err.line, err.column, err.message);
	else
	{
		if (json_object_object_get_ex(d, "workspace", &ws))
			json_object_object_add(k, "workspace", json_object_get(ws));
		st = tmpl_specialize(t, k, &err);
		rc = tmpl_render(t, c, d, NULL, &out, &err);
		if (rc != 0)
			snprintf(result, sizeof(result), "ERROR %d:%d %s", err.line, err.column, err.message);
		else
			snprintf(result, sizeof(result), "%s", out.data ? out.data : "");
		rc2 = st ? tmpl_render(st, c, d, NULL, &out2, &err) : -2;
		if (rc != rc2 || (rc == 0 && strcmp(out.data ? out.data : "", out2.data ? out2.data : "") != 0))
			snprintf(result, sizeof(result), "specialised render differs");
	}
	be_buf_free(&out);
	be_buf_free(&out2);
	tmpl_ctx_free(c);
	tmpl_free(st);
	tmpl_free(t);
	json_object_put(k);
	json_object_put(d);
	return result;
}

static void
test_timezones(void)
{
	const char *both = "{\"contact\": {\"timezone\": \"America/New_York\"}, \"workspace\": {\"timezone\": \"Europe/Paris\"}}";
	const char *ws = "{\"contact\": {\"timezone\": null}, \"workspace\": {\"timezone\": \"Europe/Paris\"}}";
	const char *bad = "{\"contact\": {\"timezone\": \"Mars/Olympus\"}, \"workspace\": {\"timezone\": \"Europe/Paris\"}}";
	const char *f = "{{ '2026-03-01T10:00:00Z' | date: '%F %H:%M %Z %z' }}";

	UNIT_STREQ(RZ(f, "{}", true), "2026-03-01 10:00 UTC +0000", "tz: none given is UTC");
	UNIT_STREQ(RZ(f, ws, true), "2026-03-01 11:00 CET +0100", "tz: the workspace's zone");
	UNIT_STREQ(RZ(f, both, true), "2026-03-01 05:00 EST -0500", "tz: the contact's zone wins");
	UNIT_STREQ(RZ(f, bad, true), "2026-03-01 11:00 CET +0100", "tz: unknown contact zone falls back");
	UNIT_STREQ(RZ("{{ '2026-07-01T10:00:00Z' | date: '%H:%M %Z' }}", ws, true), "12:00 CEST",
			   "tz: offset at the instant (summer time)");
	UNIT_STREQ(RZ("{{ '2026-03-01T10:00:00Z' | date: '%H:%M %Z', 'Europe/Paris' }}", both, true), "11:00 CET",
			   "tz: explicit argument overrides the contact");
	UNIT_STREQ(RZ("{{ '2026-03-01T23:30:00Z' | date: '%F %H:%M %Z %z', '+05:30' }}", both, false),
			   "2026-03-02 05:00 +05:30 +0530", "tz: fixed offset needs no resolver, crosses midnight");
	UNIT_STREQ(RZ("{{ 0 | date: '%F %H:%M %s', '-0130' }}", "{}", false), "1969-12-31 22:30 0",
			   "tz: negative offset before the epoch, %s stays UTC");
	UNIT_STREQ(RZ("{{ 0 | date: '%H:%M', 'UTC' }}|{{ 0 | date: '%H:%M', nil }}", both, true), "00:00|19:00",
			   "tz: explicit UTC, nil argument means default");
	UNIT_STREQ(RZ("{{ 0 | date: '%H', 'Mars/Olympus' }}", "{}", true), "ERROR 1:8 unknown time zone \"Mars/Olympus\"",
			   "tz: unknown explicit zone is an error");
	UNIT_STREQ(RZ("{{ 0 | date: '%H', 'Europe/Paris' }}", "{}", false), "ERROR 1:8 unknown time zone \"Europe/Paris\"",
			   "tz: names need a resolver");
	UNIT_STREQ(RZ("{{ 0 | date: '%H', 3 }}", "{}", true), "ERROR 1:8 the time zone of \"date\" must be a string",
			   "tz: zone must be a string");
	UNIT_STREQ(RZ("{{ 0 | date: '%H', '+19:00' }}|{{ 0 | date: '%H', '+0160' }}", "{}", true),
			   "ERROR 1:8 unknown time zone \"+19:00\"", "tz: offsets are bounded");
	UNIT_STREQ(RZ(f, ws, false), "2026-03-01 10:00 UTC +0000", "tz: no resolver, named zones skipped");
	tz_calls = 0;
	RZ("{% for i in (1..3) %}{{ 0 | date: '%H' }}{% endfor %}", ws, true);
	UNIT_CHECK(tz_calls > 0, "tz: resolver called at render time");
	UNIT_STREQ(R("{{ 0 | date: '%H', 'a', 'b' }}"), "ERROR 1:8 wrong number of arguments for filter \"date\" (given 3, expected 1 to 2)",
			   "tz: at most two arguments");
}

/* Snippets from a fixed table, like a workspace's templates. */
static const char *const snippets[][2] = {
	{"hello", "Hello {{ name | default: 'you' }}"},
	{"setter", "{% assign shared = 'from snippet' %}"},
	{"counter", "[{{ n }}]{% assign n = 'x' %}"},
	{"item", "<{{ item }}{% if forloop.last %}!{% endif %}>"},
	{"product", "{{ product.title }}"},
	{"outer", "(o {% render 'hello', name: who %})"},
	{"loop_a", "{% render 'loop_b' %}"},
	{"loop_b", "{% include 'loop_a' %}"},
	{"self", "{% include 'self' %}"},
	{"broken", "ok\n{{ x | nope }}"},
	{"globals", "{{ contact.first_name }}|{{ secret }}"},
	{"empty", ""},
	{"div0", "a\n  {{ 1 | divided_by: contact.zero }}"},
	{"div0_outer", "x{% include 'div0' %}"},
	{"count", "{% increment c %}"},
	{"loop_end", "{% liquid endif %}"},
	{"rowloop", "{{ tablerowloop.col }}{{ forloop.index }}"},
	{"d1", "1{% render 'd2' %}"}, {"d2", "2{% render 'd3' %}"}, {"d3", "3{% render 'd4' %}"},
	{"d4", "4{% render 'd5' %}"}, {"d5", "5{% render 'd6' %}"}, {"d6", "6{% render 'd7' %}"},
	{"d7", "7{% render 'd8' %}"}, {"d8", "8{% render 'd9' %}"}, {"d9", "9"},
	{NULL, NULL}
};
static int	snippet_lookups;

static bool
fake_snippets(void *arg, const char *name, size_t n, const char **src, size_t *len)
{
	int			i;

	snippet_lookups++;
	for (i = 0; snippets[i][0]; i++)
		if (strlen(snippets[i][0]) == n && memcmp(snippets[i][0], name, n) == 0)
		{
			*src = snippets[i][1];
			*len = strlen(*src);
			return true;
		}
	return false;
}

/* Compile with the snippets, render with the default data (and compare specialised). */
static const char *
RS(const char *src)
{
	TmplError	err;
	Template   *t = tmpl_compile_ex(src, strlen(src), fake_snippets, NULL, &err);
	TmplRenderCtx *c;
	BeBuf		out;

	if (t == NULL)
	{
		snprintf(result, sizeof(result), "ERROR %d:%d %s", err.line, err.column, err.message);
		return result;
	}
	spec_compare(t, src, NULL);
	c = tmpl_ctx_create();
	be_buf_init(&out);
	if (tmpl_render(t, c, data, NULL, &out, &err) != 0)
		snprintf(result, sizeof(result), "ERROR %d:%d %s", err.line, err.column, err.message);
	else
		snprintf(result, sizeof(result), "%s", out.data ? out.data : "");
	be_buf_free(&out);
	tmpl_ctx_free(c);
	tmpl_free(t);
	return result;
}

static void
test_snippets(void)
{
	/* a render inside a liquid tag's block: the block still closes there */
	UNIT_STREQ(RS("{% liquid\nif true\n  render 'empty'\n  echo 'x'\nendif\nfor i in (1..2)\n  include 'count'\nendfor\n%}"),
			   "x01", "render/include inside a liquid tag's blocks");
	UNIT_CHECK(starts_with(RS("{% if true %}{% liquid include 'loop_end' %}"), "ERROR"),
			   "a snippet cannot close its caller's block");
	UNIT_STREQ(RS("{% render 'hello' %}/{% render 'hello', name: contact.first_name %}"), "Hello you/Hello Ann",
			   "render, named argument");
	UNIT_STREQ(RS("{% assign name = 'Bob' %}{% render 'hello' %}|{% include 'hello' %}"), "Hello you|Hello Bob",
			   "render is isolated, include shares the scope");
	UNIT_STREQ(RS("{% render 'setter' %}[{{ shared }}]{% include 'setter' %}[{{ shared }}]"), "[][from snippet]",
			   "render's assigns do not leak, include's do");
	UNIT_STREQ(RS("{% for i in (1..3) %}{% render 'counter' %}{% endfor %}"), "[][][]",
			   "each render starts with an empty scope");
	UNIT_STREQ(RS("{% for i in (1..2) %}{% include 'counter' %}{% endfor %}"), "[][x]",
			   "include keeps its assigns");
	UNIT_STREQ(RS("{% render 'counter', n: 5 %}{% render 'counter' n: 6 %}"), "[5][6]",
			   "arguments with and without the comma");
	UNIT_STREQ(RS("{% render 'item' for contact.tags %}|{% render 'item' for contact.tags as t %}"),
			   "<vip><beta!>|<><!>", "render for: the item under the snippet's name, forloop");
	UNIT_STREQ(RS("{% render 'product' with broadcast.articles[0] as product %}|{% render 'item' with 'x' %}"),
			   "One|<x>", "render with, with as");
	UNIT_STREQ(RS("{% include 'product' with broadcast.articles[1] as product %}[{{ product.title }}]"), "Two[]",
			   "include's with variable is gone after it, as in Liquid");
	UNIT_STREQ(RS("{% assign who = 'Zed' %}{% render 'outer', who: who %}"), "(o Hello Zed)", "nested render");
	UNIT_STREQ(RS("{% assign secret = 's' %}{% render 'globals' %}"), "Ann|", "render sees the data, not the caller's assigns");
	UNIT_STREQ(RS("a{% render 'empty' %}b{% include \"empty\" %}c"), "abc", "empty snippet");
	UNIT_STREQ(RS("x\n  {% render 'missing' %}"), "ERROR 2:3 snippet \"missing\" does not exist", "missing snippet names it");
	UNIT_STREQ(R("{% render 'hello' %}"), "ERROR 1:1 snippet \"hello\" does not exist", "no resolver: every snippet is missing");
	UNIT_STREQ(RS("{% include 'self' %}"), "ERROR 1:1 in snippet \"self\": snippet \"self\" includes itself", "direct cycle");
	UNIT_STREQ(RS("{% render 'loop_a' %}"), "ERROR 1:1 in snippet \"loop_b\": snippet \"loop_a\" includes itself", "indirect cycle");
	UNIT_STREQ(RS("{% render 'd1' %}"), "ERROR 1:2 in snippet \"d8\": snippets are nested more than 8 levels deep", "depth bound");
	UNIT_STREQ(RS("{% render 'd2' %}"), "23456789", "eight levels are fine");
	UNIT_STREQ(RS("{% render 'broken' %}"), "ERROR 2:8 in snippet \"broken\": unknown filter \"nope\"",
			   "an error in a snippet names it");
	UNIT_STREQ(RS("{% render hello %}"), "ERROR 1:11 expected the snippet's name as a quoted string but found \"hello\"",
			   "name must be a literal");
	UNIT_STREQ(RS("{% render 'hello' name 'x' %}"), "ERROR 1:24 expected \":\" but found \"'x'\"", "bad argument");
	UNIT_STREQ(RS("{% liquid\nrender 'hello', name: 'L'\necho '!'\n%}"), "Hello L!", "render inside liquid");
	UNIT_STREQ(RS("ok\n {% render 'div0' %}"), "ERROR 2:2 in snippet \"div0\" line 2 column 10: divided by 0",
			   "a render error in a snippet names it, where in it, at the tag");
	UNIT_STREQ(RS("{% for a in broadcast.articles %}{% include 'div0_outer' %}{% endfor %}"),
			   "ERROR 1:34 in snippet \"div0\" line 2 column 10: divided by 0", "the innermost snippet, the outermost tag");
	UNIT_STREQ(RS("{% include 'count' %}{% include 'count' %}{{ c }}|{% for i in (1..3) %}{% render 'count' %}{% endfor %}{{ c }}"),
			   "012|0002", "include shares counters, each render starts new ones");
	UNIT_STREQ(RS("{% for i in (1..2) %}{% tablerow j in (1..2) %}{% render 'rowloop' %}{% endtablerow %}{% endfor %}"),
			   "<tr class=\"row1\">\n<td class=\"col1\"></td><td class=\"col2\"></td></tr>\n"
			   "<tr class=\"row1\">\n<td class=\"col1\"></td><td class=\"col2\"></td></tr>\n",
			   "render sees neither the caller's tablerowloop nor its forloop");
	UNIT_STREQ(RS("{% render 'item' for contact.tags as t %}{% include 'hello', name: 'In' %}[{{ name }}]"),
			   "<><!>Hello In[]", "include arguments last while it runs");
	snippet_lookups = 0;
	{
		TmplError	err;
		Template   *t = tmpl_compile_ex("{% render 'hello' %}", 20, fake_snippets, NULL, &err);
		TmplRenderCtx *c = tmpl_ctx_create();
		BeBuf		out;

		be_buf_init(&out);
		UNIT_CHECK(t && tmpl_render(t, c, data, NULL, &out, &err) == 0 && snippet_lookups == 1,
				   "snippets are resolved once, at compile time");
		be_buf_free(&out);
		tmpl_ctx_free(c);
		tmpl_free(t);
	}
}

int
main(void)
{
	data = json_tokener_parse(default_json);
	if (data == NULL)
	{
		printf("not ok - test data does not parse\n");
		return 1;
	}
	make_splits();
	test_output();
	test_whitespace();
	test_filters();
	test_liquid_filters();
	test_array_filters();
	test_liquid_tags();
	test_tablerow_counters_doc();
	test_if();
	test_for();
	test_assign_capture();
	test_comment_raw();
	test_errors();
	test_limits();
	test_reuse();
	test_fast_paths();
	test_hostile();
	test_specialize();
	test_timezones();
	test_snippets();
	snprintf(result, sizeof(result), "specialised equals plain on all %d rendered templates (first bad: %s)",
			 spec_checked, spec_mismatch ? spec_first_bad : "none");
	UNIT_CHECK(spec_mismatch == 0, result);
	{
		int			i;

		for (i = 0; i < NSPLITS; i++)
			json_object_put(splits[i]);
	}
	json_object_put(data);
	UNIT_DONE();
}
