/* mod_ws_hub.c: channels in a child process, and its link to the hub.
 *
 * The channel table maps a name to the child's connections subscribed to
 * it.  A message is delivered by queueing one reference to its payload on
 * each subscriber's inbox and waking the subscriber's owner (its thread,
 * or the reactor), which moves it into the session (ws_hub_drain).  One
 * mutex guards the table and every inbox; a connection leaves the table
 * (ws_hub_unsubscribe_all) before it is destroyed, so holding the mutex
 * keeps every subscribed connection alive.
 *
 * The hub thread keeps a Unix-socket connection to the hub process
 * (mod_ws_hubd.c): it writes what this child publishes, and delivers
 * every frame the hub sends, the child's own ones included.  Without the
 * hub a child delivers to its own subscribers only.
 *
 * Threads: ws_hub_publish and ws_hub_wait from any thread; the hub thread
 * owns the socket; subscribe, unsubscribe and drain on the owner of the
 * connection.
 */
#include "mod_ws_hub.h"
#include "mod_ws_status.h"

#include "apr_atomic.h"
#include "apr_hash.h"
#include "apr_strings.h"
#include "apr_thread_cond.h"
#include "apr_thread_mutex.h"
#include "apr_thread_proc.h"

#include "ws_hubwire.h"
#include "ws_utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* How often the hub thread tries to reach a hub that is not there. */
#define WS_HUB_RETRY apr_time_from_msec(100)
#define WS_HUB_READ_CHUNK (64 * 1024)

typedef struct ws_chan_t ws_chan_t;

/* One connection's subscription to one channel. */
struct ws_sub_t {
    ws_conn_t *wc;
    ws_chan_t *ch;
    ws_sub_t *cprev, *cnext;        /* the channel's subscribers */
    ws_sub_t *wnext;                /* the connection's subscriptions */
};

struct ws_chan_t {
    char *name;
    apr_size_t len;
    ws_sub_t *subs;
};

/* A message on a connection's inbox. */
struct ws_inbox_t {
    ws_msg_t *m;
    ws_inbox_t *next;
};

/* One per child, made in child_init. */
static struct {
    apr_thread_mutex_t *mutex;      /* channels, subscriptions, inboxes */
    apr_hash_t *channels;

    apr_thread_mutex_t *out_mutex;  /* out, connected, the sequence */
    apr_thread_cond_t *acked;
    ws_hubbuf_t out;                  /* frames for the hub */
    int connected;
    apr_uint64_t next_seq;          /* last number given */
    apr_uint64_t acked_seq;         /* the hub sent it back */
    apr_uint64_t lost_seq;          /* at and below: never coming back */

    int wake[2];                    /* a pipe: wakes the hub thread */
    apr_thread_t *thread;
    volatile apr_uint32_t exiting;
    server_rec *server;
} hub = { NULL, NULL, NULL, NULL, { NULL, 0, 0, 0 }, 0, 0, 0, 0,
          { -1, -1 }, NULL, 0, NULL };

ws_msg_t *ws_msg_create(int type, const void *data, apr_size_t len)
{
    ws_msg_t *m = malloc(sizeof(*m) + len);

    if (!m) {
        return NULL;
    }
    m->refs = 1;
    m->type = type;
    m->len = len;
    if (len) {
        memcpy(m->data, data, len);
    }
    return m;
}

void ws_msg_unref(ws_msg_t *m)
{
    if (m && apr_atomic_dec32(&m->refs) == 0) {
        free(m);
    }
}

int ws_channel_name_ok(const char *name, apr_size_t len)
{
    apr_size_t i;

    if (!name || len == 0 || len > WS_CHANNEL_MAX) {
        return 0;
    }
    for (i = 0; i < len; ++i) {
        unsigned char c = (unsigned char)name[i];

        if (c <= 0x20 || c == 0x7f || c == '/') {
            return 0;
        }
    }
    return ws_utf8_valid((const unsigned char *)name, len);
}

/* ---- the channel table (under hub.mutex) ---- */

/* Queue m for wc and wake its owner.  Over the connection's limit the
 * message is not queued and the connection is marked to be dropped; a
 * thread-driver owner may be blocked writing to a peer that reads
 * nothing, so its socket is shut down to end that write. */
