/* The WebSocket connection state machine, sans I/O (RFC 6455 §5-§7).
 *
 * Bytes come in through ws_session_feed, in any split; an incremental parser
 * gathers each frame header (2-14 bytes) in a small buffer, then streams the
 * payload: data frames are unmasked into the message buffer and, for text,
 * UTF-8 checked as they arrive; control frames go to a 125-byte buffer and
 * are acted on when complete.  Frames we send are appended to one output
 * queue the driver drains with ws_session_pending / ws_session_consume.
 *
 * With permessage-deflate (RFC 7692), a message whose first frame has RSV1
 * is compressed: its payload is unmasked through a small stack buffer and
 * inflated into the message buffer as it arrives, with the output room
 * never larger than what max_message still allows, so a decompression bomb
 * is refused (1009) having inflated at most the limit.  Messages we send
 * are compressed straight into the output queue.
 *
 * Must not: do I/O, log, include an httpd header, allocate from the pool per
 * message or per byte (the two growing buffers are malloc'd, freed by a
 * pool cleanup and shrunk after a large message), or be called from a thread
 * other than the connection's owner.
 */
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "ws_close.h"
#include "ws_deflate.h"
#include "ws_frame.h"
#include "ws_session.h"
#include "ws_utf8.h"

/* A buffer above this size is given back once it is empty again, so a
 * connection that once carried a 4 MiB message does not keep 4 MiB. */
#define WS_SESSION_KEEP      (64 * 1024)
#define WS_SESSION_MIN_ALLOC 4096
#define WS_SESSION_CLOSE_TIMEOUT_DEFAULT apr_time_from_sec(5)
/* Compressed payload is unmasked this much at a time, on the stack. */
#define WS_SESSION_ZCHUNK    4096
/* RSV1 in ws_frame_header_t.rsv (RSV1..3 as bits 2..0). */
#define WS_RSV1              4

typedef enum {
    WS_PARSE_HEADER,   /* gathering header bytes in hdr[] */
    WS_PARSE_PAYLOAD   /* streaming the payload of frame */
} ws_parse_e;

/* A growing malloc'd byte buffer; data lives in [start, end). */
typedef struct {
    unsigned char *data;
    apr_size_t start, end, cap;
} ws_buf_t;

struct ws_session_t {
    ws_session_config_t cfg;
    ws_session_callbacks_t cb;
    void *baton;
    ws_session_state_e state;

    /* Parser */
    ws_parse_e pstate;
    unsigned char hdr[WS_FRAME_HEADER_MAX];
    apr_size_t hdr_len;
    ws_frame_header_t frame;
    apr_uint64_t frame_pos;         /* payload bytes of frame seen so far */

    /* Message being assembled: msg_op is 0 while none is open. */
    unsigned msg_op;
    ws_buf_t msg;
    ws_utf8_t utf8;

    /* permessage-deflate: zd is NULL when not negotiated. */
    ws_deflate_t *zd;
    int msg_compressed;             /* the open message had RSV1 */
    int tx_plain;                   /* a compressed send failed: send the
                                     * rest uncompressed (§6 allows it) */
    apr_uint64_t zin;               /* its compressed bytes so far */

    /* Payload of the current control frame (§5.5: at most 125 bytes). */
    unsigned char ctrl[125];

    ws_buf_t out;

    unsigned close_code;
    char close_reason[WS_CLOSE_MAX_PAYLOAD];
    int close_sent;                 /* nothing may follow our close frame */
    int delivering;                 /* inside on_message: msg in use */

    apr_time_t last_recv, last_ping, closing_since;
    apr_uint64_t rng;               /* xorshift64* state for client masks */
    ws_session_stats_t stats;
};

/* ---- buffers ---------------------------------------------------------- */

static apr_status_t ws_session_cleanup(void *data)
{
    ws_session_t *s = data;

    free(s->msg.data);
    free(s->out.data);
    s->msg.data = s->out.data = NULL;
    s->msg.cap = s->out.cap = 0;
    return APR_SUCCESS;
}

/* Make room for `more` bytes after b->end, moving the live bytes to the
 * front first when that is enough.  Doubling keeps appends amortised O(1). */
