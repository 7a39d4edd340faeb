/* mod_ws_upgrade.c: the opening handshake inside httpd (RFC 6455 §4.2).
 *
 * Runs as a handler hook, after httpd's own auth and Require, and before the
 * location's content handler: a request without "Upgrade: websocket" is
 * declined and served as before.  The checks themselves are the protocol
 * core's (ws_handshake.c); this file maps them to HTTP answers, sends the
 * 101 the way mod_proxy_http does, and makes httpd forget the connection
 * is HTTP (httpd-api.md §1.3, §1.4).  After the 101 no HTTP error may be
 * returned: only DONE.
 */
#include "mod_ws_conn.h"
#include "mod_ws_status.h"
#include "mod_ws_upgrade.h"

#include "apr_strings.h"
#include "http_core.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"

#include "ws_handshake.h"

static int refuse(request_rec *r, int status, const char *why)
{
    ws_status_refused(status == HTTP_FORBIDDEN ? WS_REFUSED_ORIGIN
                      : status == HTTP_UPGRADE_REQUIRED ? WS_REFUSED_VERSION
                      : status == HTTP_SERVICE_UNAVAILABLE ? WS_REFUSED_FULL
                      : WS_REFUSED_BAD_REQUEST);
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                  WSLOGNO(00001) "WebSocket handshake refused (%d): %s",
                  status, why);
    return status;
}

static int origin_allowed(request_rec *r, const ws_dir_conf_t *d)
{
    const char *origin = apr_table_get(r->headers_in, "Origin");
    const char *host;

    /* Non-browser clients send no Origin; the check protects browsers
     * from cross-site pages (RFC 6455 §10.2). */
    if (!origin || d->origin_mode == WS_ORIGIN_ANY) {
        return 1;
    }
    if (d->origin_mode == WS_ORIGIN_LIST) {
        return ws_handshake_origin_listed(origin, d->origins);
    }
    host = apr_table_get(r->headers_in, "Host");
    if (!host) {
        host = r->hostname;
    }
    return host && ws_handshake_origin_same(origin, ap_http_scheme(r), host);
}

/* WebSocketMaxConnections: the count is the children's figures in shared
 * memory, so two children may each let one more in at the same moment. */
static int server_has_room(const request_rec *r)
{
    const ws_server_conf_t *sc = ws_config_server(r->server);
    long open;

    if (!sc->max_connections) {
        return 1;
    }
    open = ws_status_open_now();
    return open < 0 || open < sc->max_connections;
}

/* RFC 7692 §5: answer the first acceptable permessage-deflate offer, when
 * WebSocketDeflate is on.  Without context takeover (the default) both
 * sides reset every message, so an idle socket keeps no zlib memory; with
 * it, windows are capped at 4 KiB (2^12) where the client allows, to keep
 * each socket's two zlib streams near 50 KiB instead of ~300 KiB. */
static const ws_deflate_params_t *negotiate_deflate(request_rec *r,
                                                    const ws_dir_conf_t *d)
{
    const char *offer = apr_table_get(r->headers_in,
                                      "Sec-WebSocket-Extensions");
    ws_deflate_prefs_t prefs;
    ws_deflate_params_t *params;
    const char *answer;

    if (!d->deflate || offer == NULL) {
        return NULL;
    }
    prefs.no_context_takeover = !d->deflate_takeover;
    prefs.max_window_bits = d->deflate_takeover ? 12 : 15;
    params = apr_pcalloc(r->pool, sizeof(*params));
    answer = ws_deflate_accept(r->pool,
                               ws_handshake_parse_extensions(r->pool, offer),
                               &prefs, params);
    if (answer == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      WSLOGNO(00210) "no acceptable permessage-deflate offer "
                      "in Sec-WebSocket-Extensions '%s': not compressing",
                      offer);
        return NULL;
    }
    apr_table_setn(r->headers_out, "Sec-WebSocket-Extensions", answer);
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                  WSLOGNO(00211) "permessage-deflate: offered '%s', "
                  "answered '%s'", offer, answer);
    return params;
}

