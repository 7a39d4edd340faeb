/* libFuzzer target: permessage-deflate messages through ws_session, and
 * the Sec-WebSocket-Extensions negotiation.
 *
 * Input: byte 0 = flags, byte 1 = seed, then records, each one compressed
 * message: a byte h (bit 7: text, else binary; bits 0-6: length L) and L
 * bytes of DEFLATE data, sent as one RSV1 frame or split into up to three
 * fragments as the seed says, masked when the session is a server.  The
 * frames are fed whole and again in seeded chunks; a digest of what the
 * session did must be the same both ways.  Invariants (abort when broken):
 * text delivered is valid UTF-8, nothing is over max_message, a CLOSED
 * session holds no zlib memory, and with echo on, every frame we sent
 * inflates (with zlib, independently) back to the message that was echoed.
 * The record bytes are also parsed as an extension header and negotiated;
 * an accepted answer must pass our own client's check, with windows that
 * fit.  Test code.
 */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>
#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "fuzz.h"
#include "ws_deflate.h"
#include "ws_frame.h"
#include "ws_handshake.h"
#include "ws_session.h"
#include "ws_utf8.h"

#define F_TAKEOVER    0x01   /* context takeover both ways */
#define F_CLIENT      0x02   /* we are the client: frames come unmasked */
#define F_LIMIT_SHIFT 2      /* bits 2-3 pick max_message */
#define F_ECHO        0x10   /* messages go back, compressed */
#define F_SMALLWIN    0x20   /* window bits 9 (else 15) */

static const apr_size_t limits[4] = { 65536, 0, 16, 1000 };

typedef struct {
    ws_session_t *s;
    unsigned flags;
    apr_size_t max;
    apr_uint64_t h;
    /* echo check: what was echoed, in order */
    unsigned char *echoed;
    apr_size_t echoed_len, echoed_cap;
    int check;
} run_t;

static void mix(run_t *r, const void *p, apr_size_t n)
{
    const unsigned char *d = p;
    apr_size_t i;

    for (i = 0; i < n; i++) {
        r->h = (r->h ^ d[i]) * APR_UINT64_C(1099511628211);
    }
}

static void mix_u(run_t *r, apr_uint64_t v)
{
    mix(r, &v, sizeof(v));
}

static void on_message(void *baton, unsigned op, const unsigned char *d,
                       apr_size_t n)
{
    run_t *r = baton;

    if ((op == WS_OP_TEXT && !ws_utf8_valid(d, n)) || (r->max && n > r->max)) {
        abort();
    }
    mix_u(r, 1000 + op);
    mix_u(r, n);
    mix(r, d, n);
    if ((r->flags & F_ECHO)
        && ws_session_send(r->s, op, d, n) == APR_SUCCESS && r->check) {
        if (r->echoed_len + n + 8 > r->echoed_cap) {
            r->echoed_cap = (r->echoed_len + n + 8) * 2;
            r->echoed = realloc(r->echoed, r->echoed_cap);
            if (r->echoed == NULL) {
                abort();
            }
        }
        memcpy(r->echoed + r->echoed_len, &n, sizeof(n));
        memcpy(r->echoed + r->echoed_len + sizeof(n), d, n);
        r->echoed_len += sizeof(n) + n;
    }
}

