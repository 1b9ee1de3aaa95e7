/*-------------------------------------------------------------------------
 *
 * edge.h
 *	  The HTTP edge: private declarations of src/edge/.
 *
 *-------------------------------------------------------------------------
 */
#ifndef BE_EDGE_H
#define BE_EDGE_H

#include "postgres.h"

#include <microhttpd.h>

/* the role every request runs as (sql/broadcast_engine--1.2--1.3/70_edge.sql) */
#define EDGE_ROLE "broadcast_edge"

/* parameters (edge.c) */
extern char *be_http_listen;
extern int	be_http_max_connections;
extern int	be_http_max_body;
extern int	be_http_request_timeout_s;

/* routes.c: MHD's callbacks for requests */
extern enum MHD_Result edge_access(void *cls, struct MHD_Connection *conn,
								   const char *url, const char *method,
								   const char *version, const char *upload_data,
								   size_t *upload_data_size, void **con_cls);
extern void edge_request_done(void *cls, struct MHD_Connection *conn,
							  void **con_cls, enum MHD_RequestTerminationCode toe);

/* edge.c: a request finished, the connection gets a new deadline */
extern void edge_connection_rearm(struct MHD_Connection *conn);

#endif							/* BE_EDGE_H */
