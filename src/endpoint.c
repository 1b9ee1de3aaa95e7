/*-------------------------------------------------------------------------
 *
 * endpoint.c
 *	  Where the sender may connect, and what of a provider's answer a
 *	  tenant may read.
 *
 * An integration's endpoint (HTTP APIs) or host (SMTP) is chosen by a
 * tenant, and the sender connects there from inside the database server's
 * network; the answer comes back to the tenant in dead_letters.last_error.
 * Unchecked, that is a server-side request forgery with read-back: a
 * tenant could POST to a cloud metadata service or an internal admin
 * interface and read the reply.  So, unless a superuser turns on
 * broadcast_engine.allow_private_endpoints:
 *
 *	- the API refuses literal addresses that are not public and names that
 *	  are internal by construction (localhost, *.internal, names without a
 *	  dot...): _check_integration_target(), called by a trigger on every
 *	  write of an integration's config;
 *	- the sender refuses, at connect time, every socket to an address that
 *	  is not public (be_sockaddr_forbidden(), from transport.c's libcurl
 *	  open-socket callback), because DNS can point a public-looking name at
 *	  127.0.0.1 at any time.
 *
 * And whatever the target, a provider's words reach the tenant only as a
 * short excerpt without control characters (be_excerpt, be_sanitize_text).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "be_sender.h"

PG_FUNCTION_INFO_V1(be_check_integration_target);

/* Why an IPv4 address (host byte order) is not public, or NULL. */
static const char *
v4_forbidden(uint32 a)
{
	uint8		b0 = a >> 24;
	uint8		b1 = (a >> 16) & 0xff;

	if (b0 == 127)
		return "a loopback address";
	if (b0 == 0)
		return "an unspecified address";
	if (b0 == 10 || (b0 == 172 && (b1 & 0xf0) == 16) || (b0 == 192 && b1 == 168))
		return "a private address";
	if (b0 == 169 && b1 == 254)
		return "a link-local address";
	if (b0 == 100 && (b1 & 0xc0) == 64)
		return "a shared (carrier-grade NAT) address";
	if (b0 >= 224 && b0 <= 239)
		return "a multicast address";
	if (b0 >= 240)
		return "a reserved address";
	/* IETF protocol assignments, documentation, benchmarking */
	if ((b0 == 192 && b1 == 0 && ((a >> 8) & 0xff) == 0) ||
		(b0 == 192 && b1 == 0 && ((a >> 8) & 0xff) == 2) ||
		(b0 == 198 && b1 == 51 && ((a >> 8) & 0xff) == 100) ||
		(b0 == 203 && b1 == 0 && ((a >> 8) & 0xff) == 113) ||
		(b0 == 198 && (b1 & 0xfe) == 18))
		return "a reserved address";
	return NULL;
}

static uint32
v4_at(const uint8 *p)
{
	return ((uint32) p[0] << 24) | ((uint32) p[1] << 16) | ((uint32) p[2] << 8) | p[3];
}

/* Why an IPv6 address is not public, or NULL; embedded IPv4 is judged as IPv4. */
static const char *
v6_forbidden(const uint8 *a)
{
	static const uint8 zero12[12] = {0};
	static const uint8 mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const uint8 nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
	int			i;
	bool		all_zero = true;

	for (i = 0; i < 16; i++)
		if (a[i] != 0)
			all_zero = false;
	if (all_zero)
		return "an unspecified address";
	if (memcmp(a, zero12, 12) == 0)
	{
		if (a[12] == 0 && a[13] == 0 && a[14] == 0 && a[15] == 1)
			return "a loopback address";
		/* IPv4-compatible (deprecated): routed as the IPv4 address */
		return v4_forbidden(v4_at(a + 12)) ? v4_forbidden(v4_at(a + 12)) : "a reserved address";
	}
	/* IPv4-mapped, and NAT64 (which a gateway would forward to the IPv4 address) */
	if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0)
		return v4_forbidden(v4_at(a + 12));
	/* 6to4 carries the IPv4 address in bits 16..47 */
	if (a[0] == 0x20 && a[1] == 0x02)
		return v4_forbidden(v4_at(a + 2));
	if (a[0] == 0xff)
		return "a multicast address";
	if ((a[0] & 0xfe) == 0xfc)
		return "a private address";	/* unique local, fc00::/7 */
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		return "a link-local address";
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)
		return "a private address";	/* site-local (deprecated) */
	/* Teredo (2001::/32), documentation (2001:db8::/32), discard (100::/64), local NAT64 */
	if ((a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0) ||
		(a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8) ||
		(a[0] == 0x01 && a[1] == 0 && memcmp(a + 2, zero12, 6) == 0) ||
		(a[0] == 0 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b && a[4] == 0 && a[5] == 1))
		return "a reserved address";
	return NULL;
}

