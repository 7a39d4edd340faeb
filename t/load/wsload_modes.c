/* wsload_modes.c: what each mode does with its connections.
 *
 *   echo     every connection keeps -n messages in flight; each echo is
 *            checked byte for byte (send time, connection and sequence
 *            number, then a pattern derived from them)
 *   connect  open, check the 101, close with a close frame, repeat
 *   idle     open at -r per second and hold; the session answers pings
 *   fanout   subscribers check what publishers (over WebSocket or HTTP
 *            POST) sent: per publisher, every sequence number exactly
 *            once and in order
 *
 * Runs on the worker thread that owns the connection; the only shared
 * state is the run's phase and its atomic counters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_time.h>

#include "ws_frame.h"
#include "wsload.h"

/* ---- echo ------------------------------------------------------------- */

/* Payload: 8 bytes send time, 8 bytes (connection id << 40 | seq), then a
 * pattern from both, so a byte from another message or socket is caught. */
static unsigned char echo_byte(apr_uint64_t tag, int i)
{
    return (unsigned char)(tag * 31 + (apr_uint64_t)i * 7);
}

/* --json: the bytes after the 16-byte prefix, a JSON-like text such as a
 * chat or ticker stream sends (compressible, unlike the pattern). */
static const char json_unit[] =
    "{\"id\":1042,\"user\":\"alice\",\"room\":\"lobby\",\"type\":\"message\","
    "\"text\":\"hello there, how are you?\",\"ts\":1765000000123},";

static unsigned char echo_fill(apr_uint64_t tag, int i)
{
    if (opt.json) {
        return (unsigned char)json_unit[(size_t)(i - 16) % (sizeof(json_unit) - 1)];
    }
    return echo_byte(tag, i);
}

static void echo_send(conn_t *c)
{
    unsigned char *p = c->w->sendbuf;
    apr_uint64_t t = wsload_now_ns();
    apr_uint64_t tag = ((apr_uint64_t)c->id << 40) | c->next_seq++;
    int i;

    memcpy(p, &t, 8);
    memcpy(p + 8, &tag, 8);
    for (i = 16; i < opt.size; ++i) {
        p[i] = echo_fill(tag, i);
    }
    if (ws_session_send(c->session, WS_OP_BINARY, p, (apr_size_t)opt.size)
        != APR_SUCCESS) {
        wsload_fail(c, "cannot queue a message");
    }
    c->outstanding++;
}

static int echo_may_send(void)
{
    return ATOMIC_GET(&run.phase) == PH_RUN
           && (!opt.count || ATOMIC_GET(&run.msgs) < opt.count);
}

static void echo_kick(conn_t *c)
{
    int i;

    for (i = 0; i < opt.inflight; ++i) {
        echo_send(c);
    }
    wsload_conn_flush(c);
}

static void echo_message(conn_t *c, unsigned opcode, const unsigned char *d,
                         apr_size_t len)
{
    apr_uint64_t t, tag, want = ((apr_uint64_t)c->id << 40) | c->expect_seq;
    apr_uint64_t now;
    int i;

    if (c->outstanding == 0) {
        wsload_fail(c, "an echo came back that was never sent");
    }
    if (len != (apr_size_t)opt.size) {
        wsload_fail(c, "echo has the wrong length: %lu bytes, sent %d",
                    (unsigned long)len, opt.size);
    }
    if (opcode != WS_OP_BINARY) {
        wsload_fail(c, "echo of a binary message came back as opcode %u",
                    opcode);
    }
    memcpy(&t, d, 8);
    memcpy(&tag, d + 8, 8);
    if (tag != want) {
        wsload_fail(c, "echo out of order, lost or duplicated: expected "
                    "message %llu, got tag %llx",
                    (unsigned long long)c->expect_seq,
                    (unsigned long long)tag);
    }
    for (i = 16; i < opt.size; ++i) {
        if (d[i] != echo_fill(tag, i)) {
            wsload_fail(c, "echo payload differs from what was sent: "
                        "message %llu byte %d is 0x%02x, sent 0x%02x",
                        (unsigned long long)c->expect_seq, i, d[i],
                        echo_fill(tag, i));
        }
    }
    now = wsload_now_ns();
    c->expect_seq++;
    c->outstanding--;
    c->w->msgs++;
    c->w->bytes += len;
    wsload_hist_add(&c->w->hist, now - t);
    ATOMIC_ADD(&run.msgs, 1);
    if (echo_may_send()) {
        echo_send(c);
    }
    else if (c->outstanding == 0) {
        c->w->drained_ns = now;
    }
}

