/* libFuzzer target: the hub frame parser, as the hub process and the hub
 * threads run it on a stream of bytes.
 *
 * Input: any bytes, parsed frame after frame.  Every frame the parser
 * takes must lie inside the input, and built again from its fields it
 * must give the same bytes.  The stream is also fed in pieces (split
 * points from the first byte): the frames found must be the same.  Aborts
 * on any disagreement.  Test code.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ws_hubwire.h"

#define MAX (1 << 20)

/* Parse all whole frames of p[0..n); their count, or -1 on a malformed
 * one.  Checks each against a rebuild. */
static long parse_all(const char *p, size_t n, size_t *used)
{
    ws_hubframe_t f;
    apr_ssize_t flen;
    size_t off = 0;
    long count = 0;

    while ((flen = ws_hubframe_parse(p + off, n - off, MAX, &f)) > 0) {
        ws_hubbuf_t b = { NULL, 0, 0, 0 };

        if ((size_t)flen > n - off || f.channel < p + off
            || f.data + f.len != p + off + (size_t)flen) {
            abort();
        }
        if (ws_hubframe_append(&b, &f, MAX) != 0
            || b.len != (size_t)flen || memcmp(b.p, p + off, b.len)) {
            abort();
        }
        ws_hubbuf_free(&b);
        off += (size_t)flen;
        ++count;
    }
    *used = off;
    return flen < 0 ? -1 : count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    ws_hubbuf_t r = { NULL, 0, 0, 0 };
    size_t used, rused, pos = 0;
    long whole, pieces = 0, k;
    unsigned x = size ? data[0] + 1u : 1u;

    whole = parse_all(p, size, &used);
    /* The same bytes arriving in pieces into a buffer, as a reader gets
     * them. */
    while (pos < size) {
        size_t step;

        x = x * 1103515245u + 12345u;
        step = 1 + (x >> 16) % 64;
        if (step > size - pos) {
            step = size - pos;
        }
        if (ws_hubbuf_reserve(&r, step)) {
            abort();
        }
        memcpy(r.p + r.len, p + pos, step);
        r.len += step;
        pos += step;
        k = parse_all(r.p + r.off, r.len - r.off, &rused);
        r.off += rused;
        if (k < 0) {
            pieces = -1;
            break;
        }
        pieces += k;
    }
    if (pieces != whole && !(whole < 0 && pieces < 0)) {
        abort();
    }
    ws_hubbuf_free(&r);
    return 0;
}
