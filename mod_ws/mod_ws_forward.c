/* mod_ws_forward.c: the "forward" handler: every WebSocket message becomes
 * an HTTP POST to a backend URL, and the backend's answer goes back to the
 * sender (README, "WebSocketHandler forward").
 *
 * The HTTP client is libcurl's multi interface, on one thread per child
 * (started on first use): every backend request of the child runs there at
 * once, so a slow backend delays only the sockets waiting on it, and the
 * multi handle's connection cache keeps backend connections alive across
 * requests of every socket.  Each request is an asynchronous job of its
 * connection (mod_ws.h), so one socket's messages are forwarded one after
 * another and their answers come back in order, and the connection is not
 * destroyed while its request runs.  Close events are not jobs: the socket
 * is gone when they are sent, so nobody waits for their answer.
 *
 * Threads: configure runs at configuration time; the callbacks, fwd_start
 * and fwd_done on the connection's owner; fwd_main is the curl thread, the
 * only one that touches the multi handle and the easy handles; fwd_submit
 * and ws_forward_stop on any thread (they only queue under fwd.mutex and
 * wake the curl thread).
 */
#include "mod_ws_config.h"
#include "mod_ws_forward.h"
#include "ws_utf8.h"

#include "apr_atomic.h"
#include "apr_strings.h"
#include "apr_thread_mutex.h"
#include "apr_thread_proc.h"
#include "apr_uri.h"

#include <curl/curl.h>

/* Idle backend connections the multi handle may keep for reuse. */
#define FWD_MAX_CONNECTS 64

/* The location's configuration, from configure. */
typedef struct {
    const char *url;
} fwd_conf_t;

/* Per connection, on the owner thread only. */
typedef struct {
    const fwd_conf_t *conf;
    const ws_dir_conf_t *dcfg;
    int refused;               /* the backend refused open: drop the rest */
} fwd_ctx_t;

typedef enum { FWD_OPEN, FWD_MESSAGE, FWD_CLOSE } fwd_event_e;

/* One backend request.  Made on the owner from the job's pool (or, for a
 * close event, from a pool of its own); from fwd_submit to ws_job_complete
 * only the curl thread touches it. */
typedef struct fwd_req_t {
    apr_pool_t *pool;
    ws_job_t *job;             /* NULL: a close event, freed by the thread */
    fwd_ctx_t *ctx;            /* owner's; read by fwd_done only */
    fwd_event_e event;
    server_rec *s;             /* for the curl thread's log lines */
    const char *id;
    const char *url;
    apr_array_header_t *headers;  /* const char *, "Name: value" */
    const char *body;
    apr_size_t len;
    long timeout_ms;           /* 0: none */
    apr_size_t max;

    /* Filled on the curl thread. */
    CURL *easy;
    struct curl_slist *slist;
    char *resp;                /* malloc'd; freed with the pool */
    apr_size_t resp_len, resp_cap;
    int too_big;
    int stopped;               /* cut short by the child's stop */
    CURLcode cc;
    long status;
    const char *ctype;
    const char *publish;
    char errbuf[CURL_ERROR_SIZE];
    struct fwd_req_t *next, *prev;
} fwd_req_t;

/* Per child.  mutex and pchild are made in child_init; the thread, on the
 * first request. */
static struct {
    apr_pool_t *pchild;
    apr_thread_mutex_t *mutex;     /* guards incoming, started, quit */
    apr_thread_t *thread;
    CURLM *multi;
    fwd_req_t *incoming;           /* submitted, not yet added */
    fwd_req_t *active;             /* in the multi handle (curl thread) */
    int started;                   /* 1 running, -1 could not start */
    int quit;                      /* pool cleanup: end the thread */
    volatile apr_uint32_t stopping;
} fwd;

static const char *event_name(fwd_event_e e)
{
    return e == FWD_OPEN ? "open" : e == FWD_CLOSE ? "close" : "message";
}

/* A header value must not break the request: no control characters. */
static int header_value_ok(const char *v)
{
    for (; *v; ++v) {
        if ((unsigned char)*v < 0x20 || *v == 0x7f) {
            return 0;
        }
    }
    return 1;
}

static void add_header(fwd_req_t *req, const char *name, const char *value)
{
    if (value && *value && header_value_ok(value)) {
        APR_ARRAY_PUSH(req->headers, const char *) =
            apr_pstrcat(req->pool, name, ": ", value, NULL);
    }
}

static apr_status_t free_resp(void *data)
{
    fwd_req_t *req = data;

    free(req->resp);
    req->resp = NULL;
    return APR_SUCCESS;
}

