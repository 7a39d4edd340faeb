/* mod_ws_thread.c: the thread driver.
 *
 * The handler's thread keeps the connection: poll the connection's pollfd
 * (a socket on HTTP/1.x, a pipe on HTTP/2) plus a wake-up, read without
 * blocking until EAGAIN, let the session answer, write what it queued
 * (without blocking on a socket, waiting for POLLOUT; blocking on an h2
 * stream), and sleep until the next timer, byte or wake-up.  Moves bytes and time only:
 * no protocol logic here.
 */
#include "mod_ws_conn.h"

#include "apr_atomic.h"
#include "http_core.h"


/* Read at most this much before writing what it produced: the session
 * queues the answers, and a peer that floods us must also be answered. */
#define WS_THREAD_READ_BUDGET (1024 * 1024)

/* How often a connection whose output is stuck is looked at. */
#define WS_THREAD_STUCK_POLL apr_time_from_msec(250)

/* Without a pollable descriptor (an h2 stream without input pipe), look
 * again this often. */
#define WS_THREAD_NODESC_POLL apr_time_from_msec(100)

static apr_status_t make_pollset(ws_conn_t *wc, int *can_poll)
{
    apr_interval_time_t tmo;
    apr_status_t rv;

    rv = apr_pollset_create(&wc->pollset, 2, wc->pool, APR_POLLSET_WAKEABLE);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    memset(&wc->pfd, 0, sizeof(wc->pfd));
    wc->pfd.p = wc->pool;
    wc->pfd.desc_type = APR_NO_DESC;
    rv = ap_get_pollfd_from_conn(wc->c, &wc->pfd, &tmo);
    *can_poll = (rv == APR_SUCCESS && wc->pfd.desc_type != APR_NO_DESC);
    if (!*can_poll) {
        return APR_SUCCESS;
    }
    wc->pfd.reqevents = APR_POLLIN;
    rv = apr_pollset_add(wc->pollset, &wc->pfd);
    wc->polled_events = rv == APR_SUCCESS ? APR_POLLIN : 0;
    return rv;
}

/* Wait for POLLOUT while output is pending (and then read nothing: that is
 * the backpressure), else for POLLIN. */
static void set_events(ws_conn_t *wc)
{
    apr_int16_t want = wc->c->data_in_output_filters ? APR_POLLOUT
                                                     : APR_POLLIN;

    if (want == wc->polled_events) {
        return;
    }
    apr_pollset_remove(wc->pollset, &wc->pfd);
    wc->pfd.reqevents = want;
    wc->polled_events = apr_pollset_add(wc->pollset, &wc->pfd)
                        == APR_SUCCESS ? want : 0;
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
    /* While output is stuck, look again now and then: a session that is
     * over but cannot write has no deadline of its own (ws_conn_stuck). */
    if (wc->c->data_in_output_filters
        && (t < 0 || t > WS_THREAD_STUCK_POLL)) {
        t = WS_THREAD_STUCK_POLL;
    }
    return t;
}

/* The connection is over, but a job of its own may still run and will
 * touch wc when it ends: wait for it, woken by its end. */
static void wait_for_jobs(ws_conn_t *wc, int can_poll)
{
    const apr_pollfd_t *out;
    apr_int32_t n;

    ws_conn_jobs_finish(wc, 1);
    if (!apr_atomic_read32(&wc->jobs)) {
        return;
    }
    if (can_poll && wc->polled_events) {
        apr_pollset_remove(wc->pollset, &wc->pfd);
        wc->polled_events = 0;
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
    int can_poll = 0, more = 0, nonblocking;

    rv = make_pollset(wc, &can_poll);
    if (rv != APR_SUCCESS) {
        ap_log_cerror(APLOG_MARK, APLOG_ERR, rv, wc->c,
                      WSLOGNO(00020) "ws %s: cannot poll the connection",
                      wc->id);
        ws_session_peer_eof(wc->session);
        ws_conn_finish(wc);
        return;
    }
    /* A socket (HTTP/1.x) can say when it is writable: write without
     * blocking, so that a peer that reads nothing still meets the
     * session's deadlines.  An HTTP/2 stream's pipe cannot: its writes
     * block on the stream's flow control. */
    nonblocking = can_poll && wc->pfd.desc_type == APR_POLL_SOCKET;
    ws_conn_registry_add(wc);
    ws_conn_open(wc);

    /* Bytes sent right behind the handshake are already buffered: read
     * before the first poll, and after every wake-up (mod_ssl and the core
     * input filter hold data the socket no longer shows). */
    for (;;) {
        apr_time_t now;

        if (ws_conn_registry_stopping()) {
            ws_conn_shutdown(wc);
        }
        if (apr_atomic_read32(&wc->jobs)) {
            ws_conn_jobs_finish(wc, 0);
        }
        more = 0;
        if (!wc->c->data_in_output_filters) {
            rv = ws_conn_read(wc, WS_THREAD_READ_BUDGET);
            more = (rv == APR_INCOMPLETE);
            if (rv != APR_SUCCESS && !more) {
                if (rv != WS_CONN_EOF) {
                    ap_log_cerror(APLOG_MARK, APLOG_DEBUG, rv, wc->c,
                                  WSLOGNO(00021) "ws %s: read failed",
                                  wc->id);
                }
                ws_session_peer_eof(wc->session);
            }
        }
        now = apr_time_now();
        ws_session_tick(wc->session, now);
        rv = nonblocking ? ws_conn_write_nonblocking(wc) : ws_conn_write(wc);
        if (rv != APR_SUCCESS) {
            ap_log_cerror(APLOG_MARK, APLOG_DEBUG, rv, wc->c,
                          WSLOGNO(00022) "ws %s: write failed", wc->id);
            wc->c->aborted = 1;
            ws_session_peer_eof(wc->session);
            break;
        }
        if (ws_session_done(wc->session) && !wc->c->data_in_output_filters) {
            break;
        }
        if (wc->c->data_in_output_filters && ws_conn_stuck(wc, now)) {
            ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, wc->c,
                          WSLOGNO(00024) "ws %s: peer reads nothing; "
                          "dropping the connection", wc->id);
            /* and httpd must not try to flush it either */
            wc->c->aborted = 1;
            break;
        }
        if (nonblocking) {
            set_events(wc);
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
