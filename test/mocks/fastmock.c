/*
 * fastmock: a tiny single-threaded epoll HTTP/1.1 mock for benchmarks.
 *
 *   fastmock --port P [--status 202] [--header 'X-Message-Id: auto'] ...
 *
 * Binds 127.0.0.1.  Keep-alive, pipelined requests, Content-Length bodies
 * (chunked request bodies are not supported: the engine sends a length),
 * "Expect: 100-continue" answered.  Every answer carries a unique
 * X-Message-Id and a small JSON body shaped like the provider whose path was
 * hit; for batch paths (/email/batch, /emails/batch, /v3.1/send,
 * /api/v1/transmissions, /v2/email/outbound-bulk-emails) the body holds one
 * success entry per message in the request, counted with a one-pass JSON
 * scanner (elements of the top-level array, or of the array under
 * "Messages" / "recipients" / "BulkEmailEntries").
 * Without --status each path gets its provider's success status (202 for
 * /v3/mail/send, 201 for /v3/smtp/email, 200 otherwise).  Extra --header
 * values of "auto" become a unique id.  GET /_fastmock/stats answers the counters:
 * the totals, and per provider (told by the path) the requests and the
 * messages they carried ("providers": {"postmark": {"requests": R,
 * "messages": M}, ...}; Mailgun messages are its "to" form fields).
 * POST /_fastmock/reset zeroes the per-provider counters.
 *
 * --smtp-port S also listens for plain SMTP on 127.0.0.1:S (no TLS, no
 * AUTH, no PIPELINING): EHLO/HELO, MAIL, RCPT, DATA (answered "250 2.0.0
 * Ok: queued as ID"), RSET, NOOP, QUIT; counted as provider "smtp", one
 * request and one message per accepted DATA.
 *
 * Prints "READY port=P" ("READY port=P smtp=S" with --smtp-port); on
 * SIGTERM/SIGINT prints "requests=N bytes=M" (M = request bytes received,
 * HTTP and SMTP) and exits 0.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_EXTRA_HEADERS 16
#define MAX_REQUEST (64u * 1024u * 1024u)

typedef struct {
    char *data;
    size_t len, cap, off; /* off: consumed prefix (input) or written prefix (output) */
} buf_t;

typedef struct {
    int fd;
    buf_t in, out;
    int close_after;   /* close once output is flushed */
    int sent_continue; /* 100-continue sent for the current request */
    int smtp;          /* an SMTP session */
    int smtp_data;     /* SMTP: inside DATA, looking for CRLF.CRLF */
    size_t smtp_scan;  /* SMTP: DATA bytes already scanned (from in.off) */
} conn_t;

/* per-provider counters, by path */
enum { P_SENDGRID, P_MAILGUN, P_POSTMARK, P_SES, P_SPARKPOST, P_MAILJET, P_RESEND, P_BREVO,
       P_SMTP, P_OTHER, P_COUNT };
static const char *const g_pname[P_COUNT] = {"sendgrid", "mailgun", "postmark", "ses", "sparkpost",
                                             "mailjet", "resend", "brevo", "smtp", "other"};
static unsigned long long g_prov_requests[P_COUNT], g_prov_messages[P_COUNT];

static volatile sig_atomic_t g_stop = 0;
static unsigned long long g_requests = 0, g_bytes = 0, g_bytes_out = 0, g_seq = 0;
static int g_status = 0; /* 0 = per path default */
static char *g_extra_name[MAX_EXTRA_HEADERS], *g_extra_value[MAX_EXTRA_HEADERS];
static int g_nextra = 0;
static unsigned g_boot;

static void on_signal(int sig) { (void)sig; g_stop = 1; }

static void die(const char *msg) { perror(msg); exit(1); }

static void buf_reserve(buf_t *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return;
    if (b->off > 0 && b->off >= b->len / 2) { /* compact first */
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->len + extra <= b->cap)
            return;
    }
    size_t ncap = b->cap ? b->cap : 4096;
    while (ncap < b->len + extra)
        ncap *= 2;
    char *p = realloc(b->data, ncap);
    if (!p)
        die("realloc");
    b->data = p;
    b->cap = ncap;
}

