/* mod_ws_reactor.c: the reactor driver, one thread per child process.
 *
 * On the event MPM a WebSocket need not hold a worker thread: after the 101
 * the upgrade handler returns SUSPENDED, the MPM forgets the connection, and
 * the suspend_connection hook hands it to this thread, which polls all of
 * the child's WebSockets at once.  Idle sockets then cost memory, not
 * threads.  The recipe and its traps are research/reactor-spike.md; the
 * ones that crash when missed are marked "trap" below.
 *
 * Threads: only the reactor thread touches an adopted connection (c, its
 * pools, bucket allocator, filters, r).  Other threads only queue a
 * connection for adoption or set the stop flag, then wake the pollset.
 * Nothing here blocks: no FLUSH, no lingering close, reads and writes
 * without waiting.  Moves bytes and time only: no protocol code here.
 */
#include "mod_ws_conn.h"
#include "mod_ws_status.h"
#include "ws_close.h"

#include "apr_atomic.h"
#include "apr_thread_mutex.h"
#include "apr_thread_proc.h"
#include "ap_mpm.h"
#include "http_connection.h"
#include "http_core.h"
#include "http_protocol.h"
#include "http_main.h"

#include <stdlib.h>

/* Bytes one connection may read in one turn before others get theirs. */
#define WS_REACTOR_READ_BUDGET (256 * 1024)
/* Adoptions and pool destructions per loop turn (trap: bulk work stalls). */
#define WS_REACTOR_BATCH 256
/* How often deadlines (pings, idle, close waits) are looked at. */
#define WS_REACTOR_SWEEP apr_time_from_msec(250)
/* The MPM still writes to the connection after the hook returns (trap):
 * c->pool dies no sooner than this after the hand-off. */
#define WS_REACTOR_DESTROY_DELAY apr_time_from_msec(100)
/* How long a closed connection reads (and drops) what the peer still
 * sends, waiting for its FIN, as httpd's lingering close does. */
#define WS_REACTOR_LINGER apr_time_from_sec(2)
/* Events asked per poll. */
#define WS_REACTOR_EVENTS 512

/* One per child, made in child_init. */
static struct {
    apr_thread_t *thread;
    apr_pollset_t *pollset;
    apr_thread_mutex_t *mutex;      /* guards the adoption queue */
    ws_conn_t *adopt_head, *adopt_tail;
    ws_conn_t *conns;               /* adopted; the thread's own */
    ws_conn_t *ready;               /* read budget ran out: go again */
    ws_conn_t *lingering;           /* FIN sent; reading until the peer's */
    ws_conn_t *posted;              /* a job ended, or a channel delivered
                                     * (under the mutex) */
    ws_conn_t *graveyard;           /* closed; c->pool to destroy */
    apr_time_t next_sweep;
    apr_time_t stop_deadline;       /* 0 until the child stops */
    apr_interval_time_t shutdown_timeout;
    server_rec *server;             /* for log lines without a conn */
    volatile apr_uint32_t stopping;
    volatile apr_uint32_t exiting;
    int running;
} reactor;

int ws_reactor_usable(const conn_rec *c)
{
    /* HTTP/2 streams are driven by mod_http2's own workers. */
    return reactor.running && !c->master
           && !apr_atomic_read32(&reactor.stopping);
}

/* Runs on the worker thread at the very end of its work on c. */
void ws_reactor_suspend_connection(conn_rec *c, request_rec *r)
{
    ws_conn_t *wc = ap_get_module_config(c->conn_config, &ws_module);

    /* Trap: the hook also runs on the MPM's own lingering-close path, and
     * a connection whose 101 failed is the MPM's to close. */
    if (!wc) {
        return;
    }
    ap_set_module_config(c->conn_config, &ws_module, NULL);
    if (!c->cs || c->cs->state != CONN_STATE_SUSPENDED || c->aborted) {
        /* Counted open at its 101, never to be served. */
        ws_status_closed(0, WS_CLOSE_ABNORMAL);
        return;
    }
    wc->handoff = apr_time_now();
    wc->qnext = NULL;
    apr_thread_mutex_lock(reactor.mutex);
    if (reactor.adopt_tail) {
        reactor.adopt_tail->qnext = wc;
    }
    else {
        reactor.adopt_head = wc;
    }
    reactor.adopt_tail = wc;
    apr_thread_mutex_unlock(reactor.mutex);
    apr_pollset_wakeup(reactor.pollset);
}

