/* Unit tests of ws_handshake: request checks (RFC 6455 §4.2.1), the accept
 * key (§1.3, §4.2.2), HTTP token lists, subprotocol choice and the Origin
 * comparisons.
 */
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <apr_general.h>
#include <apr_tables.h>

#include "check_main.h"
#include "ws_handshake.h"

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="

static ws_handshake_req_t good(void)
{
    ws_handshake_req_t r = { "GET", 1, 1, "websocket", "Upgrade", KEY, "13" };
    return r;
}

START_TEST(test_accept_rfc)
{
    char out[WS_ACCEPT_LEN];

    ws_handshake_accept(KEY, out);
    ck_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    ck_assert_uint_eq(strlen(out), WS_ACCEPT_LEN - 1);
}
END_TEST

START_TEST(test_check_ok)
{
    ws_handshake_req_t r = good();

    ck_assert_int_eq(ws_handshake_check(&r), WS_HS_OK);
    r.connection = "keep-alive, Upgrade";
    ck_assert_int_eq(ws_handshake_check(&r), WS_HS_OK);
    r.upgrade = "h2c, WebSocket";
    ck_assert_int_eq(ws_handshake_check(&r), WS_HS_OK);
    r.http_major = 2;
    r.http_minor = 0;
    ck_assert_int_eq(ws_handshake_check(&r), WS_HS_OK);
}
END_TEST

START_TEST(test_check_failures)
{
    ws_handshake_req_t r;

    r = good(); r.upgrade = NULL;
    ck_assert_int_eq(ws_handshake_check(&r), WS_HS_NOT_WEBSOCKET);
    r = good(); r.upgrade = "websockets";
    ck_assert_int_eq(ws_handshake_check(&r), WS_HS_NOT_WEBSOCKET);
    r = good(); r.method = "POST";
    ck_assert_int_eq(ws_handshake_check(&r), WS_HS_BAD_METHOD);
    r = good(); r.method = "get";
    ck_assert_int_eq(ws_handshake_check(&r), WS_HS_BAD_METHOD);
    r = good(); r.method = NULL;
    ck_assert_int_eq(ws_handshake_check(&r), WS_HS_BAD_METHOD);
    r = good(); r.http_minor = 0;
    ck_assert_int_eq(ws_handshake_check(&r), WS_HS_BAD_HTTP);
    r = good(); r.http_major = 0; r.http_minor = 9;
    ck_assert_int_eq(ws_handshake_check(&r), WS_HS_BAD_HTTP);
    r = good(); r.connection = NULL;
    ck_assert_int_eq(ws_handshake_check(&r), WS_HS_NO_CONNECTION);
    r = good(); r.connection = "keep-alive";
    ck_assert_int_eq(ws_handshake_check(&r), WS_HS_NO_CONNECTION);
    r = good(); r.connection = "upgraded";
    ck_assert_int_eq(ws_handshake_check(&r), WS_HS_NO_CONNECTION);
    r = good(); r.version = NULL;
    ck_assert_int_eq(ws_handshake_check(&r), WS_HS_BAD_VERSION);
    r = good(); r.version = "8";
    ck_assert_int_eq(ws_handshake_check(&r), WS_HS_BAD_VERSION);
    r = good(); r.version = "13, 8";
    ck_assert_int_eq(ws_handshake_check(&r), WS_HS_BAD_VERSION);
    r = good(); r.version = "013";
    ck_assert_int_eq(ws_handshake_check(&r), WS_HS_BAD_VERSION);
    r = good(); r.version = "13 ";
    ck_assert_int_eq(ws_handshake_check(&r), WS_HS_BAD_VERSION);
    r = good(); r.key = NULL;
    ck_assert_int_eq(ws_handshake_check(&r), WS_HS_BAD_KEY);
    /* Order: version is judged before the key. */
    r = good(); r.key = "x"; r.version = "7";
    ck_assert_int_eq(ws_handshake_check(&r), WS_HS_BAD_VERSION);
}
END_TEST