/* ---- fan-out ---------------------------------------------------------- */

/* A fan-out message is text, so a channel may carry it either way:
 * "wsload p=<publisher> s=<seq> t=<ns> |" and a pattern up to -s bytes. */
static char fan_byte(int p, apr_uint64_t s, size_t i)
{
    return (char)('a' + (unsigned)(((apr_uint64_t)p * 7 + s * 13 + i) % 26));
}

static size_t fan_build(char *out, int p, apr_uint64_t s, apr_uint64_t t)
{
    size_t n = (size_t)sprintf(out, "wsload p=%d s=%llu t=%llu |", p,
                               (unsigned long long)s, (unsigned long long)t);

    while (n < (size_t)opt.size) {
        out[n] = fan_byte(p, s, n);
        n++;
    }
    return n;
}

static apr_uint64_t pub_count(void)
{
    return opt.count;
}

static int seen_get(const conn_t *c, int p, apr_uint64_t s)
{
    apr_uint64_t bit = (apr_uint64_t)p * pub_count() + s;

    return (c->seen[bit >> 3] >> (bit & 7)) & 1;
}

static void seen_set(conn_t *c, int p, apr_uint64_t s)
{
    apr_uint64_t bit = (apr_uint64_t)p * pub_count() + s;

    c->seen[bit >> 3] |= (unsigned char)(1u << (bit & 7));
}

static void fan_message(conn_t *c, unsigned opcode, const unsigned char *d,
                        apr_size_t len)
{
    char head[96];
    unsigned long long s, t;
    int p, off = 0;
    size_t i, hl = len < sizeof(head) - 1 ? len : sizeof(head) - 1;
    apr_uint64_t now;

    if (c->role != ROLE_SUB) {
        return;        /* a publisher hearing its own channel */
    }
    if (opcode != WS_OP_TEXT && opcode != WS_OP_BINARY) {
        wsload_fail(c, "fan-out message with opcode %u", opcode);
    }
    memcpy(head, d, hl);
    head[hl] = '\0';
    if (sscanf(head, "wsload p=%d s=%llu t=%llu |%n", &p, &s, &t, &off) != 3
        || off == 0) {
        wsload_fail(c, "fan-out message not from wsload: \"%.40s\"", head);
    }
    if (p < 0 || p >= opt.publishers || s >= pub_count()) {
        wsload_fail(c, "fan-out message publisher %d seq %llu was never "
                    "sent", p, s);
    }
    if (len != (apr_size_t)(opt.size > off ? opt.size : off)) {
        wsload_fail(c, "fan-out message publisher %d seq %llu has %lu "
                    "bytes, sent %d", p, s, (unsigned long)len,
                    opt.size > off ? opt.size : off);
    }
    for (i = (size_t)off; i < len; ++i) {
        if ((char)d[i] != fan_byte(p, s, i)) {
            wsload_fail(c, "fan-out message publisher %d seq %llu differs "
                        "from what was sent at byte %lu", p, s,
                        (unsigned long)i);
        }
    }
    if (seen_get(c, p, s)) {
        wsload_fail(c, "duplicate: publisher %d seq %llu delivered twice",
                    p, s);
    }
    if (c->last[p] > s + 1) {
        wsload_fail(c, "reordered: publisher %d seq %llu arrived after seq "
                    "%llu", p, s, (unsigned long long)(c->last[p] - 1));
    }
    seen_set(c, p, s);
    c->last[p] = s + 1;
    now = wsload_now_ns();
    c->w->msgs++;
    c->w->bytes += len;
    c->w->drained_ns = now;
    wsload_hist_add(&c->w->hist, now - t);
    ATOMIC_ADD(&run.msgs, 1);
}

