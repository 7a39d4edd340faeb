/* wsload: a WebSocket load generator for mod_ws's benchmarks.
 *
 * Single-threaded epoll client over plain TCP on loopback.  Frames are
 * built and parsed by mod_ws's own protocol core in client mode (masked
 * frames out, unmasked in, every rule of RFC 6455 checked on what the server
 * sends), so a server bug shows as a protocol error here.  Every echoed byte
 * is verified: a payload carries its send time and sequence number, and the
 * rest of it is a pattern derived from those.
 *
 * Mode so far: echo.  It fails loudly (exit 1, a message) on a wrong echo, a
 * protocol error, a refused handshake or a connection that ends early.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_base64.h>

#include "ws_frame.h"
#include "ws_handshake.h"
#include "ws_session.h"

#define MAX_SAMPLES (4 * 1024 * 1024)

typedef struct {
    const char *host, *path;
    int port, conns, size, inflight;
    double seconds;
} opts_t;

typedef struct conn_s {
    int fd, id;
    int upgraded;
    char hs[4096];
    size_t hs_len;
    char accept[WS_ACCEPT_LEN];
    ws_session_t *session;
    apr_uint64_t next_seq, expect_seq;
    int outstanding;
    int want_out;
} conn_t;

static opts_t opt = { "127.0.0.1", "/echo", 8080, 50, 64, 1, 10.0 };
static apr_uint64_t *samples;
static size_t nsamples;
static apr_uint64_t total_msgs, total_bytes;
static int stopping;
static int failures;
static unsigned char *sendbuf;

static apr_uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (apr_uint64_t)ts.tv_sec * 1000000000ull + (apr_uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "wsload: FAIL: %s\n", what);
    exit(1);
}

static void fail_conn(conn_t *c, const char *what)
{
    fprintf(stderr, "wsload: FAIL: connection %d: %s\n", c->id, what);
    exit(1);
}

/* Payload: 8 bytes send time, 8 bytes (conn id << 40 | seq), then a pattern
 * from both, so a byte from another message or another socket is caught. */
static void fill_payload(unsigned char *p, int size, int id, apr_uint64_t seq,
                         apr_uint64_t t)
{
    apr_uint64_t tag = ((apr_uint64_t)id << 40) | seq;
    int i;

    memcpy(p, &t, 8);
    memcpy(p + 8, &tag, 8);
    for (i = 16; i < size; ++i) {
        p[i] = (unsigned char)(tag * 31 + (apr_uint64_t)i * 7);
    }
}

static void send_one(conn_t *c)
{
    fill_payload(sendbuf, opt.size, c->id, c->next_seq++, now_ns());
    if (ws_session_send(c->session, WS_OP_BINARY,
                        sendbuf, (apr_size_t)opt.size) != APR_SUCCESS) {
        fail_conn(c, "cannot queue a message");
    }
    c->outstanding++;
}

static void on_message(void *baton, unsigned opcode, const unsigned char *d,
                       apr_size_t len)
{
    conn_t *c = baton;
    apr_uint64_t t, tag, want = ((apr_uint64_t)c->id << 40) | c->expect_seq;
    int i;

    if (len != (apr_size_t)opt.size) {
        fail_conn(c, "echo has the wrong length");
    }
    if (opcode != (unsigned)(WS_OP_BINARY)) {
        fail_conn(c, "echo has the wrong type");
    }
    memcpy(&t, d, 8);
    memcpy(&tag, d + 8, 8);
    if (tag != want) {
        fail_conn(c, "echo out of order, lost or duplicated");
    }
    for (i = 16; i < opt.size; ++i) {
        if (d[i] != (unsigned char)(tag * 31 + (apr_uint64_t)i * 7)) {
            fail_conn(c, "echo payload differs from what was sent");
        }
    }
    c->expect_seq++;
    c->outstanding--;
    total_msgs++;
    total_bytes += len;
    if (nsamples < MAX_SAMPLES) {
        samples[nsamples++] = now_ns() - t;
    }
    if (!stopping) {
        send_one(c);
    }
}