void ws_reactor_post(ws_conn_t *wc)
{
    int wake;

    apr_thread_mutex_lock(reactor.mutex);
    /* One wake-up per batch: the reactor takes the whole list at once, and
     * a fan-out to a thousand subscribers must not be a thousand writes
     * to the wake-up pipe. */
    wake = reactor.posted == NULL;
    if (!wc->posted) {
        wc->posted = 1;
        wc->pnext = reactor.posted;
        reactor.posted = wc;
    }
    apr_thread_mutex_unlock(reactor.mutex);
    if (wake) {
        apr_pollset_wakeup(reactor.pollset);
    }
}

void ws_reactor_stop(void)
{
    if (!reactor.running) {
        return;
    }
    apr_atomic_set32(&reactor.stopping, 1);
    apr_pollset_wakeup(reactor.pollset);
}

static void list_push(ws_conn_t **head, ws_conn_t *wc)
{
    wc->prev = NULL;
    wc->next = *head;
    if (*head) {
        (*head)->prev = wc;
    }
    *head = wc;
}

static void list_remove(ws_conn_t **head, ws_conn_t *wc)
{
    if (wc->prev) {
        wc->prev->next = wc->next;
    }
    else {
        *head = wc->next;
    }
    if (wc->next) {
        wc->next->prev = wc->prev;
    }
    wc->prev = wc->next = NULL;
}

/* Poll for what the connection needs now: POLLOUT while output is stuck
 * (and then no reading: backpressure), else POLLIN.  epoll has no "modify"
 * in APR: remove, then add. */
static void set_events(ws_conn_t *wc)
{
    apr_int16_t want = wc->c->data_in_output_filters ? APR_POLLOUT
                                                     : APR_POLLIN;

    if (want == wc->polled_events) {
        return;
    }
    if (wc->polled_events) {
        apr_pollset_remove(reactor.pollset, &wc->pfd);
    }
    wc->pfd.reqevents = want;
    wc->polled_events = apr_pollset_add(reactor.pollset, &wc->pfd)
                        == APR_SUCCESS ? want : 0;
}

static void poll_remove(ws_conn_t *wc)
{
    if (wc->polled_events) {
        apr_pollset_remove(reactor.pollset, &wc->pfd);
        wc->polled_events = 0;
    }
}

/* The socket is closed: c->pool dies later (trap: not sooner than
 * WS_REACTOR_DESTROY_DELAY after the hand-off, and not in this turn). */
static void to_graveyard(ws_conn_t *wc, apr_time_t now)
{
    apr_socket_t *sock = ap_get_conn_socket(wc->c);

    poll_remove(wc);
    if (sock) {
        apr_socket_close(sock);
    }
    wc->closed = 1;
    wc->destroy_at = wc->handoff + WS_REACTOR_DESTROY_DELAY;
    if (wc->destroy_at < now) {
        wc->destroy_at = now;
    }
    wc->qnext = reactor.graveyard;
    reactor.graveyard = wc;
}

/* End the connection: the access-log line, close_notify under TLS, our
 * FIN; then drop what the peer still sends until its FIN (a close() with
 * unread data would reset the connection, and the peer could lose our
 * close frame).  Never ap_lingering_close here: it blocks (trap). */