static apr_status_t ws_buf_reserve(ws_buf_t *b, apr_size_t more)
{
    apr_size_t live = b->end - b->start, want, cap;
    unsigned char *nd;

    if (more <= b->cap - b->end) {
        return APR_SUCCESS;
    }
    if (b->start > 0 && more <= b->cap - live) {
        memmove(b->data, b->data + b->start, live);
        b->start = 0;
        b->end = live;
        return APR_SUCCESS;
    }
    if (more > APR_SIZE_MAX - live) {
        return APR_ENOMEM;
    }
    want = live + more;
    cap = b->cap ? b->cap : WS_SESSION_MIN_ALLOC;
    while (cap < want) {
        cap = cap > APR_SIZE_MAX / 2 ? want : cap * 2;
    }
    if (b->start > 0) {
        memmove(b->data, b->data + b->start, live);
        b->start = 0;
        b->end = live;
    }
    nd = realloc(b->data, cap);
    if (nd == NULL) {
        return APR_ENOMEM;
    }
    b->data = nd;
    b->cap = cap;
    return APR_SUCCESS;
}

/* An empty buffer above WS_SESSION_KEEP shrinks back to it. */
static void ws_buf_empty(ws_buf_t *b)
{
    b->start = b->end = 0;
    if (b->cap > WS_SESSION_KEEP) {
        unsigned char *nd = realloc(b->data, WS_SESSION_KEEP);
        if (nd != NULL) {
            b->data = nd;
            b->cap = WS_SESSION_KEEP;
        }
    }
}

static void ws_buf_free(ws_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->start = b->end = b->cap = 0;
}

/* ---- output ----------------------------------------------------------- */

static apr_uint64_t ws_session_random(ws_session_t *s)
{
    /* xorshift64*: masks need only be unpredictable to scripts in a
     * browser (§10.3), and the seed comes from APR's random source. */
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return s->rng * APR_UINT64_C(2685821657736338717);
}

/* Queue one whole frame.  A client masks with a fresh key per frame
 * (§5.3); the caller's data is copied, never changed. */
static apr_status_t ws_session_queue(ws_session_t *s, unsigned opcode,
                                     const void *data, apr_size_t len)
{
    unsigned char hdr[WS_FRAME_HEADER_MAX], mask[4];
    apr_size_t hlen;
    apr_status_t rv;

    if (s->close_sent) {
        return APR_EINVAL;
    }
    if (s->cfg.is_client) {
        apr_uint64_t r = ws_session_random(s) >> 32;
        mask[0] = (unsigned char)r;
        mask[1] = (unsigned char)(r >> 8);
        mask[2] = (unsigned char)(r >> 16);
        mask[3] = (unsigned char)(r >> 24);
    }
    hlen = ws_frame_header_write(hdr, 1, 0, opcode, len,
                                 s->cfg.is_client ? mask : NULL);
    if (len > APR_SIZE_MAX - hlen) {
        return APR_ENOMEM;
    }
    rv = ws_buf_reserve(&s->out, hlen + len);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    memcpy(s->out.data + s->out.end, hdr, hlen);
    if (len > 0) {
        memcpy(s->out.data + s->out.end + hlen, data, len);
    }
    if (s->cfg.is_client) {
        ws_frame_mask(s->out.data + s->out.end + hlen, len, mask, 0);
    }
    s->out.end += hlen + len;
    if (opcode == WS_OP_CLOSE) {
        s->close_sent = 1;
    }
    return APR_SUCCESS;
}

/* Queue one whole data message compressed (RFC 7692 §7.2.1), RSV1 set.
 * zlib writes straight into the output queue, after room for the longest
 * header; the header goes in front once the length is known. */
