/* mod_ws_status.h: server-wide WebSocket figures in shared memory, shown
 * on /server-status (and ?auto).  The counting functions may be called
 * from any thread of a child. */
#ifndef MOD_WS_STATUS_H
#define MOD_WS_STATUS_H

#include "mod_ws_private.h"

#define WS_STATUS_CLOSE_CODES 9

typedef enum {
    WS_REFUSED_BAD_REQUEST = 0,
    WS_REFUSED_ORIGIN,
    WS_REFUSED_VERSION,
    WS_REFUSED_FULL,
    WS_STATUS_REFUSALS
} ws_status_refusal_e;

/* Parent, before the fork: the shared segment. */
apr_status_t ws_status_post_config(apr_pool_t *pconf, server_rec *s);
/* Child: claim this process's slot. */
void ws_status_child_init(void);
void ws_status_register_hooks(apr_pool_t *p);

/* A WebSocket exists from its 101 on (so that WebSocketMaxConnections
 * counts it at once); the reactor's are also counted from adoption on. */
void ws_status_opened(void);
void ws_status_adopted(void);
void ws_status_closed(int reactor, unsigned code);
void ws_status_traffic(apr_size_t msgs_in, apr_size_t msgs_out,
                       apr_size_t bytes_in, apr_size_t bytes_out);
void ws_status_refused(ws_status_refusal_e why);
/* WebSockets open now in every child of the server (-1: not known, no
 * shared memory). */
long ws_status_open_now(void);
/* Channels: this child's hub link went up (1) or down (0); messages
 * published here, messages queued for subscribers here, subscribers
 * dropped for WebSocketSendQueueLimit. */
void ws_status_hub_link(int up);
void ws_status_channel(apr_size_t published, apr_size_t delivered,
                       apr_size_t dropped);

#endif /* MOD_WS_STATUS_H */