/* Inflate every frame we sent and compare with what was echoed. */
static void check_output(run_t *r, const unsigned char *out, apr_size_t n,
                         int takeover, unsigned bits)
{
    z_stream z;
    apr_size_t pos = 0, epos = 0;
    unsigned char *buf = NULL;

    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, -(int)bits) != Z_OK) {
        abort();
    }
    while (pos < n) {
        ws_frame_header_t h;
        int hl = ws_frame_header_parse(out + pos, n - pos, &h);
        apr_size_t len, want, got;

        if (hl <= 0 || h.length > n - pos - (apr_size_t)hl) {
            abort();
        }
        len = (apr_size_t)h.length;
        pos += (apr_size_t)hl;
        if (WS_OP_IS_CONTROL(h.opcode)) {
            pos += len;
            continue;
        }
        if (epos + sizeof(want) > r->echoed_len) {
            abort();
        }
        memcpy(&want, r->echoed + epos, sizeof(want));
        epos += sizeof(want);
        buf = realloc(buf, want + 1);
        if (h.rsv == 4) {
            unsigned char *in = malloc(len + 4);
            memcpy(in, out + pos, len);
            if (h.masked) {
                ws_frame_mask(in, len, h.mask, 0);
            }
            memcpy(in + len, "\0\0\xff\xff", 4);
            if (!takeover) {
                inflateReset(&z);
            }
            z.next_in = in;
            z.avail_in = (uInt)(len + 4);
            z.next_out = buf;
            z.avail_out = (uInt)want + 1;
            if (inflate(&z, Z_SYNC_FLUSH) != Z_OK || z.avail_in != 0) {
                abort();
            }
            got = want + 1 - z.avail_out;
            free(in);
        }
        else if (h.rsv == 0) {
            memcpy(buf, out + pos, len);
            if (h.masked) {
                ws_frame_mask(buf, len, h.mask, 0);
            }
            got = len;
        }
        else {
            abort();
        }
        if (got != want || memcmp(buf, r->echoed + epos, want) != 0) {
            abort();
        }
        epos += want;
        pos += len;
    }
    inflateEnd(&z);
    free(buf);
}

/* The records as frames: fragments at seeded points, masked to a server. */
static unsigned char *frames(const unsigned char *in, apr_size_t len,
                             int is_client, unsigned seed, apr_size_t *outlen)
{
    static const unsigned char mask[4] = { 0x12, 0x34, 0x56, 0x78 };
    /* A record of n bytes makes at most 3 frames of 8-byte headers. */
    unsigned char *out = malloc(len * 25 + 64);
    apr_size_t pos = 0, o = 0;
    apr_uint32_t x = seed * 2654435761u + 7;

    while (pos < len) {
        unsigned h = in[pos++];
        apr_size_t n = h & 0x7F, done = 0;
        unsigned op = (h & 0x80) ? WS_OP_TEXT : WS_OP_BINARY;
        int first = 1, nfrag = 0;

        if (n > len - pos) {
            n = len - pos;
        }
        do {
            apr_size_t piece;
            x = x * 1103515245u + 12345u;
            piece = ((x >> 16) & 3) == 0 && ++nfrag < 3
                    ? (x >> 18) % (n - done + 1) : n - done;
            o += ws_frame_header_write(out + o, done + piece == n,
                                       first ? 4 : 0,
                                       first ? op : WS_OP_CONTINUATION,
                                       piece, is_client ? NULL : mask);
            memcpy(out + o, in + pos + done, piece);
            if (!is_client) {
                ws_frame_mask(out + o, piece, mask, 0);
            }
            o += piece;
            done += piece;
            first = 0;
        } while (done < n);
        pos += n;
    }
    *outlen = o;
    return out;
}