static void close_conn(ws_conn_t *wc, apr_time_t now)
{
    conn_rec *c = wc->c;
    apr_socket_t *sock = ap_get_conn_socket(c);
    apr_bucket *b;

    poll_remove(wc);
    list_remove(&reactor.conns, wc);
    ws_conn_jobs_finish(wc, 1);
    ws_conn_finish(wc);
    ap_run_log_transaction(wc->r);
    if (c->aborted || !sock) {
        to_graveyard(wc, now);
        return;
    }
    b = ap_bucket_eoc_create(c->bucket_alloc);
    APR_BRIGADE_INSERT_TAIL(wc->bb_out, b);
    ap_pass_brigade(c->output_filters, wc->bb_out);
    apr_brigade_cleanup(wc->bb_out);
    c->aborted = 1;
    if (apr_socket_shutdown(sock, APR_SHUTDOWN_WRITE) != APR_SUCCESS) {
        to_graveyard(wc, now);
        return;
    }
    apr_socket_timeout_set(sock, 0);
    wc->destroy_at = now + WS_REACTOR_LINGER;    /* the linger deadline */
    list_push(&reactor.lingering, wc);
    wc->pfd.reqevents = APR_POLLIN;
    wc->polled_events = apr_pollset_add(reactor.pollset, &wc->pfd)
                        == APR_SUCCESS ? APR_POLLIN : 0;
    if (!wc->polled_events) {
        list_remove(&reactor.lingering, wc);
        to_graveyard(wc, now);
    }
}

/* A lingering connection is readable: drop the bytes; at its FIN, or
 * any error, or the deadline, close. */
static void linger(ws_conn_t *wc, apr_time_t now)
{
    apr_socket_t *sock = ap_get_conn_socket(wc->c);
    char buf[4096];
    apr_size_t len;
    apr_status_t rv;
    int n = 0;

    do {
        len = sizeof(buf);
        rv = apr_socket_recv(sock, buf, &len);
    } while (rv == APR_SUCCESS && len > 0 && ++n < 16);
    if ((APR_STATUS_IS_EAGAIN(rv) || (rv == APR_SUCCESS && len > 0))
        && now < wc->destroy_at) {
        return;
    }
    list_remove(&reactor.lingering, wc);
    to_graveyard(wc, now);
}

/* Read and write what the connection can without blocking, then close it
 * or poll it for what it needs next. */
static void service(ws_conn_t *wc, apr_time_t now)
{
    apr_status_t rv = APR_SUCCESS;

    if (ws_conn_take_deliveries(wc) != APR_SUCCESS) {
        close_conn(wc, now);
        return;
    }

    if (wc->c->data_in_output_filters) {
        rv = ws_conn_write_nonblocking(wc);
    }
    if (rv == APR_SUCCESS && !wc->c->data_in_output_filters
        && ws_session_state(wc->session) != WS_SESSION_CLOSED) {
        rv = ws_conn_read(wc, WS_REACTOR_READ_BUDGET);
        if (rv == APR_INCOMPLETE) {
            if (!wc->queued) {
                wc->queued = 1;
                wc->qnext = reactor.ready;
                reactor.ready = wc;
            }
            rv = APR_SUCCESS;
        }
        else if (rv != APR_SUCCESS) {
            ws_session_peer_eof(wc->session);
            rv = APR_SUCCESS;
        }
    }
    /* Deadlines run even while output is stuck: a peer that reads nothing
     * still meets the idle timeout and the closing handshake's bound. */
    if (rv == APR_SUCCESS) {
        ws_session_tick(wc->session, now);
        rv = ws_conn_write_nonblocking(wc);
    }
    if (rv != APR_SUCCESS) {
        ap_log_cerror(APLOG_MARK, APLOG_DEBUG, rv, wc->c,
                      WSLOGNO(00040) "ws %s: write failed", wc->id);
        wc->c->aborted = 1;
        ws_session_peer_eof(wc->session);
        close_conn(wc, now);
        return;
    }
    if (ws_session_done(wc->session) && !wc->c->data_in_output_filters) {
        close_conn(wc, now);
        return;
    }
    set_events(wc);
}

