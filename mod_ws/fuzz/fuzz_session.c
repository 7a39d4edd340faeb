/* libFuzzer target: a whole ws_session fed attacker bytes.
 *
 * Input: byte 0 = flags, byte 1 = seed for the chunk sizes, the rest is
 * what the peer sends.  The same bytes are fed twice, once whole and once
 * in chunks whose sizes come from the seed, with the output drained in
 * pieces; a digest of everything the session did (messages, peer close,
 * output bytes, final state and code) must be the same both ways, or the
 * target aborts.  Every text message delivered must be valid UTF-8 and
 * within max_message.  Flag 0x20 turns permessage-deflate on (RSV1 frames
 * are then inflated).  Test code: aborts on a broken invariant.
 */
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>

#include "fuzz.h"
#include "ws_frame.h"
#include "ws_session.h"
#include "ws_utf8.h"

#define F_ECHO         0x01   /* on_message sends the message back */
#define F_CLIENT       0x02   /* client mode (output masked: not compared) */
#define F_CLOSE_IN_CB  0x04   /* on_message starts the close handshake */
#define F_LIMIT_SHIFT  3      /* bits 3-4 pick max_message */
#define F_DEFLATE      0x20   /* permessage-deflate agreed, contexts kept */

static const apr_size_t limits[4] = { 65536, 0, 16, 1000 };

typedef struct {
    ws_session_t *s;
    unsigned flags;
    apr_size_t max;
    apr_uint64_t h;      /* events, in order */
    apr_uint64_t out;    /* output bytes, in order (drained at any time) */
} run_t;

static void mix_into(apr_uint64_t *h, const void *p, apr_size_t n)
{
    const unsigned char *d = p;
    apr_size_t i;

    for (i = 0; i < n; i++) {
        *h = (*h ^ d[i]) * APR_UINT64_C(1099511628211);
    }
}

static void mix(run_t *r, const void *p, apr_size_t n)
{
    mix_into(&r->h, p, n);
}

static void mix_u(run_t *r, apr_uint64_t v)
{
    mix(r, &v, sizeof(v));
}

static void on_message(void *baton, unsigned op, const unsigned char *d,
                       apr_size_t n)
{
    run_t *r = baton;

    if (op != WS_OP_TEXT && op != WS_OP_BINARY) {
        abort();
    }
    if (op == WS_OP_TEXT && !ws_utf8_valid(d, n)) {
        abort();
    }
    if (r->max && n > r->max) {
        abort();
    }
    mix_u(r, 1000 + op);
    mix_u(r, n);
    mix(r, d, n);
    if (r->flags & F_ECHO) {
        ws_session_send(r->s, op, d, n);
    }
    if (r->flags & F_CLOSE_IN_CB) {
        ws_session_close(r->s, 1000, "done", 1);
    }
}

static void on_peer_close(void *baton, unsigned code, const char *reason,
                          apr_size_t len)
{
    run_t *r = baton;

    if (!ws_utf8_valid((const unsigned char *)reason, len)) {
        abort();
    }
    mix_u(r, 2000 + code);
    mix(r, reason, len);
}

/* Take up to `want` output bytes into the digest. */
static void drain(run_t *r, apr_size_t want)
{
    const unsigned char *d;
    apr_size_t n = ws_session_pending(r->s, &d);

    if (n > want) {
        n = want;
    }
    if (n && !(r->flags & F_CLIENT)) {
        mix_into(&r->out, d, n);
    }
    ws_session_consume(r->s, n);
}

static apr_uint64_t run(apr_pool_t *pool, unsigned flags, unsigned seed,
                        const unsigned char *in, apr_size_t len, int chunked)
{
    ws_session_config_t cfg;
    ws_session_callbacks_t cb = { on_message, on_peer_close };
    run_t r;
    apr_size_t pos = 0;
    apr_uint32_t x = seed * 2654435761u + 1;

    memset(&cfg, 0, sizeof(cfg));
    memset(&r, 0, sizeof(r));
    r.flags = flags;
    r.max = cfg.max_message = limits[(flags >> F_LIMIT_SHIFT) & 3];
    r.h = r.out = APR_UINT64_C(14695981039346656037);
    cfg.is_client = (flags & F_CLIENT) != 0;
    cfg.ping_interval = apr_time_from_sec(10);
    cfg.idle_timeout = apr_time_from_sec(60);
    if (flags & F_DEFLATE) {
        static const ws_deflate_params_t takeover = { 0, 0, 15, 15 };
        cfg.deflate = &takeover;
    }
    if (ws_session_create(&r.s, pool, &cfg, &cb, &r, 1) != APR_SUCCESS) {
        abort();
    }
    while (pos < len) {
        apr_size_t n = len - pos;
        if (chunked) {
            x = x * 1103515245u + 12345u;
            /* Mostly small pieces, sometimes large ones. */
            n = (x >> 16) & 0x8000 ? (x >> 16) % 512 + 1 : (x >> 16) % 8 + 1;
            if (n > len - pos) {
                n = len - pos;
            }
        }
        if (ws_session_feed(r.s, in + pos, n, 2) != APR_SUCCESS) {
            abort();
        }
        pos += n;
        drain(&r, chunked ? (x >> 8) % 64 : (apr_size_t)-1);
    }
    drain(&r, (apr_size_t)-1);
    /* Timers, the same way in both runs. */
    ws_session_tick(r.s, apr_time_from_sec(20));
    ws_session_tick(r.s, apr_time_from_sec(100));
    ws_session_tick(r.s, apr_time_from_sec(200));
    drain(&r, (apr_size_t)-1);
    ws_session_peer_eof(r.s);
    if (!ws_session_done(r.s) || ws_session_queued(r.s) != 0
        || ws_session_memory(r.s) > 2 * 65536) {
        abort();
    }
    mix_u(&r, ws_session_state(r.s));
    mix_u(&r, ws_session_close_code(r.s));
    mix(&r, ws_session_close_reason(r.s),
        strlen(ws_session_close_reason(r.s)));
    mix_u(&r, ws_session_stats(r.s)->messages_in);
    mix_u(&r, ws_session_stats(r.s)->pongs_received);
    mix_u(&r, r.out);
    return r.h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static apr_pool_t *root;
    apr_pool_t *pool;
    apr_uint64_t whole, pieces;

    if (root == NULL) {
        apr_initialize();
        apr_pool_create(&root, NULL);
    }
    if (size < 2) {
        return 0;
    }
    apr_pool_create(&pool, root);
    whole = run(pool, data[0], data[1], data + 2, size - 2, 0);
    apr_pool_clear(pool);
    pieces = run(pool, data[0], data[1], data + 2, size - 2, 1);
    apr_pool_destroy(pool);
    if (whole != pieces) {
        abort();
    }
    return 0;
}
