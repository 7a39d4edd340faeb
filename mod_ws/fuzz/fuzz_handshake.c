/* libFuzzer target: the opening handshake checks on arbitrary header
 * values.
 *
 * Input: newline-separated fields, in order: method, HTTP minor version
 * digit, Upgrade, Connection, Sec-WebSocket-Key, Sec-WebSocket-Version,
 * Origin, scheme, Host, Sec-WebSocket-Protocol, then any number of offered
 * subprotocols / allowed origins.  A missing field is NULL.  Invariants
 * (abort when broken): an accepted key is 24 characters ending in "==";
 * the accept value is 28 base64 characters; a selected subprotocol is one
 * the server offered and the client named; an origin that is the request's
 * own also matches a list holding "scheme://host".  Test code.
 */
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_lib.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "fuzz.h"
#include "ws_handshake.h"

#define NFIELDS 10

static void check_accept(const char *key)
{
    char out[WS_ACCEPT_LEN];
    int i;

    memset(out, 0x55, sizeof(out));
    ws_handshake_accept(key, out);
    if (out[WS_ACCEPT_LEN - 1] != '\0' || out[WS_ACCEPT_LEN - 2] != '=') {
        abort();
    }
    for (i = 0; i < WS_ACCEPT_LEN - 2; i++) {
        if (!apr_isalnum(out[i]) && out[i] != '+' && out[i] != '/') {
            abort();
        }
    }
}

static void check_request(char **f)
{
    ws_handshake_req_t req;
    ws_handshake_result_e r;

    req.method = f[0];
    req.http_major = 1;
    req.http_minor = f[1] && f[1][0] >= '0' && f[1][0] <= '9'
                     ? f[1][0] - '0' : 1;
    req.upgrade = f[2];
    req.connection = f[3];
    req.key = f[4];
    req.version = f[5];
    r = ws_handshake_check(&req);
    if (ws_handshake_result_str(r) == NULL) {
        abort();
    }
    if (r == WS_HS_OK && (strlen(req.key) != 24 || req.key[22] != '='
                          || req.key[23] != '=' || req.http_minor < 1
                          || strcmp(req.version, "13") != 0)) {
        abort();
    }
    check_accept(req.key);
}

static void check_origin(apr_pool_t *p, char **f,
                         apr_array_header_t *extra)
{
    const char *origin = f[6], *scheme = f[7], *host = f[8];

    if (ws_handshake_origin_same(origin, scheme, host)) {
        apr_array_header_t *own = apr_array_make(p, 1, sizeof(char *));
        APR_ARRAY_PUSH(own, const char *) =
            apr_pstrcat(p, scheme, "://", host, NULL);
        if (!ws_handshake_origin_listed(origin, own)) {
            abort();
        }
    }
    (void)ws_handshake_origin_listed(origin, extra);
}

static void check_protocol(char **f, apr_array_header_t *offered)
{
    const char *requested = f[9];
    const char *sel = ws_handshake_select_protocol(offered, requested);
    int i, found = 0;

    if (sel == NULL) {
        return;
    }
    for (i = 0; i < offered->nelts; i++) {
        found |= APR_ARRAY_IDX(offered, i, const char *) == sel;
    }
    if (!found || !ws_handshake_has_token(requested, sel)) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static apr_pool_t *root;
    apr_pool_t *p;
    char *f[NFIELDS];
    apr_array_header_t *extra;
    size_t start = 0, i;
    int n = 0, k;

    if (root == NULL) {
        apr_initialize();
        apr_pool_create(&root, NULL);
    }
    apr_pool_create(&p, root);
    extra = apr_array_make(p, 4, sizeof(char *));
    for (k = 0; k < NFIELDS; k++) {
        f[k] = NULL;
    }
    /* Each field is its own malloc'd string, so ASan sees any read past
     * its NUL (pool memory would hide it). */
    for (i = 0; i <= size; i++) {
        if (i == size || data[i] == '\n') {
            char *s = malloc(i - start + 1);
            memcpy(s, data + start, i - start);
            s[i - start] = '\0';
            if (n < NFIELDS) {
                f[n] = s;
            }
            else {
                APR_ARRAY_PUSH(extra, char *) = s;
            }
            n++;
            start = i + 1;
        }
    }
    check_request(f);
    check_origin(p, f, extra);
    check_protocol(f, extra);
    for (k = 0; k < NFIELDS; k++) {
        (void)ws_handshake_has_token(f[k], "upgrade");
        free(f[k]);
    }
    for (k = 0; k < extra->nelts; k++) {
        free(APR_ARRAY_IDX(extra, k, char *));
    }
    apr_pool_destroy(p);
    return 0;
}
