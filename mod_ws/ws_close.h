/* Close codes and close frame payloads (RFC 6455 §5.5.1, §7.4).
 *
 * Part of the protocol core: APR only, no httpd header, no I/O.
 */
#ifndef WS_CLOSE_H
#define WS_CLOSE_H

#include <apr.h>

#define WS_CLOSE_NORMAL          1000
#define WS_CLOSE_GOING_AWAY      1001
#define WS_CLOSE_PROTOCOL_ERROR  1002
#define WS_CLOSE_UNSUPPORTED     1003
#define WS_CLOSE_NO_STATUS       1005  /* never sent: "close frame had no code" */
#define WS_CLOSE_ABNORMAL        1006  /* never sent: "TCP closed without close" */
#define WS_CLOSE_INVALID_DATA    1007
#define WS_CLOSE_POLICY          1008
#define WS_CLOSE_TOO_BIG         1009
#define WS_CLOSE_EXTENSION       1010
#define WS_CLOSE_INTERNAL_ERROR  1011
#define WS_CLOSE_TRY_AGAIN       1013

/* Largest close payload: a control frame carries at most 125 bytes. */
#define WS_CLOSE_MAX_PAYLOAD     125

/* 1 when a peer may send this code in a close frame (§7.4.1, §7.4.2 and the
 * IANA registry): 1000-1003, 1007-1011, 1012-1014, 3000-4999.  1004, 1005,
 * 1006, 1015 and everything below 1000 or from 5000 are refused. */
int ws_close_code_valid(unsigned code);

/* Parse a received close payload.  On success returns 0 and sets *code
 * (WS_CLOSE_NO_STATUS when the payload is empty) and *reason / *reason_len
 * (pointing into p, not NUL-terminated).  On a bad payload returns the close
 * code to answer with: WS_CLOSE_PROTOCOL_ERROR for a 1-byte payload or a code
 * that may not be sent, WS_CLOSE_INVALID_DATA for a reason that is not UTF-8. */
unsigned ws_close_parse(const unsigned char *p, apr_size_t n, unsigned *code,
                        const char **reason, apr_size_t *reason_len);

/* Build a close payload into out (at least WS_CLOSE_MAX_PAYLOAD bytes):
 * the code in network order, then reason cut to fit (on a UTF-8 character
 * boundary).  code 0 builds an empty payload.  Returns the length. */
apr_size_t ws_close_build(unsigned char *out, unsigned code, const char *reason);

#endif /* WS_CLOSE_H */
