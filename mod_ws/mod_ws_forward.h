/* mod_ws_forward.h: the forward handler's per-child HTTP client thread. */
#ifndef MOD_WS_FORWARD_H
#define MOD_WS_FORWARD_H

#include "apr_pools.h"

/* child_init: ready the client; its thread starts on the first request
 * and stops in pchild's cleanup. */
apr_status_t ws_forward_child_init(apr_pool_t *pchild);

/* Any thread (child_stopping): fail the requests of open sockets now and
 * any later ones at once, so no socket waits on a backend past the
 * shutdown bound; close events still go. */
void ws_forward_stop(void);

#endif /* MOD_WS_FORWARD_H */