static void inbox_push(ws_conn_t *wc, ws_msg_t *m)
{
    ws_inbox_t *it;
    int was_empty = wc->inbox == NULL;

    if (wc->overflow) {
        return;
    }
    if (wc->inbox_bytes + m->len > wc->dcfg->send_queue_limit
        || !(it = malloc(sizeof(*it)))) {
        wc->overflow = 1;
        if (!wc->on_reactor && wc->sock) {
            apr_socket_shutdown(wc->sock, APR_SHUTDOWN_READWRITE);
        }
        ws_conn_wake(wc);
        return;
    }
    apr_atomic_inc32(&m->refs);
    it->m = m;
    it->next = NULL;
    *wc->inbox_tail = it;
    wc->inbox_tail = &it->next;
    wc->inbox_bytes += m->len;
    if (was_empty) {
        ws_conn_wake(wc);
    }
}

static void deliver_local(const char *name, apr_size_t len, ws_msg_t *m,
                          apr_uint32_t exclude)
{
    ws_chan_t *ch;
    ws_sub_t *sub;
    apr_size_t n = 0;

    if (!hub.mutex) {
        return;
    }
    apr_thread_mutex_lock(hub.mutex);
    ch = apr_hash_get(hub.channels, name, (apr_ssize_t)len);
    for (sub = ch ? ch->subs : NULL; sub; sub = sub->cnext) {
        if (sub->wc->serial != exclude) {
            inbox_push(sub->wc, m);
            ++n;
        }
    }
    apr_thread_mutex_unlock(hub.mutex);
    ws_status_channel(0, n, 0);
}

apr_status_t ws_hub_subscribe(ws_conn_t *wc, const char *name)
{
    apr_size_t len = strlen(name);
    ws_chan_t *ch;
    ws_sub_t *sub;

    if (!ws_channel_name_ok(name, len)) {
        return APR_EINVAL;
    }
    if (!hub.mutex) {
        return APR_EINIT;
    }
    apr_thread_mutex_lock(hub.mutex);
    for (sub = wc->subs; sub; sub = sub->wnext) {
        if (sub->ch->len == len && !memcmp(sub->ch->name, name, len)) {
            apr_thread_mutex_unlock(hub.mutex);
            return APR_SUCCESS;
        }
    }
    ch = apr_hash_get(hub.channels, name, (apr_ssize_t)len);
    if (!ch) {
        ch = calloc(1, sizeof(*ch));
        if (ch && !(ch->name = malloc(len + 1))) {
            free(ch);
            ch = NULL;
        }
        if (!ch) {
            apr_thread_mutex_unlock(hub.mutex);
            return APR_ENOMEM;
        }
        memcpy(ch->name, name, len + 1);
        ch->len = len;
        apr_hash_set(hub.channels, ch->name, (apr_ssize_t)len, ch);
    }
    sub = calloc(1, sizeof(*sub));
    if (!sub) {
        apr_thread_mutex_unlock(hub.mutex);
        return APR_ENOMEM;
    }
    sub->wc = wc;
    sub->ch = ch;
    sub->cnext = ch->subs;
    if (ch->subs) {
        ch->subs->cprev = sub;
    }
    ch->subs = sub;
    sub->wnext = wc->subs;
    wc->subs = sub;
    apr_thread_mutex_unlock(hub.mutex);
    return APR_SUCCESS;
}

/* Under hub.mutex. */
static void sub_free(ws_sub_t *sub)
{
    ws_chan_t *ch = sub->ch;

    if (sub->cprev) {
        sub->cprev->cnext = sub->cnext;
    }
    else {
        ch->subs = sub->cnext;
    }
    if (sub->cnext) {
        sub->cnext->cprev = sub->cprev;
    }
    free(sub);
    if (!ch->subs) {
        apr_hash_set(hub.channels, ch->name, (apr_ssize_t)ch->len, NULL);
        free(ch->name);
        free(ch);
    }
}

void ws_hub_unsubscribe(ws_conn_t *wc, const char *name)
{
    apr_size_t len = strlen(name);
    ws_sub_t **pp, *sub;

    if (!hub.mutex) {
        return;
    }
    apr_thread_mutex_lock(hub.mutex);
    for (pp = &wc->subs; (sub = *pp); pp = &sub->wnext) {
        if (sub->ch->len == len && !memcmp(sub->ch->name, name, len)) {
            *pp = sub->wnext;
            sub_free(sub);
            break;
        }
    }
    apr_thread_mutex_unlock(hub.mutex);
}