static void adopt(ws_conn_t *wc, apr_thread_t *self, apr_time_t now)
{
    conn_rec *c = wc->c;
    apr_status_t rv;

    c->current_thread = self;
    wc->on_reactor = 1;
    ws_status_adopted();
    list_push(&reactor.conns, wc);
    memset(&wc->pfd, 0, sizeof(wc->pfd));
    wc->pfd.p = c->pool;
    wc->pfd.desc_type = APR_NO_DESC;
    rv = ap_get_pollfd_from_conn(c, &wc->pfd, NULL);
    if (rv != APR_SUCCESS || wc->pfd.desc_type == APR_NO_DESC) {
        ap_log_cerror(APLOG_MARK, APLOG_ERR, rv, c,
                      WSLOGNO(00041) "ws %s: cannot poll the connection",
                      wc->id);
        ws_session_peer_eof(wc->session);
        close_conn(wc, now);
        return;
    }
    wc->pfd.client_data = wc;
    ap_log_cerror(APLOG_MARK, APLOG_TRACE1, 0, c,
                  "ws %s: adopted by the reactor", wc->id);
    ws_conn_open(wc);
    if (apr_atomic_read32(&reactor.stopping)) {
        ws_conn_shutdown(wc);
    }
    /* Trap: bytes sent right behind the handshake are already buffered,
     * and poll will never report them. */
    service(wc, now);
}

static void adopt_queued(apr_thread_t *self, apr_time_t now)
{
    ws_conn_t *wc, *next;
    int n = 0;

    apr_thread_mutex_lock(reactor.mutex);
    wc = reactor.adopt_head;
    while (reactor.adopt_head && n < WS_REACTOR_BATCH) {
        reactor.adopt_head = reactor.adopt_head->qnext;
        ++n;
    }
    if (!reactor.adopt_head) {
        reactor.adopt_tail = NULL;
    }
    apr_thread_mutex_unlock(reactor.mutex);
    for (; n > 0; --n, wc = next) {
        next = wc->qnext;
        adopt(wc, self, now);
    }
}

/* Jobs ended: their done callbacks, then what they sent. */
static void service_posted(apr_time_t now)
{
    ws_conn_t *wc, *next;

    apr_thread_mutex_lock(reactor.mutex);
    wc = reactor.posted;
    reactor.posted = NULL;
    apr_thread_mutex_unlock(reactor.mutex);
    for (; wc; wc = next) {
        /* One at a time: once wc->posted is clear another thread may post
         * wc again, onto the new list, through wc->pnext; so its next on
         * this list is read first.  (Clearing them all up front lost the
         * rest of this list whenever one was posted again meanwhile: those
         * waited for their next timer, ~30 s.) */
        apr_thread_mutex_lock(reactor.mutex);
        next = wc->pnext;
        wc->posted = 0;
        apr_thread_mutex_unlock(reactor.mutex);
        /* Most posts are deliveries: the job mutex only when wc has jobs
         * (the count includes queued ones). */
        if (apr_atomic_read32(&wc->jobs)) {
            ws_conn_jobs_finish(wc, wc->c->aborted);
        }
        if (!wc->c->aborted) {
            service(wc, now);
        }
    }
}

static void service_ready(apr_time_t now)
{
    ws_conn_t *wc = reactor.ready, *next;

    reactor.ready = NULL;
    for (; wc; wc = next) {
        next = wc->qnext;
        wc->queued = 0;
        if (!wc->closed && !wc->c->aborted) {
            service(wc, now);
        }
    }
}

/* Deadlines: pings, idle peers, close handshakes that never end, and the
 * bound on closing when the child stops. */
static void sweep(apr_time_t now)
{
    ws_conn_t *wc, *next;
    apr_time_t deadline;
    int force = reactor.stop_deadline && now >= reactor.stop_deadline;

    for (wc = reactor.conns; wc; wc = next) {
        next = wc->next;
        if (force) {
            wc->c->aborted = 1;
            ws_session_peer_eof(wc->session);
            close_conn(wc, now);
            continue;
        }
        /* A peer that reads nothing keeps our last frames (the close
         * frame among them) from leaving: once the session is over, it
         * gets as long as a closing handshake would, then is dropped. */
        if (ws_session_state(wc->session) == WS_SESSION_CLOSED) {
            if (!wc->stuck_since) {
                wc->stuck_since = now;
            }
            else if (now - wc->stuck_since > reactor.shutdown_timeout) {
                ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, wc->c,
                              WSLOGNO(00045) "ws %s: peer reads nothing; "
                              "dropping the connection", wc->id);
                wc->c->aborted = 1;
                close_conn(wc, now);
                continue;
            }
        }
        deadline = ws_session_deadline(wc->session);
        if (deadline && deadline <= now && !wc->queued) {
            service(wc, now);
        }
    }
}