static const ws_session_callbacks_t callbacks = { on_message, NULL };

static void set_events(int ep, conn_t *c, int out)
{
    struct epoll_event ev;

    ev.events = EPOLLIN | (out ? EPOLLOUT : 0);
    ev.data.ptr = c;
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = out;
}

static void flush_conn(int ep, conn_t *c)
{
    const unsigned char *d;
    apr_size_t n;
    ssize_t w;

    while ((n = ws_session_pending(c->session, &d)) > 0) {
        w = write(c->fd, d, n);
        if (w < 0) {
            if (errno == EAGAIN) {
                break;
            }
            fail_conn(c, strerror(errno));
        }
        ws_session_consume(c->session, (apr_size_t)w);
    }
    if ((n > 0) != c->want_out) {
        set_events(ep, c, n > 0);
    }
}

static void start_handshake(conn_t *c)
{
    unsigned char key[16];
    char key64[32];
    int i;

    for (i = 0; i < 16; ++i) {
        key[i] = (unsigned char)rand();
    }
    apr_base64_encode_binary(key64, key, 16);
    ws_handshake_accept(key64, c->accept);
    c->hs_len = (size_t)snprintf(c->hs, sizeof(c->hs),
        "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n", opt.path, opt.host, opt.port,
        key64);
    if (write(c->fd, c->hs, c->hs_len) != (ssize_t)c->hs_len) {
        fail_conn(c, "cannot send the handshake");
    }
    c->hs_len = 0;
}

/* Read the 101; bytes after it go to the session. */
static void read_handshake(conn_t *c, const char *buf, size_t n)
{
    char *end, *acc;
    size_t body;
    int i;

    if (c->hs_len + n >= sizeof(c->hs)) {
        fail_conn(c, "handshake answer too long");
    }
    memcpy(c->hs + c->hs_len, buf, n);
    c->hs_len += n;
    c->hs[c->hs_len] = '\0';
    end = strstr(c->hs, "\r\n\r\n");
    if (!end) {
        return;
    }
    if (strncmp(c->hs, "HTTP/1.1 101", 12)) {
        fail_conn(c, "handshake refused (no 101)");
    }
    acc = strstr(c->hs, "Sec-WebSocket-Accept: ");
    if (!acc || strncmp(acc + 22, c->accept, WS_ACCEPT_LEN - 1)) {
        fail_conn(c, "wrong Sec-WebSocket-Accept");
    }
    body = c->hs_len - (size_t)(end + 4 - c->hs);
    c->upgraded = 1;
    for (i = 0; i < opt.inflight; ++i) {
        send_one(c);
    }
    if (body) {
        ws_session_feed(c->session, (unsigned char *)end + 4, body,
                        apr_time_now());
    }
}