static void pub_finish_one(conn_t *c, apr_uint64_t now)
{
    c->done = 1;
    ATOMIC_SET(&run.last_pub_ns, now);
    ATOMIC_ADD(&run.pubs_done, 1);
}

/* Publish what is due: message k of a publisher is due at
 * t0 + k / (rate / publishers). */
static void pub_tick(conn_t *c, apr_uint64_t now)
{
    static __thread char *msg;
    double per_pub = opt.rate / opt.publishers;
    apr_uint64_t due;
    size_t n;

    if (c->done) {
        return;
    }
    if (!msg && !(msg = malloc((size_t)opt.size + 128))) {
        wsload_fail(c, "out of memory");
    }
    if (c->state == CS_NONE || c->state == CS_DONE) {
        wsload_conn_start(c);
        return;
    }
    if (c->state != CS_OPEN || c->awaiting) {
        return;
    }
    while (c->pub_seq < pub_count()) {
        due = ATOMIC_GET(&run.t0)
              + (apr_uint64_t)((double)c->pub_seq * 1e9 / per_pub);
        if (now < due) {
            break;
        }
        n = fan_build(msg, c->pub_id, c->pub_seq, wsload_now_ns());
        if (c->role == ROLE_PUB_WS) {
            if (ws_session_send(c->session, WS_OP_TEXT, msg, n)
                != APR_SUCCESS) {
                wsload_fail(c, "cannot queue a message");
            }
        }
        else {
            char head[512];
            int hn = snprintf(head, sizeof(head),
                              "POST %s HTTP/1.1\r\nHost: %s\r\n"
                              "Content-Type: text/plain\r\n"
                              "Content-Length: %lu\r\n\r\n",
                              c->target->path, c->target->hostport,
                              (unsigned long)n);

            wsload_conn_raw(c, head, (size_t)hn);
            wsload_conn_raw(c, msg, n);
            c->awaiting = 1;
            c->resp_len = 0;
        }
        c->pub_seq++;
        if (c->role == ROLE_PUB_HTTP) {
            break;          /* one request at a time keeps the order */
        }
    }
    wsload_conn_flush(c);
    if (c->pub_seq == pub_count() && !c->awaiting) {
        pub_finish_one(c, now);
    }
}

void wsload_mode_http_done(conn_t *c, int status)
{
    (void)status;
    if (c->pub_seq == pub_count()) {
        pub_finish_one(c, wsload_now_ns());
    }
}

/* Called after the run: every subscriber must have every message. */
void wsload_fanout_check(worker_t *workers, int nworkers)
{
    apr_uint64_t lost = 0, s;
    int i, k, p, shown = 0;

    for (i = 0; i < nworkers; ++i) {
        for (k = 0; k < workers[i].nconns; ++k) {
            conn_t *c = &workers[i].conns[k];

            for (p = 0; p < opt.publishers; ++p) {
                for (s = 0; s < pub_count(); ++s) {
                    if (seen_get(c, p, s)) {
                        continue;
                    }
                    lost++;
                    if (shown++ < 5) {
                        fprintf(stderr, "wsload: subscriber %d never got "
                                "publisher %d seq %llu\n", c->id, p,
                                (unsigned long long)s);
                    }
                }
            }
        }
    }
    if (lost) {
        wsload_fail(NULL, "lost: %llu fan-out deliveries never arrived "
                    "(waited %.1f s after the last publish)",
                    (unsigned long long)lost, opt.drain);
    }
}

/* ---- dispatch --------------------------------------------------------- */

