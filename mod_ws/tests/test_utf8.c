/* Unit tests of ws_utf8: the automaton against a plain decoding validator
 * (exhaustive over all 1-3 byte inputs), the byte where each kind of error
 * is caught, and incremental feeding at every split point.
 */
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <apr_general.h>

#include "utf8_ref.h"
#include "check_main.h"
#include "ws_utf8.h"

/* Reference: decode each character and check RFC 3629 §3 directly. */
static apr_size_t encode(apr_uint32_t cp, unsigned char *out)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

START_TEST(test_every_code_point)
{
    apr_uint32_t cp;
    unsigned char b[4];

    for (cp = 0; cp <= 0x10FFFF; cp++) {
        apr_size_t n = encode(cp, b);
        int surrogate = cp >= 0xD800 && cp <= 0xDFFF;
        ck_assert_msg(ws_utf8_valid(b, n) == !surrogate, "U+%04X", cp);
    }
    /* One past the top, encoded the same way. */
    ck_assert_int_eq(ws_utf8_valid((const unsigned char *)"\xF4\x90\x80\x80",
                                   4), 0);
}
END_TEST

START_TEST(test_exhaustive_short)
{
    unsigned a, b, c;
    unsigned char s[3];

    for (a = 0; a < 256; a++) {
        s[0] = (unsigned char)a;
        ck_assert_int_eq(ws_utf8_valid(s, 1), ref_valid(s, 1));
        for (b = 0; b < 256; b++) {
            s[1] = (unsigned char)b;
            ck_assert_int_eq(ws_utf8_valid(s, 2), ref_valid(s, 2));
            for (c = 0; c < 256; c++) {
                s[2] = (unsigned char)c;
                if (ws_utf8_valid(s, 3) != ref_valid(s, 3)) {
                    ck_abort_msg("%02x %02x %02x", a, b, c);
                }
            }
        }
    }
}
END_TEST

START_TEST(test_four_byte_leads)
{
    static const unsigned char lasts[] = { 0x00, 0x7F, 0x80, 0xBF, 0xC0 };
    unsigned a, b, c, d;
    unsigned char s[4];

    for (a = 0xF0; a < 0x100; a++) {
        for (b = 0; b < 256; b++) {
            for (c = 0x70; c < 0xD0; c++) {
                for (d = 0; d < sizeof(lasts); d++) {
                    s[0] = (unsigned char)a;
                    s[1] = (unsigned char)b;
                    s[2] = (unsigned char)c;
                    s[3] = lasts[d];
                    if (ws_utf8_valid(s, 4) != ref_valid(s, 4)) {
                        ck_abort_msg("%02x %02x %02x %02x", a, b, c, s[3]);
                    }
                }
            }
        }
    }
}
END_TEST

/* Index of the byte on which feeding one byte at a time first fails;
 * -1 when it never fails. */
static int fail_at(const char *s, apr_size_t n)
{
    ws_utf8_t v;
    apr_size_t i;

    ws_utf8_init(&v);
    for (i = 0; i < n; i++) {
        if (!ws_utf8_feed(&v, (const unsigned char *)s + i, 1)) {
            return (int)i;
        }
    }
    return -1;
}

static const struct {
    const char *s;
    int at;
} early[] = {
    { "\xC0\x80", 0 },            /* overlong lead, at once */
    { "\xC1\xBF", 0 },
    { "\xF5\x80\x80\x80", 0 },    /* beyond U+10FFFF, at once */
    { "\xF8\x88\x80\x80\x80", 0 },
    { "\xFF", 0 },
    { "\x80", 0 },                /* stray continuation */
    { "a\xBF", 1 },
    { "\xF4\x90\x80\x80", 1 },    /* U+110000: at the 2nd byte */
    { "\xED\xA0\x80", 1 },        /* U+D800: at the 2nd byte */
    { "\xED\xBF\xBF", 1 },        /* U+DFFF */
    { "\xE0\x80\x80", 1 },        /* overlong 3-byte */
    { "\xE0\x9F\xBF", 1 },
    { "\xF0\x80\x80\x80", 1 },    /* overlong 4-byte */
    { "\xF0\x8F\xBF\xBF", 1 },
    { "\xC2\x41", 1 },            /* missing continuation */
    { "\xE2\x82\x41", 2 },
    { "\xF0\x9F\x98\x41", 3 },
    { "abc\xE2\x82\xAC\xFE", 6 },
    { "\xEF\xBF\xBF", -1 },       /* U+FFFF is valid */
    { "\xF4\x8F\xBF\xBF", -1 },   /* U+10FFFF */
    { "\xED\x9F\xBF", -1 },       /* U+D7FF */
    { "\xEE\x80\x80", -1 },       /* U+E000 */
};