/* Owner: the request for one event, in pool. */
static fwd_req_t *make_req(ws_conn_t *wc, fwd_ctx_t *ctx, apr_pool_t *pool,
                           fwd_event_e event)
{
    request_rec *r = ws_conn_request(wc);
    fwd_req_t *req = apr_pcalloc(pool, sizeof(*req));

    req->pool = pool;
    req->ctx = ctx;
    req->event = event;
    req->s = r->server;
    req->id = apr_pstrdup(pool, ws_conn_id(wc));
    req->url = ctx->conf->url;
    req->timeout_ms = (long)apr_time_as_msec(ctx->dcfg->forward_timeout);
    req->max = ctx->dcfg->forward_max_response;
    req->headers = apr_array_make(pool, 10, sizeof(const char *));
    add_header(req, "WebSocket-Connection-Id", req->id);
    add_header(req, "WebSocket-Event", event_name(event));
    add_header(req, "WebSocket-User", r->user);
    add_header(req, "Cookie", apr_table_get(r->headers_in, "Cookie"));
    add_header(req, "X-Forwarded-For", r->useragent_ip);
    /* no "Expect: 100-continue" round trip before the body */
    APR_ARRAY_PUSH(req->headers, const char *) = "Expect:";
    apr_pool_cleanup_register(pool, req, free_resp, apr_pool_cleanup_null);
    return req;
}

/* The curl thread. */

static size_t on_body(char *data, size_t size, size_t n, void *baton)
{
    fwd_req_t *req = baton;
    apr_size_t len = size * n;
    char *grown;

    if (len > req->max || req->resp_len > req->max - len) {
        req->too_big = 1;
        return 0;              /* CURLE_WRITE_ERROR */
    }
    if (req->resp_len + len > req->resp_cap) {
        apr_size_t cap = req->resp_cap ? req->resp_cap : 4096;

        while (cap < req->resp_len + len) {
            cap *= 2;
        }
        grown = realloc(req->resp, cap);
        if (!grown) {
            return 0;
        }
        req->resp = grown;
        req->resp_cap = cap;
    }
    memcpy(req->resp + req->resp_len, data, len);
    req->resp_len += len;
    return len;
}

static CURLcode setup_easy(fwd_req_t *req)
{
    CURL *e = curl_easy_init();
    int i;

    if (!e) {
        return CURLE_OUT_OF_MEMORY;
    }
    req->easy = e;
    for (i = 0; i < req->headers->nelts; ++i) {
        struct curl_slist *l = curl_slist_append(
            req->slist, APR_ARRAY_IDX(req->headers, i, const char *));

        if (!l) {
            return CURLE_OUT_OF_MEMORY;
        }
        req->slist = l;
    }
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)(req->body ? req->len : 0));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->slist);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)req->max);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, req);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "mod_ws-forward");
    return CURLE_OK;
}

static void unlink_active(fwd_req_t *req)
{
    if (req->prev) {
        req->prev->next = req->next;
    }
    else if (fwd.active == req) {
        fwd.active = req->next;
    }
    if (req->next) {
        req->next->prev = req->prev;
    }
    req->next = req->prev = NULL;
}

/* The request is over (cc set): read what fwd_done needs, free the curl
 * side, hand the request back. */
static void finish(fwd_req_t *req)
{
    if (req->easy) {
        char *ct = NULL;
        struct curl_header *h = NULL;

        curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &req->status);
        if (curl_easy_getinfo(req->easy, CURLINFO_CONTENT_TYPE, &ct)
                == CURLE_OK && ct) {
            req->ctype = apr_pstrdup(req->pool, ct);
        }
        if (curl_easy_header(req->easy, "WebSocket-Publish", 0, CURLH_HEADER,
                             -1, &h) == CURLHE_OK && h && h->value) {
            req->publish = apr_pstrdup(req->pool, h->value);
        }
        curl_easy_cleanup(req->easy);
        req->easy = NULL;
    }
    curl_slist_free_all(req->slist);
    req->slist = NULL;
    if (req->job) {
        ws_job_complete(req->job, req);
        return;
    }
    /* A close event: nobody waits; log a failure here. */
    if (req->cc != CURLE_OK || req->status < 200 || req->status > 299) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, req->s,
                     WSLOGNO(00180) "ws %s: forward close event to %s: %s",
                     req->id, req->url, req->cc != CURLE_OK
                     ? (req->errbuf[0] ? req->errbuf
                                       : curl_easy_strerror(req->cc))
                     : apr_psprintf(req->pool, "HTTP status %ld",
                                    req->status));
    }
    apr_pool_destroy(req->pool);
}

