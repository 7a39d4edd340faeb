/* Unit tests of ws_hubwire: the frames between the hub process and the
 * children, built and parsed back, parsed from every prefix (a partial
 * frame is "need more", never a frame or an error), malformed ones refused,
 * and the buffers' bound and compaction.
 */
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "check_main.h"
#include "ws_hubwire.h"

#define MAX (1024 * 1024)

static ws_hubframe_t frame(const char *ch, const char *data, apr_size_t len)
{
    ws_hubframe_t f;

    memset(&f, 0, sizeof(f));
    f.type = 2;
    f.flags = 0;
    f.exclude = 0xdeadbeef;
    f.seq = ((apr_uint64_t)7 << 32) | 9;
    f.channel = ch;
    f.channel_len = strlen(ch);
    f.data = data;
    f.len = len;
    return f;
}

START_TEST(test_round_trip)
{
    ws_hubbuf_t b = { NULL, 0, 0, 0 };
    ws_hubframe_t in = frame("user:alice", "\0\1binary", 8), out;
    apr_ssize_t n;

    ck_assert_int_eq(ws_hubframe_append(&b, &in, MAX), 0);
    ck_assert_uint_eq(b.len, WS_HUBWIRE_HEADER + 10 + 8);
    n = ws_hubframe_parse(b.p, b.len, MAX, &out);
    ck_assert_int_eq(n, (apr_ssize_t)b.len);
    ck_assert_uint_eq(out.type, 2);
    ck_assert_uint_eq(out.flags, 0);
    ck_assert_uint_eq(out.exclude, 0xdeadbeef);
    ck_assert(out.seq == (((apr_uint64_t)7 << 32) | 9));
    ck_assert_uint_eq(out.channel_len, 10);
    ck_assert(!memcmp(out.channel, "user:alice", 10));
    ck_assert_uint_eq(out.len, 8);
    ck_assert(!memcmp(out.data, "\0\1binary", 8));

    ws_hubframe_set_flags(b.p, WS_HUBWIRE_YOURS);
    ck_assert_int_eq(ws_hubframe_parse(b.p, b.len, MAX, &out),
                     (apr_ssize_t)b.len);
    ck_assert_uint_eq(out.flags, WS_HUBWIRE_YOURS);
    ws_hubbuf_free(&b);
}
END_TEST

/* Two frames back to back, the second empty; every prefix of the first is
 * "more needed". */
START_TEST(test_prefixes)
{
    ws_hubbuf_t b = { NULL, 0, 0, 0 };
    ws_hubframe_t a = frame("chat", "hello", 5), e = frame("c", "", 0), out;
    apr_size_t first, i;
    apr_ssize_t n;

    ck_assert_int_eq(ws_hubframe_append(&b, &a, MAX), 0);
    first = b.len;
    ck_assert_int_eq(ws_hubframe_append(&b, &e, MAX), 0);
    for (i = 0; i < first; ++i) {
        ck_assert_msg(ws_hubframe_parse(b.p, i, MAX, &out) == 0,
                      "prefix %u", (unsigned)i);
    }
    n = ws_hubframe_parse(b.p, b.len, MAX, &out);
    ck_assert_int_eq(n, (apr_ssize_t)first);
    ck_assert(!memcmp(out.data, "hello", 5));
    n = ws_hubframe_parse(b.p + first, b.len - first, MAX, &out);
    ck_assert_int_eq(n, (apr_ssize_t)(b.len - first));
    ck_assert_uint_eq(out.len, 0);
    ck_assert_uint_eq(out.channel_len, 1);
    ws_hubbuf_free(&b);
}
END_TEST

START_TEST(test_malformed)
{
    ws_hubbuf_t b = { NULL, 0, 0, 0 };
    ws_hubframe_t f = frame("chat", "x", 1), out;
    char bad[64];

    ck_assert_int_eq(ws_hubframe_append(&b, &f, MAX), 0);
    /* another kind */
    memcpy(bad, b.p, b.len);
    bad[4] = 9;
    ck_assert_int_eq(ws_hubframe_parse(bad, b.len, MAX, &out), -1);
    /* a length under the header */
    memcpy(bad, b.p, b.len);
    bad[0] = bad[1] = bad[2] = 0;
    bad[3] = 3;
    ck_assert_int_eq(ws_hubframe_parse(bad, b.len, MAX, &out), -1);
    /* the reserved byte */
    memcpy(bad, b.p, b.len);
    bad[7] = 1;
    ck_assert_int_eq(ws_hubframe_parse(bad, b.len, MAX, &out), -1);
    /* a length over the bound */
    ck_assert_int_eq(ws_hubframe_parse(b.p, b.len, 10, &out), -1);
    /* a channel longer than the frame */
    memcpy(bad, b.p, b.len);
    bad[20] = 0;
    bad[21] = 100;
    ck_assert_int_eq(ws_hubframe_parse(bad, b.len, MAX, &out), -1);
    ws_hubbuf_free(&b);
}
END_TEST

START_TEST(test_bound_and_compaction)
{
    ws_hubbuf_t b = { NULL, 0, 0, 0 };
    static char big[3000];
    ws_hubframe_t f = frame("c", big, sizeof(big));
    apr_size_t flen = WS_HUBWIRE_HEADER + 1 + sizeof(big), cap;

    ck_assert_int_eq(ws_hubframe_append(&b, &f, 2 * flen), 0);
    ck_assert_int_eq(ws_hubframe_append(&b, &f, 2 * flen), 0);
    /* a third would pass the bound */
    ck_assert_int_eq(ws_hubframe_append(&b, &f, 2 * flen), -1);
    ck_assert_uint_eq(b.len, 2 * flen);
    /* the first is written out: room again, in the same memory */
    b.off = flen;
    cap = b.cap;
    ck_assert_int_eq(ws_hubframe_append(&b, &f, 2 * flen), 0);
    ck_assert_uint_eq(b.off, 0);
    ck_assert_uint_eq(b.len, 2 * flen);
    ck_assert_uint_eq(b.cap, cap);
    /* all written out: the buffer starts over */
    b.off = b.len;
    ck_assert_int_eq(ws_hubbuf_reserve(&b, 1), 0);
    ck_assert_uint_eq(b.off, 0);
    ck_assert_uint_eq(b.len, 0);
    ws_hubbuf_free(&b);
    ck_assert_ptr_null(b.p);
}
END_TEST

static Suite *hubwire_suite(void)
{
    Suite *s = suite_create("ws_hubwire");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_prefixes);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_bound_and_compaction);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ws_test_main(hubwire_suite());
}
