/* mod_ws_broker.h: the hub process's link to other servers through Redis
 * pub/sub (WebSocketBroker redis://host:port[/prefix]).
 *
 * Runs only in the hub process, inside its poll loop: the broker gives the
 * descriptors to poll, and is handed the poll results.  Every frame a
 * child of this server publishes is also published on the Redis channel
 * named by the prefix, tagged with this hub's random id; every message
 * there from another server is passed to this server's children.  One
 * Redis channel carries everything, so the messages of one publisher
 * arrive everywhere in the order they were sent.  While Redis is away the
 * server works on its own and the broker reconnects every second.
 */
#ifndef MOD_WS_BROKER_H
#define MOD_WS_BROKER_H

#include "httpd.h"

#include <poll.h>

typedef struct ws_broker_t ws_broker_t;

/* A frame from another server, for every child of this one. */
typedef void (*ws_broker_deliver_fn)(void *baton, const char *frame,
                                     apr_size_t len);

ws_broker_t *ws_broker_create(const char *host, int port, const char *prefix,
                              server_rec *s, ws_broker_deliver_fn deliver,
                              void *baton);

/* Up to 2 descriptors to poll now (written to pfd); their count. */
int ws_broker_pollfds(ws_broker_t *b, struct pollfd *pfd);

/* After poll: what the descriptors of ws_broker_pollfds reported, then
 * reconnect what is due. */
void ws_broker_handle(ws_broker_t *b, const struct pollfd *pfd, int n);

/* Publish one whole hub frame to the other servers (dropped while Redis
 * is not reachable, or when it is far behind). */
void ws_broker_publish(ws_broker_t *b, const char *frame, apr_size_t len);

#endif /* MOD_WS_BROKER_H */
