/* Unit tests of ws_close: which codes may be sent (RFC 6455 §7.4 and the
 * IANA registry), parsing close payloads, building them.
 */
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <apr_general.h>

#include "check_main.h"
#include "ws_close.h"

START_TEST(test_code_table)
{
    unsigned c;

    for (c = 0; c < 70000; c++) {
        int expect = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014)
                     || (c >= 3000 && c <= 4999);
        ck_assert_msg(ws_close_code_valid(c) == expect, "code %u", c);
    }
    ck_assert_int_eq(ws_close_code_valid(1004), 0);
    ck_assert_int_eq(ws_close_code_valid(1005), 0);
    ck_assert_int_eq(ws_close_code_valid(1006), 0);
    ck_assert_int_eq(ws_close_code_valid(1015), 0);
    ck_assert_int_eq(ws_close_code_valid(1016), 0);
    ck_assert_int_eq(ws_close_code_valid(2999), 0);
    ck_assert_int_eq(ws_close_code_valid(5000), 0);
}
END_TEST

static unsigned parse(const char *p, apr_size_t n, unsigned *code,
                      const char **r, apr_size_t *rl)
{
    return ws_close_parse((const unsigned char *)p, n, code, r, rl);
}

START_TEST(test_parse)
{
    unsigned code;
    const char *r;
    apr_size_t rl;

    ck_assert_uint_eq(parse("", 0, &code, &r, &rl), 0);
    ck_assert_uint_eq(code, WS_CLOSE_NO_STATUS);
    ck_assert_uint_eq(rl, 0);

    ck_assert_uint_eq(parse("\x03\xe8", 2, &code, &r, &rl), 0);
    ck_assert_uint_eq(code, 1000);
    ck_assert_uint_eq(rl, 0);

    ck_assert_uint_eq(parse("\x0f\xa0" "bye \xc3\xa9", 8, &code, &r, &rl), 0);
    ck_assert_uint_eq(code, 4000);
    ck_assert_uint_eq(rl, 6);
    ck_assert_mem_eq(r, "bye \xc3\xa9", 6);

    ck_assert_uint_eq(parse("\x03", 1, &code, &r, &rl),
                      WS_CLOSE_PROTOCOL_ERROR);
    ck_assert_uint_eq(parse("\x03\xed", 2, &code, &r, &rl),     /* 1005 */
                      WS_CLOSE_PROTOCOL_ERROR);
    ck_assert_uint_eq(parse("\x03\xe7", 2, &code, &r, &rl),     /* 999 */
                      WS_CLOSE_PROTOCOL_ERROR);
    ck_assert_uint_eq(parse("\x13\x88", 2, &code, &r, &rl),     /* 5000 */
                      WS_CLOSE_PROTOCOL_ERROR);
    ck_assert_uint_eq(parse("\x00\x00", 2, &code, &r, &rl),
                      WS_CLOSE_PROTOCOL_ERROR);
    /* A bad code is reported before a bad reason. */
    ck_assert_uint_eq(parse("\x03\xee\xff", 3, &code, &r, &rl),
                      WS_CLOSE_PROTOCOL_ERROR);
    ck_assert_uint_eq(parse("\x03\xe8\xff", 3, &code, &r, &rl),
                      WS_CLOSE_INVALID_DATA);
    ck_assert_uint_eq(parse("\x03\xe8" "a\xe2\x82", 5, &code, &r, &rl),
                      WS_CLOSE_INVALID_DATA);
    ck_assert_uint_eq(parse("\x03\xe8\xed\xa0\x80", 5, &code, &r, &rl),
                      WS_CLOSE_INVALID_DATA);
}
END_TEST

START_TEST(test_build)
{
    unsigned char out[WS_CLOSE_MAX_PAYLOAD + 8];
    char reason[200];
    apr_size_t n;
    unsigned code;
    const char *r;
    apr_size_t rl;

    memset(out, 0xAA, sizeof(out));
    ck_assert_uint_eq(ws_close_build(out, 0, "ignored"), 0);
    ck_assert_uint_eq(ws_close_build(out, 1000, NULL), 2);
    ck_assert_mem_eq(out, "\x03\xe8", 2);
    n = ws_close_build(out, 1001, "going away");
    ck_assert_uint_eq(n, 12);
    ck_assert_mem_eq(out, "\x03\xe9going away", 12);

    /* Cut to 123 bytes of reason. */
    memset(reason, 'x', sizeof(reason) - 1);
    reason[sizeof(reason) - 1] = '\0';
    ck_assert_uint_eq(ws_close_build(out, 1000, reason), 125);
    ck_assert_uint_eq(out[125], 0xAA);

    /* Never cut inside a character: 122 ASCII bytes then "é" (2 bytes)
     * would end at 124 > 123, so the é goes. */
    memset(reason, 'x', 122);
    strcpy(reason + 122, "\xc3\xa9zz");
    n = ws_close_build(out, 1000, reason);
    ck_assert_uint_eq(n, 2 + 122);
    ck_assert_uint_eq(parse((const char *)out, n, &code, &r, &rl), 0);
    /* 121 ASCII + é fits exactly. */
    memset(reason, 'x', 121);
    strcpy(reason + 121, "\xc3\xa9zz");
    n = ws_close_build(out, 1000, reason);
    ck_assert_uint_eq(n, 2 + 123);
    ck_assert_uint_eq(parse((const char *)out, n, &code, &r, &rl), 0);
    /* A 4-byte character straddling the end. */
    memset(reason, 'x', 121);
    strcpy(reason + 121, "\xf0\x9f\x98\x80");
    n = ws_close_build(out, 1000, reason);
    ck_assert_uint_eq(n, 2 + 121);
}
END_TEST

static Suite *close_suite(void)
{
    Suite *s = suite_create("ws_close");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_code_table);
    tcase_add_test(tc, test_parse);
    tcase_add_test(tc, test_build);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ws_test_main(close_suite());
}
