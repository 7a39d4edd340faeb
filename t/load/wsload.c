/* wsload: a WebSocket load generator for mod_ws's benchmarks.
 *
 * Plain TCP to loopback only (127.0.0.x), epoll, -t worker threads that
 * each own their epoll and a share of the connections.  Frames are built
 * and parsed by mod_ws's own protocol core in client mode (masked frames
 * out, unmasked in, every rule of RFC 6455 checked on what the server
 * sends), so a server bug shows as a protocol error here.
 *
 * Modes (-m): echo, connect, idle, fanout; see usage() and wsload_modes.c.
 * Every run is bounded in time (-d, plus fixed grace periods) and, with -N,
 * in count.  It fails loudly (exit 1, "wsload: FAIL: ...") on a wrong echo,
 * a lost, duplicated or reordered fan-out message, a protocol error, a
 * refused handshake or a connection that ends early.  The figures go to
 * stdout as key=value pairs, for people and for build/bench.
 *
 * This file: options, threads, the phases of a run and the report.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <apr_general.h>

#include "wsload.h"

wsload_opts_t opt;
wsload_run_t run;

static const char *mode_names[] = { "echo", "connect", "idle", "fanout" };

apr_uint64_t wsload_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (apr_uint64_t)ts.tv_sec * 1000000000ull + (apr_uint64_t)ts.tv_nsec;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

static void usage(void)
{
    fprintf(stderr,
"usage: wsload [-m echo|connect|idle|fanout] [-H 127.0.0.x] [-p port]\n"
"              [-P path] [-c conns] [-t threads] [-d seconds] [options]\n"
"  -m echo     each connection keeps -n messages of -s bytes in flight;\n"
"              every echoed byte is checked (default mode)\n"
"  -m connect  -c connections each open, check the 101, close with a close\n"
"              frame and start over: handshakes per second\n"
"  -m idle     open -c sockets at -r per second, hold them -d seconds\n"
"              (pings are answered), then each echoes one message;\n"
"              with --pids, the servers' RSS\n"
"  -m fanout   -c subscribers on -P; --publishers publishers send -N\n"
"              messages each at -r messages/s in all, over a WebSocket on\n"
"              -P (default) or --publish-url ws://... or http://... (POST);\n"
"              fails on a lost, duplicated or reordered message\n"
"  -s bytes (64)  -n in-flight (1)  -r rate (idle: 500/s; fanout: 100/s)\n"
"  -N count: echo: messages in all; connect: handshakes; fanout: messages\n"
"     per publisher (default rate x seconds / publishers)\n"
"  --pids PID,PID...  --pidfile FILE   server processes (children count)\n"
"  --src-range N      source addresses 127.0.0.1..N (past the port limit)\n"
"  --timeout S (10)   handshake and close bound;  --drain S (3) fan-out\n"
"  --deflate          offer permessage-deflate (RFC 7692) and use it when\n"
"                     the server agrees; echo prints the bytes on the wire\n"
"  --json             echo payload: JSON-like text after the 16-byte prefix;\n"
"                     idle: each socket first sends one such message\n");
    exit(2);
}

/* Only loopback targets: this tool must never be aimed at another host. */
static void parse_target(wsload_target_t *t, const char *host, int port,
                         const char *path)
{
    memset(&t->sa, 0, sizeof(t->sa));
    t->sa.sin_family = AF_INET;
    t->sa.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, host, &t->sa.sin_addr) != 1
        || (ntohl(t->sa.sin_addr.s_addr) >> 24) != 127) {
        wsload_fail(NULL, "target %s: only 127.0.0.x addresses are allowed",
                    host);
    }
    if (port < 1 || port > 65535) {
        wsload_fail(NULL, "port %d is not a port", port);
    }
    snprintf(t->hostport, sizeof(t->hostport), "%s:%d", host, port);
    t->path = path;
}

