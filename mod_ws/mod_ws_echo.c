/* mod_ws_echo.c: the "echo" handler: every message goes back to its sender
 * as it came, text as text, binary as binary.
 *
 * Uses only the public mod_ws.h, as any third-party handler would.
 */
#include "mod_ws.h"

static void echo_message(ws_conn_t *wc, void *ctx, int type,
                         const char *data, apr_size_t len)
{
    ws_conn_send(wc, type, data, len);
}

const ws_handler_t ws_echo_handler = { NULL, NULL, echo_message, NULL };