static apr_status_t ws_session_queue_deflated(ws_session_t *s,
                                              unsigned opcode,
                                              const void *data,
                                              apr_size_t len)
{
    unsigned char hdr[WS_FRAME_HEADER_MAX], mask[4], *frame;
    apr_size_t rel = s->out.end - s->out.start, got, clen, hlen;
    apr_status_t rv;
    int rc;

    if (s->close_sent) {
        return APR_EINVAL;
    }
    /* Offsets from out.start stay valid when the buffer grows or moves. */
    rv = ws_buf_reserve(&s->out, WS_FRAME_HEADER_MAX + len / 2 + 64);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    s->out.end += WS_FRAME_HEADER_MAX;
    rc = ws_deflate_tx_begin(s->zd, data, len);
    while (rc == WS_DEFLATE_OK) {
        if (s->out.cap == s->out.end
            && (rv = ws_buf_reserve(&s->out, s->out.end - s->out.start))
               != APR_SUCCESS) {
            break;
        }
        rc = ws_deflate_tx(s->zd, s->out.data + s->out.end,
                           s->out.cap - s->out.end, &got);
        s->out.end += got;
    }
    frame = s->out.data + s->out.start + rel;
    clen = s->out.end - s->out.start - rel - WS_FRAME_HEADER_MAX;
    if (rc != WS_DEFLATE_DONE || clen < 4
        || memcmp(frame + WS_FRAME_HEADER_MAX + clen - 4, "\0\0\xff\xff", 4)) {
        s->out.end = s->out.start + rel;      /* as if never queued */
        ws_deflate_tx_drop(s->zd);
        s->tx_plain = 1;
        return rv != APR_SUCCESS ? rv : APR_ENOMEM;
    }
    ws_deflate_tx_end(s->zd);
    clen -= 4;
    if (s->cfg.is_client) {
        apr_uint64_t r = ws_session_random(s) >> 32;
        mask[0] = (unsigned char)r;
        mask[1] = (unsigned char)(r >> 8);
        mask[2] = (unsigned char)(r >> 16);
        mask[3] = (unsigned char)(r >> 24);
    }
    hlen = ws_frame_header_write(hdr, 1, WS_RSV1, opcode, clen,
                                 s->cfg.is_client ? mask : NULL);
    memmove(frame + hlen, frame + WS_FRAME_HEADER_MAX, clen);
    memcpy(frame, hdr, hlen);
    if (s->cfg.is_client) {
        ws_frame_mask(frame + hlen, clen, mask, 0);
    }
    s->out.end = s->out.start + rel + hlen + clen;
    s->stats.deflated_out++;
    return APR_SUCCESS;
}

static void ws_session_set_reason(ws_session_t *s, unsigned code,
                                  const char *reason)
{
    s->close_code = code;
    apr_cpystrn(s->close_reason, reason ? reason : "",
                sizeof(s->close_reason));
}

/* Queue a close frame (unless one went out already) and record why. */
static void ws_session_queue_close(ws_session_t *s, unsigned code,
                                   const char *reason)
{
    unsigned char payload[WS_CLOSE_MAX_PAYLOAD];
    apr_size_t n = ws_close_build(payload, code, reason);

    /* Out of memory here leaves nothing to send; the session still ends
     * and the driver closes TCP. */
    (void)ws_session_queue(s, WS_OP_CLOSE, payload, n);
}

/* No more input will be read: a half-assembled message can go. */
static void ws_session_set_closed(ws_session_t *s)
{
    s->state = WS_SESSION_CLOSED;
    if (!s->delivering) {
        s->msg_op = 0;
        ws_buf_free(&s->msg);
    }
    /* Nothing more is inflated or compressed once CLOSED. */
    if (s->zd) {
        ws_deflate_release(s->zd);
    }
}

/* The peer broke a rule: §7.1.7 "Fail the WebSocket Connection". */
static void ws_session_fail(ws_session_t *s, unsigned code, const char *why)
{
    if (!s->close_sent) {
        ws_session_queue_close(s, code, why);
    }
    ws_session_set_reason(s, code, why);
    ws_session_set_closed(s);
}

/* ---- input: frames ---------------------------------------------------- */

static void ws_session_message_reset(ws_session_t *s)
{
    s->msg_op = 0;
    ws_buf_empty(&s->msg);
}

/* Rules of §5 that depend on the session, checked on a whole header.
 * Returns 0, or fails the session and returns -1. */