static void buf_append(buf_t *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static void buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        int n = vsnprintf(b->data ? b->data + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            die("vsnprintf");
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        buf_reserve(b, (size_t)n + 1);
    }
}

static void next_id(char *out, size_t n)
{
    g_seq++;
    snprintf(out, n, "fm%08x%012llx", g_boot, g_seq);
}

/* Count the elements of a JSON array: the top-level one when key is NULL,
 * otherwise the array that is the value of top-level object key `key`. */
static long count_items(const char *s, size_t n, const char *key)
{
    int depth = 0, in_str = 0, esc = 0, counting = 0, target_depth = key ? 2 : 1;
    size_t klen = key ? strlen(key) : 0;
    long count = 0;
    const char *str_start = NULL, *last_key = NULL;
    size_t last_key_len = 0;
    int expect_value = 0; /* element start expected at target depth */

    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"') {
                in_str = 0;
                if (depth == 1 && key) {
                    last_key = str_start;
                    last_key_len = (size_t)(s + i - str_start);
                }
            }
            continue;
        }
        switch (c) {
        case ' ': case '\t': case '\r': case '\n': case ':':
            continue;
        case '"':
            if (counting && depth == target_depth && expect_value) {
                count++;
                expect_value = 0;
            }
            in_str = 1;
            str_start = s + i + 1;
            continue;
        case '{': case '[':
            if (counting && depth == target_depth && expect_value) {
                count++;
                expect_value = 0;
            }
            if (c == '[' && !counting && depth == target_depth - 1 &&
                (!key || (last_key && last_key_len == klen && memcmp(last_key, key, klen) == 0))) {
                counting = 1;
                expect_value = 1;
            }
            depth++;
            continue;
        case '}': case ']':
            depth--;
            if (counting && depth < target_depth)
                return count;
            continue;
        case ',':
            if (counting && depth == target_depth)
                expect_value = 1;
            continue;
        default: /* number, true, false, null */
            if (counting && depth == target_depth && expect_value) {
                count++;
                expect_value = 0;
            }
            continue;
        }
    }
    return count;
}

/* Mailgun: the multipart form's "to" fields (one per recipient) */
static long count_form_to(const char *s, size_t n)
{
    static const char needle[] = "name=\"to\"";
    long count = 0;
    const char *p = s, *end = s + n;
    while (p < end) {
        const char *h = memmem(p, (size_t)(end - p), needle, sizeof needle - 1);
        if (!h)
            break;
        count++;
        p = h + sizeof needle - 1;
    }
    return count;
}

static void count_provider(int prov, long messages)
{
    g_prov_requests[prov]++;
    g_prov_messages[prov] += (unsigned long long)(messages > 0 ? messages : 0);
}

static int path_is(const char *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && memcmp(p, lit, l) == 0;
}

static int path_ends(const char *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n >= l && memcmp(p + n - l, lit, l) == 0;
}

