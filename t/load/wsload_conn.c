/* wsload_conn.c: one client connection of the load generator.
 *
 * Non-blocking TCP to a loopback address, the opening handshake of RFC 6455
 * §4.1 (the 101 and its Sec-WebSocket-Accept are checked), then mod_ws's
 * own session in client mode: it masks what we send, checks every rule on
 * what the server sends and answers pings.  The close handshake of §7 ends
 * a connection: our close frame, the server's reply, then the server ends
 * TCP first (§7.1.1), so TIME_WAIT stays on its side.  The HTTP publisher
 * of fan-out uses the same plumbing without the upgrade.
 *
 * Runs only on the thread that owns the connection (c->w).  What the
 * connection is for is the business of wsload_modes.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <apr_base64.h>
#include <apr_strings.h>
#include <apr_time.h>

#include "ws_close.h"
#include "ws_frame.h"
#include "wsload.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* A whole line to stderr, then exit at once: other threads may be in the
 * middle of anything, and no figure may be printed after a failure. */
void wsload_fail(const conn_t *c, const char *fmt, ...)
{
    char msg[1024];
    int n;
    va_list ap;

    if (c) {
        n = snprintf(msg, sizeof(msg), "wsload: FAIL: connection %d: ",
                     c->id);
    }
    else {
        n = snprintf(msg, sizeof(msg), "wsload: FAIL: ");
    }
    va_start(ap, fmt);
    n += vsnprintf(msg + n, sizeof(msg) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(msg) - 2) {
        n = (int)sizeof(msg) - 2;
    }
    msg[n++] = '\n';
    fflush(stdout);
    (void)!write(2, msg, (size_t)n);
    _exit(1);
}

static void set_events(conn_t *c, unsigned events)
{
    struct epoll_event ev;

    if (events == c->events) {
        return;
    }
    ev.events = events;
    ev.data.ptr = c;
    if (epoll_ctl(c->w->ep, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
                  c->fd, &ev) < 0) {
        wsload_fail(c, "epoll_ctl: %s", strerror(errno));
    }
    c->events = events;
}

static void on_message(void *baton, unsigned opcode, const unsigned char *d,
                       apr_size_t len)
{
    wsload_mode_message(baton, opcode, d, len);
}

static void on_peer_close(void *baton, unsigned code, const char *reason,
                          apr_size_t reason_len)
{
    conn_t *c = baton;

    (void)code;
    (void)reason;
    (void)reason_len;
    c->peer_closed = 1;
}

static const ws_session_callbacks_t callbacks = { on_message, on_peer_close };

/* Queue raw bytes (a handshake or an HTTP request) before any frame. */
void wsload_conn_raw(conn_t *c, const char *data, size_t len)
{
    if (c->raw_off == c->raw_len) {
        c->raw_off = c->raw_len = 0;
    }
    if (c->raw_len + len > c->raw_cap) {
        c->raw_cap = (c->raw_len + len) * 2;
        c->raw = realloc(c->raw, c->raw_cap);
        if (!c->raw) {
            wsload_fail(c, "out of memory");
        }
    }
    memcpy(c->raw + c->raw_len, data, len);
    c->raw_len += len;
}

void wsload_conn_finish(conn_t *c)
{
    if (c->fd >= 0) {
        epoll_ctl(c->w->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->events = 0;
    c->state = CS_DONE;
    c->deadline = 0;
    c->raw_off = c->raw_len = 0;
}

void wsload_conn_start(conn_t *c)
{
    struct sockaddr_in src;
    int one = 1, rc;

    if (!c->pool) {
        apr_pool_create(&c->pool, c->w->pool);
    }
    else {
        apr_pool_clear(c->pool);
    }
    c->session = NULL;
    c->peer_closed = 0;
    c->resp_len = 0;
    c->raw_off = c->raw_len = 0;
    c->awaiting = 0;
    c->events = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        wsload_fail(c, "socket: %s (raise ulimit -n?)", strerror(errno));
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (opt.src_range > 1) {
        /* Spread sources over 127.0.0.1..N: each source address has its
         * own ephemeral ports, so more than ~28 000 sockets fit.  The port
         * is chosen at connect time, per 4-tuple. */
        memset(&src, 0, sizeof(src));
        src.sin_family = AF_INET;
        src.sin_addr.s_addr = htonl(0x7f000001u
                                    + (unsigned)(c->id % opt.src_range));
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                   sizeof(one));
        if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
            wsload_fail(c, "bind to a source address: %s", strerror(errno));
        }
    }
    c->t_start = wsload_now_ns();
    c->deadline = c->t_start + (apr_uint64_t)(opt.timeout * 1e9);
    c->state = CS_CONNECTING;
    rc = connect(c->fd, (struct sockaddr *)&c->target->sa,
                 sizeof(c->target->sa));
    if (rc < 0 && errno != EINPROGRESS) {
        wsload_fail(c, "cannot connect to %s: %s%s", c->target->hostport,
                    strerror(errno), errno == EADDRNOTAVAIL
                    ? " (out of local ports: use --src-range)" : "");
    }
    set_events(c, EPOLLIN | EPOLLOUT);
}