static void parse_url(wsload_target_t *t, const char *url)
{
    char host[64];
    int port = 0, n = 0;
    const char *rest;

    if (!strncmp(url, "http://", 7)) {
        t->http = 1;
        rest = url + 7;
    }
    else if (!strncmp(url, "ws://", 5)) {
        rest = url + 5;
    }
    else {
        wsload_fail(NULL, "--publish-url: want ws:// or http://, got %s", url);
    }
    if (sscanf(rest, "%63[0-9.]:%d%n", host, &port, &n) != 2
        || (rest[n] != '/' && rest[n] != '\0')) {
        wsload_fail(NULL, "--publish-url: want scheme://127.0.0.x:PORT/path, "
                    "got %s", url);
    }
    parse_target(t, host, port, rest[n] ? rest + n : "/");
}

static void parse_pids(const char *s)
{
    char *end;

    while (*s && opt.npids < (int)(sizeof(opt.pids) / sizeof(opt.pids[0]))) {
        long p = strtol(s, &end, 10);

        if (end == s || p <= 0) {
            wsload_fail(NULL, "--pids: want PID,PID,..., got %s", s);
        }
        opt.pids[opt.npids++] = (int)p;
        s = *end == ',' ? end + 1 : end;
    }
}

static void parse_args(int argc, char **argv)
{
    static const struct option longs[] = {
        { "pids", required_argument, NULL, 1 },
        { "pidfile", required_argument, NULL, 2 },
        { "src-range", required_argument, NULL, 3 },
        { "publish-url", required_argument, NULL, 4 },
        { "publishers", required_argument, NULL, 5 },
        { "timeout", required_argument, NULL, 6 },
        { "drain", required_argument, NULL, 7 },
        { "deflate", no_argument, NULL, 8 },
        { "json", no_argument, NULL, 9 },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *host = "127.0.0.1", *path = "/echo", *pub_url = NULL;
    int ch, port = 8080, i;
    FILE *f;

    opt.mode = MODE_ECHO;
    opt.conns = 50;
    opt.size = 64;
    opt.inflight = 1;
    opt.threads = 1;
    opt.publishers = 1;
    opt.seconds = 10;
    opt.rate = -1;
    opt.drain = 3;
    opt.timeout = 10;
    while ((ch = getopt_long(argc, argv, "m:H:p:P:c:s:n:d:t:r:N:h", longs,
                             NULL)) != -1) {
        switch (ch) {
        case 'm':
            for (i = 0; i < 4 && strcmp(optarg, mode_names[i]); ++i) {
            }
            if (i == 4) {
                usage();
            }
            opt.mode = (wsload_mode_e)i;
            break;
        case 'H': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'P': path = optarg; break;
        case 'c': opt.conns = atoi(optarg); break;
        case 's': opt.size = atoi(optarg); break;
        case 'n': opt.inflight = atoi(optarg); break;
        case 'd': opt.seconds = atof(optarg); break;
        case 't': opt.threads = atoi(optarg); break;
        case 'r': opt.rate = atof(optarg); break;
        case 'N': opt.count = strtoull(optarg, NULL, 10); break;
        case 1: parse_pids(optarg); break;
        case 2:
            if (!(f = fopen(optarg, "r")) || fscanf(f, "%d", &i) != 1) {
                wsload_fail(NULL, "--pidfile %s: no PID in it", optarg);
            }
            fclose(f);
            opt.pids[opt.npids++] = i;
            break;
        case 3: opt.src_range = atoi(optarg); break;
        case 4: pub_url = optarg; break;
        case 5: opt.publishers = atoi(optarg); break;
        case 6: opt.timeout = atof(optarg); break;
        case 7: opt.drain = atof(optarg); break;
        case 8: opt.deflate = 1; break;
        case 9: opt.json = 1; break;
        default: usage();
        }
    }
    if (optind != argc || opt.conns < 1 || opt.inflight < 1
        || opt.seconds <= 0 || opt.seconds > 3600 || opt.threads < 1
        || opt.threads > 64 || opt.publishers < 1 || opt.src_range < 0
        || opt.src_range > 254 || opt.timeout <= 0
        || (opt.mode == MODE_ECHO && opt.size < 16) || opt.size < 0
        || opt.size > 64 * 1024 * 1024) {
        usage();
    }
    if (opt.threads > opt.conns) {
        opt.threads = opt.conns;
    }
    parse_target(&opt.target, host, port, path);
    opt.pub_target = opt.target;
    opt.pub_same_url = 1;
    if (pub_url) {
        parse_url(&opt.pub_target, pub_url);
        opt.pub_same_url = 0;
    }
    if (opt.rate <= 0) {
        opt.rate = opt.mode == MODE_IDLE ? 500 : 100;
    }
    if (opt.mode == MODE_FANOUT && !opt.count) {
        opt.count = (apr_uint64_t)(opt.rate * opt.seconds / opt.publishers);
        if (!opt.count) {
            opt.count = 1;
        }
    }
    if (opt.mode == MODE_FANOUT && opt.count > 10000000) {
        wsload_fail(NULL, "fanout: -N over 10 000 000 per publisher");
    }
}

/* Sockets are files: take what the hard limit allows. */
static void raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0
        && rl.rlim_cur < (rlim_t)opt.conns + opt.publishers + 64) {
        wsload_fail(NULL, "%d connections need more files than the limit "
                    "of %lu (ulimit -Hn)", opt.conns,
                    (unsigned long)rl.rlim_cur);
    }
}