static void sweep_lingering(apr_time_t now, int all)
{
    ws_conn_t *wc, *next;

    for (wc = reactor.lingering; wc; wc = next) {
        next = wc->next;
        if (all || now >= wc->destroy_at) {
            list_remove(&reactor.lingering, wc);
            to_graveyard(wc, now);
        }
    }
}

static void begin_stop(apr_time_t now)
{
    ws_conn_t *wc, *next;

    reactor.stop_deadline = now + reactor.shutdown_timeout;
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, reactor.server,
                 WSLOGNO(00042) "reactor: child stopping, closing its "
                 "WebSockets with 1001");
    for (wc = reactor.conns; wc; wc = next) {
        next = wc->next;
        ws_conn_shutdown(wc);
        service(wc, now);
    }
}

static void bury(apr_time_t now, int all)
{
    ws_conn_t **pp = &reactor.graveyard, *wc;
    int n = 0;

    if (!reactor.graveyard) {
        return;
    }
    /* A connection still on the posted list (a delivery woke it just
     * before it left its channels) is read by the next turn. */
    apr_thread_mutex_lock(reactor.mutex);
    while ((wc = *pp) && (all || n < WS_REACTOR_BATCH)) {
        /* A job of its own still running will touch wc when it ends. */
        if ((all || wc->destroy_at <= now) && !apr_atomic_read32(&wc->jobs)
            && !wc->posted) {
            *pp = wc->qnext;
            /* c->pool holds r, wc and the session: all end here, and the
             * pool's cleanup settles the MPM's connection counts. */
            apr_pool_destroy(wc->c->pool);
            ++n;
        }
        else {
            pp = &wc->qnext;
        }
    }
    apr_thread_mutex_unlock(reactor.mutex);
}

static apr_interval_time_t poll_timeout(apr_time_t now)
{
    apr_interval_time_t t = reactor.next_sweep - now;

    if (reactor.ready || reactor.adopt_head || reactor.posted) {
        return 0;
    }
    if (reactor.graveyard && t > WS_REACTOR_DESTROY_DELAY) {
        t = WS_REACTOR_DESTROY_DELAY;
    }
    return t < 0 ? 0 : t;
}

static void *APR_THREAD_FUNC reactor_main(apr_thread_t *self, void *data)
{
    const apr_pollfd_t *out;
    apr_int32_t n, i;
    apr_time_t now = apr_time_now();
    apr_status_t rv;

    reactor.next_sweep = now + WS_REACTOR_SWEEP;
    while (!apr_atomic_read32(&reactor.exiting)) {
        rv = apr_pollset_poll(reactor.pollset, poll_timeout(now), &n, &out);
        now = apr_time_now();
        if (rv != APR_SUCCESS) {
            n = 0;
            if (!APR_STATUS_IS_EINTR(rv) && !APR_STATUS_IS_TIMEUP(rv)) {
                ap_log_error(APLOG_MARK, APLOG_ERR, rv, reactor.server,
                             WSLOGNO(00043) "reactor: poll failed");
                apr_sleep(apr_time_from_msec(10));
            }
        }
        for (i = 0; i < n; ++i) {
            ws_conn_t *wc = out[i].client_data;

            if (wc && wc->closed) {
                continue;
            }
            if (wc && wc->c->aborted) {
                linger(wc, now);
            }
            else if (wc) {
                service(wc, now);
            }
        }
        service_posted(now);
        service_ready(now);
        adopt_queued(self, now);
        if (apr_atomic_read32(&reactor.stopping) && !reactor.stop_deadline) {
            begin_stop(now);
        }
        if (now >= reactor.next_sweep || reactor.stop_deadline) {
            sweep(now);
            sweep_lingering(now, reactor.stop_deadline
                                 && now >= reactor.stop_deadline);
            reactor.next_sweep = now + WS_REACTOR_SWEEP;
        }
        bury(now, 0);
    }
    return NULL;
}

/* The value of a directive anywhere in the configuration tree (inside
 * <IfModule> too), or NULL.  httpd applies each occurrence in turn, so the
 * last one in the files is the one in force. */