/*
 * Why the sender must not connect to this socket address, or NULL.  Only
 * IPv4 and IPv6 are ever allowed.  Called from a libcurl callback: it
 * neither allocates nor raises.
 */
const char *
be_sockaddr_forbidden(const struct sockaddr *sa, size_t len)
{
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
		return v4_forbidden(ntohl(((const struct sockaddr_in *) sa)->sin_addr.s_addr));
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
		return v6_forbidden(((const struct sockaddr_in6 *) sa)->sin6_addr.s6_addr);
	return "not an internet address";
}

/* the address as text, into buf (no allocation: a libcurl callback uses it) */
void
be_sockaddr_text(const struct sockaddr *sa, char *buf, size_t buflen)
{
	const void *p = NULL;

	if (sa->sa_family == AF_INET)
		p = &((const struct sockaddr_in *) sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		p = &((const struct sockaddr_in6 *) sa)->sin6_addr;
	if (p == NULL || inet_ntop(sa->sa_family, p, buf, buflen) == NULL)
		strlcpy(buf, "?", buflen);
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t		n = strlen(s);
	size_t		m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/*
 * Why a host name or literal address, as given in a config, is not a public
 * target, or NULL.  Literal addresses are read the way the resolver reads
 * them (inet_aton also takes "127.1", "0x7f.1" and "2130706433"); names
 * that can only be internal are refused here, and every other name is
 * checked again on each connection, after resolution.
 */
const char *
be_host_forbidden(const char *host)
{
	char	   *h = pstrdup(host);
	size_t		n = strlen(h);
	struct in_addr a4;
	struct in6_addr a6;
	char	   *pct;

	/* "[::1]" is an IPv6 literal; "name." is a fully qualified "name" */
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']')
	{
		h[n - 1] = '\0';
		h++;
		/* a zone ("fe80::1%eth0") names an interface: only link-local has one */
		if ((pct = strchr(h, '%')) != NULL)
			*pct = '\0';
		if (inet_pton(AF_INET6, h, &a6) == 1)
			return v6_forbidden(a6.s6_addr);
		return "not a valid address";
	}
	while (n > 0 && h[n - 1] == '.')
		h[--n] = '\0';
	if (n == 0)
		return "not a valid name";
	if (inet_pton(AF_INET6, h, &a6) == 1)
		return v6_forbidden(a6.s6_addr);
	if (inet_aton(h, &a4) != 0)
		return v4_forbidden(ntohl(a4.s_addr));
	for (pct = h; *pct; pct++)
		*pct = pg_ascii_tolower((unsigned char) *pct);
	if (strcmp(h, "localhost") == 0 || ends_with(h, ".localhost") ||
		strcmp(h, "ip6-localhost") == 0 || strcmp(h, "ip6-loopback") == 0 ||
		strcmp(h, "localhost.localdomain") == 0)
		return "a loopback name";
	if (ends_with(h, ".internal") || ends_with(h, ".local") || ends_with(h, ".localdomain") ||
		ends_with(h, ".home.arpa") || ends_with(h, ".lan") || ends_with(h, ".intranet") ||
		ends_with(h, ".corp") || ends_with(h, ".private"))
		return "an internal name";
	/* a single label is completed from the server's search domains */
	if (strchr(h, '.') == NULL)
		return "a name without a domain";
	return NULL;
}

/* the host part of an http(s) URL, as libcurl will read it (palloc'd), or NULL */
static char *
url_host(const char *url, bool *is_http)
{
	CURLU	   *u = curl_url();
	char	   *scheme = NULL;
	char	   *host = NULL;
	char	   *result = NULL;

	*is_http = false;
	if (u == NULL)
		elog(ERROR, "out of memory");
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
	{
		*is_http = pg_strcasecmp(scheme, "http") == 0;
		result = pstrdup(host);
	}
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return result;
}

static void
refuse_target(const char *what, const char *value, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s \"%s\" is %s", what, value, why),
			 errdetail("The sender connects only to public internet addresses."),
			 errhint("A superuser can allow private and loopback targets with broadcast_engine.allow_private_endpoints.")));
}