/* ---- workers ---------------------------------------------------------- */

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    struct epoll_event evs[256];
    int n, k, i, closing = 0, open;
    apr_uint64_t now;

    w->t_begin = wsload_now_ns();
    if (opt.mode == MODE_ECHO || opt.mode == MODE_FANOUT) {
        for (i = 0; i < w->nconns; ++i) {
            wsload_conn_start(&w->conns[i]);
        }
    }
    for (;;) {
        int phase = ATOMIC_GET(&run.phase);

        now = wsload_now_ns();
        if (phase >= PH_CLOSE && !closing) {
            closing = 1;
            for (i = 0; i < w->nconns; ++i) {
                wsload_conn_close(&w->conns[i]);
            }
            for (i = 0; i < w->npubs; ++i) {
                wsload_conn_close(&w->pubs[i]);
            }
        }
        if (closing) {
            for (i = open = 0; i < w->nconns; ++i) {
                open += w->conns[i].fd >= 0;
            }
            for (i = 0; i < w->npubs; ++i) {
                open += w->pubs[i].fd >= 0;
            }
            if (!open) {
                break;
            }
        }
        else {
            wsload_mode_tick(w, now);
            if (phase == PH_DRAIN && !w->drained && wsload_mode_idle(w)) {
                ATOMIC_SET(&w->drained, 1);
            }
        }
        if (now >= w->next_scan) {
            w->next_scan = now + 10000000ull;
            for (i = 0; i < w->nconns; ++i) {
                wsload_conn_check_timeout(&w->conns[i], now);
            }
            for (i = 0; i < w->npubs; ++i) {
                wsload_conn_check_timeout(&w->pubs[i], now);
            }
        }
        n = epoll_wait(w->ep, evs, 256,
                       (w->npubs || opt.mode == MODE_IDLE) ? 1 : 10);
        for (k = 0; k < n; ++k) {
            wsload_conn_event(evs[k].data.ptr, evs[k].events);
        }
    }
    return NULL;
}