static int ws_session_check_header(ws_session_t *s)
{
    const ws_frame_header_t *h = &s->frame;

    /* §5.2: RSV bits need a negotiated extension.  RFC 7692 §6.1: with
     * permessage-deflate, RSV1 marks the first frame of a compressed
     * message; on a control or continuation frame it is an error. */
    if (h->rsv && (h->rsv != WS_RSV1 || s->zd == NULL
                   || WS_OP_IS_CONTROL(h->opcode)
                   || h->opcode == WS_OP_CONTINUATION)) {
        ws_session_fail(s, WS_CLOSE_PROTOCOL_ERROR, "reserved bits set");
        return -1;
    }
    /* §5.1: a server closes on an unmasked frame, a client on a masked. */
    if (h->masked == (unsigned)s->cfg.is_client) {
        ws_session_fail(s, WS_CLOSE_PROTOCOL_ERROR, s->cfg.is_client
                        ? "masked frame from server"
                        : "unmasked frame from client");
        return -1;
    }
    if (WS_OP_IS_CONTROL(h->opcode)) {
        return 0;
    }
    /* §5.4: continuations only inside a message, and no new message
     * until the open one has ended. */
    if (h->opcode == WS_OP_CONTINUATION && s->msg_op == 0) {
        ws_session_fail(s, WS_CLOSE_PROTOCOL_ERROR,
                        "continuation without a message");
        return -1;
    }
    if (h->opcode != WS_OP_CONTINUATION && s->msg_op != 0) {
        ws_session_fail(s, WS_CLOSE_PROTOCOL_ERROR,
                        "new message inside a fragmented one");
        return -1;
    }
    if (h->opcode != WS_OP_CONTINUATION) {
        s->msg_compressed = (h->rsv & WS_RSV1) != 0;
        s->zin = 0;
    }
    /* §10.4: refuse a message over the limit as soon as its size shows.
     * A compressed one is checked as it inflates; its wire size is only
     * kept within what DEFLATE's worst case (stored blocks, 5 bytes per
     * 64 KiB) could need for a message at the limit. */
    if (s->msg_compressed) {
        if (s->cfg.max_message
            && h->length > (apr_uint64_t)s->cfg.max_message
                           + s->cfg.max_message / 64 + 1024 - s->zin) {
            ws_session_fail(s, WS_CLOSE_TOO_BIG, "message too big");
            return -1;
        }
    }
    else if ((s->cfg.max_message
              && h->length > (apr_uint64_t)s->cfg.max_message - s->msg.end)
             || h->length > (apr_uint64_t)(APR_SIZE_MAX - s->msg.end)) {
        ws_session_fail(s, WS_CLOSE_TOO_BIG, "message too big");
        return -1;
    }
    if (h->opcode != WS_OP_CONTINUATION) {
        s->msg_op = h->opcode;
        s->msg.start = s->msg.end = 0;
        ws_utf8_init(&s->utf8);
    }
    return 0;
}

static void ws_session_frame_done(ws_session_t *s);

/* Header bytes needed so far: 2 first, then the full size they announce. */
static apr_size_t ws_session_header_need(const unsigned char *hdr,
                                         apr_size_t have)
{
    unsigned len7;

    if (have < 2) {
        return 2;
    }
    len7 = hdr[1] & 0x7F;
    return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0)
        + ((hdr[1] & 0x80) ? 4 : 0);
}

/* Take header bytes from p; returns how many were used. */
static apr_size_t ws_session_feed_header(ws_session_t *s,
                                         const unsigned char *p,
                                         apr_size_t n)
{
    apr_size_t used = 0;
    int rc;

    for (;;) {
        apr_size_t need = ws_session_header_need(s->hdr, s->hdr_len);
        apr_size_t take = need - s->hdr_len;

        if (take > n - used) {
            take = n - used;
        }
        memcpy(s->hdr + s->hdr_len, p + used, take);
        s->hdr_len += take;
        used += take;
        rc = ws_frame_header_parse(s->hdr, s->hdr_len, &s->frame);
        if (rc < 0) {
            ws_session_fail(s, WS_CLOSE_PROTOCOL_ERROR, "bad frame header");
            return used;
        }
        if (rc > 0) {
            break;
        }
        if (used == n) {
            return used;   /* header continues in the next feed */
        }
    }
    s->hdr_len = 0;
    s->frame_pos = 0;
    if (ws_session_check_header(s) == 0) {
        s->pstate = WS_PARSE_PAYLOAD;
        if (s->frame.length == 0) {
            ws_session_frame_done(s);   /* nothing more to wait for */
        }
    }
    return used;
}

static void ws_session_on_ping(ws_session_t *s, apr_size_t n)
{
    /* §5.5.2: answer with a pong carrying the same application data.
     * We never write after our own close frame (§5.5.1 forbids data
     * frames then; a pong would only be discarded), so a ping that
     * arrives while CLOSING goes unanswered. */
    if (s->state == WS_SESSION_OPEN) {
        (void)ws_session_queue(s, WS_OP_PONG, s->ctrl, n);
    }
}