static const char *reason(int st)
{
    switch (st) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

static void respond(conn_t *c, const char *path, size_t plen, const char *body, size_t blen,
                    int keepalive)
{
    static buf_t jb; /* reused body buffer */
    char id[40];
    int st = 200;
    next_id(id, sizeof id);
    jb.len = 0;
    jb.off = 0;
    if (path_is(path, plen, "/_fastmock/stats")) {
        buf_printf(&jb, "{\"requests\":%llu,\"bytes\":%llu,\"bytes_out\":%llu,\"providers\":{", g_requests,
                   g_bytes, g_bytes_out);
        for (int i = 0; i < P_COUNT; i++)
            buf_printf(&jb, "%s\"%s\":{\"requests\":%llu,\"messages\":%llu}", i ? "," : "", g_pname[i],
                       g_prov_requests[i], g_prov_messages[i]);
        buf_append(&jb, "}}", 2);
    } else if (path_is(path, plen, "/_fastmock/reset")) {
        memset(g_prov_requests, 0, sizeof g_prov_requests);
        memset(g_prov_messages, 0, sizeof g_prov_messages);
        buf_printf(&jb, "{\"reset\":true}");
    } else if (path_is(path, plen, "/v3/mail/send")) {
        st = 202; /* SendGrid: empty body, id in X-Message-Id */
        count_provider(P_SENDGRID, 1);
    } else if (path_is(path, plen, "/email/batch")) {
        long n = count_items(body, blen, NULL);
        count_provider(P_POSTMARK, n);
        buf_append(&jb, "[", 1);
        for (long i = 0; i < n; i++)
            buf_printf(&jb, "%s{\"ErrorCode\":0,\"Message\":\"OK\",\"MessageID\":\"%s-%ld\",\"SubmittedAt\":\"2024-01-01T00:00:00Z\"}",
                       i ? "," : "", id, i);
        buf_append(&jb, "]", 1);
    } else if (path_is(path, plen, "/emails/batch")) {
        long n = count_items(body, blen, NULL);
        count_provider(P_RESEND, n);
        buf_append(&jb, "{\"data\":[", 9);
        for (long i = 0; i < n; i++)
            buf_printf(&jb, "%s{\"id\":\"%s-%ld\"}", i ? "," : "", id, i);
        buf_append(&jb, "]}", 2);
    } else if (path_is(path, plen, "/v3.1/send")) {
        long n = count_items(body, blen, "Messages");
        count_provider(P_MAILJET, n);
        buf_append(&jb, "{\"Messages\":[", 13);
        for (long i = 0; i < n; i++)
            buf_printf(&jb, "%s{\"Status\":\"success\",\"To\":[{\"Email\":\"\",\"MessageUUID\":\"%s-%ld\",\"MessageID\":%llu%03ld,\"MessageHref\":\"\"}]}",
                       i ? "," : "", id, i, g_seq, i % 1000);
        buf_append(&jb, "]}", 2);
    } else if (path_is(path, plen, "/api/v1/transmissions")) {
        long n = count_items(body, blen, "recipients");
        count_provider(P_SPARKPOST, n);
        buf_printf(&jb, "{\"results\":{\"total_rejected_recipients\":0,\"total_accepted_recipients\":%ld,\"id\":\"%s\"}}", n, id);
    } else if (path_is(path, plen, "/v2/email/outbound-bulk-emails")) {
        long n = count_items(body, blen, "BulkEmailEntries");
        count_provider(P_SES, n);
        buf_append(&jb, "{\"BulkEmailEntryResults\":[", 26);
        for (long i = 0; i < n; i++)
            buf_printf(&jb, "%s{\"Status\":\"SUCCESS\",\"MessageId\":\"%s-%ld\"}", i ? "," : "", id, i);
        buf_append(&jb, "]}", 2);
    } else if (path_is(path, plen, "/email")) {
        count_provider(P_POSTMARK, 1);
        buf_printf(&jb, "{\"To\":\"\",\"SubmittedAt\":\"2024-01-01T00:00:00Z\",\"MessageID\":\"%s\",\"ErrorCode\":0,\"Message\":\"OK\"}", id);
    } else if (path_is(path, plen, "/v2/email/outbound-emails")) {
        count_provider(P_SES, 1);
        buf_printf(&jb, "{\"MessageId\":\"%s\"}", id);
    } else if (path_is(path, plen, "/v3/smtp/email")) {
        st = 201;
        count_provider(P_BREVO, 1);
        buf_printf(&jb, "{\"messageId\":\"<%s@fastmock>\"}", id);
    } else if (path_ends(path, plen, "/messages") || path_ends(path, plen, "/messages.mime")) {
        count_provider(P_MAILGUN, path_ends(path, plen, "/messages.mime") ? 1 : count_form_to(body, blen));
        buf_printf(&jb, "{\"id\":\"<%s@fastmock>\",\"message\":\"Queued. Thank you.\"}", id);
    } else {
        if (path_is(path, plen, "/emails"))
            count_provider(P_RESEND, 1);
        else
            count_provider(P_OTHER, 1);
        buf_printf(&jb, "{\"id\":\"%s\"}", id);
    }
    if (g_status && !path_is(path, plen, "/_fastmock/stats") && !path_is(path, plen, "/_fastmock/reset"))
        st = g_status;
    buf_printf(&c->out, "HTTP/1.1 %d %s\r\nX-Message-Id: %s\r\nContent-Length: %zu\r\n", st,
               reason(st), id, jb.len);
    if (jb.len)
        buf_append(&c->out, "Content-Type: application/json\r\n", 32);
    for (int i = 0; i < g_nextra; i++) {
        if (strcmp(g_extra_value[i], "auto") == 0) {
            char id2[40];
            next_id(id2, sizeof id2);
            buf_printf(&c->out, "%s: %s\r\n", g_extra_name[i], id2);
        } else
            buf_printf(&c->out, "%s: %s\r\n", g_extra_name[i], g_extra_value[i]);
    }
    if (!keepalive)
        buf_append(&c->out, "Connection: close\r\n", 19);
    buf_append(&c->out, "\r\n", 2);
    if (jb.len)
        buf_append(&c->out, jb.data, jb.len);
}

/* Find header `name` (case-insensitive) in [h, end); returns value start and length. */
static const char *find_header(const char *h, const char *end, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *p = h;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        p = eol + 1;
    }
    return NULL;
}

