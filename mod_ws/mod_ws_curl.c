/* mod_ws_curl.c: the per-child HTTP client thread (see mod_ws_curl.h).
 *
 * One libcurl multi handle, on one thread, for every request the child's
 * WebSockets make: the multi handle's connection cache keeps backend
 * connections alive between requests, and a slow backend holds nothing
 * but its own transfer.  Other threads only queue a request and wake the
 * thread (curl_multi_wakeup).
 *
 * Threads: ws_curl_submit and ws_curl_stop from any thread; everything
 * else on the client thread.
 */
#include "mod_ws_curl.h"
#include "mod_ws_private.h"

#include "apr_atomic.h"
#include "apr_strings.h"
#include "apr_thread_mutex.h"
#include "apr_thread_proc.h"

#include <curl/curl.h>

/* Backend connections a child keeps open when idle. */
#define WS_CURL_KEEP 64L

/* Set at configuration time when a location forwards (mod_ws_forward.c);
 * the client thread is started only then. */
int ws_curl_used;

struct transfer_t;

/* One per child, made in child_init. */
static struct {
    apr_thread_mutex_t *mutex;      /* the queue */
    ws_curl_req_t *head, *tail;
    CURLM *multi;
    struct transfer_t *transfers;   /* in the multi handle (thread's own) */
    apr_thread_t *thread;
    volatile apr_uint32_t stopping, exiting;
    int running;
    server_rec *server;
} client;

typedef struct transfer_t {
    ws_curl_req_t *req;
    CURL *easy;
    struct curl_slist *headers;
    apr_size_t cap;                 /* of req->answer */
    struct transfer_t *prev, *next;
    char errbuf[CURL_ERROR_SIZE];
} transfer_t;

static size_t on_body(char *p, size_t size, size_t n, void *data)
{
    transfer_t *t = data;
    ws_curl_req_t *req = t->req;
    apr_size_t len = size * n;

    if (req->answer_len + len > req->max_answer) {
        req->too_big = 1;
        return 0;                   /* ends the transfer */
    }
    if (req->answer_len + len > t->cap) {
        apr_size_t cap = t->cap ? t->cap : 1024;
        char *grown;

        while (cap < req->answer_len + len) {
            cap *= 2;
        }
        grown = apr_palloc(req->pool, cap);
        if (req->answer_len) {
            memcpy(grown, req->answer, req->answer_len);
        }
        req->answer = grown;
        t->cap = cap;
    }
    memcpy(req->answer + req->answer_len, p, len);
    req->answer_len += len;
    return len;
}

/* "Name: value\r\n" when the header is `name`, else NULL. */
static const char *header_value(ws_curl_req_t *req, const char *line,
                                apr_size_t len, const char *name)
{
    apr_size_t nl = strlen(name);
    const char *v, *end = line + len;

    if (len <= nl || strncasecmp(line, name, nl) || line[nl] != ':') {
        return NULL;
    }
    for (v = line + nl + 1; v < end && (*v == ' ' || *v == '\t'); ++v) {
    }
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
    {
        --end;
    }
    return apr_pstrmemdup(req->pool, v, (apr_size_t)(end - v));
}

static size_t on_header(char *p, size_t size, size_t n, void *data)
{
    transfer_t *t = data;
    ws_curl_req_t *req = t->req;
    apr_size_t len = size * n;
    const char *v;

    /* A new status line (after a 100 Continue): forget what came before. */
    if (len > 5 && !strncmp(p, "HTTP/", 5)) {
        req->content_type = req->publish = NULL;
    }
    else if ((v = header_value(req, p, len, "Content-Type"))) {
        req->content_type = v;
    }
    else if ((v = header_value(req, p, len, "WebSocket-Publish"))) {
        req->publish = v;
    }
    return len;
}

static void finish(ws_curl_req_t *req, const char *error)
{
    if (error) {
        req->failed = 1;
        req->error = error;
    }
    req->done(req);
}

static void add_transfer(ws_curl_req_t *req)
{
    transfer_t *t = apr_pcalloc(req->pool, sizeof(*t));
    CURL *e = curl_easy_init();
    const char *const *h;
    long ms = (long)apr_time_as_msec(req->timeout);

    if (!e) {
        finish(req, "out of memory");
        return;
    }
    t->req = req;
    for (h = req->headers; h && *h; ++h) {
        t->headers = curl_slist_append(t->headers, *h);
    }
    /* No "Expect: 100-continue" wait before larger bodies. */
    t->headers = curl_slist_append(t->headers, "Expect:");
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ms > 0 ? ms : 1L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "mod_ws");
    if (curl_multi_add_handle(client.multi, e) != CURLM_OK) {
        curl_slist_free_all(t->headers);
        curl_easy_cleanup(e);
        finish(req, "cannot start the request");
        return;
    }
    t->easy = e;
    t->next = client.transfers;
    if (client.transfers) {
        client.transfers->prev = t;
    }
    client.transfers = t;
}

