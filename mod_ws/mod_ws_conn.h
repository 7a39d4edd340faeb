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

typedef struct ws_sub_t ws_sub_t;       /* mod_ws_hub.c */
typedef struct ws_inbox_t ws_inbox_t;

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
    const char *id;                 /* "<pid>-<serial>" */
    apr_uint32_t serial;            /* unique in this child, never 0 */
    const char *user;               /* WebSocketUser's value, or NULL */
    apr_socket_t *sock;             /* NULL on an HTTP/2 stream */
    apr_time_t opened;
    int input_seen;                 /* a first read happened (h2's EOS) */
    int stopping;                   /* closing for server shutdown */
    int on_reactor;                 /* driven by the reactor */

    /* Jobs (mod_ws_job.c). */
    volatile apr_uint32_t jobs;     /* created and not yet ended */
    ws_job_t *job_queue;            /* waiting for the running one */
    ws_job_t *job_done;             /* finished; under the job mutex */
    int job_running;
    ws_conn_t *prev, *next;         /* registry, or the reactor's list */

    /* Channels (mod_ws_hub.c): under the hub's mutex, which any thread
     * delivering to this connection holds. */
    ws_sub_t *subs;                 /* its subscriptions */
    ws_inbox_t *inbox, **inbox_tail; /* delivered, not yet in the session */
    apr_size_t inbox_bytes;
    int overflow;                   /* over WebSocketSendQueueLimit */

    /* Reactor driver only (mod_ws_reactor.c); touched by its thread. */
    apr_pollfd_t pfd;               /* NOCOPY: must live while polled */
    apr_int16_t polled_events;      /* 0: not in the pollset */
    apr_time_t handoff;             /* when the MPM let go of it */
    apr_time_t destroy_at;          /* in the graveyard: c->pool's end */
    apr_time_t stuck_since;         /* CLOSED, but output still pending */
    ws_conn_t *qnext;               /* adoption queue, ready list, graveyard */
    ws_conn_t *pnext;               /* the reactor's posted list */
    int posted;                     /* on it (under the reactor's mutex;
                                     * not a bit beside the others, which
                                     * the reactor writes unlocked) */
    unsigned int queued:1;          /* on the ready list */
    unsigned int closed:1;          /* TCP closed, waiting for destroy */
};

/* Results of ws_conn_read beyond APR_SUCCESS. */
#define WS_CONN_EOF APR_EOF         /* the peer's stream ended */

/* Make the connection state after the 101 (session, brigades, id).
 * deflate: the permessage-deflate parameters the 101 agreed to, or NULL. */
apr_status_t ws_conn_create(ws_conn_t **pwc, request_rec *r,
                            const ws_dir_conf_t *dcfg,
                            const ws_deflate_params_t *deflate);

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

/* Pass what the session queued to the output filters without blocking
 * (no FLUSH), then push it to the socket with a NULL-brigade call to the
 * last filter, as the event MPM's write completion does.  Stops while
 * c->data_in_output_filters is set: the caller waits for POLLOUT and calls
 * again (backpressure: nothing new is passed meanwhile). */
apr_status_t ws_conn_write_nonblocking(ws_conn_t *wc);

/* Start closing for server shutdown: close 1001, shorter socket timeout. */
void ws_conn_shutdown(ws_conn_t *wc);

/* Move what channels delivered into the session.  APR_ENOSPC: the
 * connection went over WebSocketSendQueueLimit and has been closed with
 * 1008 (the caller drops it: c->aborted is set). */
apr_status_t ws_conn_take_deliveries(ws_conn_t *wc);

/* The connection ended: tell the handler, log, fill r for the access log. */
void ws_conn_finish(ws_conn_t *wc);

/* The thread driver (mod_ws_thread.c): the calling thread keeps the
 * connection until it ends.  Works on every MPM and on HTTP/2 streams. */
void ws_thread_run(ws_conn_t *wc);

/* The reactor driver (mod_ws_reactor.c): after the 101 the handler returns
 * SUSPENDED, the MPM frees the worker, and one reactor thread per child owns
 * the connection from the suspend_connection hook on.  Event MPM, HTTP/1.x
 * (plain and TLS) only. */
apr_status_t ws_reactor_child_init(apr_pool_t *pchild, server_rec *s);
/* Parent, post_config: warn (with the fix) about MPM settings that would
 * refuse or close WebSockets held by the reactor. */
void ws_reactor_check_mpm(server_rec *s);
/* 1 when this connection can be handed to the reactor. */
int ws_reactor_usable(const conn_rec *c);
/* The suspend_connection hook: adopt a suspended WebSocket. */
void ws_reactor_suspend_connection(conn_rec *c, request_rec *r);
/* Any thread: close every reactor connection with 1001. */
void ws_reactor_stop(void);

/* Jobs (mod_ws_job.c). */
apr_status_t ws_job_child_init(apr_pool_t *pchild);
/* Owner: run the done callbacks of finished jobs and start the next one;
 * `ended`: the connection is over, drop the jobs still queued. */
void ws_conn_jobs_finish(ws_conn_t *wc, int ended);
/* Any thread: wake the connection's owner (its driver). */
void ws_conn_wake(ws_conn_t *wc);
/* Any thread: have the reactor look at this connection's jobs. */
void ws_reactor_post(ws_conn_t *wc);

/* The per-child list of live connections. */
apr_status_t ws_conn_registry_init(apr_pool_t *pchild);
void ws_conn_registry_add(ws_conn_t *wc);
void ws_conn_registry_remove(ws_conn_t *wc);
/* Any thread: mark the child stopping and wake every connection. */
void ws_conn_registry_stop(void);
int ws_conn_registry_stopping(void);

#endif /* MOD_WS_CONN_H */
