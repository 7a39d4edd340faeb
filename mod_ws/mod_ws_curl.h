/* mod_ws_curl.h: HTTP requests from a child process without blocking its
 * WebSocket threads: one thread per child drives libcurl's multi
 * interface, which keeps connections to backends open for reuse.
 *
 * Threads: ws_curl_submit from any thread; the request then belongs to the
 * client thread until its `done` runs there (once), with the outcome
 * filled in.  `done` must not block (it typically completes a job, see
 * ws_job_complete).
 */
#ifndef MOD_WS_CURL_H
#define MOD_WS_CURL_H

#include "httpd.h"

typedef struct ws_curl_req_t ws_curl_req_t;

struct ws_curl_req_t {
    /* In: what to send. */
    const char *url;
    const char *const *headers;      /* "Name: value", NULL-terminated */
    const char *body;
    apr_size_t len;
    apr_interval_time_t timeout;     /* the whole exchange */
    apr_size_t max_answer;           /* a longer body fails the request */
    apr_pool_t *pool;                /* the answer is made here; used by
                                      * the client thread until done */
    void (*done)(ws_curl_req_t *req);
    void *baton;

    /* Out. */
    int failed;                      /* no HTTP answer: see error */
    int timed_out, refused, too_big;
    const char *error;               /* when failed */
    long status;                     /* the HTTP status otherwise */
    const char *content_type;        /* NULL: none */
    const char *publish;             /* WebSocket-Publish: header, or NULL */
    char *answer;
    apr_size_t answer_len;

    ws_curl_req_t *next;             /* the client's queue */
};

/* Set at configuration time when some location forwards: only then does
 * a child start the client thread. */
extern int ws_curl_used;

/* Child: start the client thread (when ws_curl_used). */
apr_status_t ws_curl_child_init(apr_pool_t *pchild, server_rec *s);

/* Any thread. */
void ws_curl_submit(ws_curl_req_t *req);

/* The child is stopping: requests still waiting or running fail at once
 * ("server stopping"), so closing WebSockets wait for no backend. */
void ws_curl_stop(void);

#endif /* MOD_WS_CURL_H */
