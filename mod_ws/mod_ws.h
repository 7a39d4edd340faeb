/* mod_ws.h: the interface between mod_ws's engine and its handlers.
 *
 * A handler turns WebSocket events into actions.  Handlers are providers in
 * httpd's provider registry, group WS_PROVIDER_GROUP, version
 * WS_PROVIDER_VERSION; `WebSocketHandler NAME [args]` picks one per
 * location.  The built-in handlers (echo, ...) include only this header, so
 * they use exactly what any other handler gets.
 *
 * Threads: every callback runs on the thread that owns the connection at
 * that moment, and the ws_conn_* functions below may be called only from
 * inside a callback (the owner).  None of them blocks.
 *
 * Linking: these functions are exported from mod_ws.so (mod_ws.sym); a
 * module using them is loaded after mod_ws, as mod_proxy_http after
 * mod_proxy.
 */
#ifndef MOD_WS_H
#define MOD_WS_H

#include "httpd.h"

#define WS_PROVIDER_GROUP   "websocket"
#define WS_PROVIDER_VERSION "2"

/* Opcodes of data messages as handlers see them (RFC 6455 §5.2). */
#define WS_MSG_TEXT   0x1
#define WS_MSG_BINARY 0x2

typedef struct ws_conn_t ws_conn_t;

typedef struct ws_handler_t {
    /* Configuration time, once per `WebSocketHandler NAME [args]` line:
     * check args (NULL when there are none) and make the location's
     * handler config in *conf from p (the configuration pool).  Returns
     * NULL, or an error message that httpd shows for that line (so
     * `httpd -t` catches it).  May be NULL: the handler then takes no
     * arguments, and conf is NULL. */
    const char *(*configure)(apr_pool_t *p, const char *args, void **conf);

    /* Called once after the 101 went out, with the location's conf from
     * configure.  *ctx is the handler's own per-connection state
     * (allocate it from ws_conn_pool).  Returning non-APR_SUCCESS closes
     * the connection with 1011.  May be NULL. */
    apr_status_t (*on_open)(ws_conn_t *wc, void *conf, void **ctx);

    /* A whole message: WS_MSG_TEXT (valid UTF-8, not NUL-terminated) or
     * WS_MSG_BINARY.  data is valid only during the call; scratch memory
     * comes from ws_conn_scratch_pool, which is cleared after the call. */
    void (*on_message)(ws_conn_t *wc, void *ctx, int type,
                       const char *data, apr_size_t len);

    /* The connection ended with this close code.  May be NULL. */
    void (*on_close)(ws_conn_t *wc, void *ctx, unsigned code);
} ws_handler_t;

/* Queue a message to this connection's peer.  APR_EINVAL once the
 * connection is closing. */
apr_status_t ws_conn_send(ws_conn_t *wc, int type, const void *data,
                          apr_size_t len);

/* Start the closing handshake with a code (RFC 6455 §7.4) and reason. */
void ws_conn_close(ws_conn_t *wc, unsigned code, const char *reason);

/* Blocking work (a database query, an HTTP request) must not run in a
 * callback: a callback may run on the reactor thread that serves every
 * WebSocket of the child.  A job runs `work` on a thread of the child's
 * job pool, then `done` back on the connection's owner thread.  The jobs
 * of one connection run one after another, in the order they were
 * started, so answers keep the order of the messages.
 *
 * ws_conn_job_create gives the job and its own pool (for the baton and
 * whatever `work` allocates; usable from the job's thread; destroyed after
 * `done`).  ws_conn_job_run starts it (or queues it behind the
 * connection's running job).  `work` must not touch wc or call any
 * ws_conn_* function; `done` may.  If the connection ended meanwhile,
 * `done` still runs (ws_conn_send then fails) and queued jobs are dropped
 * without running. */
typedef struct ws_job_t ws_job_t;
typedef void *(*ws_work_fn)(void *baton);
typedef void (*ws_done_fn)(ws_conn_t *wc, void *baton, void *result);

apr_status_t ws_conn_job_create(ws_conn_t *wc, ws_job_t **job,
                                apr_pool_t **pool);
void ws_conn_job_run(ws_job_t *job, ws_work_fn work, ws_done_fn done,
                     void *baton);

/* An asynchronous job: work that something else does (an event loop of
 * the handler's own, e.g. an HTTP client) rather than a job thread.  When
 * the job's turn comes, `start` runs on the connection's owner thread and
 * hands the work over without blocking; whoever does it calls
 * ws_job_complete (any thread, once) with the result, and `done` runs on
 * the owner as for ws_conn_job_run.  Order and lifetime rules are the
 * same: the connection outlives the job. */
typedef void (*ws_start_fn)(ws_job_t *job, void *baton);
void ws_conn_job_run_async(ws_job_t *job, ws_start_fn start, ws_done_fn done,
                           void *baton);
void ws_job_complete(ws_job_t *job, void *result);

request_rec *ws_conn_request(ws_conn_t *wc);   /* lives as long as the socket */
apr_pool_t *ws_conn_pool(ws_conn_t *wc);        /* likewise */
apr_pool_t *ws_conn_scratch_pool(ws_conn_t *wc); /* cleared after each event */
const char *ws_conn_id(ws_conn_t *wc);          /* unique in this server */
const char *ws_conn_user(ws_conn_t *wc);        /* WebSocketUser, or NULL */

/* Channels.  A channel name is 1 to 200 bytes of UTF-8 without control
 * characters, spaces or '/'.  Every connection is subscribed to
 * "conn:<its id>", and to "user:<name>" when WebSocketUser names a user.
 * A message published to a channel is sent as it is (text or binary) to
 * every connection subscribed to it, in every child process of the
 * server. */
int ws_channel_name_ok(const char *name, apr_size_t len);

/* Any thread.  The data is copied.  APR_EINVAL: a bad channel name or
 * type. */
apr_status_t ws_publish(const char *channel, int type, const void *data,
                        apr_size_t len);

/* Owner.  ws_conn_publish is ws_publish from a connection; with
 * WS_PUBLISH_NOT_SELF the connection itself does not get the message. */
#define WS_PUBLISH_NOT_SELF 0x1
apr_status_t ws_conn_publish(ws_conn_t *wc, const char *channel, int type,
                             const void *data, apr_size_t len, int flags);
apr_status_t ws_conn_subscribe(ws_conn_t *wc, const char *channel);
void ws_conn_unsubscribe(ws_conn_t *wc, const char *channel);

#endif /* MOD_WS_H */