static worker_t *make_workers(void)
{
    worker_t *ws = calloc((size_t)opt.threads, sizeof(*ws));
    apr_uint64_t bits;
    int t, i, id = 0;

    if (!ws) {
        wsload_fail(NULL, "out of memory");
    }
    for (t = 0; t < opt.threads; ++t) {
        worker_t *w = &ws[t];

        w->index = t;
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        apr_pool_create_unmanaged_ex(&w->pool, NULL, NULL);
        w->sendbuf = malloc((size_t)opt.size + 16);
        w->nconns = opt.conns / opt.threads + (t < opt.conns % opt.threads);
        w->conns = calloc((size_t)w->nconns, sizeof(conn_t));
        if (w->ep < 0 || !w->sendbuf || !w->conns) {
            wsload_fail(NULL, "cannot set up thread %d", t);
        }
        for (i = 0; i < w->nconns; ++i) {
            conn_t *c = &w->conns[i];

            c->w = w;
            c->id = id++;
            c->fd = -1;
            c->target = &opt.target;
            c->role = opt.mode == MODE_ECHO ? ROLE_ECHO
                      : opt.mode == MODE_CONNECT ? ROLE_CONNECT
                      : opt.mode == MODE_IDLE ? ROLE_IDLE : ROLE_SUB;
            if (c->role == ROLE_SUB) {
                bits = (apr_uint64_t)opt.publishers * opt.count;
                c->last = calloc((size_t)opt.publishers, sizeof(*c->last));
                c->seen = calloc((size_t)(bits + 7) / 8, 1);
                if (!c->last || !c->seen) {
                    wsload_fail(NULL, "out of memory for %d subscribers",
                                opt.conns);
                }
            }
        }
    }
    if (opt.mode == MODE_FANOUT) {
        worker_t *w = &ws[0];

        w->npubs = opt.publishers;
        w->pubs = calloc((size_t)w->npubs, sizeof(conn_t));
        for (i = 0; i < w->npubs; ++i) {
            conn_t *c = &w->pubs[i];

            c->w = w;
            c->id = id++;
            c->fd = -1;
            c->pub_id = i;
            c->target = &opt.pub_target;
            c->role = opt.pub_target.http ? ROLE_PUB_HTTP : ROLE_PUB_WS;
        }
    }
    return ws;
}

/* ---- the run ---------------------------------------------------------- */

static double secs_since(apr_uint64_t t)
{
    return (double)(wsload_now_ns() - t) / 1e9;
}

/* Wait until n WebSockets are open; fail after the handshake bound plus
 * the time the open rate needs. */
static void wait_opened(apr_uint64_t n, double rate)
{
    apr_uint64_t t = wsload_now_ns();
    double bound = opt.timeout + (rate > 0 ? (double)n / rate : 0) + 5;

    while (ATOMIC_GET(&run.opened) < n) {
        if (secs_since(t) > bound) {
            wsload_fail(NULL, "only %llu of %llu WebSockets opened in %.0f s",
                        (unsigned long long)ATOMIC_GET(&run.opened),
                        (unsigned long long)n, bound);
        }
        sleep_ms(2);
    }
}

static void wait_drained(worker_t *ws, double bound, const char *what)
{
    apr_uint64_t t = wsload_now_ns();
    int i, all;

    do {
        for (i = 0, all = 1; i < opt.threads; ++i) {
            all &= ATOMIC_GET(&ws[i].drained);
        }
        if (all) {
            return;
        }
        sleep_ms(2);
    } while (secs_since(t) < bound);
    wsload_fail(NULL, "%s still missing %.0f s after the end", what, bound);
}

/* Sleep until the run's end (or its count), in small steps. */
static void wait_run_end(apr_uint64_t t0)
{
    while (secs_since(t0) < opt.seconds
           && !(opt.count && opt.mode != MODE_FANOUT
                && ATOMIC_GET(&run.msgs) >= opt.count)) {
        sleep_ms(2);
    }
}

