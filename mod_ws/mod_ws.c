/* mod_ws.c: the module record and its hooks; nothing else.
 *
 * The engine lives in mod_ws_*.c, the protocol core in ws_*.c, the built-in
 * handlers in mod_ws_<name>.c.
 */
#define WS_MODULE_RECORD_FILE
#include "ap_provider.h"
#include "http_request.h"
#include "mpm_common.h"

#include "mod_ws_config.h"
#include "mod_ws_conn.h"
#include "mod_ws_curl.h"
#include "mod_ws_hub.h"
#include "mod_ws_publish.h"
#include "mod_ws_status.h"
#include "mod_ws_upgrade.h"

extern const ws_handler_t ws_echo_handler;
extern const ws_handler_t ws_channel_handler;
extern const ws_handler_t ws_forward_handler;

static void ws_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv = ws_conn_registry_init(pchild);

    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     WSLOGNO(00030) "cannot create the connection registry");
    }
    rv = ws_job_child_init(pchild);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                     WSLOGNO(00031) "cannot start the job threads; handlers "
                     "run their blocking work on the connection's thread");
    }
    /* Before the hub thread, which counts its link there. */
    ws_status_child_init();
    rv = ws_hub_child_init(pchild, s);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                     WSLOGNO(00032) "cannot start the hub thread; channel "
                     "messages reach only subscribers in the same child");
    }
    rv = ws_curl_child_init(pchild, s);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                     WSLOGNO(00033) "cannot start the HTTP client thread; "
                     "forward locations answer every message with an error");
    }
    ws_reactor_child_init(pchild, s);
}

static int ws_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                         apr_pool_t *ptemp)
{
    ws_config_handlers_used = 0;
    ws_curl_used = 0;
    return OK;
}

static int ws_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                          apr_pool_t *ptemp, server_rec *s)
{
    ws_status_post_config(pconf, s);
    ws_reactor_check_mpm(s);
    ws_hubd_post_config(pconf, s);
    return OK;
}

/* Graceful restart or stop: every WebSocket closes with 1001 within
 * WebSocketShutdownTimeout, or the old child would never exit.  Runs on the
 * MPM's listener or signal thread: only set a flag and wake. */
static void ws_child_stopping(apr_pool_t *pchild, int graceful)
{
    ws_conn_registry_stop();
    ws_reactor_stop();
    ws_curl_stop();
}

static void ws_register_hooks(apr_pool_t *p)
{
    ap_register_provider(p, WS_PROVIDER_GROUP, "echo", WS_PROVIDER_VERSION,
                         &ws_echo_handler);
    ap_register_provider(p, WS_PROVIDER_GROUP, "channel", WS_PROVIDER_VERSION,
                         &ws_channel_handler);
    ap_register_provider(p, WS_PROVIDER_GROUP, "forward", WS_PROVIDER_VERSION,
                         &ws_forward_handler);
    /* First, so that an upgrade to a WebSocket location wins over the
     * location's content handler (PHP, CGI, files); everything else is
     * declined and served as before. */
    ap_hook_handler(ws_upgrade_handler, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_handler(ws_publish_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_pre_config(ws_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(ws_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(ws_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_stopping(ws_child_stopping, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_suspend_connection(ws_reactor_suspend_connection, NULL, NULL,
                               APR_HOOK_MIDDLE);
    ws_status_register_hooks(p);
}

AP_DECLARE_MODULE(ws) = {
    STANDARD20_MODULE_STUFF,
    ws_config_create_dir,
    ws_config_merge_dir,
    ws_config_create_server,
    ws_config_merge_server,
    ws_config_cmds,
    ws_register_hooks,
    AP_MODULE_FLAG_NONE
};