/* What ap_proxy_tunnel_create does to a connection it takes over. */
static void take_over_connection(request_rec *r)
{
    conn_rec *c = r->connection;

    /* reqtimeout would end an idle WebSocket after its body timeout, and
     * the TLS coalescing filter would only copy our frames. */
    ap_remove_input_filter_byhandle(c->input_filters, "reqtimeout");
    ap_remove_output_filter_byhandle(c->output_filters,
                                     "SSL/TLS Coalescing Filter");
    /* When the handler returns, httpd finalizes the request through
     * r->output_filters: without HTTP_HEADER in the chain no second
     * response goes out after our frames. */
    r->input_filters = r->proto_input_filters = c->input_filters;
    r->output_filters = r->proto_output_filters = c->output_filters;
    c->keepalive = AP_CONN_CLOSE;
}

int ws_upgrade_handler(request_rec *r)
{
    const ws_dir_conf_t *d = ws_config_dir(r);
    ws_handshake_req_t req;
    ws_handshake_result_e res;
    const char *protocol;
    const ws_deflate_params_t *deflate;
    char accept[WS_ACCEPT_LEN];
    ws_conn_t *wc;
    apr_status_t rv;

    if (!d || !d->handler
        || !ws_handshake_has_token(apr_table_get(r->headers_in, "Upgrade"),
                                   "websocket")) {
        return DECLINED;
    }
    memset(&req, 0, sizeof(req));
    req.method = r->method;
    req.http_major = HTTP_VERSION_MAJOR(r->proto_num);
    req.http_minor = HTTP_VERSION_MINOR(r->proto_num);
    req.upgrade = apr_table_get(r->headers_in, "Upgrade");
    req.connection = apr_table_get(r->headers_in, "Connection");
    req.key = apr_table_get(r->headers_in, "Sec-WebSocket-Key");
    req.version = apr_table_get(r->headers_in, "Sec-WebSocket-Version");
    res = ws_handshake_check(&req);
    switch (res) {
    case WS_HS_OK:
        break;
    case WS_HS_NOT_WEBSOCKET:
    case WS_HS_BAD_METHOD:
    case WS_HS_BAD_HTTP:
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      WSLOGNO(00002) "not a WebSocket handshake (%s): "
                      "declined", ws_handshake_result_str(res));
        return DECLINED;
    case WS_HS_BAD_VERSION:
        apr_table_setn(r->err_headers_out, "Sec-WebSocket-Version", "13");
        return refuse(r, HTTP_UPGRADE_REQUIRED, ws_handshake_result_str(res));
    default:
        return refuse(r, HTTP_BAD_REQUEST, ws_handshake_result_str(res));
    }
    if (!origin_allowed(r, d)) {
        return refuse(r, HTTP_FORBIDDEN, apr_pstrcat(r->pool, "Origin '",
                      apr_table_get(r->headers_in, "Origin"),
                      "' is not allowed here (WebSocketAllowOrigin)", NULL));
    }

    if (!server_has_room(r)) {
        apr_table_setn(r->err_headers_out, "Retry-After", "5");
        return refuse(r, HTTP_SERVICE_UNAVAILABLE, "WebSocketMaxConnections "
                      "reached");
    }

    ws_handshake_accept(req.key, accept);
    apr_table_setn(r->headers_out, "Upgrade", "websocket");
    apr_table_setn(r->headers_out, "Connection", "Upgrade");
    apr_table_setn(r->headers_out, "Sec-WebSocket-Accept",
                   apr_pstrdup(r->pool, accept));
    protocol = d->protocols ? ws_handshake_select_protocol(d->protocols,
                   apr_table_get(r->headers_in, "Sec-WebSocket-Protocol"))
                            : NULL;
    if (protocol) {
        apr_table_setn(r->headers_out, "Sec-WebSocket-Protocol", protocol);
    }
    deflate = negotiate_deflate(r, d);
    r->status = HTTP_SWITCHING_PROTOCOLS;
    ap_send_interim_response(r, 1);
    if (r->connection->aborted) {
        return DONE;
    }
    take_over_connection(r);

    rv = ws_conn_create(&wc, r, d, deflate);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r,
                      WSLOGNO(00003) "cannot set up the WebSocket");
        r->connection->aborted = 1;
        return DONE;
    }
    if (d->driver == WS_DRIVER_AUTO && ws_reactor_usable(r->connection)) {
        /* The worker thread goes back to the MPM; the suspend_connection
         * hook hands the connection to the reactor (never from here: the
         * MPM still works on it until then). */
        ap_set_module_config(r->connection->conn_config, &ws_module, wc);
        return SUSPENDED;
    }
    ws_thread_run(wc);
    return DONE;
}
