/* libFuzzer target: the incremental UTF-8 validator.
 *
 * Input: byte 0 seeds the split points, the rest is the text.  The
 * validator fed in pieces must agree with ws_utf8_valid on the whole and
 * with a plain decoding reference, and once it fails it must stay failed.
 * Aborts on any disagreement.  Test code.
 */
#include <stdlib.h>
#include <string.h>

#include "../tests/utf8_ref.h"
#include "fuzz.h"
#include "ws_utf8.h"

/* Reference: decode each character and check RFC 3629 directly. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ws_utf8_t v;
    const unsigned char *p;
    size_t n, pos = 0;
    unsigned x;
    int whole, ok = 1, failed_at = -1;

    if (size < 1) {
        return 0;
    }
    x = data[0] + 1u;
    p = data + 1;
    n = size - 1;
    whole = ws_utf8_valid(p, n);
    if (whole != ref_valid(p, n)) {
        abort();
    }
    ws_utf8_init(&v);
    while (pos < n) {
        size_t k;
        x = x * 1103515245u + 12345u;
        k = (x >> 16) % 9;
        if (k > n - pos) {
            k = n - pos;
        }
        if (!ws_utf8_feed(&v, p + pos, k)) {
            if (ok) {
                failed_at = (int)pos;
            }
            ok = 0;
        }
        else if (!ok) {
            abort();   /* failure must be sticky */
        }
        pos += k;
    }
    if ((ok && ws_utf8_complete(&v)) != whole) {
        abort();
    }
    /* A prefix that fed fine is itself a valid start. */
    if (failed_at > 0) {
        ws_utf8_t w;
        ws_utf8_init(&w);
        if (!ws_utf8_feed(&w, p, (size_t)failed_at)) {
            abort();
        }
    }
    return 0;
}