/* Out of the multi handle; the request is still to be finished. */
static void remove_transfer(transfer_t *t)
{
    if (t->prev) {
        t->prev->next = t->next;
    }
    else {
        client.transfers = t->next;
    }
    if (t->next) {
        t->next->prev = t->prev;
    }
    curl_multi_remove_handle(client.multi, t->easy);
    curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
}

static void end_transfer(CURL *e, CURLcode code)
{
    transfer_t *t = NULL;
    ws_curl_req_t *req;
    const char *error = NULL;

    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&t);
    req = t->req;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &req->status);
    remove_transfer(t);
    if (req->too_big) {
        error = "backend answer too large";
    }
    else if (code == CURLE_OPERATION_TIMEDOUT) {
        req->timed_out = 1;
        error = "backend timed out";
    }
    else if (code == CURLE_COULDNT_CONNECT) {
        req->refused = 1;
        error = "backend refused the connection";
    }
    else if (code != CURLE_OK) {
        error = apr_pstrcat(req->pool, "backend request failed: ",
                            *t->errbuf ? t->errbuf : curl_easy_strerror(code),
                            NULL);
    }
    finish(req, error);
}

/* The child stops: everything in flight fails now. */
static void abort_all(void)
{
    CURLMsg *m;
    int left;

    /* Finished ones first, with their real outcome. */
    while ((m = curl_multi_info_read(client.multi, &left))) {
        if (m->msg == CURLMSG_DONE) {
            end_transfer(m->easy_handle, m->data.result);
        }
    }
    while (client.transfers) {
        transfer_t *t = client.transfers;

        remove_transfer(t);
        finish(t->req, "server stopping");
    }
}

static void *APR_THREAD_FUNC client_main(apr_thread_t *self, void *data)
{
    ws_curl_req_t *req, *next;
    CURLMsg *m;
    int running, left;

    while (!apr_atomic_read32(&client.exiting)) {
        apr_thread_mutex_lock(client.mutex);
        req = client.head;
        client.head = client.tail = NULL;
        apr_thread_mutex_unlock(client.mutex);
        for (; req; req = next) {
            next = req->next;
            if (apr_atomic_read32(&client.stopping)) {
                finish(req, "server stopping");
            }
            else {
                add_transfer(req);
            }
        }
        if (apr_atomic_read32(&client.stopping)) {
            abort_all();
        }
        curl_multi_perform(client.multi, &running);
        while ((m = curl_multi_info_read(client.multi, &left))) {
            if (m->msg == CURLMSG_DONE) {
                end_transfer(m->easy_handle, m->data.result);
            }
        }
        curl_multi_poll(client.multi, NULL, 0, 1000, NULL);
    }
    apr_atomic_set32(&client.stopping, 1);
    abort_all();
    return NULL;
}

void ws_curl_submit(ws_curl_req_t *req)
{
    req->next = NULL;
    if (!client.mutex) {
        finish(req, "no HTTP client in this child");
        return;
    }
    apr_thread_mutex_lock(client.mutex);
    if (!client.running) {
        apr_thread_mutex_unlock(client.mutex);
        finish(req, "server stopping");
        return;
    }
    if (client.tail) {
        client.tail->next = req;
    }
    else {
        client.head = req;
    }
    client.tail = req;
    apr_thread_mutex_unlock(client.mutex);
    curl_multi_wakeup(client.multi);
}

void ws_curl_stop(void)
{
    if (client.running) {
        apr_atomic_set32(&client.stopping, 1);
        curl_multi_wakeup(client.multi);
    }
}

static apr_status_t client_exit(void *data)
{
    ws_curl_req_t *req, *next;
    apr_status_t rv;

    apr_atomic_set32(&client.exiting, 1);
    curl_multi_wakeup(client.multi);
    apr_thread_join(&rv, client.thread);
    /* Requests queued while the thread ended: nobody will send them. */
    apr_thread_mutex_lock(client.mutex);
    client.running = 0;
    req = client.head;
    client.head = client.tail = NULL;
    apr_thread_mutex_unlock(client.mutex);
    for (; req; req = next) {
        next = req->next;
        finish(req, "server stopping");
    }
    curl_multi_cleanup(client.multi);
    return APR_SUCCESS;
}

apr_status_t ws_curl_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv;

    if (!ws_curl_used) {
        return APR_SUCCESS;
    }
    client.server = s;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK
        || !(client.multi = curl_multi_init())) {
        return APR_EGENERAL;
    }
    /* The cache's default size follows the transfers running at that
     * moment: after a quiet spell it shrinks and closes the connections
     * the next burst needs again. */
    curl_multi_setopt(client.multi, CURLMOPT_MAXCONNECTS, WS_CURL_KEEP);
    rv = apr_thread_mutex_create(&client.mutex, APR_THREAD_MUTEX_DEFAULT,
                                 pchild);
    if (rv == APR_SUCCESS) {
        rv = apr_thread_create(&client.thread, NULL, client_main, NULL,
                               pchild);
    }
    if (rv != APR_SUCCESS) {
        client.mutex = NULL;
        return rv;
    }
    client.running = 1;
    apr_pool_pre_cleanup_register(pchild, NULL, client_exit);
    return APR_SUCCESS;
}
