/*-------------------------------------------------------------------------
 *
 * edge.c
 *	  The HTTP edge: a background worker serving /u/, /hooks/ and /metrics.
 *
 * Off unless broadcast_engine.http_listen is set.  HTTP is parsed by
 * libmicrohttpd, a maintained library, rather than by hand: the port faces
 * the internet.  It runs in external-select mode with epoll and no thread
 * flag, so it starts no thread: this process's own loop waits on one
 * WaitEventSet holding the latch, postmaster death and libmicrohttpd's
 * epoll descriptor, then calls MHD_run(), which runs the request callbacks
 * (routes.c) here, in the one thread that may touch PostgreSQL.
 *
 * Limits: at most broadcast_engine.http_max_connections connections (more
 * are closed at accept), request bodies of at most http_max_body bytes
 * (413), and every request must arrive whole within http_request_timeout
 * of its connection opening or the previous request ending: a client that
 * trickles a byte a second (slowloris) is cut at that deadline, which
 * libmicrohttpd's idle timeout alone would never do.
 *
 * Crash argument: the edge holds no state but its sockets.  Every request
 * is one short transaction; a crash or SIGTERM loses at most the answers
 * in flight, and the client (a provider's webhook retry, a mail client's
 * one-click POST) retries.  The worker exits non-zero on SIGTERM so the
 * postmaster starts it again; it exits with the postmaster.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <netdb.h>
#include <sys/socket.h>

#include "access/xact.h"
#include "commands/user.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "broadcast_engine.h"
#include "edge.h"

PGDLLEXPORT void be_edge_main(Datum main_arg);

char	   *be_http_listen = NULL;
int			be_http_max_connections = 64;
int			be_http_max_body = 1024 * 1024;
int			be_http_request_timeout_s = 10;

/* the longest the loop sleeps: deadlines are checked at least this often */
#define EDGE_MAX_WAIT_MS 1000

/* one open TCP connection and the time its current request must be in by */
typedef struct EdgeConn
{
	struct MHD_Connection *conn;
	int			fd;
	TimestampTz deadline;
	bool		cut;			/* shut down, waiting for MHD to close it */
	struct EdgeConn *prev;
	struct EdgeConn *next;
} EdgeConn;

static EdgeConn *edge_conns = NULL;
static MemoryContext edge_cxt = NULL;

/* "host:port", "[v6]:port" or "" */
static bool
split_listen(const char *value, char *host, size_t hostlen, int *port)
{
	const char *colon;
	const char *h = value;
	size_t		n;
	char	   *end;
	long		p;

	colon = strrchr(value, ':');
	if (colon == NULL || colon == value || colon[1] == '\0')
		return false;
	n = colon - value;
	if (value[0] == '[')
	{
		if (n < 3 || value[n - 1] != ']')
			return false;
		h = value + 1;
		n -= 2;
	}
	if (n >= hostlen)
		return false;
	memcpy(host, h, n);
	host[n] = '\0';
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || p < 0 || p > 65535)
		return false;
	*port = (int) p;
	return true;
}

static bool
check_http_listen(char **newval, void **extra, GucSource source)
{
	char		host[256];
	int			port;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if (!split_listen(*newval, host, sizeof(host), &port))
	{
		GUC_check_errdetail("Expected host:port, such as 127.0.0.1:8080 or [::1]:8080, or empty to turn the edge off.");
		return false;
	}
	return true;
}

