/* wsload: the shared declarations of the load generator's files.
 *
 *   wsload.c        options, threads, the run's phases and the report
 *   wsload_conn.c   one client connection: connect, handshake, I/O, close
 *   wsload_modes.c  what each mode does with a connection (echo, connect,
 *                   idle, fanout) and the fan-out publishers
 *   wsload_stats.c  latency histogram, /proc readings (RSS, CPU)
 *
 * Threads: each worker thread owns its epoll, its connections and their
 * pools; nothing in a conn_t or worker_t is touched by another thread.  The
 * run's phase and a few counters are shared through the atomics in
 * wsload_run_t.  Any failure prints "wsload: FAIL: ..." and ends the
 * process with status 1 at once (wsload_fail), so a bad server can never
 * produce a figure.
 */
#ifndef WSLOAD_H
#define WSLOAD_H

#include <netinet/in.h>
#include <pthread.h>

#include <apr.h>
#include <apr_pools.h>

#include "ws_handshake.h"
#include "ws_session.h"

typedef enum { MODE_ECHO, MODE_CONNECT, MODE_IDLE, MODE_FANOUT } wsload_mode_e;

/* Where a connection goes: an IPv4 loopback address, a port and a path. */
typedef struct {
    struct sockaddr_in sa;
    char hostport[32];
    const char *path;
    int http;               /* 1: plain HTTP POST target (fan-out publisher) */
} wsload_target_t;

typedef struct {
    wsload_mode_e mode;
    wsload_target_t target;        /* -H -p -P */
    wsload_target_t pub_target;    /* --publish-url, or target */
    int pub_same_url;              /* publisher on the subscribers' URL */
    int conns, size, inflight, threads, publishers, src_range;
    double seconds, rate, drain, timeout;
    apr_uint64_t count;            /* 0: no limit (echo, connect); fanout:
                                    * messages per publisher */
    int npids;
    int pids[64];
    int deflate;                   /* --deflate: offer permessage-deflate */
    int json;                      /* --json: echo payload is JSON text */
} wsload_opts_t;

extern wsload_opts_t opt;

/* ---- latency histogram (wsload_stats.c) ------------------------------- */

/* Log-linear buckets over nanoseconds: exact below 128 ns, then 64 buckets
 * per power of two (under 1.6% error), up to 2^63. */
#define HIST_BUCKETS (128 + 57 * 64)

typedef struct {
    apr_uint64_t n, max;
    apr_uint64_t b[HIST_BUCKETS];
} wsload_hist_t;

void wsload_hist_add(wsload_hist_t *h, apr_uint64_t ns);
void wsload_hist_merge(wsload_hist_t *into, const wsload_hist_t *from);
/* The q-quantile (0..1) in microseconds; 0 when empty. */
double wsload_hist_us(const wsload_hist_t *h, double q);

/* Resident memory in KB of the given processes and all their descendants
 * (VmRSS of /proc/PID/status); -1 when none of them exists. */
long wsload_rss_kb(const int *pids, int npids);

/* ---- connections (wsload_conn.c) -------------------------------------- */

typedef enum {
    CS_NONE,        /* no socket */
    CS_CONNECTING,  /* TCP connect in progress */
    CS_HANDSHAKE,   /* request sent, waiting for the 101 */
    CS_OPEN,        /* WebSocket open (or HTTP connection ready) */
    CS_CLOSING,     /* our close frame is out: wait for the server's reply
                     * and its end of TCP */
    CS_DONE         /* socket closed, nothing more to do */
} wsload_cstate_e;

typedef enum { ROLE_ECHO, ROLE_CONNECT, ROLE_IDLE, ROLE_SUB,
               ROLE_PUB_WS, ROLE_PUB_HTTP } wsload_role_e;

typedef struct worker_s worker_t;