static void ws_session_on_close(ws_session_t *s, apr_size_t n)
{
    unsigned code, bad;
    const char *reason;
    apr_size_t rlen;

    bad = ws_close_parse(s->ctrl, n, &code, &reason, &rlen);
    if (bad) {
        ws_session_fail(s, bad, bad == WS_CLOSE_INVALID_DATA
                        ? "invalid UTF-8 in close reason"
                        : "invalid close payload");
        return;
    }
    if (s->state == WS_SESSION_OPEN) {
        /* §5.5.1: echo the status code we received; none if it had none.
         * The peer closed first, so its code is the one to log. */
        ws_session_queue_close(s, code == WS_CLOSE_NO_STATUS ? 0 : code,
                               NULL);
        ws_session_set_reason(s, code, "peer closed");
    }
    ws_session_set_closed(s);
    if (s->cb.on_peer_close) {
        s->cb.on_peer_close(s->baton, code, reason, rlen);
    }
}

static void ws_session_control_done(ws_session_t *s)
{
    apr_size_t n = (apr_size_t)s->frame.length;

    switch (s->frame.opcode) {
    case WS_OP_PING:
        ws_session_on_ping(s, n);
        break;
    case WS_OP_PONG:
        s->stats.pongs_received++;
        break;
    default:
        ws_session_on_close(s, n);
        break;
    }
}

/* ---- input: compressed messages (RFC 7692) ---------------------------- */

/* Where inflated bytes may go next: the message buffer, never beyond what
 * max_message still allows.  At the limit, a 1-byte probe stands in: any
 * byte zlib puts there makes the message too big.  Returns -1 (session
 * failed) when the buffer cannot grow. */
static int ws_session_zroom(ws_session_t *s, unsigned char *probe,
                            unsigned char **dst, apr_size_t *room)
{
    apr_size_t left = s->cfg.max_message ? s->cfg.max_message - s->msg.end
                                         : APR_SIZE_MAX - s->msg.end;

    if (left == 0) {
        *dst = probe;
        *room = 1;
        return 0;
    }
    if (s->msg.cap == s->msg.end
        && ws_buf_reserve(&s->msg, left < WS_SESSION_ZCHUNK
                                   ? left : WS_SESSION_ZCHUNK) != APR_SUCCESS) {
        ws_session_fail(s, WS_CLOSE_INTERNAL_ERROR, "out of memory");
        return -1;
    }
    *dst = s->msg.data + s->msg.end;
    *room = s->msg.cap - s->msg.end < left ? s->msg.cap - s->msg.end : left;
    return 0;
}

/* Take n inflated bytes written at dst: too big (the probe got one), or
 * appended and, for text, UTF-8 checked at once.  0, or -1 when failed. */
static int ws_session_zgot(ws_session_t *s, const unsigned char *dst,
                           const unsigned char *probe, apr_size_t n)
{
    if (n == 0) {
        return 0;
    }
    if (dst == probe) {
        ws_session_fail(s, WS_CLOSE_TOO_BIG, "message too big");
        return -1;
    }
    s->msg.end += n;
    if (s->msg_op == WS_OP_TEXT && !ws_utf8_feed(&s->utf8, dst, n)) {
        ws_session_fail(s, WS_CLOSE_INVALID_DATA,
                        "invalid UTF-8 in text message");
        return -1;
    }
    return 0;
}

static int ws_session_zfail(ws_session_t *s, int rc)
{
    if (rc == WS_DEFLATE_NOMEM) {
        ws_session_fail(s, WS_CLOSE_INTERNAL_ERROR, "out of memory");
    }
    else {
        ws_session_fail(s, WS_CLOSE_INVALID_DATA, "invalid compressed data");
    }
    return -1;
}

/* Inflate in[0..n) (unmasked payload) into the message. */
static int ws_session_inflate(ws_session_t *s, const unsigned char *in,
                              apr_size_t n)
{
    unsigned char probe, *dst;
    apr_size_t room, used, got;
    int rc;

    s->zin += n;
    do {
        if (ws_session_zroom(s, &probe, &dst, &room) != 0) {
            return -1;
        }
        rc = ws_deflate_rx(s->zd, in, n, &used, dst, room, &got);
        /* What came out before an error is judged first, so the verdict
         * does not depend on how the input was split. */
        if (ws_session_zgot(s, dst, &probe, got) != 0) {
            return -1;
        }
        if (rc != WS_DEFLATE_OK) {
            return ws_session_zfail(s, rc);
        }
        in += used;
        n -= used;
        /* zlib may hold output back when the room was full: ask again. */
    } while (got == room || (n > 0 && used > 0));
    if (n > 0) {
        return ws_session_zfail(s, WS_DEFLATE_BAD);
    }
    return 0;
}