void ws_hub_unsubscribe_all(ws_conn_t *wc)
{
    ws_sub_t *sub;
    ws_inbox_t *it;

    if (!hub.mutex) {
        return;
    }
    apr_thread_mutex_lock(hub.mutex);
    while ((sub = wc->subs)) {
        wc->subs = sub->wnext;
        sub_free(sub);
    }
    while ((it = wc->inbox)) {
        wc->inbox = it->next;
        ws_msg_unref(it->m);
        free(it);
    }
    wc->inbox_tail = &wc->inbox;
    wc->inbox_bytes = 0;
    apr_thread_mutex_unlock(hub.mutex);
}

apr_status_t ws_hub_drain(ws_conn_t *wc)
{
    ws_inbox_t *it, *next;
    int overflow;

    if (!wc->inbox && !wc->overflow) {
        return APR_SUCCESS;    /* unlocked peek: a miss is caught later */
    }
    apr_thread_mutex_lock(hub.mutex);
    it = wc->inbox;
    wc->inbox = NULL;
    wc->inbox_tail = &wc->inbox;
    wc->inbox_bytes = 0;
    overflow = wc->overflow;
    apr_thread_mutex_unlock(hub.mutex);
    for (; it; it = next) {
        next = it->next;
        if (!overflow) {
            /* The peer's unread backlog and this message together. */
            if (ws_session_queued(wc->session) + it->m->len
                > wc->dcfg->send_queue_limit) {
                overflow = 1;
            }
            else {
                ws_conn_send(wc, it->m->type, it->m->data, it->m->len);
            }
        }
        ws_msg_unref(it->m);
        free(it);
    }
    if (overflow) {
        apr_thread_mutex_lock(hub.mutex);
        wc->overflow = 1;
        apr_thread_mutex_unlock(hub.mutex);
        ws_status_channel(0, 0, 1);
        return APR_ENOSPC;
    }
    return APR_SUCCESS;
}

/* ---- frames ---- */

/* Deliver one whole frame here (`local`: one of ours that never reached
 * the hub). */
static void frame_deliver(const ws_hubframe_t *f, int local)
{
    ws_msg_t *m = ws_msg_create((int)f->type, f->data, f->len);

    if (m) {
        /* The sender to leave out is a connection of the publishing
         * child; elsewhere its serial means nothing. */
        deliver_local(f->channel, f->channel_len, m,
                      ((f->flags & WS_HUBWIRE_YOURS) || local) ? f->exclude
                                                               : 0);
        ws_msg_unref(m);
    }
}

/* ---- publishing ---- */

static void wake_thread(void)
{
    char c = 0;

    if (hub.wake[1] >= 0 && write(hub.wake[1], &c, 1) < 0) {
        /* the pipe is full: the thread is awake already */
    }
}

apr_status_t ws_hub_publish(const char *name, int type, const void *data,
                            apr_size_t len, ws_conn_t *exclude,
                            apr_uint64_t *seq)
{
    apr_size_t chlen = name ? strlen(name) : 0;
    apr_uint32_t ex = exclude ? exclude->serial : 0;
    ws_msg_t *m;
    int queued = 0, first = 0;

    if (seq) {
        *seq = 0;
    }
    if (!ws_channel_name_ok(name, chlen)
        || (type != WS_MSG_TEXT && type != WS_MSG_BINARY)) {
        return APR_EINVAL;
    }
    if (!hub.mutex) {
        return APR_EINIT;
    }
    ws_status_channel(1, 0, 0);
    apr_thread_mutex_lock(hub.out_mutex);
    if (hub.connected) {
        ws_hubframe_t f;

        f.type = (unsigned)type;
        f.flags = 0;
        f.exclude = ex;
        f.seq = hub.next_seq + 1;
        f.channel = name;
        f.channel_len = chlen;
        f.data = data;
        f.len = len;
        first = hub.out.len == hub.out.off;
        if (ws_hubframe_append(&hub.out, &f, WS_HUB_BUFFER_MAX) == 0) {
            queued = 1;
            if (seq) {
                *seq = hub.next_seq + 1;
            }
            ++hub.next_seq;
        }
    }
    apr_thread_mutex_unlock(hub.out_mutex);
    if (queued) {
        if (first) {
            wake_thread();
        }
        return APR_SUCCESS;
    }
    /* No hub (or it is far behind): this child's subscribers at least. */
    m = ws_msg_create(type, data, len);
    if (!m) {
        return APR_ENOMEM;
    }
    deliver_local(name, chlen, m, ex);
    ws_msg_unref(m);
    return APR_SUCCESS;
}

