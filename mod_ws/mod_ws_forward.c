/* mod_ws_forward.c: the "forward" handler: every WebSocket message becomes
 * an HTTP POST to a backend URL, and the backend's answer goes back to the
 * sender (or to a channel), so an ordinary request/response application
 * (PHP-FPM, a CGI, any URL) can serve WebSockets without a daemon.
 *
 * Each request is an asynchronous job (ws_conn_job_run_async): the jobs
 * of one socket run one after another, so its messages reach the backend
 * and are answered in order, while the per-child HTTP client thread
 * (mod_ws_curl.c) carries every socket's requests at once and keeps the
 * backend connections alive.  Formats: README, "The forward handler".
 *
 * Runs on the connection's owner thread, never blocking; the client
 * thread only fills in the request and completes the job.
 */
#include "mod_ws.h"
#include "mod_ws_config.h"
#include "mod_ws_curl.h"

#include "apr_strings.h"
#include "apr_uri.h"

#include <jansson.h>

#include "ws_utf8.h"

/* Messages of one socket waiting for the backend beyond this are answered
 * with an error at once: a client cannot queue without bound. */
#define WS_FORWARD_MAX_WAITING 64

typedef struct {
    const char *url;
} forward_conf_t;

typedef struct {
    const forward_conf_t *conf;
    const ws_dir_conf_t *d;
    int refused;                    /* the backend refused "open" */
    int waiting;                    /* jobs not yet done */
} forward_ctx_t;

typedef struct {
    ws_job_t *job;
    forward_ctx_t *ctx;
    const char *event;
    ws_curl_req_t req;
} forward_call_t;

static const char *forward_configure(apr_pool_t *p, const char *args,
                                     void **pconf)
{
    forward_conf_t *conf;
    apr_uri_t u;

    if (!args || strchr(args, ' ')) {
        return "needs one argument: the backend's http:// or https:// URL";
    }
    if (apr_uri_parse(p, args, &u) != APR_SUCCESS || !u.scheme
        || (strcasecmp(u.scheme, "http") && strcasecmp(u.scheme, "https"))
        || !u.hostname || !*u.hostname) {
        return apr_psprintf(p, "'%s' is not an http:// or https:// URL",
                            args);
    }
    conf = apr_pcalloc(p, sizeof(*conf));
    conf->url = apr_pstrdup(p, args);
    *pconf = conf;
    ws_curl_used = 1;
    return NULL;
}

/* A header value may not carry line breaks or other controls: a user name
 * from Basic auth may hold any byte but ':' (RFC 7617), and must not add
 * headers of its own to the backend request. */
static int header_safe(const char *v)
{
    for (; *v; ++v) {
        if ((unsigned char)*v < 0x20 || *v == 0x7f) {
            return 0;
        }
    }
    return 1;
}

/* The headers that tell the backend what this request is, and those of
 * the upgrade request an application needs to know its client (its
 * session cookie, its address). */
static const char *const *headers(apr_pool_t *p, ws_conn_t *wc,
                                  const char *event, int type, unsigned code)
{
    const char **h = apr_pcalloc(p, 9 * sizeof(*h));
    request_rec *r = ws_conn_request(wc);
    const char *user = ws_conn_user(wc);
    const char *cookie = apr_table_get(r->headers_in, "Cookie");
    int n = 0;

    h[n++] = apr_pstrcat(p, "WebSocket-Connection-Id: ", ws_conn_id(wc),
                         NULL);
    h[n++] = apr_pstrcat(p, "WebSocket-Event: ", event, NULL);
    if (user && header_safe(user)) {
        h[n++] = apr_pstrcat(p, "WebSocket-User: ", user, NULL);
    }
    if (type) {
        h[n++] = type == WS_MSG_TEXT ? "WebSocket-Frame: text"
                                     : "WebSocket-Frame: binary";
    }
    if (code) {
        h[n++] = apr_psprintf(p, "WebSocket-Close-Code: %u", code);
    }
    if (cookie && header_safe(cookie)) {
        h[n++] = apr_pstrcat(p, "Cookie: ", cookie, NULL);
    }
    h[n++] = apr_pstrcat(p, "X-Forwarded-For: ", r->useragent_ip, NULL);
    h[n++] = type == WS_MSG_BINARY ? "Content-Type: application/octet-stream"
                                   : "Content-Type: text/plain; charset=utf-8";
    return h;
}

static void fill_request(ws_curl_req_t *req, apr_pool_t *p, ws_conn_t *wc,
                         const forward_ctx_t *ctx, const char *event, int type,
                         unsigned code, const char *data, apr_size_t len)
{
    req->url = ctx->conf->url;
    req->headers = headers(p, wc, event, type, code);
    req->body = len ? apr_pmemdup(p, data, len) : "";
    req->len = len;
    req->timeout = ctx->d->forward_timeout;
    req->max_answer = ctx->d->forward_max_answer;
    req->pool = p;
}

/* Client thread: the answer is in. */
static void call_finished(ws_curl_req_t *req)
{
    forward_call_t *call = req->baton;

    ws_job_complete(call->job, call);
}

/* Owner, when the job's turn comes: after a refused open nothing more
 * goes to the backend. */
static void call_start(ws_job_t *job, void *baton)
{
    forward_call_t *call = baton;

    if (call->ctx->refused) {
        ws_job_complete(job, NULL);
        return;
    }
    ws_curl_submit(&call->req);
}

