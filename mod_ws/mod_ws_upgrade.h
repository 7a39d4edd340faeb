/* mod_ws_upgrade.h: the handler hook that answers the opening handshake. */
#ifndef MOD_WS_UPGRADE_H
#define MOD_WS_UPGRADE_H

#include "mod_ws_private.h"

/* httpd handler hook: DECLINED for anything that is not a WebSocket
 * upgrade to a WebSocket location; an HTTP error for a bad handshake;
 * otherwise the 101, then the connection until it ends, then DONE. */
int ws_upgrade_handler(request_rec *r);

#endif /* MOD_WS_UPGRADE_H */
