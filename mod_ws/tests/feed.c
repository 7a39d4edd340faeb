/* Test helpers: guarded input buffers and the session runner (feed.h).
 *
 * Test code only: aborts the process on a failed mmap or malloc, and keeps
 * one guarded arena per process (Check forks a process per test).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <check.h>
#include <apr_general.h>

#include "feed.h"
#include "ws_close.h"
#include "ws_frame.h"

static unsigned char *arena;
static apr_size_t arena_cap;   /* readable bytes before the guard page */

unsigned char *feed_guard(const void *data, apr_size_t n)
{
    apr_size_t page = (apr_size_t)sysconf(_SC_PAGESIZE);

    if (arena == NULL || n > arena_cap) {
        if (arena) {
            munmap(arena, arena_cap + page);
        }
        arena_cap = (n + page - 1) / page * page;
        if (arena_cap == 0) {
            arena_cap = page;
        }
        arena = mmap(NULL, arena_cap + page, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (arena == MAP_FAILED
            || mprotect(arena + arena_cap, page, PROT_NONE) != 0) {
            abort();
        }
    }
    if (n > 0) {
        memcpy(arena + arena_cap - n, data, n);
    }
    return arena + arena_cap - n;
}

void feed_logf(char **log, const char *fmt, ...)
{
    va_list ap;
    apr_size_t old = *log ? strlen(*log) : 0;
    int add;

    va_start(ap, fmt);
    add = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    *log = realloc(*log, old + (apr_size_t)add + 1);
    if (*log == NULL) {
        abort();
    }
    va_start(ap, fmt);
    vsnprintf(*log + old, (apr_size_t)add + 1, fmt, ap);
    va_end(ap);
}

apr_uint32_t feed_hash(const unsigned char *d, apr_size_t n)
{
    apr_uint64_t h = APR_UINT64_C(14695981039346656037);
    apr_size_t i = 0;

    /* FNV-1a over 8-byte little-endian words, then the tail bytes: fast
     * enough to hash a 64 KiB message at each of its 65 546 split points. */
    for (; i + 8 <= n; i += 8) {
        apr_uint64_t w = 0;
        int k;
        for (k = 7; k >= 0; k--) {
            w = (w << 8) | d[i + (apr_size_t)k];
        }
        h = (h ^ w) * APR_UINT64_C(1099511628211);
    }
    for (; i < n; i++) {
        h = (h ^ d[i]) * APR_UINT64_C(1099511628211);
    }
    return (apr_uint32_t)(h ^ (h >> 32));
}

/* Data as text: short printable data quoted, anything else as a hash. */
static void feed_log_data(char **log, const unsigned char *d, apr_size_t n)
{
    apr_size_t i;
    int printable = n <= 40;

    for (i = 0; i < n && printable; i++) {
        printable = d[i] >= 0x20 && d[i] < 0x7F && d[i] != '\'';
    }
    if (printable) {
        feed_logf(log, "'%.*s'", (int)n, (const char *)d);
        return;
    }
    feed_logf(log, "#%08x", (unsigned)feed_hash(d, n));
}

static const char *feed_op_name(unsigned op)
{
    switch (op) {
    case WS_OP_CONTINUATION: return "cont";
    case WS_OP_TEXT:         return "text";
    case WS_OP_BINARY:       return "binary";
    case WS_OP_CLOSE:        return "close";
    case WS_OP_PING:         return "ping";
    case WS_OP_PONG:         return "pong";
    }
    return "reserved";
}

void feed_log_frames(char **log, const unsigned char *buf, apr_size_t n)
{
    while (n > 0) {
        ws_frame_header_t h;
        int hl = ws_frame_header_parse(buf, n, &h);
        unsigned char *pl;

        if (hl <= 0 || h.length > n - (apr_size_t)hl) {
            feed_logf(log, "out garbage %u bytes\n", (unsigned)n);
            return;
        }
        pl = malloc((apr_size_t)h.length + 1);
        memcpy(pl, buf + hl, (apr_size_t)h.length);
        if (h.masked) {
            ws_frame_mask(pl, (apr_size_t)h.length, h.mask, 0);
        }
        feed_logf(log, "out %s%s%s", feed_op_name(h.opcode),
                  h.fin ? "" : " nofin", h.masked ? " masked" : "");
        if (h.rsv) {
            feed_logf(log, " rsv%u", h.rsv);
        }
        feed_logf(log, " ");
        if (h.opcode == WS_OP_CLOSE && h.length >= 2) {
            feed_logf(log, "%u ", (pl[0] << 8) | pl[1]);
            feed_log_data(log, pl + 2, (apr_size_t)h.length - 2);
        }
        else {
            feed_logf(log, "%u ", (unsigned)h.length);
            feed_log_data(log, pl, (apr_size_t)h.length);
        }
        feed_logf(log, "\n");
        free(pl);
        buf += hl + (apr_size_t)h.length;
        n -= hl + (apr_size_t)h.length;
    }
}

typedef struct {
    char *log;
    ws_session_t *s;
    int echo;
} feed_ctx_t;

static void feed_on_message(void *baton, unsigned opcode,
                            const unsigned char *data, apr_size_t len)
{
    feed_ctx_t *ctx = baton;

    feed_logf(&ctx->log, "msg %s %u ", feed_op_name(opcode), (unsigned)len);
    feed_log_data(&ctx->log, data, len);
    feed_logf(&ctx->log, "\n");
    if (ctx->echo) {
        ws_session_send(ctx->s, opcode, data, len);
    }
}

static void feed_on_peer_close(void *baton, unsigned code,
                               const char *reason, apr_size_t reason_len)
{
    feed_ctx_t *ctx = baton;

    feed_logf(&ctx->log, "peer-close %u ", code);
    feed_log_data(&ctx->log, (const unsigned char *)reason, reason_len);
    feed_logf(&ctx->log, "\n");
}

static const char *feed_state_name(ws_session_state_e st)
{
    return st == WS_SESSION_OPEN ? "open"
         : st == WS_SESSION_CLOSING ? "closing" : "closed";
}

char *feed_run(const feed_vec_t *v, const apr_size_t *cuts, int ncuts)
{
    apr_pool_t *pool;
    ws_session_config_t cfg;
    ws_session_callbacks_t cb = { feed_on_message, feed_on_peer_close };
    feed_ctx_t ctx = { NULL, NULL, v->echo };
    const ws_session_stats_t *st;
    const unsigned char *out;
    apr_size_t from = 0, n;
    int i;

    memset(&cfg, 0, sizeof(cfg));
    cfg.is_client = v->is_client;
    cfg.max_message = v->max_message;
    cfg.deflate = v->deflate;
    cfg.deflate_min_size = v->deflate_min_size;
    apr_pool_create(&pool, NULL);
    ws_session_create(&ctx.s, pool, &cfg, &cb, &ctx, 1000);
    for (i = 0; i <= ncuts; i++) {
        apr_size_t to = i < ncuts ? cuts[i] : v->len;
        ck_assert_int_eq(ws_session_feed(ctx.s, feed_guard(v->in + from,
                                                           to - from),
                                         to - from, 1000), APR_SUCCESS);
        from = to;
    }
    n = ws_session_pending(ctx.s, &out);
    feed_log_frames(&ctx.log, out, n);
    ws_session_consume(ctx.s, n);
    st = ws_session_stats(ctx.s);
    feed_logf(&ctx.log, "state %s %u\n", feed_state_name(ws_session_state(ctx.s)),
              ws_session_close_code(ctx.s));
    feed_logf(&ctx.log, "stats msgs %u pongs %u\n",
              (unsigned)st->messages_in, (unsigned)st->pongs_received);
    /* Once CLOSED a session holds no zlib memory and small buffers. */
    if (ws_session_state(ctx.s) == WS_SESSION_CLOSED) {
        ck_assert_uint_le(ws_session_memory(ctx.s), 2 * 64 * 1024);
    }
    apr_pool_destroy(pool);
    return ctx.log;
}

char *feed_check(const feed_vec_t *v)
{
    char *whole = feed_run(v, NULL, 0);
    apr_size_t *cuts = malloc((v->len + 1) * sizeof(*cuts));
    apr_size_t k;

    /* Every split point into two pieces. */
    for (k = 1; k < v->len; k++) {
        char *log = feed_run(v, &k, 1);
        if (strcmp(log, whole) != 0) {
            ck_abort_msg("%s: split at %u gives\n%s\nwhole gives\n%s",
                         v->name, (unsigned)k, log, whole);
        }
        free(log);
    }
    /* One byte at a time. */
    if (v->len > 1) {
        char *log;
        for (k = 1; k < v->len; k++) {
            cuts[k - 1] = k;
        }
        log = feed_run(v, cuts, (int)v->len - 1);
        if (strcmp(log, whole) != 0) {
            ck_abort_msg("%s: byte at a time gives\n%s\nwhole gives\n%s",
                         v->name, log, whole);
        }
        free(log);
    }
    free(cuts);
    return whole;
}

static apr_size_t frame_rsv(unsigned char *out, unsigned fin, unsigned rsv,
                            unsigned opcode, const void *payload,
                            apr_size_t len, const unsigned char *mask)
{
    apr_size_t hl = ws_frame_header_write(out, fin, rsv, opcode, len, mask);

    if (len > 0) {
        memcpy(out + hl, payload, len);
    }
    if (mask) {
        ws_frame_mask(out + hl, len, mask, 0);
    }
    return hl + len;
}

apr_size_t feed_frame(unsigned char *out, unsigned fin, unsigned opcode,
                      const void *payload, apr_size_t len,
                      const unsigned char *mask)
{
    return frame_rsv(out, fin, 0, opcode, payload, len, mask);
}

const unsigned char feed_test_mask[4] = { 0x37, 0xfa, 0x21, 0x3d };

void feed_vb_init(feed_vb_t *v, int is_client)
{
    memset(v, 0, sizeof(*v));
    v->is_client = is_client;
}

static void vb_reserve(feed_vb_t *v, apr_size_t more)
{
    if (v->n + more > v->cap) {
        v->cap = (v->n + more) * 2;
        v->b = realloc(v->b, v->cap);
        ck_assert_ptr_nonnull(v->b);
    }
}

void feed_vb_raw(feed_vb_t *v, const void *p, apr_size_t n)
{
    vb_reserve(v, n);
    memcpy(v->b + v->n, p, n);
    v->n += n;
}

void feed_vb_frame_rsv(feed_vb_t *v, unsigned fin, unsigned rsv, unsigned op,
                       const void *p, apr_size_t n)
{
    vb_reserve(v, n + WS_FRAME_HEADER_MAX);
    v->n += frame_rsv(v->b + v->n, fin, rsv, op, p, n,
                      v->is_client ? NULL : feed_test_mask);
}

void feed_vb_frame(feed_vb_t *v, unsigned fin, unsigned op, const void *p,
                   apr_size_t n)
{
    feed_vb_frame_rsv(v, fin, 0, op, p, n);
}

void feed_vb_str(feed_vb_t *v, unsigned fin, unsigned op, const char *s)
{
    feed_vb_frame(v, fin, op, s, strlen(s));
}
