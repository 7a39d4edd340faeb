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
 */
#ifndef MOD_WS_H
#define MOD_WS_H

#include "httpd.h"

#define WS_PROVIDER_GROUP   "websocket"
#define WS_PROVIDER_VERSION "1"

/* Opcodes of data messages as handlers see them (RFC 6455 §5.2). */
#define WS_MSG_TEXT   0x1
#define WS_MSG_BINARY 0x2

typedef struct ws_conn_t ws_conn_t;

typedef struct ws_handler_t {
    /* Called once after the 101 went out.  *ctx is the handler's own
     * per-connection state (allocate it from ws_conn_pool).  Returning
     * non-APR_SUCCESS closes the connection with 1011.  May be NULL. */
    apr_status_t (*on_open)(ws_conn_t *wc, const char *args, void **ctx);

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

request_rec *ws_conn_request(ws_conn_t *wc);   /* lives as long as the socket */
apr_pool_t *ws_conn_pool(ws_conn_t *wc);        /* likewise */
apr_pool_t *ws_conn_scratch_pool(ws_conn_t *wc); /* cleared after each event */
const char *ws_conn_id(ws_conn_t *wc);          /* unique in this server */

#endif /* MOD_WS_H */