/* Parse and answer every complete request in c->in.  Returns -1 on a fatal protocol error. */
static int process(conn_t *c)
{
    for (;;) {
        char *start = c->in.data + c->in.off;
        size_t avail = c->in.len - c->in.off;
        if (avail == 0)
            break;
        char *hend = memmem(start, avail, "\r\n\r\n", 4);
        if (!hend) {
            if (avail > 65536)
                return -1;
            break;
        }
        size_t hlen = (size_t)(hend - start) + 4;
        const char *sp1 = memchr(start, ' ', hlen);
        if (!sp1)
            return -1;
        const char *path = sp1 + 1;
        const char *sp2 = memchr(path, ' ', (size_t)(start + hlen - path));
        if (!sp2)
            return -1;
        size_t plen = (size_t)(sp2 - path);
        const char *q = memchr(path, '?', plen);
        if (q)
            plen = (size_t)(q - path);
        const char *hdrs = memchr(start, '\n', hlen);
        hdrs = hdrs ? hdrs + 1 : start + hlen;
        size_t vlen = 0, clen = 0;
        const char *v = find_header(hdrs, hend + 2, "content-length", &vlen);
        if (v) {
            char tmp[24];
            if (vlen >= sizeof tmp)
                return -1;
            memcpy(tmp, v, vlen);
            tmp[vlen] = 0;
            clen = strtoull(tmp, NULL, 10);
            if (clen > MAX_REQUEST)
                return -1;
        }
        if (find_header(hdrs, hend + 2, "transfer-encoding", &vlen))
            return -1; /* chunked not supported */
        if (avail < hlen + clen) {
            if (!c->sent_continue && (v = find_header(hdrs, hend + 2, "expect", &vlen)) &&
                vlen == 12 && strncasecmp(v, "100-continue", 12) == 0) {
                buf_append(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
                c->sent_continue = 1;
            }
            break;
        }
        int keepalive = 1;
        if ((v = find_header(hdrs, hend + 2, "connection", &vlen)) && vlen == 5 &&
            strncasecmp(v, "close", 5) == 0)
            keepalive = 0;
        if (memmem(start, (size_t)(hdrs - start), "HTTP/1.0", 8) &&
            !((v = find_header(hdrs, hend + 2, "connection", &vlen)) && vlen == 10 &&
              strncasecmp(v, "keep-alive", 10) == 0))
            keepalive = 0;
        g_requests++;
        g_bytes += hlen + clen;
        respond(c, path, plen, start + hlen, clen, keepalive);
        c->in.off += hlen + clen;
        c->sent_continue = 0;
        if (!keepalive) {
            c->close_after = 1;
            break;
        }
    }
    if (c->in.off == c->in.len)
        c->in.off = c->in.len = 0;
    return 0;
}

static int verb_is(const char *line, size_t len, const char *verb)
{
    size_t vl = strlen(verb);
    return len >= vl && strncasecmp(line, verb, vl) == 0 && (len == vl || line[vl] == ' ');
}

/* The SMTP side: answer every complete command line (or DATA body) in c->in. */
static int smtp_process(conn_t *c)
{
    for (;;) {
        char *start = c->in.data + c->in.off;
        size_t avail = c->in.len - c->in.off;
        if (avail == 0)
            break;
        if (c->smtp_data) {
            /* the end of DATA: "." alone on a line */
            size_t end;
            if (avail >= 3 && c->smtp_scan == 0 && memcmp(start, ".\r\n", 3) == 0)
                end = 3;
            else {
                size_t from = c->smtp_scan > 4 ? c->smtp_scan - 4 : 0;
                char *t = memmem(start + from, avail - from, "\r\n.\r\n", 5);
                if (!t) {
                    if (avail > MAX_REQUEST)
                        return -1;
                    c->smtp_scan = avail < 3 ? 0 : avail;
                    break;
                }
                end = (size_t)(t - start) + 5;
            }
            char id[40];
            next_id(id, sizeof id);
            g_requests++;
            g_bytes += end;
            count_provider(P_SMTP, 1);
            buf_printf(&c->out, "250 2.0.0 Ok: queued as %s\r\n", id);
            c->in.off += end;
            c->smtp_data = 0;
            c->smtp_scan = 0;
            continue;
        }
        char *eol = memmem(start, avail, "\r\n", 2);
        if (!eol) {
            if (avail > 4096)
                return -1;
            break;
        }
        size_t llen = (size_t)(eol - start);
        g_bytes += llen + 2;
        c->in.off += llen + 2;
        if (verb_is(start, llen, "EHLO"))
            buf_printf(&c->out, "250-fastmock\r\n250-8BITMIME\r\n250 SIZE %u\r\n", MAX_REQUEST);
        else if (verb_is(start, llen, "HELO"))
            buf_printf(&c->out, "250 fastmock\r\n");
        else if (verb_is(start, llen, "MAIL"))
            buf_printf(&c->out, "250 2.1.0 Ok\r\n");
        else if (verb_is(start, llen, "RCPT"))
            buf_printf(&c->out, "250 2.1.5 Ok\r\n");
        else if (verb_is(start, llen, "DATA")) {
            buf_printf(&c->out, "354 End data with <CR><LF>.<CR><LF>\r\n");
            c->smtp_data = 1;
            c->smtp_scan = 0;
        } else if (verb_is(start, llen, "RSET") || verb_is(start, llen, "NOOP"))
            buf_printf(&c->out, "250 2.0.0 Ok\r\n");
        else if (verb_is(start, llen, "QUIT")) {
            buf_printf(&c->out, "221 2.0.0 Bye\r\n");
            c->close_after = 1;
            break;
        } else
            buf_printf(&c->out, "502 5.5.2 Error: command not recognized\r\n");
    }
    if (c->in.off == c->in.len)
        c->in.off = c->in.len = 0;
    return 0;
}

/* Write pending output.  Returns 1 when all written, 0 when blocked, -1 on error. */
static int flush_out(conn_t *c)
{
    while (c->out.off < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + c->out.off, c->out.len - c->out.off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == EINTR)
                continue;
            return -1;
        }
        c->out.off += (size_t)n;
        g_bytes_out += (unsigned long long)n;
    }
    c->out.off = c->out.len = 0;
    return 1;
}

