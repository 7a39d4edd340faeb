/* Frame headers and masking (RFC 6455 §5.2, §5.3, §5.5).
 *
 * Stateless helpers: parse one header from a byte buffer, write one, and
 * apply the XOR mask.  The rules that need connection state (which side
 * masks, negotiated RSV bits, fragmentation order, size limits) are checked
 * by ws_session.c, not here.
 *
 * Part of the protocol core: APR only, no httpd header, no I/O, no
 * allocation.
 */
#include <stdint.h>
#include <string.h>

#include "ws_frame.h"

/* §5.2: opcodes 0x3-0x7 and 0xB-0xF are reserved. */
static int ws_frame_opcode_known(unsigned op)
{
    return op <= WS_OP_BINARY
        || (op >= WS_OP_CLOSE && op <= WS_OP_PONG);
}

/* Checks that the first two bytes already decide, so a bad frame fails as
 * soon as they are there.  0 when fine, -1 when not. */
static int ws_frame_check_start(const ws_frame_header_t *h, unsigned len7)
{
    if (!ws_frame_opcode_known(h->opcode)) {
        return -1;
    }
    /* §5.5: "All control frames MUST have a payload length of 125 bytes or
     * less and MUST NOT be fragmented." */
    if (WS_OP_IS_CONTROL(h->opcode) && (!h->fin || len7 > 125)) {
        return -1;
    }
    return 0;
}

int ws_frame_header_parse(const unsigned char *p, apr_size_t n,
                          ws_frame_header_t *h)
{
    unsigned len7;
    apr_size_t need, pos = 2;

    if (n < 2) {
        return WS_FRAME_INCOMPLETE;
    }
    h->fin = (p[0] >> 7) & 1;
    h->rsv = (p[0] >> 4) & 7;
    h->opcode = p[0] & 0x0F;
    h->masked = (p[1] >> 7) & 1;
    len7 = p[1] & 0x7F;
    if (ws_frame_check_start(h, len7) < 0) {
        return -1;
    }
    need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (h->masked ? 4 : 0);
    if (n < need) {
        return WS_FRAME_INCOMPLETE;
    }
    if (len7 == 126) {
        h->length = ((apr_uint64_t)p[2] << 8) | p[3];
        pos = 4;
    }
    else if (len7 == 127) {
        int i;
        /* §5.2: "the most significant bit MUST be 0". */
        if (p[2] & 0x80) {
            return -1;
        }
        h->length = 0;
        for (i = 0; i < 8; i++) {
            h->length = (h->length << 8) | p[2 + i];
        }
        pos = 10;
    }
    else {
        h->length = len7;
    }
    if (h->masked) {
        memcpy(h->mask, p + pos, 4);
        pos += 4;
    }
    else {
        memset(h->mask, 0, 4);
    }
    return (int)pos;
}

apr_size_t ws_frame_header_write(unsigned char *out, unsigned fin,
                                 unsigned rsv, unsigned opcode,
                                 apr_uint64_t length,
                                 const unsigned char *mask)
{
    apr_size_t pos;
    unsigned char mbit = mask ? 0x80 : 0;

    out[0] = (unsigned char)((fin ? 0x80 : 0) | ((rsv & 7) << 4)
                             | (opcode & 0x0F));
    /* §5.2: the minimal number of bytes must be used for the length. */
    if (length <= 125) {
        out[1] = mbit | (unsigned char)length;
        pos = 2;
    }
    else if (length <= 0xFFFF) {
        out[1] = mbit | 126;
        out[2] = (unsigned char)(length >> 8);
        out[3] = (unsigned char)length;
        pos = 4;
    }
    else {
        int i;
        out[1] = mbit | 127;
        for (i = 0; i < 8; i++) {
            out[2 + i] = (unsigned char)(length >> (8 * (7 - i)));
        }
        pos = 10;
    }
    if (mask) {
        memcpy(out + pos, mask, 4);
        pos += 4;
    }
    return pos;
}

void ws_frame_mask(unsigned char *p, apr_size_t n, const unsigned char mask[4],
                   apr_uint64_t offset)
{
    unsigned char key[8];
    apr_uint64_t word;
    unsigned i;

    /* §5.3: byte i of the payload is XORed with mask[i % 4].  Do single
     * bytes up to an 8-byte boundary so the loop below runs on aligned
     * words (memcpy keeps the loads legal on any target all the same). */
    while (n > 0 && ((uintptr_t)p & 7) != 0) {
        *p++ ^= mask[offset++ & 3];
        n--;
    }
    if (n >= 8) {
        for (i = 0; i < 8; i++) {
            key[i] = mask[(offset + i) & 3];
        }
        memcpy(&word, key, 8);
        /* A word is a multiple of 4 bytes, so the rotated key fits every
         * word of the run. */
        while (n >= 8) {
            apr_uint64_t w;
            memcpy(&w, p, 8);
            w ^= word;
            memcpy(p, &w, 8);
            p += 8;
            n -= 8;
        }
    }
    while (n > 0) {
        *p++ ^= mask[offset++ & 3];
        n--;
    }
}