static apr_uint64_t run(apr_pool_t *pool, unsigned flags, unsigned seed,
                        const unsigned char *in, apr_size_t len, int chunked)
{
    ws_session_config_t cfg;
    ws_deflate_params_t params;
    run_t r;
    apr_size_t pos = 0, outcap = 0, outlen = 0;
    apr_uint32_t x = seed * 2246822519u + 3;
    unsigned char *collected = NULL;
    ws_session_callbacks_t cb = { on_message, NULL };
    unsigned bits = (flags & F_SMALLWIN) ? 9 : 15;

    memset(&cfg, 0, sizeof(cfg));
    memset(&r, 0, sizeof(r));
    params.server_no_context_takeover = params.client_no_context_takeover
        = !(flags & F_TAKEOVER);
    params.server_max_window_bits = params.client_max_window_bits = bits;
    r.flags = flags;
    r.check = !chunked;
    r.max = cfg.max_message = limits[(flags >> F_LIMIT_SHIFT) & 3];
    r.h = APR_UINT64_C(14695981039346656037);
    cfg.is_client = (flags & F_CLIENT) != 0;
    cfg.deflate = &params;
    cfg.deflate_min_size = seed & 7;
    if (ws_session_create(&r.s, pool, &cfg, &cb, &r, 1) != APR_SUCCESS) {
        abort();
    }
    while (pos < len && ws_session_state(r.s) != WS_SESSION_CLOSED) {
        apr_size_t n = len - pos;
        const unsigned char *d;
        apr_size_t k;

        if (chunked) {
            x = x * 1103515245u + 12345u;
            n = (x >> 16) % 300 + 1;
            if (n > len - pos) {
                n = len - pos;
            }
        }
        if (ws_session_feed(r.s, in + pos, n, 2) != APR_SUCCESS) {
            abort();
        }
        pos += n;
        k = ws_session_pending(r.s, &d);
        if (r.check && k > 0) {
            if (outlen + k > outcap) {
                outcap = (outlen + k) * 2;
                collected = realloc(collected, outcap);
            }
            memcpy(collected + outlen, d, k);
            outlen += k;
        }
        ws_session_consume(r.s, k);
    }
    if (r.check && (flags & F_ECHO)) {
        check_output(&r, collected, outlen, (flags & F_TAKEOVER) != 0, bits);
    }
    ws_session_peer_eof(r.s);
    if (ws_session_memory(r.s) > 2 * 65536 + 16384) {
        abort();
    }
    mix_u(&r, ws_session_close_code(r.s));
    mix(&r, ws_session_close_reason(r.s), strlen(ws_session_close_reason(r.s)));
    mix_u(&r, ws_session_stats(r.s)->messages_in);
    free(collected);
    free(r.echoed);
    return r.h;
}

/* The same bytes as an extension header: whatever it holds, an answer we
 * give must be one our client accepts, with the same parameters. */
static void negotiate(apr_pool_t *pool, const unsigned char *data,
                      apr_size_t size, unsigned flags)
{
    char *hdr = apr_pstrmemdup(pool, (const char *)data, size);
    ws_deflate_prefs_t prefs = { !(flags & F_TAKEOVER),
                                 (flags & F_SMALLWIN) ? 9 : 15 };
    ws_deflate_prefs_t client = { 0, 0 };
    ws_deflate_params_t sp, cp;
    const char *answer;

    answer = ws_deflate_accept(pool, ws_handshake_parse_extensions(pool, hdr),
                               &prefs, &sp);
    if (answer == NULL) {
        return;
    }
    if (ws_deflate_client_check(ws_handshake_parse_extensions(pool, answer),
                                &client, &cp) != 0) {
        /* client_max_window_bits in the answer is only legal when our
         * client offered it; a client that did not is this one. */
        if (strstr(answer, "client_max_window_bits") == NULL) {
            abort();
        }
        return;
    }
    /* Each side's decompressor must be at least as wide as the other
     * side's compressor (a server may quietly use a smaller window). */
    if (cp.server_max_window_bits < sp.server_max_window_bits
        || sp.client_max_window_bits < cp.client_max_window_bits
        || cp.server_no_context_takeover != sp.server_no_context_takeover
        || cp.client_no_context_takeover != sp.client_no_context_takeover) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static apr_pool_t *root;
    apr_pool_t *pool;
    apr_uint64_t whole, pieces;
    unsigned char *wire;
    apr_size_t wlen;

    if (root == NULL) {
        apr_initialize();
        apr_pool_create(&root, NULL);
    }
    if (size < 2) {
        return 0;
    }
    apr_pool_create(&pool, root);
    negotiate(pool, data + 2, size - 2, data[0]);
    wire = frames(data + 2, size - 2, (data[0] & F_CLIENT) != 0, data[1],
                  &wlen);
    whole = run(pool, data[0], data[1], wire, wlen, 0);
    apr_pool_clear(pool);
    pieces = run(pool, data[0], data[1], wire, wlen, 1);
    apr_pool_destroy(pool);
    free(wire);
    if (whole != pieces) {
        abort();
    }
    return 0;
}