static void conn_free(int ep, conn_t *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in.data);
    free(c->out.data);
    free(c);
}

static conn_t g_smtp_listener; /* marks the SMTP listener's epoll entry */

/* a non-blocking listening socket on 127.0.0.1:port (0: any free port) */
static int listen_on(int port, int *bound)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
        die("bind");
    if (listen(fd, 1024) < 0)
        die("listen");
    socklen_t alen = sizeof addr;
    getsockname(fd, (struct sockaddr *)&addr, &alen);
    *bound = ntohs(addr.sin_port);
    return fd;
}

static void usage(void)
{
    fprintf(stderr, "usage: fastmock --port P [--smtp-port S] [--status CODE] [--header 'Name: value|auto'] ...\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int port = -1, smtp_port = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--smtp-port") == 0 && i + 1 < argc)
            smtp_port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--status") == 0 && i + 1 < argc)
            g_status = atoi(argv[++i]);
        else if (strcmp(argv[i], "--header") == 0 && i + 1 < argc) {
            char *h = strdup(argv[++i]);
            char *colon = strchr(h, ':');
            if (!colon || g_nextra >= MAX_EXTRA_HEADERS)
                usage();
            *colon = 0;
            char *val = colon + 1;
            while (*val == ' ')
                val++;
            if (strcasecmp(h, "X-Message-Id") == 0)
                continue; /* always sent, unique */
            g_extra_name[g_nextra] = h;
            g_extra_value[g_nextra++] = val;
        } else
            usage();
    }
    if (port < 0 || port > 65535 || smtp_port > 65535)
        usage();
    g_boot = (unsigned)time(NULL) ^ ((unsigned)getpid() << 16);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int one = 1;
    int bound_port = 0, bound_smtp = 0;
    int lfd = listen_on(port, &bound_port);
    int sfd = smtp_port >= 0 ? listen_on(smtp_port, &bound_smtp) : -1;

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    if (sfd >= 0) {
        struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &g_smtp_listener};
        epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &sev);
        printf("READY port=%d smtp=%d\n", bound_port, bound_smtp);
    } else
        printf("READY port=%d\n", bound_port);
    fflush(stdout);

    struct epoll_event evs[256];
    char rbuf[65536];
    while (!g_stop) {
        int n = epoll_wait(ep, evs, 256, 1000);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (c == NULL || c == &g_smtp_listener) { /* a listener */
                int is_smtp = c != NULL;
                for (;;) {
                    int fd = accept4(is_smtp ? sfd : lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0)
                        break;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conn_t *nc = calloc(1, sizeof *nc);
                    if (!nc)
                        die("calloc");
                    nc->fd = fd;
                    nc->smtp = is_smtp;
                    int fl = 1;
                    if (is_smtp) { /* the server speaks first */
                        buf_printf(&nc->out, "220 fastmock ESMTP\r\n");
                        fl = flush_out(nc);
                        if (fl < 0) {
                            close(fd);
                            free(nc->out.data);
                            free(nc);
                            continue;
                        }
                    }
                    struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP | (fl == 0 ? EPOLLOUT : 0),
                                              .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            int dead = 0;
            if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                for (;;) {
                    ssize_t r = recv(c->fd, rbuf, sizeof rbuf, 0);
                    if (r > 0) {
                        if (c->in.len - c->in.off + (size_t)r > MAX_REQUEST + 65536) {
                            dead = 1;
                            break;
                        }
                        buf_append(&c->in, rbuf, (size_t)r);
                        if ((size_t)r < sizeof rbuf)
                            break;
                        continue;
                    }
                    if (r == 0)
                        dead = 1;
                    else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                        dead = 1;
                    break;
                }
                if (c->smtp) {
                    if (!c->close_after && smtp_process(c) < 0) {
                        buf_printf(&c->out, "500 5.5.0 Error: line or message too long\r\n");
                        c->close_after = 1;
                    }
                } else if (!c->close_after && process(c) < 0) {
                    buf_append(&c->out, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 66);
                    c->close_after = 1;
                }
            }
            int fl = flush_out(c);
            if (fl < 0 || (dead && fl != 0) || (c->close_after && fl == 1)) {
                conn_free(ep, c);
                continue;
            }
            struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP | (fl == 0 ? EPOLLOUT : 0),
                                      .data.ptr = c};
            if (dead && fl == 0)
                cev.events = EPOLLOUT;
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &cev);
        }
    }
    printf("requests=%llu bytes=%llu\n", g_requests, g_bytes);
    fflush(stdout);
    return 0;
}
