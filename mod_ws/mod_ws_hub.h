/* mod_ws_hub.h: channels, and carrying published messages to every
 * subscriber in every child process.
 *
 * Three parts:
 * - in each child, a table of channels -> local subscribers (connections),
 *   and one hub thread that talks to the hub process (mod_ws_hub.c);
 * - the hub process itself, forked by the parent and restarted by it when
 *   it dies, the mod_cgid way (mod_ws_hubd.c): it sends every message a
 *   child publishes to every child, the publishing one included;
 * - the wire format between them (below).
 *
 * A message published in a child goes to the hub, and comes back to each
 * child (the publishing one too) in one order: so each subscriber sees the
 * messages of one publisher in the order they were published, once.  While
 * the hub is down, a child delivers what it publishes to its own
 * subscribers only.
 *
 * Threads: ws_hub_publish and ws_hub_wait may be called from any thread;
 * subscribe/unsubscribe only by the connection's owner.
 */
#ifndef MOD_WS_HUB_H
#define MOD_WS_HUB_H

#include "mod_ws_conn.h"
#include "ws_hubwire.h"

/* A published message: one immutable payload, shared (ref-counted) by all
 * the connections it is queued for; never copied per subscriber. */
typedef struct ws_msg_t {
    volatile apr_uint32_t refs;
    int type;                        /* WS_MSG_TEXT or WS_MSG_BINARY */
    apr_size_t len;
    char data[1];                    /* len bytes */
} ws_msg_t;

ws_msg_t *ws_msg_create(int type, const void *data, apr_size_t len);
void ws_msg_unref(ws_msg_t *m);

/* Longest channel name. */
#define WS_CHANNEL_MAX 200

/* Parent, post_config: where the hub listens, and the hub process. */
apr_status_t ws_hubd_post_config(apr_pool_t *pconf, server_rec *s);

/* Child: the channel table and the hub thread. */
apr_status_t ws_hub_child_init(apr_pool_t *pchild, server_rec *s);

/* Publish to every subscriber of channel in every child, but not to
 * `exclude` (may be NULL).  *seq (may be NULL) gets a number to pass to
 * ws_hub_wait.  Any thread. */
apr_status_t ws_hub_publish(const char *channel, int type, const void *data,
                            apr_size_t len, ws_conn_t *exclude,
                            apr_uint64_t *seq);

/* Wait (at most timeout) until the hub has sent the message numbered seq
 * to every child: a publisher that waits gets its messages delivered in
 * the order it published them, whichever child publishes the next one.
 * APR_SUCCESS, APR_TIMEUP, or APR_ECONNREFUSED when it went to this child's
 * subscribers only (the hub is down). */
apr_status_t ws_hub_wait(apr_uint64_t seq, apr_interval_time_t timeout);

/* Owner: subscribe or unsubscribe one connection. */
apr_status_t ws_hub_subscribe(ws_conn_t *wc, const char *channel);
void ws_hub_unsubscribe(ws_conn_t *wc, const char *channel);
/* Owner, when the connection ends: every subscription goes, and with them
 * every other thread's way to reach wc. */
void ws_hub_unsubscribe_all(ws_conn_t *wc);

/* Owner: move what was delivered to wc into its session's queue.
 * APR_ENOSPC when the connection went over its WebSocketSendQueueLimit
 * (the caller drops it). */
apr_status_t ws_hub_drain(ws_conn_t *wc);

/* The frames between the hub and the children are ws_hubwire.h's; both
 * ends move them with these, never blocking.  ws_hub_send: write what b
 * holds, 0 when all is written or the socket is full, -1 when broken.
 * ws_hub_recv: append what the socket has (up to WS_HUB_READ_MAX a call),
 * 0, or -1 at its end or an error. */
int ws_hub_send(int fd, ws_hubbuf_t *b);
int ws_hub_recv(int fd, ws_hubbuf_t *b);
#define WS_HUB_READ_MAX (1024 * 1024)
/* Hub process: frames buffered for one child past this drop that child
 * (it reconnects); a child's own queue to the hub likewise. */
#define WS_HUB_BUFFER_MAX (64 * 1024 * 1024)

/* The socket's path and the hub's PID file (set in post_config). */
extern const char *ws_hub_socket_path;

#endif /* MOD_WS_HUB_H */