static const char *find_directive(const ap_directive_t *d, const char *name)
{
    const char *v, *last = NULL;

    for (; d; d = d->next) {
        if (!strcasecmp(d->directive, name)) {
            last = d->args;
        }
        if (d->first_child && (v = find_directive(d->first_child, name))) {
            last = v;
        }
    }
    return last;
}

void ws_reactor_check_mpm(server_rec *s)
{
    int async = 0, per_child = 0, threads = 0, daemons = 0, spare = 0;
    const char *arg;
    double factor = 2.0;   /* the event MPM's default */

    /* Once, not also on the first of httpd's two configuration passes. */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG
        || !ws_config_handlers_used
        || ap_mpm_query(AP_MPMQ_IS_ASYNC, &async) != APR_SUCCESS || !async) {
        return;
    }
    ap_mpm_query(AP_MPMQ_MAX_REQUESTS_DAEMON, &per_child);
    ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads);
    ap_mpm_query(AP_MPMQ_MAX_DAEMONS, &daemons);
    ap_mpm_query(AP_MPMQ_MAX_SPARE_THREADS, &spare);
    if (per_child != 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     WSLOGNO(00060) "MaxConnectionsPerChild is %d: a child "
                     "that reaches it closes all its WebSockets with 1001. "
                     "Set MaxConnectionsPerChild 0", per_child);
    }
    if (daemons > 1 && spare < daemons * threads) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     WSLOGNO(00061) "MaxSpareThreads is %d: WebSockets on the "
                     "reactor leave worker threads idle, so httpd stops "
                     "\"idle\" children and closes their WebSockets. Set "
                     "MaxSpareThreads to at least MaxRequestWorkers (%d)",
                     spare, daemons * threads);
    }
    arg = find_directive(ap_conftree, "AsyncRequestWorkerFactor");
    if (arg) {
        factor = strtod(arg, NULL);
    }
    /* The event MPM stops accepting on a child, plain HTTP included, at
     * ThreadsPerChild + idle workers x factor connections, and suspended
     * WebSockets count (reactor-spike.md). */
    if (factor < 50.0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     WSLOGNO(00062) "AsyncRequestWorkerFactor is %g: a child "
                     "stops accepting connections, plain HTTP too, at about "
                     "%d open WebSockets. Set it to at least the WebSockets "
                     "a child should hold divided by ThreadsPerChild (e.g. "
                     "1000 for 10000 per child with ThreadsPerChild 25; see "
                     "README, \"Sizing the event MPM\")", factor,
                     (int)(threads + threads * factor));
    }
}

/* pchild's pre-cleanup: the reactor ends before the child's pools do. */
static apr_status_t reactor_exit(void *data)
{
    apr_status_t rv;

    apr_atomic_set32(&reactor.exiting, 1);
    apr_pollset_wakeup(reactor.pollset);
    apr_thread_join(&rv, reactor.thread);
    reactor.running = 0;
    return APR_SUCCESS;
}

apr_status_t ws_reactor_child_init(apr_pool_t *pchild, server_rec *s)
{
    const ws_server_conf_t *sc = ws_config_server(s);
    int async = 0;
    apr_status_t rv;

    if (ap_mpm_query(AP_MPMQ_IS_ASYNC, &async) != APR_SUCCESS || !async) {
        return APR_SUCCESS;
    }
    reactor.shutdown_timeout = sc->shutdown_timeout;
    reactor.server = s;
    rv = apr_thread_mutex_create(&reactor.mutex, APR_THREAD_MUTEX_DEFAULT,
                                 pchild);
    if (rv == APR_SUCCESS) {
        rv = apr_pollset_create(&reactor.pollset, WS_REACTOR_EVENTS, pchild,
                                APR_POLLSET_WAKEABLE | APR_POLLSET_NOCOPY);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_thread_create(&reactor.thread, NULL, reactor_main, NULL,
                               pchild);
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s,
                     WSLOGNO(00044) "cannot start the reactor thread; "
                     "WebSockets will each hold a worker thread");
        return rv;
    }
    apr_pool_pre_cleanup_register(pchild, NULL, reactor_exit);
    reactor.running = 1;
    return APR_SUCCESS;
}
