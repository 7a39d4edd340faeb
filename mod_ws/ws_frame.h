/* Frame headers, masking and the frame rules of RFC 6455 §5.
 *
 * Part of the protocol core: APR only, no httpd header, no I/O, no
 * allocation.  The incremental parser that uses these lives in ws_session.c.
 */
#ifndef WS_FRAME_H
#define WS_FRAME_H

#include <apr.h>

#define WS_OP_CONTINUATION 0x0
#define WS_OP_TEXT         0x1
#define WS_OP_BINARY       0x2
#define WS_OP_CLOSE        0x8
#define WS_OP_PING         0x9
#define WS_OP_PONG         0xA

#define WS_OP_IS_CONTROL(op) (((op) & 0x8) != 0)

/* A header is 2 to 14 bytes: 2 + 8 (64-bit length) + 4 (mask). */
#define WS_FRAME_HEADER_MAX 14

typedef struct {
    unsigned fin;            /* 0 or 1 */
    unsigned rsv;            /* RSV1..3 as bits 2..0 */
    unsigned opcode;         /* 0x0..0xF */
    unsigned masked;         /* 0 or 1 */
    apr_uint64_t length;     /* payload length */
    unsigned char mask[4];   /* valid when masked */
} ws_frame_header_t;

/* Results of ws_frame_header_parse. */
#define WS_FRAME_INCOMPLETE  0   /* need more bytes; nothing consumed */

/* Parse a header at the start of p[0..n).  Returns the header size (2..14)
 * when a whole header is there, WS_FRAME_INCOMPLETE when more bytes are
 * needed, or -1 when the header breaks a rule of §5.2/§5.5 that needs no
 * state: a reserved opcode (0x3-0x7, 0xB-0xF), a control frame with FIN
 * clear or a payload over 125 bytes, a 64-bit length with its high bit set.
 * -1 comes as soon as the bytes that show the fault are there (opcode and
 * control-frame faults after 2 bytes), before the rest of the header.
 * Non-minimal 16/64-bit lengths are accepted: §5.2 asks the sender for the
 * minimal form but names no failure for the receiver.  RSV bits and masking
 * are not checked here: they depend on negotiation and on which side we are. */
int ws_frame_header_parse(const unsigned char *p, apr_size_t n,
                          ws_frame_header_t *h);

/* Write a header for a frame; mask NULL for an unmasked (server) frame.
 * out must hold WS_FRAME_HEADER_MAX bytes.  Returns the header size. */
apr_size_t ws_frame_header_write(unsigned char *out, unsigned fin,
                                 unsigned rsv, unsigned opcode,
                                 apr_uint64_t length,
                                 const unsigned char *mask);

/* XOR p[0..n) with the mask, where p starts at byte `offset` of the payload
 * (so a payload can be unmasked in pieces).  Works a machine word at a time;
 * p need not be aligned. */
void ws_frame_mask(unsigned char *p, apr_size_t n, const unsigned char mask[4],
                   apr_uint64_t offset);

#endif /* WS_FRAME_H */