/* The last frame of a compressed message is in: the §7.2.2 tail, then
 * the stream's end of message. */
static int ws_session_inflate_finish(ws_session_t *s)
{
    unsigned char probe, *dst;
    apr_size_t room, got;
    int rc = WS_DEFLATE_DONE;

    /* An empty payload is an empty message, whatever the stream held. */
    if (s->zin > 0) {
        do {
            if (ws_session_zroom(s, &probe, &dst, &room) != 0) {
                return -1;
            }
            rc = ws_deflate_rx_finish(s->zd, dst, room, &got);
            if (ws_session_zgot(s, dst, &probe, got) != 0) {
                return -1;
            }
            if (rc < 0) {
                return ws_session_zfail(s, rc);
            }
        } while (rc != WS_DEFLATE_DONE);
    }
    ws_deflate_rx_end(s->zd);
    return 0;
}

/* Payload bytes of a compressed data frame: unmask a piece at a time on
 * the stack (the caller's bytes are const), then inflate.  Returns how
 * many were taken (all of them unless the session failed). */
static apr_size_t ws_session_feed_compressed(ws_session_t *s,
                                             const unsigned char *p,
                                             apr_size_t take)
{
    unsigned char tmp[WS_SESSION_ZCHUNK];
    apr_size_t done = 0;

    while (done < take) {
        apr_size_t n = take - done < sizeof(tmp) ? take - done : sizeof(tmp);
        const unsigned char *src = p + done;

        if (s->frame.masked) {
            memcpy(tmp, src, n);
            ws_frame_mask(tmp, n, s->frame.mask, s->frame_pos + done);
            src = tmp;
        }
        done += n;
        if (ws_session_inflate(s, src, n) != 0) {
            break;
        }
    }
    s->frame_pos += done;
    return done;
}

static void ws_session_data_done(ws_session_t *s)
{
    static const unsigned char empty[1];
    const unsigned char *data;

    if (!s->frame.fin) {
        return;
    }
    if (s->msg_compressed) {
        if (ws_session_inflate_finish(s) != 0) {
            return;
        }
        s->stats.deflated_in++;
    }
    /* §8.1: the whole message must be UTF-8, so it may not end inside a
     * character. */
    if (s->msg_op == WS_OP_TEXT && !ws_utf8_complete(&s->utf8)) {
        ws_session_fail(s, WS_CLOSE_INVALID_DATA,
                        "invalid UTF-8 in text message");
        return;
    }
    s->stats.messages_in++;
    data = s->msg.data ? s->msg.data : empty;
    if (s->cb.on_message) {
        s->delivering = 1;
        s->cb.on_message(s->baton, s->msg_op, data, s->msg.end);
        s->delivering = 0;
    }
    ws_session_message_reset(s);
    if (s->state == WS_SESSION_CLOSED) {
        ws_buf_free(&s->msg);
    }
}

static void ws_session_frame_done(ws_session_t *s)
{
    s->pstate = WS_PARSE_HEADER;
    if (WS_OP_IS_CONTROL(s->frame.opcode)) {
        ws_session_control_done(s);
    }
    else {
        ws_session_data_done(s);
    }
}