apr_status_t ws_hub_wait(apr_uint64_t seq, apr_interval_time_t timeout)
{
    apr_time_t end = apr_time_now() + timeout, now;
    apr_status_t rv = APR_SUCCESS;

    if (!seq) {
        return APR_ECONNREFUSED;
    }
    apr_thread_mutex_lock(hub.out_mutex);
    while (hub.acked_seq < seq && hub.lost_seq < seq) {
        now = apr_time_now();
        if (now >= end) {
            rv = APR_TIMEUP;
            break;
        }
        apr_thread_cond_timedwait(hub.acked, hub.out_mutex, end - now);
    }
    if (rv == APR_SUCCESS && hub.acked_seq < seq) {
        rv = APR_ECONNREFUSED;
    }
    apr_thread_mutex_unlock(hub.out_mutex);
    return rv;
}

/* ---- the socket ---- */

int ws_hub_send(int fd, ws_hubbuf_t *b)
{
    ssize_t n;

    while (b->off < b->len) {
        n = send(fd, b->p + b->off, b->len - b->off,
                 MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
        }
        b->off += (size_t)n;
    }
    return 0;
}

int ws_hub_recv(int fd, ws_hubbuf_t *b)
{
    size_t got = 0;
    ssize_t n;

    while (got < WS_HUB_READ_MAX) {
        if (ws_hubbuf_reserve(b, WS_HUB_READ_CHUNK)) {
            return -1;
        }
        n = recv(fd, b->p + b->len, WS_HUB_READ_CHUNK, MSG_DONTWAIT);
        if (n == 0) {
            return -1;
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
        }
        b->len += (size_t)n;
        got += (size_t)n;
        if (n < WS_HUB_READ_CHUNK) {
            break;
        }
    }
    return 0;
}

/* ---- the hub thread ---- */