START_TEST(test_keys)
{
    static const char *bad[] = {
        "",
        "dGhlIHNhbXBsZSBub25jZQ=",            /* 23 */
        "dGhlIHNhbXBsZSBub25jZQ===",          /* 25 */
        "dGhlIHNhbXBsZSBub25jZQAA",           /* 18 bytes, no padding */
        "dGhlIHNhbXBsZSBub25jZQA=",           /* 17 bytes */
        "dGhlIHNhbXBsZSBub25jZ===",           /* '=' too early */
        "dGhlIHNhbXBsZSBub25jZ!==",           /* not base64 */
        "dGhlIHNhbXBsZSBub2 jZQ==",
        " dGhlIHNhbXBsZSBub25jZQ==",
        "dGhlIHNhbXBsZSBub25jZQ==\n",
        "dGhlIHNhbXBsZSBub25jZQ-_",           /* base64url is not base64 */
        "dGhlIHNhbXBsZSBub25jZQ=A",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
    };
    static const char *ok[] = {
        KEY,
        "AAAAAAAAAAAAAAAAAAAAAA==",
        "/////////////////////w==",
        "x3JJHMbDL1EzLkh9GBhXDw==",
    };
    ws_handshake_req_t r = good();
    unsigned i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r.key = bad[i];
        ck_assert_msg(ws_handshake_check(&r) == WS_HS_BAD_KEY, "%s", bad[i]);
    }
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        r.key = ok[i];
        ck_assert_msg(ws_handshake_check(&r) == WS_HS_OK, "%s", ok[i]);
    }
}
END_TEST

START_TEST(test_tokens)
{
    ck_assert_int_eq(ws_handshake_has_token("keep-alive, Upgrade", "upgrade"),
                     1);
    ck_assert_int_eq(ws_handshake_has_token("Upgrade", "upgrade"), 1);
    ck_assert_int_eq(ws_handshake_has_token("UPGRADE", "upgrade"), 1);
    ck_assert_int_eq(ws_handshake_has_token(" upgrade ", "upgrade"), 1);
    ck_assert_int_eq(ws_handshake_has_token("a,upgrade,b", "upgrade"), 1);
    ck_assert_int_eq(ws_handshake_has_token(",,\t upgrade\t,,", "upgrade"), 1);
    ck_assert_int_eq(ws_handshake_has_token("keep-alive", "upgrade"), 0);
    ck_assert_int_eq(ws_handshake_has_token("upgrades", "upgrade"), 0);
    ck_assert_int_eq(ws_handshake_has_token("xupgrade", "upgrade"), 0);
    ck_assert_int_eq(ws_handshake_has_token("up grade", "upgrade"), 0);
    ck_assert_int_eq(ws_handshake_has_token("", "upgrade"), 0);
    ck_assert_int_eq(ws_handshake_has_token(",", "upgrade"), 0);
    ck_assert_int_eq(ws_handshake_has_token(NULL, "upgrade"), 0);
}
END_TEST

static apr_array_header_t *list(apr_pool_t *p, const char *a, const char *b)
{
    apr_array_header_t *arr = apr_array_make(p, 2, sizeof(const char *));

    if (a) {
        APR_ARRAY_PUSH(arr, const char *) = a;
    }
    if (b) {
        APR_ARRAY_PUSH(arr, const char *) = b;
    }
    return arr;
}

START_TEST(test_select_protocol)
{
    apr_pool_t *p;
    apr_array_header_t *offered;

    apr_pool_create(&p, NULL);
    offered = list(p, "chat.v2", "chat");
    ck_assert_str_eq(ws_handshake_select_protocol(offered, "chat, chat.v2"),
                     "chat.v2");
    ck_assert_str_eq(ws_handshake_select_protocol(offered, "mqtt,chat"),
                     "chat");
    ck_assert_str_eq(ws_handshake_select_protocol(offered, "CHAT"), "chat");
    ck_assert_ptr_null(ws_handshake_select_protocol(offered, "mqtt"));
    ck_assert_ptr_null(ws_handshake_select_protocol(offered, ""));
    ck_assert_ptr_null(ws_handshake_select_protocol(offered, NULL));
    ck_assert_ptr_null(ws_handshake_select_protocol(list(p, NULL, NULL),
                                                    "chat"));
    ck_assert_ptr_null(ws_handshake_select_protocol(NULL, "chat"));
    /* The pointer returned is the offered string itself. */
    ck_assert_ptr_eq(ws_handshake_select_protocol(offered, "chat"),
                     APR_ARRAY_IDX(offered, 1, const char *));
    apr_pool_destroy(p);
}
END_TEST