void wsload_mode_opened(conn_t *c)
{
    apr_uint64_t now = wsload_now_ns();

    switch (c->role) {
    case ROLE_ECHO:
        if (c->w->kicked) {
            echo_kick(c);
        }
        break;
    case ROLE_CONNECT:
        if (ATOMIC_GET(&run.phase) == PH_RUN) {
            wsload_hist_add(&c->w->hist, now - c->t_start);
            c->w->msgs++;
            ATOMIC_ADD(&run.msgs, 1);
        }
        wsload_conn_close(c);
        break;
    case ROLE_IDLE:
        /* --json: one message first, so the socket is idle the way one
         * that carried traffic is (with permessage-deflate and context
         * takeover, its zlib streams exist from then on). */
        if (opt.json) {
            unsigned char *p = c->w->sendbuf;
            int i;

            for (i = 0; i < opt.size; ++i) {
                p[i] = (unsigned char)json_unit[(size_t)i % (sizeof(json_unit) - 1)];
            }
            if (ws_session_send(c->session, WS_OP_TEXT, p,
                                (apr_size_t)opt.size) != APR_SUCCESS) {
                wsload_fail(c, "cannot queue a message");
            }
            wsload_conn_flush(c);
        }
        break;
    default:
        break;
    }
}

void wsload_mode_message(conn_t *c, unsigned opcode, const unsigned char *d,
                         apr_size_t len)
{
    switch (c->role) {
    case ROLE_ECHO:
        echo_message(c, opcode, d, len);
        break;
    case ROLE_SUB:
    case ROLE_PUB_WS:
        fan_message(c, opcode, d, len);
        break;
    case ROLE_IDLE:
        break;                 /* whatever an idle server says is fine */
    default:
        wsload_fail(c, "a message on a connection that expects none");
    }
}

void wsload_mode_ended(conn_t *c)
{
    if (c->role == ROLE_CONNECT) {
        c->w->cycles++;
    }
}

static int connect_may_start(void)
{
    return ATOMIC_GET(&run.phase) == PH_RUN
           && (!opt.count || ATOMIC_GET(&run.msgs) < opt.count);
}

void wsload_mode_tick(worker_t *w, apr_uint64_t now)
{
    int phase = ATOMIC_GET(&run.phase), i, want;
    double since;

    switch (opt.mode) {
    case MODE_ECHO:
        if (phase == PH_RUN && !w->kicked) {
            w->kicked = 1;
            for (i = 0; i < w->nconns; ++i) {
                if (w->conns[i].state == CS_OPEN) {
                    echo_kick(&w->conns[i]);
                }
            }
        }
        break;
    case MODE_CONNECT:
        for (i = 0; i < w->nconns && connect_may_start(); ++i) {
            conn_t *c = &w->conns[i];

            if (c->state == CS_NONE || c->state == CS_DONE) {
                wsload_conn_start(c);
            }
        }
        break;
    case MODE_IDLE:
        /* Open at the thread's share of -r per second. */
        since = (double)(now - w->t_begin) / 1e9;
        want = (int)(since * opt.rate / opt.threads) + 1;
        while (phase == PH_OPEN && w->started < w->nconns
               && w->started < want) {
            wsload_conn_start(&w->conns[w->started++]);
        }
        /* After the hold, every socket must still echo one message. */
        if (phase == PH_DRAIN && !w->kicked) {
            w->kicked = 1;
            for (i = 0; i < w->nconns; ++i) {
                conn_t *c = &w->conns[i];

                if (c->state == CS_OPEN) {
                    c->role = ROLE_ECHO;
                    echo_send(c);
                    wsload_conn_flush(c);
                }
            }
        }
        break;
    case MODE_FANOUT:
        if (phase == PH_RUN) {
            for (i = 0; i < w->npubs; ++i) {
                pub_tick(&w->pubs[i], now);
            }
        }
        else if (phase == PH_OPEN) {
            for (i = 0; i < w->npubs; ++i) {
                if (w->pubs[i].state == CS_NONE) {
                    wsload_conn_start(&w->pubs[i]);
                }
            }
        }
        break;
    }
}

/* Is this worker done with what PH_DRAIN waits for? */
int wsload_mode_idle(worker_t *w)
{
    int i;

    for (i = 0; i < w->nconns; ++i) {
        const conn_t *c = &w->conns[i];

        if ((opt.mode == MODE_ECHO || opt.mode == MODE_IDLE)
            && c->outstanding) {
            return 0;
        }
        if (opt.mode == MODE_CONNECT && c->fd >= 0) {
            return 0;
        }
    }
    return 1;
}