/*
 * broadcast._check_integration_target(endpoint text, smtp_host text,
 *	   smtp_tls text): raises unless the sender may connect there under the
 * current settings.  NULL arguments are not checked.
 */
Datum
be_check_integration_target(PG_FUNCTION_ARGS)
{
	if (!PG_ARGISNULL(0))
	{
		char	   *url = text_to_cstring(PG_GETARG_TEXT_PP(0));
		bool		is_http;
		char	   *host = url_host(url, &is_http);
		const char *why;

		if (host == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("integration endpoint \"%s\" is not a valid URL", url)));
		if (is_http && !be_allow_insecure_transport)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("integration endpoint \"%s\" must use https", url),
					 errhint("A superuser can allow plain http for tests with broadcast_engine.allow_insecure_transport.")));
		if (!be_allow_private_endpoints && (why = be_host_forbidden(host)) != NULL)
			refuse_target("integration endpoint host", host, why);
	}
	if (!PG_ARGISNULL(1))
	{
		char	   *host = text_to_cstring(PG_GETARG_TEXT_PP(1));
		const char *why;

		if (!be_allow_private_endpoints && (why = be_host_forbidden(host)) != NULL)
			refuse_target("SMTP host", host, why);
		if (!PG_ARGISNULL(2) && !be_allow_insecure_transport &&
			strcmp(text_to_cstring(PG_GETARG_TEXT_PP(2)), "none") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("SMTP without TLS is not allowed"),
					 errhint("Use \"starttls\" or \"implicit\"; a superuser can allow \"none\" for tests with broadcast_engine.allow_insecure_transport.")));
	}
	PG_RETURN_VOID();
}

/*
 * s made fit for a tenant to read: control characters become spaces (runs
 * of them one space), bytes that are not valid UTF-8 become '?', and at
 * most max bytes are kept, cut at a character boundary and marked with
 * "...".  palloc'd; NULL stays NULL.
 */
char *
be_excerpt(const char *s, size_t len, size_t max)
{
	StringInfoData b;
	size_t		i = 0;
	bool		space = false;
	bool		utf8 = GetDatabaseEncoding() == PG_UTF8;

	if (s == NULL)
		return NULL;
	initStringInfo(&b);
	while (i < len)
	{
		unsigned char c = (unsigned char) s[i];
		int			clen = 1;

		/* NUL too: a body is counted, not terminated */
		if (c < 0x20 || c == 0x7f)
		{
			if (!space && b.len > 0)
				appendStringInfoChar(&b, ' ');
			space = true;
			i++;
			continue;
		}
		space = false;
		if (c >= 0x80 && !utf8)
		{
			/* no conversion here: another encoding gets ASCII only */
			if (b.len + 1 > max)
				break;
			appendStringInfoChar(&b, '?');
			i++;
			continue;
		}
		if (c >= 0x80)
		{
			clen = pg_utf_mblen((const unsigned char *) s + i);
			if (i + clen > len || !pg_utf8_islegal((const unsigned char *) s + i, clen) ||
				/* C1 controls (U+0080..U+009F) too */
				(clen == 2 && c == 0xc2 && (unsigned char) s[i + 1] < 0xa0))
			{
				if (b.len + 1 > max)
					break;
				appendStringInfoChar(&b, '?');
				i++;
				continue;
			}
		}
		if (b.len + clen > max)
			break;
		appendBinaryStringInfo(&b, s + i, clen);
		i += clen;
	}
	if (i < len)
		appendStringInfoString(&b, "...");
	while (b.len > 0 && b.data[b.len - 1] == ' ')
		b.data[--b.len] = '\0';
	return b.data;
}

/* a whole error or id text, bounded at BE_ERROR_MAX */
char *
be_sanitize_text(const char *s)
{
	return s ? be_excerpt(s, strlen(s), BE_ERROR_MAX) : NULL;
}
