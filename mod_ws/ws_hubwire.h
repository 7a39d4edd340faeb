/* ws_hubwire.h: the frames between mod_ws's hub process and the child
 * processes, and the byte buffers both sides queue them in.
 *
 * Part of the protocol core: APR only, no httpd header, no I/O.  The hub
 * process (mod_ws_hubd.c) and each child's hub thread (mod_ws_hub.c) use
 * the same parser, which the unit tests and a fuzz target drive too.
 *
 * A frame on the Unix socket:
 *   u32 length of the rest (network order)
 *   u8  kind: WS_HUBWIRE_PUBLISH
 *   u8  message type (1 text, 2 binary, as RFC 6455's opcodes)
 *   u8  flags: WS_HUBWIRE_YOURS on the copy the hub sends back to the
 *       publishing child
 *   u8  0 (reserved)
 *   u32 the publishing connection's serial, to leave out (0: none)
 *   u64 the publishing child's sequence number
 *   u16 channel length, then the channel, then the payload
 */
#ifndef WS_HUBWIRE_H
#define WS_HUBWIRE_H

#include "apr.h"

#define WS_HUBWIRE_HEADER  22      /* all but the channel and the payload */
#define WS_HUBWIRE_PUBLISH 1
#define WS_HUBWIRE_YOURS   0x01

/* Bytes queued for writing or read and not yet parsed: data is
 * p[off..len). */
typedef struct {
    char *p;
    apr_size_t off, len, cap;
} ws_hubbuf_t;

/* Room for `more` bytes after len (moving the live bytes to the front
 * first when that makes room).  0, or -1 when out of memory. */
int ws_hubbuf_reserve(ws_hubbuf_t *b, apr_size_t more);
void ws_hubbuf_free(ws_hubbuf_t *b);

typedef struct {
    unsigned type;
    unsigned flags;
    apr_uint32_t exclude;
    apr_uint64_t seq;
    const char *channel;
    apr_size_t channel_len;        /* at most 65535 */
    const char *data;
    apr_size_t len;
} ws_hubframe_t;

/* Append one frame to b.  -1 when b would then hold more than max bytes
 * (the caller's bound on a peer that falls behind), when the channel is
 * too long, or when out of memory. */
int ws_hubframe_append(ws_hubbuf_t *b, const ws_hubframe_t *f,
                       apr_size_t max);

/* The frame starting at p, of which avail bytes are there: its whole
 * length when it is all there (f then points into p), 0 when more bytes
 * are needed, -1 when it is malformed (another kind, a length under the
 * header or over max, the reserved byte not 0, a channel longer than the
 * frame). */
apr_ssize_t ws_hubframe_parse(const char *p, apr_size_t avail,
                              apr_size_t max, ws_hubframe_t *f);

/* Set the flags byte of a whole frame (the hub marks the sender's copy). */
void ws_hubframe_set_flags(char *frame, unsigned flags);

#endif /* WS_HUBWIRE_H */