START_TEST(test_origin_same)
{
    ck_assert_int_eq(ws_handshake_origin_same("https://example.com", "https",
                                              "example.com"), 1);
    ck_assert_int_eq(ws_handshake_origin_same("https://example.com",
                                              "https", "example.com:443"), 1);
    ck_assert_int_eq(ws_handshake_origin_same("https://example.com:443",
                                              "https", "example.com"), 1);
    ck_assert_int_eq(ws_handshake_origin_same("http://Example.COM", "HTTP",
                                              "example.com:80"), 1);
    ck_assert_int_eq(ws_handshake_origin_same("HTTP://example.com:8080",
                                              "http", "EXAMPLE.com:8080"), 1);
    /* ws/wss fold into http/https. */
    ck_assert_int_eq(ws_handshake_origin_same("https://example.com", "wss",
                                              "example.com"), 1);
    ck_assert_int_eq(ws_handshake_origin_same("http://example.com", "ws",
                                              "example.com:80"), 1);
    /* IPv6 literals. */
    ck_assert_int_eq(ws_handshake_origin_same("http://[::1]:8080", "http",
                                              "[::1]:8080"), 1);
    ck_assert_int_eq(ws_handshake_origin_same("https://[2001:DB8::1]",
                                              "https", "[2001:db8::1]:443"),
                     1);
    ck_assert_int_eq(ws_handshake_origin_same("http://[::1]", "http",
                                              "[::2]"), 0);

    ck_assert_int_eq(ws_handshake_origin_same("http://example.com", "https",
                                              "example.com"), 0);
    ck_assert_int_eq(ws_handshake_origin_same("https://example.com:8443",
                                              "https", "example.com"), 0);
    ck_assert_int_eq(ws_handshake_origin_same("https://example.com",
                                              "https", "example.com:8443"), 0);
    ck_assert_int_eq(ws_handshake_origin_same("https://evil.com", "https",
                                              "example.com"), 0);
    ck_assert_int_eq(ws_handshake_origin_same("https://example.com.evil.com",
                                              "https", "example.com"), 0);
    ck_assert_int_eq(ws_handshake_origin_same("null", "https",
                                              "example.com"), 0);
    ck_assert_int_eq(ws_handshake_origin_same("https://example.com/path",
                                              "https", "example.com"), 0);
    ck_assert_int_eq(ws_handshake_origin_same("https://user@example.com",
                                              "https", "example.com"), 0);
    ck_assert_int_eq(ws_handshake_origin_same("https://example.com:",
                                              "https", "example.com"), 0);
    ck_assert_int_eq(ws_handshake_origin_same("https://example.com:99999",
                                              "https", "example.com"), 0);
    ck_assert_int_eq(ws_handshake_origin_same("https://", "https", ""), 0);
    ck_assert_int_eq(ws_handshake_origin_same("https://[::1", "https",
                                              "[::1"), 0);
    ck_assert_int_eq(ws_handshake_origin_same(NULL, "https", "a"), 0);
    ck_assert_int_eq(ws_handshake_origin_same("https://a", NULL, "a"), 0);
    ck_assert_int_eq(ws_handshake_origin_same("https://a", "https", NULL), 0);
}
END_TEST

START_TEST(test_origin_listed)
{
    apr_pool_t *p;
    apr_array_header_t *allowed;

    apr_pool_create(&p, NULL);
    allowed = list(p, "https://app.example.com",
                   "http://localhost:8080/");
    ck_assert_int_eq(ws_handshake_origin_listed("https://app.example.com",
                                                allowed), 1);
    ck_assert_int_eq(ws_handshake_origin_listed("https://APP.example.com:443",
                                                allowed), 1);
    ck_assert_int_eq(ws_handshake_origin_listed("http://localhost:8080",
                                                allowed), 1);
    ck_assert_int_eq(ws_handshake_origin_listed("http://localhost",
                                                allowed), 0);
    ck_assert_int_eq(ws_handshake_origin_listed("http://app.example.com",
                                                allowed), 0);
    ck_assert_int_eq(ws_handshake_origin_listed("null", allowed), 0);
    ck_assert_int_eq(ws_handshake_origin_listed("https://app.example.com",
                                                NULL), 0);
    apr_pool_destroy(p);
}
END_TEST

START_TEST(test_result_str)
{
    int r;

    for (r = WS_HS_OK; r <= WS_HS_BAD_KEY; r++) {
        const char *s = ws_handshake_result_str((ws_handshake_result_e)r);
        ck_assert_ptr_nonnull(s);
        ck_assert_uint_gt(strlen(s), 0);
    }
}
END_TEST

static Suite *handshake_suite(void)
{
    Suite *s = suite_create("ws_handshake");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_accept_rfc);
    tcase_add_test(tc, test_check_ok);
    tcase_add_test(tc, test_check_failures);
    tcase_add_test(tc, test_keys);
    tcase_add_test(tc, test_tokens);
    tcase_add_test(tc, test_select_protocol);
    tcase_add_test(tc, test_origin_same);
    tcase_add_test(tc, test_origin_listed);
    tcase_add_test(tc, test_result_str);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ws_test_main(handshake_suite());
}
