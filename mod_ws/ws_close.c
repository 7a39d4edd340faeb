/* Close codes and close frame payloads (RFC 6455 §5.5.1, §7.4).
 *
 * A close payload is empty, or a 2-byte code in network order followed by a
 * UTF-8 reason (§5.5.1).  Which codes a peer may put on the wire comes from
 * §7.4.1 (the codes defined there), §7.4.2 (ranges) and the IANA "WebSocket
 * Close Code Number Registry" (1012-1014 added since).
 *
 * Part of the protocol core: APR only, no httpd header, no I/O, no
 * allocation.
 */
#include <string.h>

#include "ws_close.h"
#include "ws_utf8.h"

int ws_close_code_valid(unsigned code)
{
    /* 3000-3999: registered with IANA for libraries and frameworks;
     * 4000-4999: private use (§7.4.2).  Both may appear on the wire. */
    if (code >= 3000 && code <= 4999) {
        return 1;
    }
    switch (code) {
    case 1000: case 1001: case 1002: case 1003:
    case 1007: case 1008: case 1009: case 1010: case 1011:
    case 1012: case 1013: case 1014:
        return 1;
    default:
        /* 1004 reserved, 1005/1006/1015 "MUST NOT be set as a status code
         * in a Close control frame" (§7.4.1); 0-999 unused; 1016-2999
         * reserved for future RFCs; 5000+ undefined. */
        return 0;
    }
}

unsigned ws_close_parse(const unsigned char *p, apr_size_t n, unsigned *code,
                        const char **reason, apr_size_t *reason_len)
{
    unsigned c;

    *code = WS_CLOSE_NO_STATUS;
    *reason = "";
    *reason_len = 0;
    if (n == 0) {
        return 0;
    }
    /* "If there is a body, the first two bytes of the body MUST be a
     * 2-byte unsigned integer" (§5.5.1): one byte cannot be one. */
    if (n == 1) {
        return WS_CLOSE_PROTOCOL_ERROR;
    }
    c = ((unsigned)p[0] << 8) | p[1];
    if (!ws_close_code_valid(c)) {
        return WS_CLOSE_PROTOCOL_ERROR;
    }
    /* The reason is UTF-8 (§5.5.1); bad data is 1007 as in §8.1. */
    if (!ws_utf8_valid(p + 2, n - 2)) {
        return WS_CLOSE_INVALID_DATA;
    }
    *code = c;
    *reason = (const char *)p + 2;
    *reason_len = n - 2;
    return 0;
}

/* Longest prefix of s, at most max bytes, that does not cut a character:
 * back off over continuation bytes (10xxxxxx) to a lead byte. */
static apr_size_t ws_close_cut(const char *s, apr_size_t max)
{
    apr_size_t n = strlen(s);
    const unsigned char *u = (const unsigned char *)s;

    if (n <= max) {
        return n;
    }
    n = max;
    while (n > 0 && (u[n] & 0xC0) == 0x80) {
        n--;
    }
    return n;
}

apr_size_t ws_close_build(unsigned char *out, unsigned code,
                          const char *reason)
{
    apr_size_t n;

    if (code == 0) {
        return 0;
    }
    out[0] = (unsigned char)(code >> 8);
    out[1] = (unsigned char)code;
    if (reason == NULL) {
        return 2;
    }
    n = ws_close_cut(reason, WS_CLOSE_MAX_PAYLOAD - 2);
    memcpy(out + 2, reason, n);
    return 2 + n;
}
