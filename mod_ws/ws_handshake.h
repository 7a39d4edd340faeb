/* The opening handshake of RFC 6455 §4.2: request checks, the accept key,
 * subprotocol choice and the Origin check.
 *
 * Part of the protocol core: APR only, no httpd header, no I/O.  Input is the
 * request's header values as strings (NULL when absent), so the same code
 * serves httpd, the unit tests and the fuzzer.
 */
#ifndef WS_HANDSHAKE_H
#define WS_HANDSHAKE_H

#include <apr.h>
#include <apr_pools.h>
#include <apr_tables.h>

/* Length of Sec-WebSocket-Accept: base64 of a 20-byte SHA-1, plus NUL. */
#define WS_ACCEPT_LEN 29

typedef struct {
    const char *method;        /* "GET" */
    int http_major, http_minor;
    const char *upgrade;       /* Upgrade */
    const char *connection;    /* Connection */
    const char *key;           /* Sec-WebSocket-Key */
    const char *version;       /* Sec-WebSocket-Version */
} ws_handshake_req_t;

/* Outcomes of ws_handshake_check, in the order they are tested. */
typedef enum {
    WS_HS_OK = 0,
    WS_HS_NOT_WEBSOCKET,   /* no "websocket" token in Upgrade: not ours, decline */
    WS_HS_BAD_METHOD,      /* not GET: decline, the URL's other handler answers */
    WS_HS_BAD_HTTP,        /* below HTTP/1.1: decline likewise (Upgrade is 1.1) */
    WS_HS_NO_CONNECTION,   /* Connection lacks the "upgrade" token: 400 */
    WS_HS_BAD_VERSION,     /* Sec-WebSocket-Version missing or not 13: 426 */
    WS_HS_BAD_KEY          /* key missing or not base64 of 16 bytes: 400 */
} ws_handshake_result_e;

/* Check a request against §4.2.1.  Token lists are compared as HTTP lists:
 * comma-separated, case-insensitive, optional whitespace. */
ws_handshake_result_e ws_handshake_check(const ws_handshake_req_t *req);

/* A short English text for an outcome, for logs and error bodies. */
const char *ws_handshake_result_str(ws_handshake_result_e r);

/* 1 when the comma-separated HTTP list `list` holds `token`
 * (case-insensitive).  NULL list holds nothing. */
int ws_handshake_has_token(const char *list, const char *token);

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + the §1.3 GUID)).
 * out holds WS_ACCEPT_LEN bytes and ends with NUL. */
void ws_handshake_accept(const char *key, char *out);

/* Choose the subprotocol: the first of `offered` (the server's list, in its
 * order of preference, an array of const char *) that the client's
 * Sec-WebSocket-Protocol list `requested` also names.  NULL when none
 * matches or either side is empty.  Returns a pointer into `offered`. */
const char *ws_handshake_select_protocol(const apr_array_header_t *offered,
                                         const char *requested);

/* 1 when a browser Origin is the request's own origin: same scheme
 * ("http"/"https", compared with ws/wss folded in), host (case-insensitive)
 * and port, where a missing port is the scheme's default.  `host` is the
 * Host header value (host[:port], IPv6 in brackets). */
int ws_handshake_origin_same(const char *origin, const char *scheme,
                             const char *host);

/* 1 when `origin` equals one of `allowed` (const char * entries such as
 * "https://example.com" or "https://example.com:8443"), with the same
 * normalisation as ws_handshake_origin_same. */
int ws_handshake_origin_listed(const char *origin,
                               const apr_array_header_t *allowed);

/* ---- Sec-WebSocket-Extensions (§9.1) ---------------------------------- */

/* One parameter of an extension offer: value NULL when it has none; a
 * quoted-string value is given unquoted and unescaped. */
typedef struct {
    const char *name;
    const char *value;
} ws_ext_param_t;

/* One element of the extension list: a name and its parameters, in order.
 * bad is set when the element breaks the §9.1 grammar (a value that is not
 * a token after unquoting, stray characters, an empty name): the caller
 * must not accept that offer, but the other offers still count. */
typedef struct {
    const char *name;
    apr_array_header_t *params;   /* ws_ext_param_t */
    int bad;
} ws_ext_offer_t;

/* Split a Sec-WebSocket-Extensions value (repeated headers joined with
 * ",", as httpd does) into its offers, in order: an array of
 * ws_ext_offer_t allocated from p, empty for NULL or an empty value.
 * Commas and semicolons inside quoted strings do not split.  Allocates
 * from p; never fails. */
apr_array_header_t *ws_handshake_parse_extensions(apr_pool_t *p,
                                                  const char *value);

#endif /* WS_HANDSHAKE_H */