static void send_handshake(conn_t *c)
{
    unsigned char key[16];
    char key64[32], req[1024];
    int i, n;

    for (i = 0; i < 16; ++i) {
        key[i] = (unsigned char)random();
    }
    apr_base64_encode_binary(key64, key, 16);
    ws_handshake_accept(key64, c->accept);
    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                 "Sec-WebSocket-Version: 13\r\n%s\r\n",
                 c->target->path, c->target->hostport, key64,
                 opt.deflate ? "Sec-WebSocket-Extensions: permessage-deflate; "
                               "client_max_window_bits\r\n" : "");
    wsload_conn_raw(c, req, (size_t)n);
    c->state = CS_HANDSHAKE;
}

static void connected(conn_t *c)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
        err = errno;
    }
    if (err) {
        wsload_fail(c, "cannot connect to %s: %s", c->target->hostport,
                    strerror(err));
    }
    if (c->role == ROLE_PUB_HTTP) {
        c->state = CS_OPEN;
        c->deadline = 0;
        return;
    }
    send_handshake(c);
}

/* The value of header `name` in a response head, or NULL; the value ends
 * at \r. */
static const char *header_value(const char *head, const char *name)
{
    size_t nl = strlen(name);
    const char *p = strstr(head, "\r\n");

    while (p && p[2] != '\r') {
        p += 2;
        if (!strncasecmp(p, name, nl) && p[nl] == ':') {
            p += nl + 1;
            while (*p == ' ' || *p == '\t') {
                p++;
            }
            return p;
        }
        p = strstr(p, "\r\n");
    }
    return NULL;
}

/* Append to the response head; returns the head's length once it is
 * complete (\r\n\r\n seen), else 0.  *used tells how many of the n bytes
 * belong to the head. */
static size_t gather_head(conn_t *c, const unsigned char *buf, size_t n,
                          size_t *used)
{
    size_t room = sizeof(c->resp) - 1 - c->resp_len, take = n < room ? n : room;
    size_t before = c->resp_len;
    char *end;

    memcpy(c->resp + c->resp_len, buf, take);
    c->resp_len += take;
    c->resp[c->resp_len] = '\0';
    end = strstr(c->resp, "\r\n\r\n");
    if (!end) {
        if (take < n || c->resp_len >= sizeof(c->resp) - 1) {
            wsload_fail(c, "response head longer than %zu bytes",
                        sizeof(c->resp) - 1);
        }
        *used = n;
        return 0;
    }
    end[2] = '\0';
    *used = (size_t)(end + 4 - c->resp) - before;
    return (size_t)(end + 4 - c->resp);
}

static void status_line(const conn_t *c, char *out, size_t len)
{
    const char *e = strstr(c->resp, "\r\n");
    size_t n = e ? (size_t)(e - c->resp) : strlen(c->resp);

    if (n >= len) {
        n = len - 1;
    }
    memcpy(out, c->resp, n);
    out[n] = '\0';
}

static void check_session(conn_t *c);

static void read_handshake(conn_t *c, const unsigned char *buf, size_t n)
{
    ws_session_config_t scfg;
    const char *acc;
    char line[256];
    size_t used;

    if (!gather_head(c, buf, n, &used)) {
        return;
    }
    status_line(c, line, sizeof(line));
    if (strncmp(c->resp, "HTTP/1.1 101", 12)) {
        wsload_fail(c, "handshake refused by %s%s: \"%s\"",
                    c->target->hostport, c->target->path, line);
    }
    acc = header_value(c->resp, "Sec-WebSocket-Accept");
    if (!acc || strncmp(acc, c->accept, WS_ACCEPT_LEN - 1)
        || (acc[WS_ACCEPT_LEN - 1] != '\r' && acc[WS_ACCEPT_LEN - 1] != ' ')) {
        wsload_fail(c, "wrong or missing Sec-WebSocket-Accept in the 101");
    }
    memset(&scfg, 0, sizeof(scfg));
    scfg.is_client = 1;
    scfg.max_message = opt.size > 65536 ? (apr_size_t)opt.size * 2 : 131072;
    /* --deflate: what the server answered, checked as RFC 7692 §7 says. */
    if (opt.deflate && (acc = header_value(c->resp, "Sec-WebSocket-Extensions"))) {
        ws_deflate_prefs_t prefs = { 0, 0 };
        ws_deflate_params_t *params = apr_pcalloc(c->pool, sizeof(*params));
        const char *eol = strstr(acc, "\r\n");
        char *val = apr_pstrmemdup(c->pool, acc, eol ? (size_t)(eol - acc)
                                                     : strlen(acc));

        if (ws_deflate_client_check(ws_handshake_parse_extensions(c->pool, val),
                                    &prefs, params) != 0) {
            wsload_fail(c, "bad Sec-WebSocket-Extensions in the 101: %s", val);
        }
        scfg.deflate = params;
        c->deflated = 1;
        c->w->deflated++;
    }
    if (ws_session_create(&c->session, c->pool, &scfg, &callbacks, c,
                          apr_time_now()) != APR_SUCCESS) {
        wsload_fail(c, "cannot create a session");
    }
    c->state = CS_OPEN;
    c->deadline = 0;
    ATOMIC_ADD(&run.opened, 1);
    wsload_mode_opened(c);
    if (used < n) {
        c->w->wire_in += n - used;
        ws_session_feed(c->session, buf + used, n - used, apr_time_now());
        check_session(c);
    }
}