static double cpu_seconds(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
           + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void print_latency(const wsload_hist_t *h)
{
    printf("p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f",
           wsload_hist_us(h, 0.5), wsload_hist_us(h, 0.9),
           wsload_hist_us(h, 0.99), wsload_hist_us(h, 1.0));
}

int main(int argc, char **argv)
{
    worker_t *ws;
    wsload_hist_t *hist;
    apr_uint64_t t0, t_end = 0, msgs = 0, bytes = 0, cycles = 0, cclosed = 0;
    apr_uint64_t wire_in = 0, wire_out = 0, deflated = 0;
    long rss_before = -1, rss_held = -1;
    double elapsed, cpu0, open_s = 0;
    apr_uint64_t wall0;
    int i;

    signal(SIGPIPE, SIG_IGN);
    parse_args(argc, argv);
    raise_nofile();
    apr_initialize();
    srandom((unsigned)wsload_now_ns());
    hist = calloc(1, sizeof(*hist));
    ws = make_workers();
    if (opt.npids) {
        rss_before = wsload_rss_kb(opt.pids, opt.npids);
        if (rss_before < 0) {
            wsload_fail(NULL, "--pids: no such process");
        }
    }
    cpu0 = cpu_seconds();
    wall0 = wsload_now_ns();
    if (opt.mode == MODE_CONNECT) {
        ATOMIC_SET(&run.t0, wsload_now_ns());
        ATOMIC_SET(&run.phase, PH_RUN);
    }
    t0 = wsload_now_ns();
    for (i = 0; i < opt.threads; ++i) {
        if (pthread_create(&ws[i].tid, NULL, worker_main, &ws[i])) {
            wsload_fail(NULL, "cannot start thread %d", i);
        }
    }
    switch (opt.mode) {
    case MODE_ECHO:
        wait_opened((apr_uint64_t)opt.conns, 0);
        t0 = wsload_now_ns();
        ATOMIC_SET(&run.t0, t0);
        ATOMIC_SET(&run.phase, PH_RUN);
        wait_run_end(t0);
        t_end = wsload_now_ns();
        ATOMIC_SET(&run.phase, PH_DRAIN);
        wait_drained(ws, 10, "echoes");
        break;
    case MODE_CONNECT:
        wait_run_end(t0);
        t_end = wsload_now_ns();
        ATOMIC_SET(&run.phase, PH_DRAIN);
        wait_drained(ws, opt.timeout + 2, "handshakes");
        break;
    case MODE_IDLE:
        wait_opened((apr_uint64_t)opt.conns, opt.rate);
        open_s = secs_since(t0);
        t0 = wsload_now_ns();
        ATOMIC_SET(&run.phase, PH_RUN);
        /* Let the server settle (threads and buffers of the last opens),
         * then read its memory at the end of the hold. */
        wait_run_end(t0);
        if (opt.npids) {
            rss_held = wsload_rss_kb(opt.pids, opt.npids);
        }
        t_end = wsload_now_ns();
        /* Then each socket echoes one message, every byte checked. */
        ATOMIC_SET(&run.phase, PH_DRAIN);
        wait_drained(ws, 30, "echoes of the idle sockets");
        break;
    case MODE_FANOUT: {
        apr_uint64_t want = (apr_uint64_t)opt.conns * opt.publishers
                            * opt.count;

        wait_opened((apr_uint64_t)opt.conns
                    + (opt.pub_target.http ? 0 : (apr_uint64_t)opt.publishers),
                    0);
        /* A subscription may take effect just after the 101. */
        sleep_ms(200);
        t0 = wsload_now_ns();
        ATOMIC_SET(&run.t0, t0);
        ATOMIC_SET(&run.phase, PH_RUN);
        while (ATOMIC_GET(&run.pubs_done) < opt.publishers) {
            if (secs_since(t0) > opt.seconds * 3 + opt.timeout + 10) {
                wsload_fail(NULL, "the publishers could not send %llu "
                            "messages in time",
                            (unsigned long long)opt.count);
            }
            sleep_ms(2);
        }
        while (ATOMIC_GET(&run.msgs) < want
               && (double)(wsload_now_ns() - ATOMIC_GET(&run.last_pub_ns))
                  / 1e9 < opt.drain) {
            sleep_ms(2);
        }
        t_end = wsload_now_ns();
        break;
    }
    }
    ATOMIC_SET(&run.phase, PH_CLOSE);
    for (i = 0; i < opt.threads; ++i) {
        pthread_join(ws[i].tid, NULL);
        wsload_hist_merge(hist, &ws[i].hist);
        msgs += ws[i].msgs;
        bytes += ws[i].bytes;
        wire_in += ws[i].wire_in;
        wire_out += ws[i].wire_out;
        deflated += ws[i].deflated;
        cycles += ws[i].cycles;
        cclosed += ws[i].client_closed;
        if (opt.mode == MODE_ECHO || opt.mode == MODE_FANOUT) {
            if (ws[i].drained_ns > t_end) {
                t_end = ws[i].drained_ns;
            }
        }
    }
    if (opt.mode == MODE_FANOUT) {
        wsload_fanout_check(ws, opt.threads);
    }
    elapsed = (double)(t_end - t0) / 1e9;
    if (elapsed <= 0) {
        elapsed = 1e-9;
    }

    printf("mode=%s conns=%d threads=%d seconds=%.2f", mode_names[opt.mode],
           opt.conns, opt.threads, elapsed);
    if (opt.mode == MODE_ECHO) {
        printf(" size=%d inflight=%d%s\n", opt.size, opt.inflight,
               opt.json ? " payload=json" : "");
        if (!msgs) {
            wsload_fail(NULL, "no message came back");
        }
        if (opt.deflate || opt.json) {
            /* Socket bytes each way (handshakes and closes included). */
            printf("deflated_conns=%llu wire_out_bytes=%llu wire_in_bytes=%llu "
                   "wire_in_per_msg=%.1f\n", (unsigned long long)deflated,
                   (unsigned long long)wire_out, (unsigned long long)wire_in,
                   (double)wire_in / (double)msgs);
        }
        printf("messages=%llu msgs_per_s=%.0f MB_per_s=%.2f ",
               (unsigned long long)msgs, (double)msgs / elapsed,
               (double)bytes / elapsed / 1e6);
        print_latency(hist);
    }
    else if (opt.mode == MODE_CONNECT) {
        printf("\n");
        if (!msgs) {
            wsload_fail(NULL, "no handshake completed");
        }
        printf("handshakes=%llu handshakes_per_s=%.0f cycles=%llu "
               "client_closed=%llu ", (unsigned long long)msgs,
               (double)msgs / elapsed, (unsigned long long)cycles,
               (unsigned long long)cclosed);
        print_latency(hist);
    }
    else if (opt.mode == MODE_IDLE) {
        printf(" rate=%.0f\nsockets=%d open_s=%.2f echoed_after_hold=%llu",
               opt.rate, opt.conns, open_s, (unsigned long long)msgs);
        if (opt.npids) {
            printf(" rss_before_kb=%ld rss_held_kb=%ld kb_per_socket=%.1f",
                   rss_before, rss_held,
                   (double)(rss_held - rss_before) / opt.conns);
        }
    }
    else {
        printf(" publishers=%d via=%s\n", opt.publishers,
               opt.pub_target.http ? "http" : "ws");
        printf("published=%llu deliveries=%llu deliveries_per_s=%.0f "
               "MB_per_s=%.2f lost=0 duplicates=0 reordered=0 ",
               (unsigned long long)(opt.count * (apr_uint64_t)opt.publishers),
               (unsigned long long)msgs, (double)msgs / elapsed,
               (double)bytes / elapsed / 1e6);
        print_latency(hist);
    }
    printf(" client_cpu_pct=%.0f errors=0\n",
           (cpu_seconds() - cpu0) / secs_since(wall0) * 100.0);
    fflush(stdout);
    /* The sessions' pools go with the process. */
    _exit(0);
}