/* Fail a request the multi handle holds, or one not yet added. */
static void abandon(fwd_req_t *req)
{
    if (req->easy) {
        curl_multi_remove_handle(fwd.multi, req->easy);
    }
    req->stopped = 1;
    req->cc = CURLE_ABORTED_BY_CALLBACK;
    finish(req);
}

static void *APR_THREAD_FUNC fwd_main(apr_thread_t *thread, void *data)
{
    fwd_req_t *in, *req, *next;
    CURLMsg *msg;
    int running, left, quit = 0, stopping_seen = 0;

    while (!quit) {
        apr_thread_mutex_lock(fwd.mutex);
        in = fwd.incoming;
        fwd.incoming = NULL;
        quit = fwd.quit;
        apr_thread_mutex_unlock(fwd.mutex);

        for (req = in; req; req = next) {
            next = req->next;
            req->next = NULL;
            if (quit || (req->job && apr_atomic_read32(&fwd.stopping))) {
                abandon(req);
                continue;
            }
            req->cc = setup_easy(req);
            if (req->cc == CURLE_OK
                && curl_multi_add_handle(fwd.multi, req->easy) != CURLM_OK) {
                req->cc = CURLE_OUT_OF_MEMORY;
            }
            if (req->cc != CURLE_OK) {
                finish(req);
                continue;
            }
            req->next = fwd.active;
            if (fwd.active) {
                fwd.active->prev = req;
            }
            fwd.active = req;
        }
        /* Stopping (graceful restart or stop): sockets are closing with
         * 1001 and must not wait on a slow backend past the shutdown
         * bound; close events still go. */
        if (quit || (!stopping_seen && apr_atomic_read32(&fwd.stopping))) {
            stopping_seen = 1;
            for (req = fwd.active; req; req = next) {
                next = req->next;
                if (quit || req->job) {
                    unlink_active(req);
                    abandon(req);
                }
            }
        }
        if (quit) {
            break;
        }
        curl_multi_perform(fwd.multi, &running);
        while ((msg = curl_multi_info_read(fwd.multi, &left))) {
            if (msg->msg != CURLMSG_DONE) {
                continue;
            }
            req = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &req);
            curl_multi_remove_handle(fwd.multi, msg->easy_handle);
            if (req) {
                req->cc = msg->data.result;
                unlink_active(req);
                finish(req);
            }
        }
        curl_multi_poll(fwd.multi, NULL, 0, 1000, NULL);
    }
    return NULL;
}

static apr_status_t fwd_cleanup(void *data)
{
    apr_status_t rv;

    apr_thread_mutex_lock(fwd.mutex);
    fwd.quit = 1;
    apr_thread_mutex_unlock(fwd.mutex);
    if (fwd.started == 1) {
        curl_multi_wakeup(fwd.multi);
        apr_thread_join(&rv, fwd.thread);
        curl_multi_cleanup(fwd.multi);
        fwd.multi = NULL;
    }
    fwd.started = 0;
    return APR_SUCCESS;
}

/* Under fwd.mutex. */
static int start_thread(void)
{
    apr_status_t rv;

    if (fwd.started) {
        return fwd.started == 1;
    }
    fwd.started = -1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK
        || !(fwd.multi = curl_multi_init())) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, NULL,
                     WSLOGNO(00181) "forward: cannot initialise libcurl");
        return 0;
    }
    curl_multi_setopt(fwd.multi, CURLMOPT_MAXCONNECTS,
                      (long)FWD_MAX_CONNECTS);
    rv = apr_thread_create(&fwd.thread, NULL, fwd_main, NULL, fwd.pchild);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, NULL,
                     WSLOGNO(00182) "forward: cannot start the curl thread");
        curl_multi_cleanup(fwd.multi);
        fwd.multi = NULL;
        return 0;
    }
    fwd.started = 1;
    return 1;
}

/* Any thread: hand a request to the curl thread; 0 when there is none. */
static int fwd_submit(fwd_req_t *req)
{
    int ok;

    if (!fwd.mutex) {
        return 0;
    }
    apr_thread_mutex_lock(fwd.mutex);
    ok = !fwd.quit && start_thread();
    if (ok) {
        fwd_req_t **pp;

        for (pp = &fwd.incoming; *pp; pp = &(*pp)->next) {
        }
        req->next = NULL;
        *pp = req;
        curl_multi_wakeup(fwd.multi);
    }
    apr_thread_mutex_unlock(fwd.mutex);
    return ok;
}