typedef struct conn_s {
    worker_t *w;
    const wsload_target_t *target;
    wsload_role_e role;
    wsload_cstate_e state;
    int fd, id;
    unsigned events;              /* the epoll events asked for */
    apr_pool_t *pool;             /* the session's; cleared per connection */
    ws_session_t *session;
    char accept[WS_ACCEPT_LEN];
    int deflated;                 /* permessage-deflate was agreed */

    /* Raw bytes to write before the session's (handshake, HTTP request). */
    char *raw;
    size_t raw_len, raw_off, raw_cap;
    /* Response head being read (101, or an HTTP response). */
    char resp[4096];
    size_t resp_len;

    apr_uint64_t t_start;         /* ns: connect began / request sent */
    apr_uint64_t deadline;        /* ns: handshake or close must be over */
    int peer_closed;              /* the server sent a close frame */

    /* echo */
    apr_uint64_t next_seq, expect_seq;
    int outstanding;

    /* fan-out subscriber: per publisher the last sequence seen + 1 (0:
     * none yet) and a bitmap of the sequences seen */
    apr_uint64_t *last;
    unsigned char *seen;

    /* fan-out publisher */
    int pub_id;
    apr_uint64_t pub_seq;         /* next sequence to publish */
    int done;                     /* sent its count */
    int awaiting;                 /* HTTP: a POST is waiting for its answer */
    size_t resp_body_left;        /* HTTP: body bytes of the answer to skip */
    int http_last;                /* HTTP: the answer said Connection: close */
} conn_t;

struct worker_s {
    int index, ep;
    pthread_t tid;
    apr_pool_t *pool;
    conn_t *conns;                /* this thread's share of -c */
    int nconns;
    conn_t *pubs;                 /* fan-out publishers (thread 0 only) */
    int npubs;
    int started;                  /* idle: how many were started so far */
    int kicked;                   /* echo: first messages sent */
    int drained;                  /* PH_DRAIN reached nothing outstanding */
    apr_uint64_t t_begin;         /* ns: the thread began */
    apr_uint64_t next_scan;       /* ns: next timeout scan */
    unsigned char *sendbuf;
    unsigned char rbuf[65536];

    wsload_hist_t hist;           /* latencies of echoes, handshakes or
                                   * deliveries */
    apr_uint64_t msgs, bytes;     /* echoes or deliveries, and their bytes */
    apr_uint64_t wire_in, wire_out; /* bytes read and written on sockets */
    apr_uint64_t deflated;        /* connections with permessage-deflate */
    apr_uint64_t cycles;          /* connect: complete open/close cycles */
    apr_uint64_t client_closed;   /* connect: server never ended TCP */
    apr_uint64_t drained_ns;      /* echo: when the last echo came back */
};

/* The run's shared state: the main thread moves the phase on, workers
 * read it; counters are updated with atomics. */
typedef enum {
    PH_OPEN,     /* open connections; echo/fanout wait for the go */
    PH_RUN,      /* measure */
    PH_DRAIN,    /* send nothing new; wait for what is outstanding */
    PH_CLOSE,    /* close every connection (close frame, then TCP) */
    PH_EXIT
} wsload_phase_e;

typedef struct {
    volatile int phase;
    volatile apr_uint64_t t0;     /* ns when PH_RUN began */
    volatile apr_uint64_t opened; /* WebSockets upgraded (all threads) */
    volatile apr_uint64_t msgs;   /* echoes, handshakes or deliveries */
    volatile int pubs_done;       /* publishers that sent their count */
    volatile apr_uint64_t last_pub_ns;
} wsload_run_t;

extern wsload_run_t run;

#define ATOMIC_ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_SEQ_CST)
#define ATOMIC_GET(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define ATOMIC_SET(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)

apr_uint64_t wsload_now_ns(void);
void wsload_fail(const conn_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

void wsload_conn_start(conn_t *c);
void wsload_conn_event(conn_t *c, unsigned events);
void wsload_conn_flush(conn_t *c);
void wsload_conn_close(conn_t *c);          /* send a close frame */
void wsload_conn_finish(conn_t *c);         /* close the socket */
void wsload_conn_raw(conn_t *c, const char *data, size_t len);
void wsload_conn_check_timeout(conn_t *c, apr_uint64_t now);

/* ---- modes (wsload_modes.c) ------------------------------------------- */

/* Called by the connection code. */
void wsload_mode_opened(conn_t *c);                    /* 101 verified */
void wsload_mode_message(conn_t *c, unsigned opcode,
                         const unsigned char *d, apr_size_t len);
void wsload_mode_http_done(conn_t *c, int status);     /* POST answered */
void wsload_mode_ended(conn_t *c);                     /* TCP over */

/* Called once per loop of a worker. */
void wsload_mode_tick(worker_t *w, apr_uint64_t now);
/* Has the worker nothing left to do in this phase? */
int wsload_mode_idle(worker_t *w);

/* After the run: fan-out losses (fails when one is missing). */
void wsload_fanout_check(worker_t *workers, int nworkers);

#endif /* WSLOAD_H */