static int hub_connect(void)
{
    struct sockaddr_un sa;
    int fd;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (!ws_hub_socket_path
        || strlen(ws_hub_socket_path) >= sizeof(sa.sun_path)) {
        return -1;
    }
    strcpy(sa.sun_path, ws_hub_socket_path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Deliver here the frames of b that end past its first `sent` bytes. */
static void deliver_unsent(const ws_hubbuf_t *b, size_t sent)
{
    ws_hubframe_t f;
    apr_ssize_t flen;
    size_t off = 0;

    while ((flen = ws_hubframe_parse(b->p + off, b->len - off,
                                     WS_HUB_BUFFER_MAX, &f)) > 0) {
        if (off + (size_t)flen > sent) {
            frame_deliver(&f, 1);
        }
        off += (size_t)flen;
    }
}

/* The link broke: frames the hub never got in whole go to this child's
 * subscribers; the ones it got and did not send back are lost. */
static void hub_lost(int fd, ws_hubbuf_t *w)
{
    ws_hubbuf_t t;

    close(fd);
    ws_status_hub_link(0);
    apr_thread_mutex_lock(hub.out_mutex);
    hub.connected = 0;
    hub.lost_seq = hub.next_seq;
    apr_thread_cond_broadcast(hub.acked);
    t = hub.out;
    memset(&hub.out, 0, sizeof(hub.out));
    apr_thread_mutex_unlock(hub.out_mutex);
    deliver_unsent(w, w->off);
    w->off = w->len = 0;
    deliver_unsent(&t, 0);
    free(t.p);
}

static void *APR_THREAD_FUNC hub_main(apr_thread_t *self, void *data)
{
    ws_hubbuf_t r = { NULL, 0, 0, 0 }, w = { NULL, 0, 0, 0 };
    struct pollfd pfd[2];
    char drain[256];
    int fd = -1, lost_logged = 0;

    while (!apr_atomic_read32(&hub.exiting)) {
        if (fd < 0) {
            fd = hub_connect();
            if (fd < 0) {
                if (!lost_logged) {
                    ap_log_error(APLOG_MARK, APLOG_DEBUG, errno, hub.server,
                                 WSLOGNO(00105) "hub: not reachable at %s; "
                                 "retrying", ws_hub_socket_path);
                    lost_logged = 1;
                }
                pfd[0].fd = hub.wake[0];
                pfd[0].events = POLLIN;
                poll(pfd, 1, (int)apr_time_as_msec(WS_HUB_RETRY));
                while (read(hub.wake[0], drain, sizeof(drain)) > 0) {
                }
                continue;
            }
            lost_logged = 0;
            r.off = r.len = 0;
            apr_thread_mutex_lock(hub.out_mutex);
            hub.connected = 1;
            apr_thread_mutex_unlock(hub.out_mutex);
            ws_status_hub_link(1);
            ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, hub.server,
                         WSLOGNO(00106) "hub: connected");
        }
        /* Take what publishers queued. */
        if (w.off == w.len) {
            ws_hubbuf_t t;

            apr_thread_mutex_lock(hub.out_mutex);
            t = hub.out;
            hub.out = w;
            hub.out.off = hub.out.len = 0;
            apr_thread_mutex_unlock(hub.out_mutex);
            w = t;
        }
        pfd[0].fd = fd;
        pfd[0].events = POLLIN | (w.off < w.len ? POLLOUT : 0);
        pfd[1].fd = hub.wake[0];
        pfd[1].events = POLLIN;
        pfd[0].revents = pfd[1].revents = 0;
        if (poll(pfd, 2, 1000) < 0 && errno != EINTR) {
            apr_sleep(apr_time_from_msec(10));
            continue;
        }
        if (pfd[1].revents & POLLIN) {
            while (read(hub.wake[0], drain, sizeof(drain)) > 0) {
            }
        }
        if (ws_hub_send(fd, &w)) {
            goto broken;
        }
        if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ws_hubframe_t f;
            apr_ssize_t flen;
            /* What came before the end is delivered all the same. */
            int ended = ws_hub_recv(fd, &r);

            while ((flen = ws_hubframe_parse(r.p + r.off, r.len - r.off,
                                             WS_HUB_BUFFER_MAX, &f)) > 0) {
                frame_deliver(&f, 0);
                r.off += (size_t)flen;
                if (f.flags & WS_HUBWIRE_YOURS) {
                    apr_thread_mutex_lock(hub.out_mutex);
                    if (f.seq > hub.acked_seq) {
                        hub.acked_seq = f.seq;
                    }
                    apr_thread_cond_broadcast(hub.acked);
                    apr_thread_mutex_unlock(hub.out_mutex);
                }
            }
            if (ended || flen < 0) {
                goto broken;
            }
        }
        continue;
broken:
        /* The parent logs the hub's death; here it is also every restart. */
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, hub.server,
                     WSLOGNO(00107) "hub: connection lost; messages reach "
                     "this child's subscribers only until it is back");
        hub_lost(fd, &w);
        fd = -1;
    }
    if (fd >= 0) {
        close(fd);
    }
    ws_hubbuf_free(&r);
    ws_hubbuf_free(&w);
    return NULL;
}

static apr_status_t hub_child_exit(void *data)
{
    apr_status_t rv;

    apr_atomic_set32(&hub.exiting, 1);
    if (hub.thread) {
        wake_thread();
        apr_thread_join(&rv, hub.thread);
        hub.thread = NULL;
    }
    return APR_SUCCESS;
}

apr_status_t ws_hub_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv;

    hub.server = s;
    hub.channels = apr_hash_make(pchild);
    rv = apr_thread_mutex_create(&hub.mutex, APR_THREAD_MUTEX_DEFAULT,
                                 pchild);
    if (rv == APR_SUCCESS) {
        rv = apr_thread_mutex_create(&hub.out_mutex,
                                     APR_THREAD_MUTEX_DEFAULT, pchild);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_thread_cond_create(&hub.acked, pchild);
    }
    if (rv != APR_SUCCESS) {
        hub.mutex = NULL;
        return rv;
    }
    if (!ws_config_handlers_used || !ws_hub_socket_path) {
        return APR_SUCCESS;
    }
    if (pipe2(hub.wake, O_NONBLOCK | O_CLOEXEC) < 0) {
        return APR_FROM_OS_ERROR(errno);
    }
    rv = apr_thread_create(&hub.thread, NULL, hub_main, NULL, pchild);
    if (rv != APR_SUCCESS) {
        hub.thread = NULL;
        return rv;
    }
    apr_pool_pre_cleanup_register(pchild, NULL, hub_child_exit);
    return APR_SUCCESS;
}