static int connect_one(struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    if (fd < 0 || connect(fd, (struct sockaddr *)sa, sizeof(*sa)) < 0) {
        die("cannot connect");
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static int cmp_u64(const void *a, const void *b)
{
    apr_uint64_t x = *(const apr_uint64_t *)a, y = *(const apr_uint64_t *)b;

    return x < y ? -1 : x > y;
}

static double pct(double q)
{
    size_t i = (size_t)(q * (double)(nsamples - 1));

    return (double)samples[i] / 1000.0;
}

static void usage(void)
{
    fprintf(stderr,
        "usage: wsload [-H host] [-p port] [-P path] [-c conns] [-s bytes]\n"
        "              [-n in-flight] [-d seconds]\n"
        "  echo mode: every connection keeps n messages in flight and\n"
        "  checks every echoed byte.\n");
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    int ch;

    while ((ch = getopt(argc, argv, "H:p:P:c:s:n:d:")) != -1) {
        switch (ch) {
        case 'H': opt.host = optarg; break;
        case 'p': opt.port = atoi(optarg); break;
        case 'P': opt.path = optarg; break;
        case 'c': opt.conns = atoi(optarg); break;
        case 's': opt.size = atoi(optarg); break;
        case 'n': opt.inflight = atoi(optarg); break;
        case 'd': opt.seconds = atof(optarg); break;
        default: usage();
        }
    }
    if (opt.conns < 1 || opt.size < 16 || opt.inflight < 1
        || opt.seconds <= 0) {
        usage();
    }
}

int main(int argc, char **argv)
{
    struct sockaddr_in sa;
    struct epoll_event ev, evs[256];
    ws_session_config_t scfg;
    apr_pool_t *pool;
    conn_t *conns;
    char buf[65536];
    apr_uint64_t t0, t_end, elapsed;
    int ep, i, k, n, open_conns;
    ssize_t r;

    parse_args(argc, argv);
    apr_initialize();
    apr_pool_create(&pool, NULL);
    samples = malloc(sizeof(*samples) * MAX_SAMPLES);
    sendbuf = malloc((size_t)opt.size);
    conns = calloc((size_t)opt.conns, sizeof(*conns));
    if (!samples || !sendbuf || !conns) {
        die("out of memory");
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)opt.port);
    if (inet_pton(AF_INET, opt.host, &sa.sin_addr) != 1) {
        die("host must be an IPv4 address");
    }
    memset(&scfg, 0, sizeof(scfg));
    scfg.is_client = 1;
    scfg.max_message = (apr_size_t)opt.size;
    ep = epoll_create1(0);
    for (i = 0; i < opt.conns; ++i) {
        conn_t *c = &conns[i];

        c->id = i;
        c->fd = connect_one(&sa);
        ws_session_create(&c->session, pool, &scfg, &callbacks, c,
                          apr_time_now());
        start_handshake(c);
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
        ev.events = EPOLLIN;
        ev.data.ptr = c;
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
    t0 = now_ns();
    t_end = t0 + (apr_uint64_t)(opt.seconds * 1e9);
    open_conns = opt.conns;
    while (open_conns > 0) {
        apr_uint64_t now = now_ns();

        if (!stopping && now >= t_end) {
            stopping = 1;
        }
        if (stopping) {
            int busy = 0;

            for (i = 0; i < opt.conns; ++i) {
                busy += conns[i].outstanding;
            }
            if (!busy || now >= t_end + 10000000000ull) {
                if (busy) {
                    die("echoes still missing 10 s after the end");
                }
                break;
            }
        }
        n = epoll_wait(ep, evs, 256, 100);
        for (k = 0; k < n; ++k) {
            conn_t *c = evs[k].data.ptr;

            if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                r = read(c->fd, buf, sizeof(buf));
                if (r == 0 || (r < 0 && errno != EAGAIN)) {
                    fail_conn(c, "server closed the connection");
                }
                if (r > 0) {
                    if (!c->upgraded) {
                        read_handshake(c, buf, (size_t)r);
                    }
                    else {
                        ws_session_feed(c->session, (unsigned char *)buf,
                                        (apr_size_t)r, apr_time_now());
                    }
                    if (ws_session_state(c->session) != WS_SESSION_OPEN) {
                        fprintf(stderr, "wsload: FAIL: connection %d: %u %s\n",
                                c->id, ws_session_close_code(c->session),
                                ws_session_close_reason(c->session));
                        failures++;
                        exit(1);
                    }
                }
            }
            flush_conn(ep, c);
        }
    }
    elapsed = now_ns() - t0;
    for (i = 0; i < opt.conns; ++i) {
        close(conns[i].fd);
    }
    if (!nsamples) {
        die("no message came back");
    }
    qsort(samples, nsamples, sizeof(*samples), cmp_u64);
    printf("mode=echo conns=%d size=%d inflight=%d seconds=%.1f\n",
           opt.conns, opt.size, opt.inflight, (double)elapsed / 1e9);
    printf("messages=%llu msgs_per_s=%.0f MB_per_s=%.2f "
           "p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f errors=0\n",
           (unsigned long long)total_msgs,
           (double)total_msgs / ((double)elapsed / 1e9),
           (double)total_bytes / ((double)elapsed / 1e9) / 1e6,
           pct(0.5), pct(0.9), pct(0.99), pct(1.0));
    apr_pool_destroy(pool);
    apr_terminate();
    return 0;
}
