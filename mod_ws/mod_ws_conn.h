/* mod_ws_conn.h: one WebSocket connection inside httpd, between the
 * protocol session (ws_session) and a driver.
 *
 * A ws_conn_t joins the sans-I/O session to the connection's filter chains
 * (so mod_ssl and mod_http2 keep working), the handler, and the per-child
 * list of live connections that child_stopping walks.  Drivers move bytes
 * and time in and out through ws_conn_read / ws_conn_write / ws_conn_tick;
 * they never parse or build frames themselves.
 *
 * Threads: everything here runs on the connection's owner thread, except
 * ws_conn_registry_stop, which any thread may call.
 */
#ifndef MOD_WS_CONN_H
#define MOD_WS_CONN_H

#include "apr_poll.h"
#include "util_filter.h"

#include "mod_ws_config.h"
#include "ws_session.h"

struct ws_conn_t {
    request_rec *r;                 /* the upgrade request; lives as long */
    conn_rec *c;
    apr_pool_t *pool;               /* r->pool */
    apr_pool_t *scratch;            /* cleared after each event */
    const ws_dir_conf_t *dcfg;
    const ws_server_conf_t *scfg;
    const ws_handler_t *handler;
    void *handler_ctx;
    ws_session_t *session;
    apr_bucket_brigade *bb_in, *bb_out;  /* made once, reused */
    apr_pollset_t *pollset;         /* the driver's; woken on shutdown */
    const char *id;
    apr_time_t opened;
    int input_seen;                 /* a first read happened (h2's EOS) */
    int stopping;                   /* closing for server shutdown */
    ws_conn_t *prev, *next;         /* in the per-child registry */
};

/* Results of ws_conn_read beyond APR_SUCCESS. */
#define WS_CONN_EOF APR_EOF         /* the peer's stream ended */

/* Make the connection state after the 101 (session, brigades, id). */
apr_status_t ws_conn_create(ws_conn_t **pwc, request_rec *r,
                            const ws_dir_conf_t *dcfg);

/* Run the handler's on_open; on failure the session closes with 1011. */
void ws_conn_open(ws_conn_t *wc);

/* Read what the input filters have without blocking, feeding the session,
 * until EAGAIN, the session is closed, or `budget` bytes were read.
 * APR_SUCCESS, APR_INCOMPLETE when the budget ran out (more may be
 * buffered: read again before polling), WS_CONN_EOF, or the filters'
 * error. */
apr_status_t ws_conn_read(ws_conn_t *wc, apr_size_t budget);

/* Write everything the session queued, through the output filters with a
 * FLUSH (blocking: the thread driver's way). */
apr_status_t ws_conn_write(ws_conn_t *wc);

/* Start closing for server shutdown: close 1001, shorter socket timeout. */
void ws_conn_shutdown(ws_conn_t *wc);

/* The connection ended: tell the handler, log, fill r for the access log. */
void ws_conn_finish(ws_conn_t *wc);

/* The thread driver (mod_ws_thread.c): the calling thread keeps the
 * connection until it ends.  Works on every MPM and on HTTP/2 streams. */
void ws_thread_run(ws_conn_t *wc);

/* The per-child list of live connections. */
apr_status_t ws_conn_registry_init(apr_pool_t *pchild);
void ws_conn_registry_add(ws_conn_t *wc);
void ws_conn_registry_remove(ws_conn_t *wc);
/* Any thread: mark the child stopping and wake every connection. */
void ws_conn_registry_stop(void);
int ws_conn_registry_stopping(void);

#endif /* MOD_WS_CONN_H */