/* After feeding: did the server end the WebSocket or break a rule? */
static void check_session(conn_t *c)
{
    ws_session_state_e st = ws_session_state(c->session);

    if (st == WS_SESSION_OPEN) {
        return;
    }
    if (!c->peer_closed && st == WS_SESSION_CLOSED) {
        wsload_fail(c, "protocol error from the server: close %u (%s)",
                    ws_session_close_code(c->session),
                    ws_session_close_reason(c->session));
    }
    if (c->state == CS_OPEN && c->peer_closed) {
        if (ATOMIC_GET(&run.phase) < PH_CLOSE) {
            wsload_fail(c, "the server closed the WebSocket (code %u)",
                        ws_session_close_code(c->session));
        }
        c->state = CS_CLOSING;
        c->deadline = wsload_now_ns() + 2000000000ull;
    }
    if (c->state == CS_CLOSING && c->peer_closed) {
        /* Our close was answered: the server ends TCP next (§7.1.1); give
         * it a second before we do it ourselves. */
        apr_uint64_t soon = wsload_now_ns() + 1000000000ull;

        if (!c->deadline || c->deadline > soon) {
            c->deadline = soon;
        }
    }
}

static void read_http(conn_t *c, const unsigned char *buf, size_t n)
{
    const char *v;
    size_t used = 0, headlen;
    int status;

    if (!c->awaiting) {
        wsload_fail(c, "the publish URL sent bytes nobody asked for");
    }
    if (!c->resp_body_left) {
        headlen = gather_head(c, buf, n, &used);
        if (!headlen) {
            return;
        }
        status = atoi(c->resp + 9);
        if (strncmp(c->resp, "HTTP/1.", 7) || status < 200 || status > 299) {
            char line[256];

            status_line(c, line, sizeof(line));
            wsload_fail(c, "POST to %s%s answered \"%s\"",
                        c->target->hostport, c->target->path, line);
        }
        v = header_value(c->resp, "Transfer-Encoding");
        if (v && !strncasecmp(v, "chunked", 7)) {
            wsload_fail(c, "the publish URL answered chunked: give it a "
                        "Content-Length");
        }
        v = header_value(c->resp, "Content-Length");
        c->resp_body_left = v ? (size_t)strtoul(v, NULL, 10) : 0;
        /* httpd ends a kept-alive connection after MaxKeepAliveRequests:
         * the next POST goes on a new one, never on this (its FIN may not
         * be here yet) */
        v = header_value(c->resp, "Connection");
        c->http_last = v && !strncasecmp(v, "close", 5);
        c->resp_len = 0;
        c->resp[0] = '\0';
        /* A marker that the head is in: body bytes are counted below. */
        c->resp_body_left++;
    }
    n -= used;
    if (n + 1 > c->resp_body_left) {
        wsload_fail(c, "the publish URL sent more than its Content-Length");
    }
    c->resp_body_left -= n;
    if (c->resp_body_left == 1) {
        c->resp_body_left = 0;
        c->awaiting = 0;
        if (c->http_last) {
            c->http_last = 0;
            wsload_conn_finish(c);
            c->state = CS_NONE;      /* the publisher opens another */
        }
        wsload_mode_http_done(c, 200);
    }
}

static void on_eof(conn_t *c)
{
    if (c->role == ROLE_PUB_HTTP) {
        if (c->awaiting) {
            wsload_fail(c, "the publish URL closed the connection before "
                        "answering");
        }
        wsload_conn_finish(c);
        c->state = CS_NONE;          /* the publisher opens another */
        return;
    }
    if (c->session) {
        ws_session_peer_eof(c->session);
    }
    if (c->state == CS_CLOSING) {
        if (c->session && !c->peer_closed
            && ATOMIC_GET(&run.phase) < PH_CLOSE) {
            wsload_fail(c, "the server ended TCP without answering the "
                        "close frame");
        }
        wsload_conn_finish(c);
        wsload_mode_ended(c);
        return;
    }
    if (ATOMIC_GET(&run.phase) >= PH_CLOSE) {
        wsload_conn_finish(c);
        return;
    }
    wsload_fail(c, "the server closed the connection%s",
                c->state == CS_OPEN ? " (no close frame)" : " during the "
                "handshake");
}