START_TEST(test_fails_early)
{
    int i = _i;

    ck_assert_msg(fail_at(early[i].s, strlen(early[i].s)) == early[i].at,
                  "case %d: fails at %d, expected %d", i,
                  fail_at(early[i].s, strlen(early[i].s)), early[i].at);
}
END_TEST

START_TEST(test_sticky_and_complete)
{
    ws_utf8_t v;

    ws_utf8_init(&v);
    ck_assert_int_eq(ws_utf8_complete(&v), 1);
    ck_assert_int_eq(ws_utf8_feed(&v, (const unsigned char *)"\xE2\x82", 2),
                     1);
    ck_assert_int_eq(ws_utf8_complete(&v), 0);
    ck_assert_int_eq(ws_utf8_feed(&v, (const unsigned char *)"\xAC", 1), 1);
    ck_assert_int_eq(ws_utf8_complete(&v), 1);
    ck_assert_int_eq(ws_utf8_feed(&v, (const unsigned char *)"\xFF", 1), 0);
    ck_assert_int_eq(ws_utf8_feed(&v, (const unsigned char *)"a", 1), 0);
    ck_assert_int_eq(ws_utf8_complete(&v), 0);
    ws_utf8_init(&v);
    ck_assert_int_eq(ws_utf8_feed(&v, (const unsigned char *)"a", 1), 1);
    ck_assert_int_eq(ws_utf8_feed(&v, NULL, 0), 1);
    ck_assert_int_eq(ws_utf8_valid((const unsigned char *)"", 0), 1);
    /* Truncated at the end: every prefix is "valid so far", none
     * complete. */
    ck_assert_int_eq(ws_utf8_valid((const unsigned char *)"\xF0\x9F\x98", 3),
                     0);
}
END_TEST

START_TEST(test_split_points)
{
    static const char *texts[] = {
        "Hello, world: long ASCII runs go eight bytes at a time......",
        "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5 and more ASCII text",
        "0123456789abcdef\xF0\x9F\x98\x80" "0123456789abcdef\xE2\x82\xAC",
        "0123456789abcdef0123\xED\xA0\x80" "456789",
        "0123456789abcde\xC0\xAF" "0123456789",
        "0123456789abcdefghij\xF0\x9F\x98",
    };
    unsigned t;

    for (t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
        const unsigned char *p = (const unsigned char *)texts[t];
        apr_size_t n = strlen(texts[t]), k, j;
        int whole = ws_utf8_valid(p, n);

        ck_assert_int_eq(whole, ref_valid(p, n));
        for (k = 0; k <= n; k++) {
            for (j = k; j <= n; j++) {
                ws_utf8_t v;
                int ok;
                ws_utf8_init(&v);
                ok = ws_utf8_feed(&v, p, k);
                ok = ws_utf8_feed(&v, p + k, j - k) && ok;
                ok = ws_utf8_feed(&v, p + j, n - j) && ok;
                ck_assert_int_eq(ok && ws_utf8_complete(&v), whole);
            }
        }
    }
}
END_TEST

START_TEST(test_random_vs_reference)
{
    unsigned char buf[64];
    apr_uint32_t x = 12345;
    int round;

    /* Random strings biased to the interesting bytes. */
    for (round = 0; round < 200000; round++) {
        apr_size_t n = (apr_size_t)(round % 24), i;
        for (i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            switch ((x >> 16) & 3) {
            case 0:  buf[i] = (unsigned char)('a' + ((x >> 8) & 7)); break;
            case 1:  buf[i] = (unsigned char)(0x80 | ((x >> 8) & 0x3F)); break;
            default: buf[i] = (unsigned char)(0xC0 | ((x >> 8) & 0x3F)); break;
            }
        }
        ck_assert_int_eq(ws_utf8_valid(buf, n), ref_valid(buf, n));
    }
}
END_TEST

static Suite *utf8_suite(void)
{
    Suite *s = suite_create("ws_utf8");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_every_code_point);
    tcase_add_test(tc, test_exhaustive_short);
    tcase_add_test(tc, test_four_byte_leads);
    tcase_add_loop_test(tc, test_fails_early, 0,
                        (int)(sizeof(early) / sizeof(early[0])));
    tcase_add_test(tc, test_sticky_and_complete);
    tcase_add_test(tc, test_split_points);
    tcase_add_test(tc, test_random_vs_reference);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ws_test_main(utf8_suite());
}
