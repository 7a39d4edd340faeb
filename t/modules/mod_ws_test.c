/* mod_ws_test.c: a third-party handler for mod_ws's tests, written the way
 * any other module would write one: only the public mod_ws.h, a provider
 * of group "websocket", loaded after mod_ws.
 *
 * "test-slow": a text message "MS:TEXT" sleeps MS milliseconds in a job on
 * the child's job threads (never on the connection's own thread, which may
 * be the reactor serving every WebSocket of the child), then sends TEXT
 * back.  Tests use it to show that blocking work leaves other WebSockets
 * alone and that one connection's answers keep their order.
 *
 * "test-rooms CHANNEL": the channel API from outside mod_ws.  At open the
 * connection joins CHANNEL and says "id ID USER" (USER "-" when none);
 * then "join:NAME" / "leave:NAME" (un)subscribe ("joined NAME" / "left
 * NAME"), "to:NAME:TEXT" is ws_publish from the connection's thread,
 * "job:NAME:TEXT" ws_publish from a job thread (any thread may publish),
 * and anything else goes to CHANNEL for everybody but the sender
 * (WS_PUBLISH_NOT_SELF).  Failures answer "error STATUS".  t/ws/channel_3p.t.
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

/* ---- test-rooms ---- */

static const char *rooms_configure(apr_pool_t *p, const char *args,
                                   void **conf)
{
    if (!args || !ws_channel_name_ok(args, strlen(args))) {
        return "test-rooms needs one channel name";
    }
    *conf = apr_pstrdup(p, args);
    return NULL;
}

static void rooms_say(ws_conn_t *wc, const char *text)
{
    ws_conn_send(wc, WS_MSG_TEXT, text, strlen(text));
}

/* "error STATUS" when rv is one, else ok (when given) */
static void rooms_status(ws_conn_t *wc, apr_status_t rv, const char *ok)
{
    if (rv != APR_SUCCESS) {
        rooms_say(wc, apr_psprintf(ws_conn_scratch_pool(wc), "error %d", rv));
    }
    else if (ok) {
        rooms_say(wc, ok);
    }
}

static apr_status_t rooms_open(ws_conn_t *wc, void *conf, void **ctx)
{
    const char *user = ws_conn_user(wc);
    apr_status_t rv = ws_conn_subscribe(wc, conf);

    *ctx = conf;
    if (rv == APR_SUCCESS) {
        rooms_say(wc, apr_psprintf(ws_conn_scratch_pool(wc), "id %s %s",
                                   ws_conn_id(wc), user ? user : "-"));
    }
    return rv;
}

typedef struct {
    char *channel, *text;
} rooms_job_t;

/* on a job thread: publishing is allowed from any thread */
static void *rooms_work(void *baton)
{
    rooms_job_t *j = baton;

    return ws_publish(j->channel, WS_MSG_TEXT, j->text, strlen(j->text))
           == APR_SUCCESS ? "published" : "error publish";
}

static void rooms_done(ws_conn_t *wc, void *baton, void *result)
{
    (void)baton;
    rooms_say(wc, result);
}

static void rooms_message(ws_conn_t *wc, void *ctx, int type,
                          const char *data, apr_size_t len)
{
    apr_pool_t *sp = ws_conn_scratch_pool(wc);
    char *msg = apr_pstrmemdup(sp, data, len), *name, *text;

    if (type == WS_MSG_TEXT && !strncmp(msg, "join:", 5)) {
        rooms_status(wc, ws_conn_subscribe(wc, msg + 5),
                     apr_pstrcat(sp, "joined ", msg + 5, NULL));
        return;
    }
    if (type == WS_MSG_TEXT && !strncmp(msg, "leave:", 6)) {
        ws_conn_unsubscribe(wc, msg + 6);
        rooms_say(wc, apr_pstrcat(sp, "left ", msg + 6, NULL));
        return;
    }
    if (type == WS_MSG_TEXT && (!strncmp(msg, "to:", 3) || !strncmp(msg, "job:", 4))
        && (text = strrchr(msg, ':')) && text > strchr(msg, ':')) {
        name = strchr(msg, ':') + 1;
        *text++ = '\0';
        if (msg[0] == 't') {
            apr_status_t rv = ws_publish(name, WS_MSG_TEXT, text, strlen(text));

            rooms_status(wc, rv, NULL);
        }
        else {
            ws_job_t *job;
            apr_pool_t *p;
            rooms_job_t *j;

            if (ws_conn_job_create(wc, &job, &p) != APR_SUCCESS) {
                ws_conn_close(wc, 1011, "no job");
                return;
            }
            j = apr_palloc(p, sizeof(*j));
            j->channel = apr_pstrdup(p, name);
            j->text = apr_pstrdup(p, text);
            ws_conn_job_run(job, rooms_work, rooms_done, j);
        }
        return;
    }
    rooms_status(wc, ws_conn_publish(wc, ctx, type, data, len,
                                     WS_PUBLISH_NOT_SELF), NULL);
}

static const ws_handler_t rooms_handler = {
    rooms_configure, rooms_open, rooms_message, NULL
};

static void register_hooks(apr_pool_t *p)
{
    ap_register_provider(p, WS_PROVIDER_GROUP, "test-slow",
                         WS_PROVIDER_VERSION, &slow_handler);
    ap_register_provider(p, WS_PROVIDER_GROUP, "test-rooms",
                         WS_PROVIDER_VERSION, &rooms_handler);
}

AP_DECLARE_MODULE(ws_test) = {
    STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, NULL, register_hooks,
    AP_MODULE_FLAG_NONE
};