void wsload_conn_flush(conn_t *c)
{
    const unsigned char *d;
    apr_size_t n = 0;
    ssize_t wr;

    if (c->fd < 0 || c->state == CS_CONNECTING) {
        return;
    }
    while (c->raw_off < c->raw_len) {
        wr = send(c->fd, c->raw + c->raw_off, c->raw_len - c->raw_off,
                  MSG_NOSIGNAL);
        if (wr < 0) {
            if (errno == EAGAIN) {
                set_events(c, EPOLLIN | EPOLLOUT);
                return;
            }
            wsload_fail(c, "send: %s", strerror(errno));
        }
        c->raw_off += (size_t)wr;
    }
    while (c->session && (n = ws_session_pending(c->session, &d)) > 0) {
        wr = send(c->fd, d, n, MSG_NOSIGNAL);
        if (wr < 0) {
            if (errno == EAGAIN) {
                break;
            }
            if (c->state == CS_CLOSING || ATOMIC_GET(&run.phase) >= PH_CLOSE) {
                /* The server is gone while we close: nothing to save. */
                wsload_conn_finish(c);
                wsload_mode_ended(c);
                return;
            }
            wsload_fail(c, "send: %s", strerror(errno));
        }
        ws_session_consume(c->session, (apr_size_t)wr);
        c->w->wire_out += (apr_uint64_t)wr;
    }
    set_events(c, EPOLLIN | (n > 0 ? EPOLLOUT : 0));
}

void wsload_conn_event(conn_t *c, unsigned events)
{
    ssize_t r;

    if (c->state == CS_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
            return;
        }
        connected(c);
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        r = recv(c->fd, c->w->rbuf, sizeof(c->w->rbuf), 0);
        if (r < 0 && errno == EAGAIN) {
            r = -2;
        }
        if (r == 0 || (r < 0 && r != -2)) {
            on_eof(c);
            return;
        }
        if (r > 0) {
            switch (c->state) {
            case CS_HANDSHAKE:
                read_handshake(c, c->w->rbuf, (size_t)r);
                break;
            case CS_OPEN:
            case CS_CLOSING:
                if (c->role == ROLE_PUB_HTTP) {
                    read_http(c, c->w->rbuf, (size_t)r);
                    break;
                }
                c->w->wire_in += (apr_uint64_t)r;
                ws_session_feed(c->session, c->w->rbuf, (apr_size_t)r,
                                apr_time_now());
                check_session(c);
                break;
            default:
                break;
            }
        }
    }
    if (c->fd >= 0) {
        wsload_conn_flush(c);
    }
}

/* Start our side of the close handshake (§7.1.2); a connection that is not
 * open yet is just dropped. */
void wsload_conn_close(conn_t *c)
{
    if (c->fd < 0) {
        return;
    }
    if (c->state != CS_OPEN || !c->session
        || ws_session_state(c->session) != WS_SESSION_OPEN) {
        if (c->state != CS_CLOSING) {
            wsload_conn_finish(c);
        }
        return;
    }
    ws_session_close(c->session, WS_CLOSE_NORMAL, NULL, apr_time_now());
    c->state = CS_CLOSING;
    c->deadline = wsload_now_ns() + (ATOMIC_GET(&run.phase) >= PH_CLOSE
                                     ? 2000000000ull
                                     : (apr_uint64_t)(opt.timeout * 1e9));
    wsload_conn_flush(c);
}

void wsload_conn_check_timeout(conn_t *c, apr_uint64_t now)
{
    if (!c->deadline || now < c->deadline || c->fd < 0) {
        return;
    }
    switch (c->state) {
    case CS_CONNECTING:
    case CS_HANDSHAKE:
        wsload_fail(c, "no answer to the handshake within %.0f s from %s",
                    opt.timeout, c->target->hostport);
        break;
    case CS_CLOSING:
        if (ATOMIC_GET(&run.phase) < PH_CLOSE
            && !(c->session && ws_session_done(c->session))) {
            wsload_fail(c, "no answer to our close frame within %.0f s",
                        opt.timeout);
        }
        /* The close handshake is over but the server keeps TCP open, or
         * the run is ending: end it ourselves. */
        c->w->client_closed++;
        wsload_conn_finish(c);
        wsload_mode_ended(c);
        break;
    default:
        break;
    }
}