static void send_error(ws_conn_t *wc, const forward_call_t *call,
                       const char *error)
{
    json_t *j = json_pack("{s:s,s:s}", "error", error, "event", call->event);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, ws_conn_request(wc),
                  WSLOGNO(00180) "ws %s: forward %s to %s: %s", ws_conn_id(wc),
                  call->event, call->req.url, error);
    if (text) {
        ws_conn_send(wc, WS_MSG_TEXT, text, strlen(text));
        free(text);
    }
    json_decref(j);
}

/* text/…, JSON and the like go back as text; anything else as binary. */
static int answer_type(const char *ctype)
{
    if (!ctype) {
        return WS_MSG_BINARY;
    }
    return (!strncasecmp(ctype, "text/", 5)
            || !strncasecmp(ctype, "application/json", 16)
            || !strncasecmp(ctype, "application/javascript", 22)
            || ap_strcasestr(ctype, "+json") || ap_strcasestr(ctype, "+xml"))
           ? WS_MSG_TEXT : WS_MSG_BINARY;
}

/* Owner: the backend's answer (or why there is none). */
static void call_done(ws_conn_t *wc, void *baton, void *result)
{
    forward_call_t *call = baton;
    ws_curl_req_t *req = &call->req;
    int open = !strcmp(call->event, "open"), type;

    --call->ctx->waiting;
    if (!result) {
        return;                     /* skipped: the socket was refused */
    }
    if (req->failed || req->status < 200 || req->status > 299) {
        send_error(wc, call, req->failed ? req->error
                   : apr_psprintf(ws_conn_scratch_pool(wc), "backend "
                                  "answered %ld", req->status));
        if (open) {
            /* The backend decides who may stay (RFC 6455 §7.4.1: 1008). */
            call->ctx->refused = 1;
            ws_conn_close(wc, 1008, "refused by backend");
        }
        return;
    }
    if (req->status == 204 || (!req->answer_len && !req->publish)) {
        return;
    }
    type = answer_type(req->content_type);
    if (type == WS_MSG_TEXT
        && !ws_utf8_valid((const unsigned char *)req->answer,
                          req->answer_len)) {
        send_error(wc, call, "backend answer is not UTF-8 text");
        return;
    }
    if (req->publish) {
        if (ws_conn_publish(wc, req->publish, type, req->answer,
                            req->answer_len, 0) != APR_SUCCESS) {
            send_error(wc, call, "backend named a bad channel to publish to");
        }
        return;
    }
    ws_conn_send(wc, type, req->answer, req->answer_len);
}

static void forward(ws_conn_t *wc, forward_ctx_t *ctx, const char *event,
                    int type, const char *data, apr_size_t len)
{
    forward_call_t *call;
    ws_job_t *job;
    apr_pool_t *p;

    if (ctx->waiting >= WS_FORWARD_MAX_WAITING) {
        forward_call_t busy = { NULL, ctx, event, { NULL } };

        busy.req.url = ctx->conf->url;
        send_error(wc, &busy, "too many messages waiting for the backend");
        return;
    }
    if (ws_conn_job_create(wc, &job, &p) != APR_SUCCESS) {
        ws_conn_close(wc, 1011, "out of memory");
        return;
    }
    call = apr_pcalloc(p, sizeof(*call));
    call->job = job;
    call->ctx = ctx;
    call->event = event;
    fill_request(&call->req, p, wc, ctx, event, type, 0, data, len);
    call->req.done = call_finished;
    call->req.baton = call;
    ++ctx->waiting;
    ws_conn_job_run_async(job, call_start, call_done, call);
}

static apr_status_t forward_open(ws_conn_t *wc, void *conf, void **pctx)
{
    forward_ctx_t *ctx = apr_pcalloc(ws_conn_pool(wc), sizeof(*ctx));

    ctx->conf = conf;
    ctx->d = ws_config_dir(ws_conn_request(wc));
    *pctx = ctx;
    if (ctx->d->forward_events & WS_FORWARD_OPEN) {
        forward(wc, ctx, "open", 0, NULL, 0);
    }
    return APR_SUCCESS;
}

static void forward_message(ws_conn_t *wc, void *pctx, int type,
                            const char *data, apr_size_t len)
{
    forward_ctx_t *ctx = pctx;

    if (!ctx->refused) {
        forward(wc, ctx, "message", type, data, len);
    }
}

/* Client thread: a close event's answer is nobody's. */
static void close_finished(ws_curl_req_t *req)
{
    apr_pool_destroy(req->pool);
}

/* The socket is gone, so its jobs are too: the close event is sent on its
 * own, and its answer dropped. */
static void forward_close(ws_conn_t *wc, void *pctx, unsigned code)
{
    forward_ctx_t *ctx = pctx;
    ws_curl_req_t *req;
    apr_pool_t *p;

    if (!ctx || !(ctx->d->forward_events & WS_FORWARD_CLOSE) || ctx->refused
        || apr_pool_create_unmanaged_ex(&p, NULL, NULL) != APR_SUCCESS) {
        return;
    }
    req = apr_pcalloc(p, sizeof(*req));
    fill_request(req, p, wc, ctx, "close", 0, code, NULL, 0);
    req->done = close_finished;
    ws_curl_submit(req);
}

const ws_handler_t ws_forward_handler = {
    forward_configure, forward_open, forward_message, forward_close
};
