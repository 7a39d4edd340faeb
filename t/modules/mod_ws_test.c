/* mod_ws_test.c: a third-party handler for mod_ws's tests, written the way
 * any other module would write one: only the public mod_ws.h, a provider
 * of group "websocket", loaded after mod_ws.
 *
 * "test-slow": a text message "MS:TEXT" sleeps MS milliseconds in a job on
 * the child's job threads (never on the connection's own thread, which may
 * be the reactor serving every WebSocket of the child), then sends TEXT
 * back.  Tests use it to show that blocking work leaves other WebSockets
 * alone and that one connection's answers keep their order.
 */
#include "httpd.h"
#include "http_config.h"
#include "ap_provider.h"
#include "apr_strings.h"

#include "mod_ws.h"

typedef struct {
    apr_interval_time_t sleep;
    char *text;
} slow_job_t;

static void *slow_work(void *baton)
{
    slow_job_t *j = baton;

    apr_sleep(j->sleep);
    return j->text;
}

static void slow_done(ws_conn_t *wc, void *baton, void *result)
{
    const char *text = result;

    ws_conn_send(wc, WS_MSG_TEXT, text, strlen(text));
}

static void slow_message(ws_conn_t *wc, void *ctx, int type,
                         const char *data, apr_size_t len)
{
    ws_job_t *job;
    apr_pool_t *p;
    slow_job_t *j;
    const char *colon;

    if (ws_conn_job_create(wc, &job, &p) != APR_SUCCESS) {
        ws_conn_close(wc, 1011, "no job");
        return;
    }
    j = apr_pcalloc(p, sizeof(*j));
    colon = memchr(data, ':', len);
    j->sleep = apr_time_from_msec(colon ? atoi(apr_pstrmemdup(p, data,
                                                (apr_size_t)(colon - data)))
                                        : 0);
    j->text = colon ? apr_pstrmemdup(p, colon + 1,
                                     len - (apr_size_t)(colon + 1 - data))
                    : apr_pstrmemdup(p, data, len);
    ws_conn_job_run(job, slow_work, slow_done, j);
}

static const ws_handler_t slow_handler = { NULL, NULL, slow_message, NULL };

static void register_hooks(apr_pool_t *p)
{
    ap_register_provider(p, WS_PROVIDER_GROUP, "test-slow",
                         WS_PROVIDER_VERSION, &slow_handler);
}

AP_DECLARE_MODULE(ws_test) = {
    STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, NULL, register_hooks,
    AP_MODULE_FLAG_NONE
};