apr_status_t ws_forward_child_init(apr_pool_t *pchild)
{
    fwd.pchild = pchild;
    fwd.incoming = fwd.active = NULL;
    fwd.started = fwd.quit = 0;
    apr_atomic_set32(&fwd.stopping, 0);
    /* Before pchild's subpools (the thread's own among them) go. */
    apr_pool_pre_cleanup_register(pchild, NULL, fwd_cleanup);
    return apr_thread_mutex_create(&fwd.mutex, APR_THREAD_MUTEX_DEFAULT,
                                   pchild);
}

void ws_forward_stop(void)
{
    apr_atomic_set32(&fwd.stopping, 1);
    if (fwd.mutex) {
        apr_thread_mutex_lock(fwd.mutex);
        if (fwd.started == 1) {
            curl_multi_wakeup(fwd.multi);
        }
        apr_thread_mutex_unlock(fwd.mutex);
    }
}

/* The connection's owner. */

/* Its turn came: the request goes to the curl thread. */
static void fwd_start(ws_job_t *job, void *baton)
{
    fwd_req_t *req = baton;

    if (req->ctx->refused) {
        ws_job_complete(job, NULL);
        return;
    }
    if (!fwd_submit(req)) {
        req->cc = CURLE_FAILED_INIT;
        ws_job_complete(job, req);
    }
}

static void send_error(ws_conn_t *wc, const char *what)
{
    const char *json = apr_psprintf(ws_conn_scratch_pool(wc),
                                    "{\"error\":\"%s\"}", what);

    ws_conn_send(wc, WS_MSG_TEXT, json, strlen(json));
}

/* Text unless the backend says otherwise: text/..., JSON and XML types
 * and no Content-Type are text; everything else is binary. */
static int answer_type(const char *ctype)
{
    apr_size_t n;

    if (!ctype || !*ctype || !strncasecmp(ctype, "text/", 5)) {
        return WS_MSG_TEXT;
    }
    n = strcspn(ctype, "; \t");
    if ((n == 16 && !strncasecmp(ctype, "application/json", n))
        || (n == 15 && !strncasecmp(ctype, "application/xml", n))
        || (n == 22 && !strncasecmp(ctype, "application/javascript", n))
        || (n > 5 && !strncasecmp(ctype + n - 5, "+json", 5))
        || (n > 4 && !strncasecmp(ctype + n - 4, "+xml", 4))) {
        return WS_MSG_TEXT;
    }
    return WS_MSG_BINARY;
}

/* What went wrong with the request, for the sender; NULL: a 2xx answer. */
static const char *failure(const fwd_req_t *req)
{
    if (req->stopped) {
        return "server stopping";
    }
    switch (req->cc) {
    case CURLE_OK:
        break;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
        return "backend unavailable";
    case CURLE_OPERATION_TIMEDOUT:
        return "backend timed out";
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
        return req->too_big || req->cc == CURLE_FILESIZE_EXCEEDED
               ? "backend answer too large" : "backend failed";
    case CURLE_FAILED_INIT:
        return "forwarding unavailable";
    default:
        return "backend failed";
    }
    if (req->status < 200 || req->status > 299) {
        return apr_psprintf(req->pool, "backend answered %ld", req->status);
    }
    return NULL;
}

static void fwd_done(ws_conn_t *wc, void *baton, void *result)
{
    fwd_req_t *req = result;
    const char *err;
    int type;

    if (!req) {
        return;                /* skipped: open was refused */
    }
    err = failure(req);
    if (err) {
        ap_log_cerror(APLOG_MARK, req->stopped ? APLOG_DEBUG : APLOG_ERR, 0,
                      ws_conn_request(wc)->connection,
                      WSLOGNO(00183) "ws %s: forward %s to %s: %s (%s)",
                      req->id, event_name(req->event), req->url, err,
                      req->cc == CURLE_OK ? "HTTP status"
                      : req->errbuf[0] ? req->errbuf
                      : curl_easy_strerror(req->cc));
        if (req->event == FWD_OPEN) {
            /* The backend decides who may stay: no answer, no socket. */
            req->ctx->refused = 1;
            if (req->cc == CURLE_OK && !req->stopped) {
                ws_conn_close(wc, 1008, "refused by the backend");
            }
            else {
                ws_conn_close(wc, 1011, err);
            }
            return;
        }
        send_error(wc, err);
        return;
    }
    if (req->status == 204 || (req->event == FWD_OPEN && !req->resp_len)) {
        return;
    }
    type = answer_type(req->ctype);
    if (type == WS_MSG_TEXT
        && !ws_utf8_valid((const unsigned char *)req->resp, req->resp_len)) {
        ap_log_cerror(APLOG_MARK, APLOG_ERR, 0,
                      ws_conn_request(wc)->connection,
                      WSLOGNO(00184) "ws %s: forward: %s answered text (%s) "
                      "that is not valid UTF-8", req->id, req->url,
                      req->ctype ? req->ctype : "no Content-Type");
        send_error(wc, "backend answer is not valid UTF-8");
        return;
    }
    ws_conn_send(wc, type, req->resp ? req->resp : "", req->resp_len);
}

