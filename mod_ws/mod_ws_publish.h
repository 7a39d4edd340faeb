/* mod_ws_publish.h: the HTTP publish endpoint (SetHandler
 * websocket-publish). */
#ifndef MOD_WS_PUBLISH_H
#define MOD_WS_PUBLISH_H

#include "httpd.h"

/* The handler hook: POST …/CHANNEL publishes the body to CHANNEL. */
int ws_publish_handler(request_rec *r);

#endif /* MOD_WS_PUBLISH_H */