void
be_edge_define_gucs(bool postmaster)
{
	if (postmaster)
	{
		DefineCustomStringVariable("broadcast_engine.http_listen",
								   "Address and port the HTTP edge listens on.",
								   "Empty (the default) turns the edge off.  Put it behind a TLS-terminating reverse proxy.",
								   &be_http_listen,
								   "",
								   PGC_POSTMASTER,
								   GUC_SUPERUSER_ONLY,
								   check_http_listen, NULL, NULL);

		DefineCustomIntVariable("broadcast_engine.http_max_connections",
								"Connections the HTTP edge keeps open at once; more are closed when accepted.",
								NULL,
								&be_http_max_connections,
								64, 1, 10000,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);
	}

	DefineCustomIntVariable("broadcast_engine.http_max_body",
							"Largest request body the HTTP edge accepts; larger ones get 413.",
							NULL,
							&be_http_max_body,
							1024 * 1024, 1024, 64 * 1024 * 1024,
							PGC_SIGHUP,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("broadcast_engine.http_request_timeout",
							"Longest time a client may take to send one whole request to the HTTP edge.",
							"Counted from the connection opening or the previous request's end; "
							"slower clients are disconnected.",
							&be_http_request_timeout_s,
							10, 1, 600,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);
}

void
be_register_edge(void)
{
	BackgroundWorker worker;

	if (be_http_listen == NULL || be_http_listen[0] == '\0')
		return;
	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 2;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "broadcast_engine");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "be_edge_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "broadcast_engine edge");
	snprintf(worker.bgw_type, BGW_MAXLEN, "broadcast_engine edge");
	RegisterBackgroundWorker(&worker);
}

/* ---- connections and their deadlines ---- */

static void
edge_notify_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
					   enum MHD_ConnectionNotificationCode toe)
{
	EdgeConn   *ec;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
	{
		const union MHD_ConnectionInfo *ci;

		ec = MemoryContextAllocZero(edge_cxt, sizeof(EdgeConn));
		ec->conn = conn;
		ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		ec->fd = ci ? ci->connect_fd : -1;
		ec->deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												   be_http_request_timeout_s * 1000);
		/* libmicrohttpd's own idle timeout backs ours up */
		MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
								  (unsigned int) be_http_request_timeout_s);
		ec->next = edge_conns;
		if (edge_conns)
			edge_conns->prev = ec;
		edge_conns = ec;
		*socket_context = ec;
	}
	else if (toe == MHD_CONNECTION_NOTIFY_CLOSED)
	{
		ec = (EdgeConn *) *socket_context;
		if (ec == NULL)
			return;
		if (ec->prev)
			ec->prev->next = ec->next;
		else
			edge_conns = ec->next;
		if (ec->next)
			ec->next->prev = ec->prev;
		pfree(ec);
		*socket_context = NULL;
	}
}

void
edge_connection_rearm(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;
	EdgeConn   *ec;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci == NULL || ci->socket_context == NULL)
		return;
	ec = (EdgeConn *) ci->socket_context;
	ec->deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											   be_http_request_timeout_s * 1000);
}

/*
 * Cuts connections past their deadline.  shutdown() makes the socket
 * readable at EOF, so libmicrohttpd notices at its next run and closes it
 * itself: no connection is freed behind its back.  Returns the milliseconds
 * until the next deadline (at most EDGE_MAX_WAIT_MS).
 */
static long
edge_sweep(void)
{
	TimestampTz now = GetCurrentTimestamp();
	long		wait_ms = EDGE_MAX_WAIT_MS;
	EdgeConn   *ec;

	for (ec = edge_conns; ec != NULL; ec = ec->next)
	{
		long		ms;

		if (ec->cut)
			continue;
		if (ec->deadline <= now)
		{
			if (ec->fd >= 0)
				(void) shutdown(ec->fd, SHUT_RDWR);
			ec->cut = true;
			ereport(DEBUG1, (errmsg("broadcast_engine edge: request not received within %d s, connection closed",
									be_http_request_timeout_s)));
			continue;
		}
		ms = (long) ((ec->deadline - now) / 1000) + 1;
		if (ms < wait_ms)
			wait_ms = ms;
	}
	return wait_ms;
}

/* ---- the daemon ---- */

static void
edge_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char		buf[512];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	ereport(DEBUG1, (errmsg_internal("broadcast_engine edge: %s", buf)));
}