/* Queue the event as the connection's next job. */
static apr_status_t forward_event(ws_conn_t *wc, fwd_ctx_t *ctx,
                                  fwd_event_e event, int type,
                                  const char *data, apr_size_t len)
{
    ws_job_t *job;
    apr_pool_t *pool;
    fwd_req_t *req;
    apr_status_t rv = ws_conn_job_create(wc, &job, &pool);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    req = make_req(wc, ctx, pool, event);
    req->job = job;
    if (event == FWD_MESSAGE) {
        add_header(req, "WebSocket-Frame",
                   type == WS_MSG_TEXT ? "text" : "binary");
        add_header(req, "Content-Type", type == WS_MSG_TEXT
                   ? "text/plain; charset=utf-8" : "application/octet-stream");
        req->body = apr_pmemdup(pool, data, len);
        req->len = len;
    }
    ws_conn_job_run_async(job, fwd_start, fwd_done, req);
    return APR_SUCCESS;
}

static const char *fwd_configure(apr_pool_t *p, const char *args,
                                 void **conf)
{
    fwd_conf_t *fc;
    apr_uri_t uri;

    if (!args || !*args) {
        return "needs the backend's URL (http://host[:port]/path)";
    }
    if (strpbrk(args, " \t")) {
        return "takes one URL";
    }
    if (apr_uri_parse(p, args, &uri) != APR_SUCCESS || !uri.scheme
        || (strcasecmp(uri.scheme, "http") && strcasecmp(uri.scheme, "https"))
        || !uri.hostname || !*uri.hostname) {
        return apr_psprintf(p, "'%s' is not an http:// or https:// URL with "
                            "a host", args);
    }
    fc = apr_pcalloc(p, sizeof(*fc));
    fc->url = apr_pstrdup(p, args);
    *conf = fc;
    return NULL;
}

static apr_status_t fwd_open(ws_conn_t *wc, void *conf, void **pctx)
{
    fwd_ctx_t *ctx = apr_pcalloc(ws_conn_pool(wc), sizeof(*ctx));

    ctx->conf = conf;
    ctx->dcfg = ws_config_dir(ws_conn_request(wc));
    *pctx = ctx;
    if (ctx->dcfg->forward_events & WS_FORWARD_OPEN) {
        return forward_event(wc, ctx, FWD_OPEN, 0, NULL, 0);
    }
    return APR_SUCCESS;
}

static void fwd_message(ws_conn_t *wc, void *vctx, int type,
                        const char *data, apr_size_t len)
{
    fwd_ctx_t *ctx = vctx;

    if (ctx->refused) {
        return;
    }
    if (forward_event(wc, ctx, FWD_MESSAGE, type, data, len)
            != APR_SUCCESS) {
        send_error(wc, "forwarding unavailable");
    }
}

/* Sent after the socket ended, not as a job: a message still on its way
 * may reach the backend after the close event. */
static void fwd_close(ws_conn_t *wc, void *vctx, unsigned code)
{
    fwd_ctx_t *ctx = vctx;
    apr_pool_t *pool;
    fwd_req_t *req;

    if (!ctx || ctx->refused || !(ctx->dcfg->forward_events
                                  & WS_FORWARD_CLOSE)) {
        return;
    }
    if (apr_pool_create_unmanaged_ex(&pool, NULL, NULL) != APR_SUCCESS) {
        return;
    }
    req = make_req(wc, ctx, pool, FWD_CLOSE);
    add_header(req, "WebSocket-Close-Code", apr_psprintf(pool, "%u", code));
    if (!fwd_submit(req)) {
        ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0,
                      ws_conn_request(wc)->connection,
                      WSLOGNO(00185) "ws %s: forward: close event not sent "
                      "(no curl thread)", req->id);
        apr_pool_destroy(pool);
    }
}

const ws_handler_t ws_forward_handler = {
    fwd_configure, fwd_open, fwd_message, fwd_close
};