/* Take payload bytes of the current frame from p; returns how many. */
static apr_size_t ws_session_feed_payload(ws_session_t *s,
                                          const unsigned char *p,
                                          apr_size_t n, apr_status_t *rv)
{
    apr_uint64_t left = s->frame.length - s->frame_pos;
    apr_size_t take = left < n ? (apr_size_t)left : n;
    unsigned char *dst;

    if (take > 0 && s->msg_compressed
        && !WS_OP_IS_CONTROL(s->frame.opcode)) {
        take = ws_session_feed_compressed(s, p, take);
        if (s->state == WS_SESSION_CLOSED) {
            return take;
        }
    }
    else if (take > 0) {
        if (WS_OP_IS_CONTROL(s->frame.opcode)) {
            dst = s->ctrl + s->frame_pos;
        }
        else {
            *rv = ws_buf_reserve(&s->msg, take);
            if (*rv != APR_SUCCESS) {
                ws_session_fail(s, WS_CLOSE_INTERNAL_ERROR, "out of memory");
                return n;
            }
            dst = s->msg.data + s->msg.end;
            s->msg.end += take;
        }
        memcpy(dst, p, take);
        if (s->frame.masked) {
            ws_frame_mask(dst, take, s->frame.mask, s->frame_pos);
        }
        s->frame_pos += take;
        /* §8.1 and fail fast: check text as it arrives. */
        if (!WS_OP_IS_CONTROL(s->frame.opcode) && s->msg_op == WS_OP_TEXT
            && !ws_utf8_feed(&s->utf8, dst, take)) {
            ws_session_fail(s, WS_CLOSE_INVALID_DATA,
                            "invalid UTF-8 in text message");
            return take;
        }
    }
    if (s->frame_pos == s->frame.length) {
        ws_session_frame_done(s);
    }
    return take;
}

/* ---- public ----------------------------------------------------------- */

