/* A plain reference UTF-8 decoder (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF), deliberately written unlike ws_utf8.c's table,
 * against which the unit tests and the fuzz target check it.  Header-only:
 * included by tests/test_utf8.c and fuzz/fuzz_utf8.c. */
#ifndef WS_TEST_UTF8_REF_H
#define WS_TEST_UTF8_REF_H

#include <apr.h>

static int ref_valid(const unsigned char *p, apr_size_t n)
{
    apr_size_t i = 0;

    while (i < n) {
        unsigned c = p[i], len, k;
        apr_uint32_t cp, min;

        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            len = 2; cp = c & 0x1F; min = 0x80;
        }
        else if ((c & 0xF0) == 0xE0) {
            len = 3; cp = c & 0x0F; min = 0x800;
        }
        else if ((c & 0xF8) == 0xF0) {
            len = 4; cp = c & 0x07; min = 0x10000;
        }
        else {
            return 0;
        }
        if (n - i < len) {
            return 0;
        }
        for (k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return 0;
        }
        i += len;
    }
    return 1;
}

#endif /* WS_TEST_UTF8_REF_H */