static struct MHD_Daemon *
edge_start_daemon(void)
{
	char		host[256];
	char		portstr[16];
	int			port;
	struct addrinfo hints;
	struct addrinfo *res = NULL;
	int			rc;
	unsigned int flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	struct MHD_Daemon *d;

	if (!split_listen(be_http_listen, host, sizeof(host), &port))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid broadcast_engine.http_listen \"%s\"", be_http_listen)));
	snprintf(portstr, sizeof(portstr), "%d", port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host, portstr, &hints, &res);
	if (rc != 0 || res == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("could not resolve broadcast_engine.http_listen host \"%s\": %s",
						host, gai_strerror(rc))));
	if (res->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;

	/* no MHD_USE_INTERNAL_POLLING_THREAD or thread pool: no thread is started */
	d = MHD_start_daemon(flags, (uint16_t) port, NULL, NULL,
						 edge_access, NULL,
						 MHD_OPTION_SOCK_ADDR, res->ai_addr,
						 MHD_OPTION_CONNECTION_LIMIT, (unsigned int) be_http_max_connections,
						 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) be_http_request_timeout_s,
						 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) (64 * 1024),
						 MHD_OPTION_NOTIFY_COMPLETED, edge_request_done, NULL,
						 MHD_OPTION_NOTIFY_CONNECTION, edge_notify_connection, NULL,
						 MHD_OPTION_EXTERNAL_LOGGER, edge_mhd_log, NULL,
						 MHD_OPTION_END);
	freeaddrinfo(res);
	if (d == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("broadcast_engine edge could not listen on \"%s\": %m", be_http_listen),
				 errhint("Check that the address is local and the port free.")));
	return d;
}

/*
 * Requests run as broadcast_edge for the rest of this process's life.  The
 * worker connects as the bootstrap superuser, since a NOLOGIN role cannot
 * start a session, and sets its session authorization once, before it
 * serves anything: session_user and current_user are then the edge's role,
 * as functions that check session_user expect.  Returns false while the
 * role does not exist yet (the extension is older than 1.3).
 */
static bool
edge_become_role(void)
{
	bool		exists;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	exists = OidIsValid(get_role_oid(EDGE_ROLE, true));
	if (exists)
		(void) set_config_option("session_authorization", EDGE_ROLE, PGC_SUSET, PGC_S_SESSION,
								 GUC_ACTION_SET, true, 0, false);
	CommitTransactionCommand();
	return exists;
}

void
be_edge_main(Datum main_arg)
{
	struct MHD_Daemon *daemon;
	const union MHD_DaemonInfo *di;
	WaitEventSet *wes;
	bool		logged = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/* the bootstrap superuser, only to switch to broadcast_edge below */
	BackgroundWorkerInitializeConnection(be_database_name, NULL, 0);
	pgstat_report_appname("broadcast_engine edge");
	edge_cxt = AllocSetContextCreate(TopMemoryContext, "broadcast_engine edge",
									 ALLOCSET_DEFAULT_SIZES);

	be_wait_for_extension("edge");
	while (!edge_become_role())
	{
		if (!logged)
			ereport(LOG,
					(errmsg("broadcast_engine edge: role \"%s\" does not exist, waiting", EDGE_ROLE),
					 errhint("Update the extension: ALTER EXTENSION broadcast_engine UPDATE.")));
		logged = true;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 be_scheduler_tick_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}

	daemon = edge_start_daemon();
	di = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_EPOLL_FD);
	if (di == NULL)
		elog(ERROR, "libmicrohttpd gave no epoll descriptor");
	{
		const union MHD_DaemonInfo *pi = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);

		ereport(LOG, (errmsg("broadcast_engine edge listening on %s (port %u)",
							 be_http_listen, pi ? (unsigned) pi->port : 0)));
	}

	wes = CreateWaitEventSet(TopMemoryContext, 3);
	AddWaitEventToSet(wes, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(wes, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(wes, WL_SOCKET_READABLE, di->epoll_fd, NULL, NULL);
	pgstat_report_activity(STATE_IDLE, NULL);

	for (;;)
	{
		WaitEvent	ev;
		long		wait_ms;
		MHD_UNSIGNED_LONG_LONG mhd_ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		/* accepts, reads, runs the callbacks of complete requests, writes */
		(void) MHD_run(daemon);

		wait_ms = edge_sweep();
		if (MHD_get_timeout(daemon, &mhd_ms) == MHD_YES && mhd_ms < (MHD_UNSIGNED_LONG_LONG) wait_ms)
			wait_ms = (long) mhd_ms;

		if (WaitEventSetWait(wes, wait_ms, &ev, 1, PG_WAIT_EXTENSION) == 1 &&
			(ev.events & WL_LATCH_SET))
			ResetLatch(MyLatch);
	}
}