apr_status_t ws_session_create(ws_session_t **ps, apr_pool_t *p,
                               const ws_session_config_t *cfg,
                               const ws_session_callbacks_t *cb, void *baton,
                               apr_time_t now)
{
    ws_session_t *s = apr_pcalloc(p, sizeof(*s));

    s->cfg = *cfg;
    if (s->cfg.close_timeout <= 0) {
        s->cfg.close_timeout = WS_SESSION_CLOSE_TIMEOUT_DEFAULT;
    }
    if (cb) {
        s->cb = *cb;
    }
    s->baton = baton;
    if (cfg->deflate) {
        ws_deflate_config_t dc;
        apr_status_t rv;

        ws_deflate_config_for(&dc, cfg->deflate, cfg->is_client);
        dc.level = cfg->deflate_level;
        dc.mem_level = cfg->deflate_mem_level;
        rv = ws_deflate_create(&s->zd, p, &dc);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    s->cfg.deflate = NULL;          /* the caller's; zd has what counts */
    s->state = WS_SESSION_OPEN;
    s->pstate = WS_PARSE_HEADER;
    s->last_recv = now;
    s->last_ping = now;
    if (apr_generate_random_bytes((unsigned char *)&s->rng, sizeof(s->rng))
        != APR_SUCCESS || s->rng == 0) {
        s->rng = (apr_uint64_t)now ^ (apr_uint64_t)(apr_uintptr_t)s
                 ^ APR_UINT64_C(0x9E3779B97F4A7C15);
    }
    if (s->rng == 0) {
        s->rng = 1;
    }
    apr_pool_cleanup_register(p, s, ws_session_cleanup,
                              apr_pool_cleanup_null);
    *ps = s;
    return APR_SUCCESS;
}

apr_status_t ws_session_feed(ws_session_t *s, const unsigned char *data,
                             apr_size_t len, apr_time_t now)
{
    apr_status_t rv = APR_SUCCESS;
    apr_size_t pos = 0;

    if (s->state == WS_SESSION_CLOSED || len == 0) {
        return APR_SUCCESS;
    }
    s->last_recv = now;
    while (pos < len && s->state != WS_SESSION_CLOSED) {
        if (s->pstate == WS_PARSE_HEADER) {
            pos += ws_session_feed_header(s, data + pos, len - pos);
        }
        else {
            pos += ws_session_feed_payload(s, data + pos, len - pos, &rv);
        }
    }
    s->stats.bytes_in += pos;
    return rv;
}

void ws_session_peer_eof(ws_session_t *s)
{
    if (s->state == WS_SESSION_CLOSED) {
        return;
    }
    /* §7.1.5: no close frame seen, so the close code is 1006. */
    ws_session_set_reason(s, WS_CLOSE_ABNORMAL, "connection closed by peer");
    ws_session_set_closed(s);
}

apr_status_t ws_session_send(ws_session_t *s, unsigned opcode,
                             const void *data, apr_size_t len)
{
    apr_status_t rv;

    if (s->state != WS_SESSION_OPEN
        || (opcode != WS_OP_TEXT && opcode != WS_OP_BINARY)) {
        return APR_EINVAL;
    }
    /* An empty message goes out as it is: zlib would have nothing to
     * flush after an earlier message, and §6 allows RSV1 clear. */
    if (s->zd && !s->tx_plain && len > 0 && len >= s->cfg.deflate_min_size) {
        rv = ws_session_queue_deflated(s, opcode, data, len);
    }
    else {
        rv = ws_session_queue(s, opcode, data, len);
    }
    if (rv == APR_SUCCESS) {
        s->stats.messages_out++;
    }
    return rv;
}

void ws_session_close(ws_session_t *s, unsigned code, const char *reason,
                      apr_time_t now)
{
    if (s->state != WS_SESSION_OPEN) {
        return;
    }
    ws_session_queue_close(s, code, reason);
    ws_session_set_reason(s, code ? code : WS_CLOSE_NO_STATUS, reason);
    s->state = WS_SESSION_CLOSING;
    s->closing_since = now;
}

apr_size_t ws_session_pending(ws_session_t *s, const unsigned char **data)
{
    *data = s->out.data ? s->out.data + s->out.start : NULL;
    return s->out.end - s->out.start;
}

void ws_session_consume(ws_session_t *s, apr_size_t n)
{
    apr_size_t live = s->out.end - s->out.start;

    if (n > live) {
        n = live;
    }
    s->out.start += n;
    s->stats.bytes_out += n;
    if (s->out.start == s->out.end) {
        ws_buf_empty(&s->out);
    }
}

apr_size_t ws_session_queued(const ws_session_t *s)
{
    return s->out.end - s->out.start;
}

apr_size_t ws_session_memory(const ws_session_t *s)
{
    return s->msg.cap + s->out.cap + (s->zd ? ws_deflate_memory(s->zd) : 0);
}

/* ---- timers ----------------------------------------------------------- */

static apr_time_t ws_session_ping_due(const ws_session_t *s)
{
    apr_time_t base = s->last_recv > s->last_ping ? s->last_recv
                                                   : s->last_ping;
    return base + s->cfg.ping_interval;
}

static apr_time_t ws_time_min(apr_time_t a, apr_time_t b)
{
    return a == 0 ? b : (b == 0 || b > a) ? a : b;
}

apr_time_t ws_session_deadline(const ws_session_t *s)
{
    apr_time_t t = 0;

    if (s->state == WS_SESSION_CLOSING) {
        return s->closing_since + s->cfg.close_timeout;
    }
    if (s->state != WS_SESSION_OPEN) {
        return 0;
    }
    if (s->cfg.ping_interval > 0) {
        t = ws_time_min(t, ws_session_ping_due(s));
    }
    if (s->cfg.idle_timeout > 0) {
        t = ws_time_min(t, s->last_recv + s->cfg.idle_timeout);
    }
    return t;
}

void ws_session_tick(ws_session_t *s, apr_time_t now)
{
    if (s->state == WS_SESSION_CLOSING) {
        /* §7.1.1: the peer had its chance to answer; drop TCP. */
        if (now >= s->closing_since + s->cfg.close_timeout) {
            ws_session_set_closed(s);
        }
        return;
    }
    if (s->state != WS_SESSION_OPEN) {
        return;
    }
    if (s->cfg.idle_timeout > 0
        && now >= s->last_recv + s->cfg.idle_timeout) {
        ws_session_close(s, WS_CLOSE_GOING_AWAY, "idle timeout", now);
        return;
    }
    if (s->cfg.ping_interval > 0 && now >= ws_session_ping_due(s)) {
        if (ws_session_queue(s, WS_OP_PING, NULL, 0) == APR_SUCCESS) {
            s->stats.pings_sent++;
        }
        s->last_ping = now;
    }
}

/* ---- queries ---------------------------------------------------------- */

ws_session_state_e ws_session_state(const ws_session_t *s)
{
    return s->state;
}

int ws_session_done(const ws_session_t *s)
{
    return s->state == WS_SESSION_CLOSED && s->out.end == s->out.start;
}

unsigned ws_session_close_code(const ws_session_t *s)
{
    return s->state == WS_SESSION_OPEN ? 0 : s->close_code;
}

const char *ws_session_close_reason(const ws_session_t *s)
{
    return s->state == WS_SESSION_OPEN ? "" : s->close_reason;
}

const ws_session_stats_t *ws_session_stats(const ws_session_t *s)
{
    return &s->stats;
}
