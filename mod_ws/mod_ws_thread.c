/* mod_ws_thread.c: the thread driver.
 *
 * The handler's thread keeps the connection: poll the connection's pollfd
 * (a socket on HTTP/1.x, a pipe on HTTP/2) plus a wake-up, read without
 * blocking until EAGAIN, let the session answer, write what it queued, and
 * sleep until the next timer, byte or wake-up.  Moves bytes and time only:
 * no protocol logic here.
 */
#include "mod_ws_conn.h"

#include "apr_atomic.h"
#include "http_core.h"


/* Read at most this much before writing what it produced: the session
 * queues the answers, and a peer that floods us must also be answered. */
#define WS_THREAD_READ_BUDGET (1024 * 1024)

/* Without a pollable descriptor (an h2 stream without input pipe), look
 * again this often. */
#define WS_THREAD_NODESC_POLL apr_time_from_msec(100)

static apr_status_t make_pollset(ws_conn_t *wc, int *can_poll)
{
    apr_pollfd_t pfd;
    apr_interval_time_t tmo;
    apr_status_t rv;

    rv = apr_pollset_create(&wc->pollset, 2, wc->pool, APR_POLLSET_WAKEABLE);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    memset(&pfd, 0, sizeof(pfd));
    pfd.p = wc->pool;
    pfd.desc_type = APR_NO_DESC;
    rv = ap_get_pollfd_from_conn(wc->c, &pfd, &tmo);
    *can_poll = (rv == APR_SUCCESS && pfd.desc_type != APR_NO_DESC);
    if (!*can_poll) {
        return APR_SUCCESS;
    }
    pfd.reqevents = APR_POLLIN;
    return apr_pollset_add(wc->pollset, &pfd);
}

/* How long to sleep: until the session's next deadline, or forever. */
static apr_interval_time_t poll_timeout(ws_conn_t *wc, int can_poll)
{
    apr_time_t deadline = ws_session_deadline(wc->session);
    apr_time_t now = apr_time_now();
    apr_interval_time_t t = -1;

    if (deadline) {
        t = deadline > now ? deadline - now : 0;
    }
    if (!can_poll && (t < 0 || t > WS_THREAD_NODESC_POLL)) {
        t = WS_THREAD_NODESC_POLL;
    }
    return t;
}

/* The connection is over, but a job of its own may still run and will
 * touch wc when it ends: wait for it, woken by its end. */
static void wait_for_jobs(ws_conn_t *wc, int can_poll)
{
    apr_pollfd_t pfd;
    apr_interval_time_t tmo;
    const apr_pollfd_t *out;
    apr_int32_t n;

    ws_conn_jobs_finish(wc, 1);
    if (!apr_atomic_read32(&wc->jobs)) {
        return;
    }
    if (can_poll) {
        memset(&pfd, 0, sizeof(pfd));
        pfd.p = wc->pool;
        pfd.desc_type = APR_NO_DESC;
        if (ap_get_pollfd_from_conn(wc->c, &pfd, &tmo) == APR_SUCCESS) {
            apr_pollset_remove(wc->pollset, &pfd);
        }
    }
    while (apr_atomic_read32(&wc->jobs)) {
        apr_pollset_poll(wc->pollset, apr_time_from_sec(1), &n, &out);
        ws_conn_jobs_finish(wc, 1);
    }
}

void ws_thread_run(ws_conn_t *wc)
{
    const apr_pollfd_t *out;
    apr_int32_t n;
    apr_status_t rv;
    int can_poll = 0, more = 0;

    rv = make_pollset(wc, &can_poll);
    if (rv != APR_SUCCESS) {
        ap_log_cerror(APLOG_MARK, APLOG_ERR, rv, wc->c,
                      WSLOGNO(00020) "ws %s: cannot poll the connection",
                      wc->id);
        ws_session_peer_eof(wc->session);
        ws_conn_finish(wc);
        return;
    }
    ws_conn_registry_add(wc);
    ws_conn_open(wc);

    /* Bytes sent right behind the handshake are already buffered: read
     * before the first poll, and after every wake-up (mod_ssl and the core
     * input filter hold data the socket no longer shows). */
    for (;;) {
        if (ws_conn_registry_stopping()) {
            ws_conn_shutdown(wc);
        }
        if (apr_atomic_read32(&wc->jobs)) {
            ws_conn_jobs_finish(wc, 0);
        }
        if (ws_conn_take_deliveries(wc) != APR_SUCCESS) {
            break;
        }
        rv = ws_conn_read(wc, WS_THREAD_READ_BUDGET);
        more = (rv == APR_INCOMPLETE);
        if (rv != APR_SUCCESS && !more) {
            if (rv != WS_CONN_EOF) {
                ap_log_cerror(APLOG_MARK, APLOG_DEBUG, rv, wc->c,
                              WSLOGNO(00021) "ws %s: read failed", wc->id);
            }
            ws_session_peer_eof(wc->session);
        }
        ws_session_tick(wc->session, apr_time_now());
        rv = ws_conn_write(wc);
        if (rv != APR_SUCCESS) {
            /* A peer over its send queue limit has its socket shut down
             * by the delivering thread, to end a write that blocks. */
            if (ws_conn_take_deliveries(wc) == APR_SUCCESS) {
                ap_log_cerror(APLOG_MARK, APLOG_DEBUG, rv, wc->c,
                              WSLOGNO(00022) "ws %s: write failed", wc->id);
                wc->c->aborted = 1;
                ws_session_peer_eof(wc->session);
            }
            break;
        }
        if (ws_session_done(wc->session)) {
            break;
        }
        rv = apr_pollset_poll(wc->pollset,
                              more ? 0 : poll_timeout(wc, can_poll), &n,
                              &out);
        if (rv != APR_SUCCESS && !APR_STATUS_IS_EINTR(rv)
            && !APR_STATUS_IS_TIMEUP(rv)) {
            ap_log_cerror(APLOG_MARK, APLOG_ERR, rv, wc->c,
                          WSLOGNO(00023) "ws %s: poll failed", wc->id);
            ws_session_peer_eof(wc->session);
            break;
        }
    }
    wait_for_jobs(wc, can_poll);
    ws_conn_registry_remove(wc);
    ws_conn_finish(wc);
}
