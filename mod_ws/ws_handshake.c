/* The opening handshake of RFC 6455 §4.2: request checks, the accept key,
 * subprotocol choice and the Origin check (§10.2, RFC 6454).
 *
 * Input is header values as plain strings (NULL when absent), so httpd, the
 * unit tests and the fuzzer all call the same code.  Must not: include an
 * httpd header, do I/O, allocate (everything works on the caller's strings
 * and stack buffers; only the extension parser allocates, from the pool it
 * is given), or trust that a string is well formed.
 */
#include <string.h>

#include <apr_base64.h>
#include <apr_lib.h>
#include <apr_sha1.h>
#include <apr_strings.h>

#include "ws_handshake.h"

/* §1.3 and §4.2.2: the GUID appended to the key before hashing. */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* §4.2.1: the key is base64 of 16 bytes: 22 characters and "==". */
#define WS_KEY_LEN 24

static int ws_is_ows(char c)
{
    return c == ' ' || c == '\t';
}

int ws_handshake_has_token(const char *list, const char *token)
{
    apr_size_t tlen;
    const char *p, *end, *last;

    if (list == NULL || token == NULL) {
        return 0;
    }
    tlen = strlen(token);
    for (p = list; *p != '\0'; p = end) {
        /* RFC 9110 §5.6.1: #rule elements separated by commas with
         * optional whitespace; empty elements are allowed and skipped. */
        while (*p == ',' || ws_is_ows(*p)) {
            p++;
        }
        end = p;
        while (*end != '\0' && *end != ',') {
            end++;
        }
        last = end;
        while (last > p && ws_is_ows(last[-1])) {
            last--;
        }
        if ((apr_size_t)(last - p) == tlen && tlen > 0
            && strncasecmp(p, token, tlen) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The base64 alphabet of RFC 4648 §4. */
static int ws_is_b64(char c)
{
    return apr_isalnum(c) || c == '+' || c == '/';
}

/* A key is exactly 24 characters: 22 from the alphabet, then "==", which
 * is what base64 of 16 bytes looks like (RFC 4648 §4). */
static int ws_handshake_key_valid(const char *key)
{
    unsigned char raw[20];
    int i;

    if (key == NULL || strlen(key) != WS_KEY_LEN) {
        return 0;
    }
    for (i = 0; i < 22; i++) {
        if (!ws_is_b64(key[i])) {
            return 0;
        }
    }
    if (key[22] != '=' || key[23] != '=') {
        return 0;
    }
    /* apr_base64_decode_len over-estimates; the real length must be 16. */
    if (apr_base64_decode_len(key) > (int)sizeof(raw) + 1) {
        return 0;
    }
    return apr_base64_decode_binary(raw, key) == 16;
}

ws_handshake_result_e ws_handshake_check(const ws_handshake_req_t *req)
{
    if (!ws_handshake_has_token(req->upgrade, "websocket")) {
        return WS_HS_NOT_WEBSOCKET;
    }
    /* §4.2.1 item 1: "An HTTP/1.1 or higher GET request". */
    if (req->method == NULL || strcmp(req->method, "GET") != 0) {
        return WS_HS_BAD_METHOD;
    }
    if (req->http_major < 1 || (req->http_major == 1 && req->http_minor < 1)) {
        return WS_HS_BAD_HTTP;
    }
    if (!ws_handshake_has_token(req->connection, "upgrade")) {
        return WS_HS_NO_CONNECTION;
    }
    /* §4.2.1 item 6 and §4.4: only version 13 is spoken; the answer to
     * anything else is 426 naming it. */
    if (req->version == NULL || strcmp(req->version, "13") != 0) {
        return WS_HS_BAD_VERSION;
    }
    if (!ws_handshake_key_valid(req->key)) {
        return WS_HS_BAD_KEY;
    }
    return WS_HS_OK;
}

const char *ws_handshake_result_str(ws_handshake_result_e r)
{
    switch (r) {
    case WS_HS_OK:            return "ok";
    case WS_HS_NOT_WEBSOCKET: return "no websocket token in Upgrade";
    case WS_HS_BAD_METHOD:    return "method is not GET";
    case WS_HS_BAD_HTTP:      return "HTTP version below 1.1";
    case WS_HS_NO_CONNECTION: return "no upgrade token in Connection";
    case WS_HS_BAD_VERSION:   return "Sec-WebSocket-Version is not 13";
    case WS_HS_BAD_KEY:
        return "Sec-WebSocket-Key is not base64 of 16 bytes";
    }
    return "unknown handshake result";
}

void ws_handshake_accept(const char *key, char *out)
{
    apr_sha1_ctx_t ctx;
    unsigned char digest[APR_SHA1_DIGESTSIZE];

    /* §4.2.2 item 5.4: base64(SHA-1(key + GUID)); the key is used as sent,
     * not decoded.  20 bytes encode to 28 characters plus NUL. */
    apr_sha1_init(&ctx);
    apr_sha1_update(&ctx, key ? key : "", key ? (unsigned)strlen(key) : 0);
    apr_sha1_update(&ctx, WS_GUID, sizeof(WS_GUID) - 1);
    apr_sha1_final(digest, &ctx);
    apr_base64_encode_binary(out, digest, APR_SHA1_DIGESTSIZE);
}

const char *ws_handshake_select_protocol(const apr_array_header_t *offered,
                                         const char *requested)
{
    int i;

    /* §4.2.2 item 5.5 lets the server pick; we honour its order. */
    if (offered == NULL || requested == NULL) {
        return NULL;
    }
    for (i = 0; i < offered->nelts; i++) {
        const char *p = APR_ARRAY_IDX(offered, i, const char *);
        if (p && *p && ws_handshake_has_token(requested, p)) {
            return p;
        }
    }
    return NULL;
}

/* ---- origins ---------------------------------------------------------- */

/* An origin reduced to what RFC 6454 §5 compares.  Pointers go into the
 * caller's string; nothing is copied. */
typedef struct {
    const char *scheme;
    apr_size_t scheme_len;
    const char *host;          /* without brackets */
    apr_size_t host_len;
    long port;                 /* explicit or the scheme's default */
} ws_origin_t;

/* Scheme families: ws/wss fold into http/https (§4.1, §10.2), with the
 * same default ports; other schemes are compared by name. */
enum { WS_SCHEME_OTHER, WS_SCHEME_HTTP, WS_SCHEME_HTTPS };

static int ws_scheme_kind(const char *s, apr_size_t n)
{
    if ((n == 4 && strncasecmp(s, "http", 4) == 0)
        || (n == 2 && strncasecmp(s, "ws", 2) == 0)) {
        return WS_SCHEME_HTTP;
    }
    if ((n == 5 && strncasecmp(s, "https", 5) == 0)
        || (n == 3 && strncasecmp(s, "wss", 3) == 0)) {
        return WS_SCHEME_HTTPS;
    }
    return WS_SCHEME_OTHER;
}

/* The port an origin has without an explicit one; -1 when unknown. */
static long ws_scheme_default_port(const char *s, apr_size_t n)
{
    switch (ws_scheme_kind(s, n)) {
    case WS_SCHEME_HTTP:  return 80;
    case WS_SCHEME_HTTPS: return 443;
    default:              return -1;
    }
}

/* Parse "host[:port]" of p[0..n), IPv6 literals in brackets.  0 on
 * success. */
static int ws_origin_hostport(ws_origin_t *o, const char *p, apr_size_t n)
{
    const char *end = p + n, *colon;

    if (n == 0) {
        return -1;
    }
    if (*p == '[') {
        const char *rb = memchr(p, ']', n);
        if (rb == NULL || rb == p + 1) {
            return -1;
        }
        o->host = p + 1;
        o->host_len = (apr_size_t)(rb - p - 1);
        colon = rb + 1 < end ? rb + 1 : NULL;
        if (colon && *colon != ':') {
            return -1;
        }
    }
    else {
        colon = memchr(p, ':', n);
        o->host = p;
        o->host_len = colon ? (apr_size_t)(colon - p) : n;
        if (o->host_len == 0) {
            return -1;
        }
    }
    if (colon) {
        const char *d = colon + 1;
        long port = 0;
        if (d == end || end - d > 5) {
            return -1;
        }
        for (; d < end; d++) {
            if (!apr_isdigit(*d)) {
                return -1;
            }
            port = port * 10 + (*d - '0');
        }
        if (port < 1 || port > 65535) {
            return -1;
        }
        o->port = port;
    }
    return 0;
}

/* Parse an origin "scheme://host[:port]" (RFC 6454 §6.2), allowing one
 * trailing "/" in configured entries.  "null" and anything with a path,
 * user info or query fails.  0 on success. */
static int ws_origin_parse(ws_origin_t *o, const char *s)
{
    const char *sep, *hp;
    apr_size_t n;

    if (s == NULL || (sep = strstr(s, "://")) == NULL || sep == s) {
        return -1;
    }
    o->scheme = s;
    o->scheme_len = (apr_size_t)(sep - s);
    o->port = ws_scheme_default_port(s, o->scheme_len);
    hp = sep + 3;
    n = strlen(hp);
    if (n > 0 && hp[n - 1] == '/') {
        n--;
    }
    if (memchr(hp, '/', n) || memchr(hp, '@', n) || memchr(hp, '?', n)
        || memchr(hp, '#', n)) {
        return -1;
    }
    return ws_origin_hostport(o, hp, n);
}

static int ws_origin_equal(const ws_origin_t *a, const ws_origin_t *b)
{
    int ka = ws_scheme_kind(a->scheme, a->scheme_len);
    int kb = ws_scheme_kind(b->scheme, b->scheme_len);

    if (ka != kb) {
        return 0;
    }
    /* Schemes are case-insensitive (RFC 3986 §3.1). */
    if (ka == WS_SCHEME_OTHER
        && (a->scheme_len != b->scheme_len
            || strncasecmp(a->scheme, b->scheme, a->scheme_len) != 0)) {
        return 0;
    }
    /* So are hosts (RFC 3986 §3.2.2). */
    return a->port == b->port && a->host_len == b->host_len
        && strncasecmp(a->host, b->host, a->host_len) == 0;
}

int ws_handshake_origin_same(const char *origin, const char *scheme,
                             const char *host)
{
    ws_origin_t o, r;

    if (ws_origin_parse(&o, origin) != 0 || scheme == NULL || host == NULL) {
        return 0;
    }
    r.scheme = scheme;
    r.scheme_len = strlen(scheme);
    r.port = ws_scheme_default_port(scheme, r.scheme_len);
    if (ws_origin_hostport(&r, host, strlen(host)) != 0) {
        return 0;
    }
    return ws_origin_equal(&o, &r);
}

int ws_handshake_origin_listed(const char *origin,
                               const apr_array_header_t *allowed)
{
    ws_origin_t o, a;
    int i;

    if (allowed == NULL || ws_origin_parse(&o, origin) != 0) {
        return 0;
    }
    for (i = 0; i < allowed->nelts; i++) {
        const char *entry = APR_ARRAY_IDX(allowed, i, const char *);
        if (ws_origin_parse(&a, entry) == 0 && ws_origin_equal(&o, &a)) {
            return 1;
        }
    }
    return 0;
}

/* ---- extensions (§9.1) ------------------------------------------------ */

/* RFC 9110 §5.6.2 tchar. */
static int ws_is_tchar(char c)
{
    return apr_isalnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *ws_skip_ows(const char *p)
{
    while (ws_is_ows(*p)) {
        p++;
    }
    return p;
}

/* A token at p: its copy in *out (NULL when there is none). */
static const char *ws_ext_token(apr_pool_t *pool, const char *p,
                                const char **out)
{
    const char *start = p;

    while (ws_is_tchar(*p)) {
        p++;
    }
    *out = p > start ? apr_pstrmemdup(pool, start, (apr_size_t)(p - start))
                     : NULL;
    return p;
}

/* A quoted-string at p (which points at the opening quote), unescaped
 * into *out; NULL when it does not end.  §9.1: the unescaped value must
 * be a token, which the caller checks. */
static const char *ws_ext_quoted(apr_pool_t *pool, const char *p,
                                 const char **out)
{
    const char *q = p + 1;
    char *buf, *w;

    buf = w = apr_palloc(pool, strlen(q) + 1);
    for (; *q != '"'; q++) {
        if (*q == '\0') {
            *out = NULL;
            return q;
        }
        if (*q == '\\') {
            if (q[1] == '\0') {
                *out = NULL;
                return q + 1;
            }
            q++;
        }
        *w++ = *q;
    }
    *w = '\0';
    *out = buf;
    return q + 1;
}

static int ws_ext_is_token(const char *s)
{
    if (*s == '\0') {
        return 0;
    }
    for (; *s; s++) {
        if (!ws_is_tchar(*s)) {
            return 0;
        }
    }
    return 1;
}

/* Skip to the comma that ends the current element, outside quotes. */
static const char *ws_ext_skip_element(const char *p)
{
    int quoted = 0;

    for (; *p != '\0'; p++) {
        if (quoted && *p == '\\' && p[1] != '\0') {
            p++;
        }
        else if (*p == '"') {
            quoted = !quoted;
        }
        else if (*p == ',' && !quoted) {
            break;
        }
    }
    return p;
}

apr_array_header_t *ws_handshake_parse_extensions(apr_pool_t *pool,
                                                  const char *value)
{
    apr_array_header_t *offers = apr_array_make(pool, 2,
                                                sizeof(ws_ext_offer_t));
    const char *p = value ? value : "";

    for (;;) {
        ws_ext_offer_t *o;

        while (*p == ',' || ws_is_ows(*p)) {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        o = apr_array_push(offers);
        o->params = apr_array_make(pool, 4, sizeof(ws_ext_param_t));
        o->bad = 0;
        p = ws_ext_token(pool, p, &o->name);
        if (o->name == NULL) {
            o->name = "";
            o->bad = 1;
        }
        p = ws_skip_ows(p);
        while (!o->bad && *p == ';') {
            ws_ext_param_t *prm = apr_array_push(o->params);
            p = ws_ext_token(pool, ws_skip_ows(p + 1), &prm->name);
            prm->value = NULL;
            if (prm->name == NULL) {
                prm->name = "";
                o->bad = 1;
                break;
            }
            p = ws_skip_ows(p);
            if (*p == '=') {
                p = ws_skip_ows(p + 1);
                p = *p == '"' ? ws_ext_quoted(pool, p, &prm->value)
                              : ws_ext_token(pool, p, &prm->value);
                if (prm->value == NULL || !ws_ext_is_token(prm->value)) {
                    o->bad = 1;
                    break;
                }
                p = ws_skip_ows(p);
            }
        }
        if (*p != ',' && *p != '\0') {
            o->bad = 1;
        }
        if (o->bad) {
            p = ws_ext_skip_element(p);
        }
    }
    return offers;
}
