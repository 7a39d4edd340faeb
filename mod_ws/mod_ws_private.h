/* mod_ws_private.h: what the engine's files share and handlers do not see.
 *
 * Every engine file includes this first, so that its log lines obey
 * `LogLevel ws:…` (APLOG_USE_MODULE) and carry the project's message ids.
 */
#ifndef MOD_WS_PRIVATE_H
#define MOD_WS_PRIVATE_H

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"

#include "mod_ws.h"

/* mod_ws.c gets this from AP_DECLARE_MODULE itself. */
#ifndef WS_MODULE_RECORD_FILE
APLOG_USE_MODULE(ws);
#endif

/* Message ids for error-log lines: "WS00001: …".  httpd's AH numbers belong
 * to httpd's registry; ours are listed in README ("Logging"). */
#define WSLOGNO(n) "WS" #n ": "


#endif /* MOD_WS_PRIVATE_H */
