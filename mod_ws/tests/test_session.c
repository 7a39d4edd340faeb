/* Unit tests of ws_session: the RFC 6455 §5.7 examples, every violation
 * the session must answer with 1002/1007/1009, the close handshake, timers,
 * the output queue and buffer shrinking.
 *
 * Every vector goes through feed_check: fed whole, split in two at every
 * point and one byte at a time, each piece ending at an unreadable page;
 * all of them must log the same events.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <apr_general.h>

#include "check_main.h"
#include "feed.h"
#include "ws_close.h"
#include "ws_frame.h"
#include "ws_session.h"

#define SERVER 0
#define CLIENT 1


/* ---- vector building -------------------------------------------------- */

static void check_bytes(const char *name, const unsigned char *in,
                        apr_size_t len, int is_client, apr_size_t max,
                        const char *expect)
{
    feed_vec_t v = { name, in, len, is_client, max, 0, NULL, 0 };
    char *log = feed_check(&v);

    ck_assert_msg(strcmp(log, expect) == 0, "%s:\ngot\n%s\nexpected\n%s",
                  name, log, expect);
    free(log);
}

static void check_vb(const char *name, feed_vb_t *v, apr_size_t max,
                     const char *expect)
{
    check_bytes(name, v->b, v->n, v->is_client, max, expect);
    free(v->b);
    v->b = NULL;
}

#define OPEN_0   "state open 0\n"

/* ---- RFC 6455 §5.7 examples ------------------------------------------- */

START_TEST(test_rfc_unmasked_hello)
{
    static const unsigned char in[] = { 0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c,
                                        0x6f };
    check_bytes("rfc unmasked hello", in, sizeof(in), CLIENT, 0,
                "msg text 5 'Hello'\n" OPEN_0 "stats msgs 1 pongs 0\n");
}
END_TEST

START_TEST(test_rfc_masked_hello)
{
    static const unsigned char in[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                        0x7f, 0x9f, 0x4d, 0x51, 0x58 };
    check_bytes("rfc masked hello", in, sizeof(in), SERVER, 0,
                "msg text 5 'Hello'\n" OPEN_0 "stats msgs 1 pongs 0\n");
}
END_TEST

START_TEST(test_rfc_fragmented)
{
    static const unsigned char in[] = { 0x01, 0x03, 0x48, 0x65, 0x6c,
                                        0x80, 0x02, 0x6c, 0x6f };
    check_bytes("rfc fragmented", in, sizeof(in), CLIENT, 0,
                "msg text 5 'Hello'\n" OPEN_0 "stats msgs 1 pongs 0\n");
}
END_TEST

START_TEST(test_rfc_ping)
{
    /* Unmasked ping to a client: the pong goes out masked. */
    static const unsigned char in[] = { 0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c,
                                        0x6f };
    check_bytes("rfc ping", in, sizeof(in), CLIENT, 0,
                "out pong masked 5 'Hello'\n" OPEN_0
                "stats msgs 0 pongs 0\n");
}
END_TEST

START_TEST(test_rfc_masked_ping)
{
    feed_vb_t v;

    feed_vb_init(&v, SERVER);
    feed_vb_str(&v, 1, WS_OP_PING, "Hello");
    check_vb("masked ping", &v, 0,
             "out pong 5 'Hello'\n" OPEN_0 "stats msgs 0 pongs 0\n");
}
END_TEST

START_TEST(test_rfc_masked_pong)
{
    static const unsigned char in[] = { 0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                        0x7f, 0x9f, 0x4d, 0x51, 0x58 };
    check_bytes("rfc masked pong", in, sizeof(in), SERVER, 0,
                OPEN_0 "stats msgs 0 pongs 1\n");
}
END_TEST

START_TEST(test_rfc_unmasked_pong)
{
    static const unsigned char in[] = { 0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c,
                                        0x6f };
    check_bytes("rfc unmasked pong", in, sizeof(in), CLIENT, 0,
                OPEN_0 "stats msgs 0 pongs 1\n");
}
END_TEST

/* 256 bytes with a 16-bit length, 64 KiB with a 64-bit one, as in §5.7,
 * unmasked (client mode) and masked (server mode). */
static void check_binary(apr_size_t len, int is_client)
{
    unsigned char *in = malloc(len + WS_FRAME_HEADER_MAX);
    unsigned char *pl = calloc(len, 1);
    apr_size_t i, n;

    for (i = 0; i < len; i++) {
        pl[i] = (unsigned char)(i * 7 + 3);
    }
    n = feed_frame(in, 1, WS_OP_BINARY, pl, len,
                   is_client ? NULL : feed_test_mask);
    ck_assert_uint_eq(in[1] & 0x7F, len == 256 ? 126 : 127);
    {
        feed_vec_t v = { "binary", in, n, is_client, 0, 0, NULL, 0 };
        char *got = feed_check(&v), expect[128];
        snprintf(expect, sizeof(expect), "msg binary %u #%08x\n" OPEN_0
                 "stats msgs 1 pongs 0\n", (unsigned)len, (unsigned)feed_hash(pl, len));
        ck_assert_str_eq(got, expect);
        free(got);
    }
    free(in);
    free(pl);
}

START_TEST(test_rfc_binary_256)
{
    check_binary(256, CLIENT);
    check_binary(256, SERVER);
}
END_TEST

START_TEST(test_rfc_binary_64k)
{
    check_binary(65536, CLIENT);
    check_binary(65536, SERVER);
}
END_TEST

/* ---- lengths ---------------------------------------------------------- */

START_TEST(test_length_forms)
{
    /* 7-bit 125, 16-bit 126 and 65535, non-minimal 16- and 64-bit forms
     * (accepted: §5.2 names no failure for them). */
    static const unsigned char in[] = {
        0x82, 0x7E, 0x00, 0x03, 'a', 'b', 'c',
        0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0, 0x02, 'd', 'e',
        0x82, 0x00
    };
    check_bytes("non-minimal lengths", in, sizeof(in), CLIENT, 0,
                "msg binary 3 'abc'\nmsg binary 2 'de'\nmsg binary 0 ''\n"
                OPEN_0 "stats msgs 3 pongs 0\n");
}
END_TEST

START_TEST(test_length_high_bit)
{
    static const unsigned char in[] = { 0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0,
                                        0x01, 'x' };
    check_bytes("64-bit length with high bit", in, sizeof(in), CLIENT, 0,
                "out close masked 1002 'bad frame header'\n"
                "state closed 1002\nstats msgs 0 pongs 0\n");
}
END_TEST

START_TEST(test_length_huge_unlimited)
{
    /* 2^62 bytes announced, no limit configured: the message cannot fit
     * in memory (size_t) on 32-bit, and is streamed on 64-bit; either way
     * feeding a few bytes of it must be harmless. */
    static const unsigned char in[] = { 0x82, 0x7F, 0x40, 0, 0, 0, 0, 0, 0,
                                        0, 'x', 'y' };
    feed_vec_t v = { "huge", in, sizeof(in), CLIENT, 0, 0, NULL, 0 };
    char *log = feed_check(&v);
    free(log);
}
END_TEST

/* ---- fragmentation and control frames --------------------------------- */

START_TEST(test_ping_between_fragments)
{
    feed_vb_t v;

    feed_vb_init(&v, SERVER);
    feed_vb_str(&v, 0, WS_OP_TEXT, "Hel");
    feed_vb_str(&v, 1, WS_OP_PING, "x");
    feed_vb_str(&v, 0, WS_OP_CONTINUATION, "l");
    feed_vb_str(&v, 1, WS_OP_PONG, "");
    feed_vb_str(&v, 1, WS_OP_CONTINUATION, "o");
    check_vb("ping between fragments", &v, 0,
             "msg text 5 'Hello'\nout pong 1 'x'\n" OPEN_0
             "stats msgs 1 pongs 1\n");
}
END_TEST

START_TEST(test_zero_length)
{
    feed_vb_t v;

    feed_vb_init(&v, SERVER);
    feed_vb_str(&v, 1, WS_OP_TEXT, "");
    feed_vb_str(&v, 1, WS_OP_BINARY, "");
    feed_vb_str(&v, 0, WS_OP_TEXT, "");
    feed_vb_str(&v, 0, WS_OP_CONTINUATION, "");
    feed_vb_str(&v, 1, WS_OP_CONTINUATION, "");
    feed_vb_str(&v, 1, WS_OP_PING, "");
    check_vb("zero length", &v, 0,
             "msg text 0 ''\nmsg binary 0 ''\nmsg text 0 ''\n"
             "out pong 0 ''\n" OPEN_0 "stats msgs 3 pongs 0\n");
}
END_TEST

START_TEST(test_ping_125)
{
    char p[126];
    feed_vb_t v;

    memset(p, 'p', 125);
    p[125] = '\0';
    feed_vb_init(&v, SERVER);
    feed_vb_str(&v, 1, WS_OP_PING, p);
    feed_vb_str(&v, 1, WS_OP_TEXT, "after");
    check_vb("ping 125", &v, 0,
             "msg text 5 'after'\nout pong 125 #4f02a4db\n" OPEN_0
             "stats msgs 1 pongs 0\n");
}
END_TEST

START_TEST(test_many_messages)
{
    feed_vb_t v;

    feed_vb_init(&v, SERVER);
    feed_vb_str(&v, 1, WS_OP_TEXT, "one");
    feed_vb_str(&v, 1, WS_OP_BINARY, "two");
    feed_vb_str(&v, 0, WS_OP_BINARY, "th");
    feed_vb_str(&v, 1, WS_OP_CONTINUATION, "ree");
    feed_vb_str(&v, 1, WS_OP_TEXT, "caf\xc3\xa9");
    check_vb("many", &v, 0,
             "msg text 3 'one'\nmsg binary 3 'two'\nmsg binary 5 'three'\n"
             "msg text 5 #874c8fb3\n" OPEN_0 "stats msgs 4 pongs 0\n");
}
END_TEST

START_TEST(test_echo_in_callback)
{
    feed_vb_t v;
    feed_vec_t fv;
    char *log;

    feed_vb_init(&v, SERVER);
    feed_vb_str(&v, 1, WS_OP_TEXT, "hi");
    feed_vb_str(&v, 1, WS_OP_BINARY, "yo");
    fv = (feed_vec_t){ "echo", v.b, v.n, SERVER, 0, 1, NULL, 0 };
    log = feed_check(&fv);
    ck_assert_str_eq(log, "msg text 2 'hi'\nmsg binary 2 'yo'\n"
                     "out text 2 'hi'\nout binary 2 'yo'\n" OPEN_0
                     "stats msgs 2 pongs 0\n");
    free(log);
    free(v.b);
}
END_TEST

/* ---- 1002: protocol errors -------------------------------------------- */

#define PE(reason) "out close 1002 '" reason "'\nstate closed 1002\n"

START_TEST(test_pe_rsv)
{
    static const unsigned char rsv1[] = { 0xC1, 0x00 }, rsv2[] = { 0xA1, 0x00 },
                               rsv3[] = { 0x91, 0x00 };
    const char *e = "out close masked 1002 'reserved bits set'\n"
                    "state closed 1002\nstats msgs 0 pongs 0\n";
    check_bytes("rsv1", rsv1, 2, CLIENT, 0, e);
    check_bytes("rsv2", rsv2, 2, CLIENT, 0, e);
    check_bytes("rsv3", rsv3, 2, CLIENT, 0, e);
}
END_TEST

START_TEST(test_pe_reserved_opcodes)
{
    static const unsigned ops[] = { 3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF };
    unsigned i;

    for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        unsigned char in[3] = { (unsigned char)(0x80 | ops[i]), 0x01, 'x' };
        check_bytes("reserved opcode", in, sizeof(in), CLIENT, 0,
                    "out close masked 1002 'bad frame header'\n"
                    "state closed 1002\nstats msgs 0 pongs 0\n");
    }
}
END_TEST

START_TEST(test_pe_control_rules)
{
    /* Fragmented ping, ping of 126 bytes (16-bit length), close of 126. */
    static const unsigned char frag[] = { 0x09, 0x00 },
        big[] = { 0x89, 0x7E, 0x00, 0x7E },
        bigclose[] = { 0x88, 0x7E, 0x00, 0x7E };
    const char *e = "out close masked 1002 'bad frame header'\n"
                    "state closed 1002\nstats msgs 0 pongs 0\n";
    check_bytes("fragmented ping", frag, sizeof(frag), CLIENT, 0, e);
    check_bytes("ping 126", big, sizeof(big), CLIENT, 0, e);
    check_bytes("close 126", bigclose, sizeof(bigclose), CLIENT, 0, e);
}
END_TEST

START_TEST(test_pe_masking)
{
    static const unsigned char unmasked[] = { 0x81, 0x01, 'x' };
    static const unsigned char masked[] = { 0x81, 0x81, 1, 2, 3, 4, 'x' ^ 1 };

    check_bytes("unmasked to server", unmasked, sizeof(unmasked), SERVER, 0,
                PE("unmasked frame from client") "stats msgs 0 pongs 0\n");
    check_bytes("masked to client", masked, sizeof(masked), CLIENT, 0,
                "out close masked 1002 'masked frame from server'\n"
                "state closed 1002\nstats msgs 0 pongs 0\n");
}
END_TEST

START_TEST(test_pe_continuation_without_start)
{
    feed_vb_t v;

    feed_vb_init(&v, SERVER);
    feed_vb_str(&v, 1, WS_OP_TEXT, "ok");
    feed_vb_str(&v, 1, WS_OP_CONTINUATION, "x");
    feed_vb_str(&v, 1, WS_OP_TEXT, "never");
    check_vb("continuation without start", &v, 0,
             "msg text 2 'ok'\n" PE("continuation without a message")
             "stats msgs 1 pongs 0\n");
}
END_TEST

START_TEST(test_pe_new_message_inside_fragmented)
{
    feed_vb_t v;

    feed_vb_init(&v, SERVER);
    feed_vb_str(&v, 0, WS_OP_TEXT, "a");
    feed_vb_str(&v, 1, WS_OP_BINARY, "b");
    check_vb("text inside fragmented", &v, 0,
             PE("new message inside a fragmented one")
             "stats msgs 0 pongs 0\n");
    feed_vb_init(&v, SERVER);
    feed_vb_str(&v, 0, WS_OP_BINARY, "a");
    feed_vb_str(&v, 0, WS_OP_TEXT, "b");
    check_vb("binary inside fragmented", &v, 0,
             PE("new message inside a fragmented one")
             "stats msgs 0 pongs 0\n");
}
END_TEST

/* ---- 1007: invalid UTF-8 ---------------------------------------------- */

#define BAD_UTF8 "out close 1007 'invalid UTF-8 in text message'\n" \
                 "state closed 1007\n"

START_TEST(test_utf8_split_valid)
{
    feed_vb_t v;

    /* U+20AC (E2 82 AC) and U+1F600 (F0 9F 98 80) cut between fragments. */
    feed_vb_init(&v, SERVER);
    feed_vb_str(&v, 0, WS_OP_TEXT, "\xe2");
    feed_vb_str(&v, 0, WS_OP_CONTINUATION, "\x82");
    feed_vb_str(&v, 1, WS_OP_CONTINUATION, "\xac");
    feed_vb_str(&v, 0, WS_OP_TEXT, "\xf0\x9f");
    feed_vb_str(&v, 1, WS_OP_CONTINUATION, "\x98\x80");
    check_vb("utf8 split valid", &v, 0,
             "msg text 3 #de134e70\nmsg text 4 #8bfd05b0\n" OPEN_0
             "stats msgs 2 pongs 0\n");
}
END_TEST

START_TEST(test_utf8_split_invalid)
{
    feed_vb_t v;

    feed_vb_init(&v, SERVER);
    feed_vb_str(&v, 0, WS_OP_TEXT, "ok\xe2");
    feed_vb_str(&v, 1, WS_OP_CONTINUATION, "(x");
    check_vb("utf8 split invalid", &v, 0, BAD_UTF8 "stats msgs 0 pongs 0\n");
}
END_TEST

START_TEST(test_utf8_truncated_at_end)
{
    feed_vb_t v;

    feed_vb_init(&v, SERVER);
    feed_vb_str(&v, 0, WS_OP_TEXT, "ok");
    feed_vb_str(&v, 1, WS_OP_CONTINUATION, "\xe2\x82");
    check_vb("utf8 truncated", &v, 0, BAD_UTF8 "stats msgs 0 pongs 0\n");
}
END_TEST

START_TEST(test_utf8_first_fragment)
{
    feed_vb_t v;

    /* Only the first fragment is fed: the session must already be closed
     * with 1007, before the message could complete. */
    feed_vb_init(&v, SERVER);
    feed_vb_str(&v, 0, WS_OP_TEXT, "abc\xc0\xaf");
    check_vb("utf8 first fragment", &v, 0,
             BAD_UTF8 "stats msgs 0 pongs 0\n");
}
END_TEST

START_TEST(test_utf8_mid_frame)
{
    /* A 100-byte text frame of which only 6 bytes arrive; the bad byte
     * (F4 90: above U+10FFFF) is among them. */
    unsigned char in[WS_FRAME_HEADER_MAX + 100];
    unsigned char pl[100];
    apr_size_t n;

    memset(pl, 'a', sizeof(pl));
    pl[3] = 0xF4;
    pl[4] = 0x90;
    n = feed_frame(in, 1, WS_OP_TEXT, pl, sizeof(pl), feed_test_mask);
    check_bytes("utf8 mid frame", in, n - 94, SERVER, 0,
                BAD_UTF8 "stats msgs 0 pongs 0\n");
}
END_TEST

START_TEST(test_utf8_binary_not_checked)
{
    feed_vb_t v;

    feed_vb_init(&v, SERVER);
    feed_vb_str(&v, 1, WS_OP_BINARY, "\xff\xfe");
    check_vb("binary not checked", &v, 0,
             "msg binary 2 #bc6f8db7\n" OPEN_0 "stats msgs 1 pongs 0\n");
}
END_TEST

/* ---- 1009: too big ---------------------------------------------------- */

#define TOO_BIG "out close 1009 'message too big'\nstate closed 1009\n"

START_TEST(test_too_big_header)
{
    /* Only the header of a 65-byte frame, limit 64: refused at once. */
    static const unsigned char in[] = { 0x82, 0xC1, 1, 2, 3, 4 };
    check_bytes("too big header", in, sizeof(in), SERVER, 64,
                TOO_BIG "stats msgs 0 pongs 0\n");
}
END_TEST

START_TEST(test_too_big_fragments)
{
    char a[41];
    feed_vb_t v;

    memset(a, 'a', 40);
    a[40] = '\0';
    feed_vb_init(&v, SERVER);
    feed_vb_str(&v, 1, WS_OP_TEXT, a);          /* 40: fine */
    feed_vb_str(&v, 0, WS_OP_TEXT, a);          /* 40 assembled */
    feed_vb_str(&v, 0, WS_OP_CONTINUATION, "0123456789012345678901234");
    check_vb("too big fragments", &v, 64,
             "msg text 40 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'\n"
             TOO_BIG "stats msgs 1 pongs 0\n");
}
END_TEST

START_TEST(test_limit_exact)
{
    char a[65];
    feed_vb_t v;

    memset(a, 'a', 64);
    a[64] = '\0';
    feed_vb_init(&v, SERVER);
    feed_vb_str(&v, 0, WS_OP_TEXT, "");
    feed_vb_str(&v, 1, WS_OP_CONTINUATION, a);
    check_vb("limit exact", &v, 64,
             "msg text 64 #1fe483c1\n" OPEN_0 "stats msgs 1 pongs 0\n");
}
END_TEST

/* ---- close handshake -------------------------------------------------- */

START_TEST(test_close_echo)
{
    feed_vb_t v;

    feed_vb_init(&v, SERVER);
    feed_vb_str(&v, 1, WS_OP_CLOSE, "\x03\xe8" "bye");
    feed_vb_str(&v, 1, WS_OP_TEXT, "ignored");
    feed_vb_raw(&v, "\xff\xff garbage", 10);
    check_vb("close echo", &v, 0,
             "peer-close 1000 'bye'\nout close 1000 ''\n"
             "state closed 1000\nstats msgs 0 pongs 0\n");
}
END_TEST

START_TEST(test_close_codes_echoed)
{
    static const unsigned codes[] = { 1001, 1003, 1011, 1014, 3000, 4999 };
    unsigned i;

    for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        unsigned char pl[2] = { (unsigned char)(codes[i] >> 8),
                                (unsigned char)codes[i] };
        char expect[200];
        feed_vb_t v;

        feed_vb_init(&v, SERVER);
        feed_vb_frame(&v, 1, WS_OP_CLOSE, pl, 2);
        snprintf(expect, sizeof(expect),
                 "peer-close %u ''\nout close %u ''\nstate closed %u\n"
                 "stats msgs 0 pongs 0\n", codes[i], codes[i], codes[i]);
        check_vb("close code echoed", &v, 0, expect);
    }
}
END_TEST

START_TEST(test_close_empty)
{
    feed_vb_t v;

    feed_vb_init(&v, SERVER);
    feed_vb_str(&v, 1, WS_OP_CLOSE, "");
    check_vb("close empty", &v, 0,
             "peer-close 1005 ''\nout close 0 ''\nstate closed 1005\n"
             "stats msgs 0 pongs 0\n");
}
END_TEST

START_TEST(test_close_one_byte)
{
    feed_vb_t v;

    feed_vb_init(&v, SERVER);
    feed_vb_str(&v, 1, WS_OP_CLOSE, "\x03");
    check_vb("close 1 byte", &v, 0,
             PE("invalid close payload") "stats msgs 0 pongs 0\n");
}
END_TEST

START_TEST(test_close_bad_codes)
{
    static const unsigned codes[] = { 0, 999, 1004, 1005, 1006, 1015, 1016,
                                      2999, 5000, 65535 };
    unsigned i;

    for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        unsigned char pl[4] = { (unsigned char)(codes[i] >> 8),
                                (unsigned char)codes[i], 'h', 'i' };
        feed_vb_t v;

        feed_vb_init(&v, SERVER);
        feed_vb_frame(&v, 1, WS_OP_CLOSE, pl, 4);
        check_vb("close bad code", &v, 0,
                 PE("invalid close payload") "stats msgs 0 pongs 0\n");
    }
}
END_TEST

START_TEST(test_close_bad_reason)
{
    feed_vb_t v;

    feed_vb_init(&v, SERVER);
    feed_vb_str(&v, 1, WS_OP_CLOSE, "\x03\xe8" "b\xed\xa0\x80");
    check_vb("close bad reason", &v, 0,
             "out close 1007 'invalid UTF-8 in close reason'\n"
             "state closed 1007\nstats msgs 0 pongs 0\n");
}
END_TEST

START_TEST(test_close_between_fragments)
{
    feed_vb_t v;

    /* A close may come inside a fragmented message (§5.4: control frames
     * may be injected); the message is then abandoned. */
    feed_vb_init(&v, SERVER);
    feed_vb_str(&v, 0, WS_OP_TEXT, "par");
    feed_vb_str(&v, 1, WS_OP_CLOSE, "\x03\xe9");
    feed_vb_str(&v, 1, WS_OP_CONTINUATION, "tial");
    check_vb("close between fragments", &v, 0,
             "peer-close 1001 ''\nout close 1001 ''\nstate closed 1001\n"
             "stats msgs 0 pongs 0\n");
}
END_TEST

/* ---- direct API tests ------------------------------------------------- */

typedef struct {
    apr_pool_t *pool;
    ws_session_t *s;
    char *log;
    unsigned closes_in_callback;
} sess_t;

static void st_on_message(void *baton, unsigned op, const unsigned char *d,
                          apr_size_t n)
{
    sess_t *t = baton;

    feed_logf(&t->log, "msg %u %.*s\n", op, (int)n, (const char *)d);
    if (t->closes_in_callback) {
        ws_session_close(t->s, t->closes_in_callback, "callback", 5);
    }
}

static void st_open(sess_t *t, const ws_session_config_t *cfg, apr_time_t now)
{
    ws_session_callbacks_t cb = { st_on_message, NULL };

    memset(t, 0, sizeof(*t));
    apr_pool_create(&t->pool, NULL);
    ck_assert_int_eq(ws_session_create(&t->s, t->pool, cfg, &cb, t, now),
                     APR_SUCCESS);
}

static void st_done(sess_t *t)
{
    apr_pool_destroy(t->pool);
    free(t->log);
}

/* Take all output and describe it. */
static char *st_drain(sess_t *t)
{
    const unsigned char *d;
    apr_size_t n = ws_session_pending(t->s, &d);
    char *log = NULL;

    feed_log_frames(&log, d, n);
    ws_session_consume(t->s, n);
    if (log == NULL) {
        log = strdup("");
    }
    return log;
}

static void st_expect_out(sess_t *t, const char *expect)
{
    char *got = st_drain(t);

    ck_assert_str_eq(got, expect);
    free(got);
}

static void st_feed(sess_t *t, const feed_vb_t *v, apr_time_t now)
{
    ck_assert_int_eq(ws_session_feed(t->s, v->b, v->n, now), APR_SUCCESS);
}

START_TEST(test_send_server)
{
    ws_session_config_t cfg = { 0 };
    const unsigned char *d;
    sess_t t;

    st_open(&t, &cfg, 1);
    ck_assert_int_eq(ws_session_send(t.s, WS_OP_TEXT, "Hello", 5),
                     APR_SUCCESS);
    ck_assert_uint_eq(ws_session_pending(t.s, &d), 7);
    ck_assert_mem_eq(d, "\x81\x05Hello", 7);
    ck_assert_int_eq(ws_session_send(t.s, WS_OP_PING, "x", 1), APR_EINVAL);
    ck_assert_int_eq(ws_session_send(t.s, WS_OP_CONTINUATION, "x", 1),
                     APR_EINVAL);
    ck_assert_int_eq(ws_session_send(t.s, 0x3, "x", 1), APR_EINVAL);
    ck_assert_uint_eq(ws_session_stats(t.s)->messages_out, 1);
    st_done(&t);
}
END_TEST

START_TEST(test_send_client_masks)
{
    ws_session_config_t cfg = { 0 };
    const unsigned char *d;
    char payload[300];
    sess_t t;
    apr_size_t n;

    memset(payload, 'z', sizeof(payload));
    cfg.is_client = 1;
    st_open(&t, &cfg, 1);
    ws_session_send(t.s, WS_OP_BINARY, payload, sizeof(payload));
    ws_session_send(t.s, WS_OP_BINARY, payload, sizeof(payload));
    n = ws_session_pending(t.s, &d);
    ck_assert_uint_eq(n, 2 * (4 + 4 + 300));
    ck_assert_uint_eq(d[1], 0x80 | 126);
    /* Fresh key per frame (§5.3); two equal 32-bit keys in a row would
     * mean a broken generator. */
    ck_assert_int_ne(memcmp(d + 4, d + 308 + 4, 4), 0);
    /* The caller's data is left alone. */
    ck_assert_uint_eq((unsigned char)payload[0], 'z');
    st_expect_out(&t, "out binary masked 300 #7247b42b\n"
                      "out binary masked 300 #7247b42b\n");
    st_done(&t);
}
END_TEST

START_TEST(test_output_pieces)
{
    ws_session_config_t cfg = { 0 };
    const unsigned char *d;
    unsigned char all[64];
    apr_size_t total = 0, n;
    sess_t t;

    st_open(&t, &cfg, 1);
    ws_session_send(t.s, WS_OP_TEXT, "one", 3);
    ws_session_send(t.s, WS_OP_TEXT, "two", 3);
    ck_assert_uint_eq(ws_session_queued(t.s), 10);
    /* Consume one byte at a time, queueing more half way. */
    while ((n = ws_session_pending(t.s, &d)) > 0) {
        all[total++] = d[0];
        ws_session_consume(t.s, 1);
        if (total == 5) {
            ws_session_send(t.s, WS_OP_BINARY, "3", 1);
        }
        ck_assert_uint_eq(ws_session_queued(t.s), (total < 5 ? 10 : 13) - total);
    }
    ck_assert_uint_eq(total, 13);
    ck_assert_mem_eq(all, "\x81\x03one\x81\x03two\x82\x01" "3", 13);
    ck_assert_uint_eq(ws_session_stats(t.s)->bytes_out, 13);
    ck_assert_uint_eq(ws_session_stats(t.s)->messages_out, 3);
    /* Consuming more than is queued is harmless. */
    ws_session_consume(t.s, 100);
    ck_assert_uint_eq(ws_session_queued(t.s), 0);
    st_done(&t);
}
END_TEST

START_TEST(test_close_by_us)
{
    ws_session_config_t cfg = { 0 };
    sess_t t;
    feed_vb_t v;

    cfg.close_timeout = apr_time_from_sec(3);
    st_open(&t, &cfg, 1);
    ws_session_close(t.s, WS_CLOSE_NORMAL, "bye", 10);
    ck_assert_int_eq(ws_session_state(t.s), WS_SESSION_CLOSING);
    ck_assert_uint_eq(ws_session_close_code(t.s), 1000);
    ck_assert_str_eq(ws_session_close_reason(t.s), "bye");
    ck_assert_int_eq(ws_session_send(t.s, WS_OP_TEXT, "x", 1), APR_EINVAL);
    ws_session_close(t.s, 1001, "again", 11);   /* no effect */
    st_expect_out(&t, "out close 1000 'bye'\n");
    /* Messages still arrive while CLOSING; pings get no answer after our
     * close frame; the peer's close ends it with no second close. */
    feed_vb_init(&v, SERVER);
    feed_vb_str(&v, 1, WS_OP_TEXT, "late");
    feed_vb_str(&v, 1, WS_OP_PING, "p");
    feed_vb_str(&v, 1, WS_OP_CLOSE, "\x03\xe8");
    st_feed(&t, &v, 20);
    free(v.b);
    ck_assert_str_eq(t.log, "msg 1 late\n");
    st_expect_out(&t, "");
    ck_assert_int_eq(ws_session_state(t.s), WS_SESSION_CLOSED);
    ck_assert_uint_eq(ws_session_close_code(t.s), 1000);
    ck_assert_int_eq(ws_session_done(t.s), 1);
    ck_assert_int_eq(ws_session_deadline(t.s), 0);
    st_done(&t);
}
END_TEST

START_TEST(test_close_no_code_and_long_reason)
{
    ws_session_config_t cfg = { 0 };
    char reason[300];
    const unsigned char *d;
    sess_t t;

    st_open(&t, &cfg, 1);
    ws_session_close(t.s, 0, NULL, 1);
    ck_assert_uint_eq(ws_session_pending(t.s, &d), 2);
    ck_assert_mem_eq(d, "\x88\x00", 2);
    ck_assert_uint_eq(ws_session_close_code(t.s), WS_CLOSE_NO_STATUS);
    st_done(&t);

    memset(reason, 'r', sizeof(reason) - 1);
    reason[sizeof(reason) - 1] = '\0';
    st_open(&t, &cfg, 1);
    ws_session_close(t.s, 1000, reason, 1);
    ck_assert_uint_eq(ws_session_pending(t.s, &d), 2 + 125);
    ck_assert_uint_eq(d[1], 125);
    st_done(&t);
}
END_TEST

START_TEST(test_close_in_callback)
{
    ws_session_config_t cfg = { 0 };
    sess_t t;
    feed_vb_t v;

    st_open(&t, &cfg, 1);
    t.closes_in_callback = 1008;
    feed_vb_init(&v, SERVER);
    feed_vb_str(&v, 1, WS_OP_TEXT, "a");
    feed_vb_str(&v, 1, WS_OP_TEXT, "b");
    st_feed(&t, &v, 2);
    free(v.b);
    ck_assert_str_eq(t.log, "msg 1 a\nmsg 1 b\n");
    ck_assert_int_eq(ws_session_state(t.s), WS_SESSION_CLOSING);
    st_expect_out(&t, "out close 1008 'callback'\n");
    st_done(&t);
}
END_TEST

START_TEST(test_violation_while_closing)
{
    ws_session_config_t cfg = { 0 };
    static const unsigned char bad[] = { 0x83, 0x80, 0, 0, 0, 0 };
    sess_t t;

    st_open(&t, &cfg, 1);
    ws_session_close(t.s, 1000, NULL, 1);
    st_expect_out(&t, "out close 1000 ''\n");
    ws_session_feed(t.s, bad, sizeof(bad), 2);
    ck_assert_int_eq(ws_session_state(t.s), WS_SESSION_CLOSED);
    ck_assert_uint_eq(ws_session_close_code(t.s), 1002);
    st_expect_out(&t, "");    /* only one close frame ever */
    st_done(&t);
}
END_TEST

START_TEST(test_peer_eof)
{
    ws_session_config_t cfg = { 0 };
    sess_t t;
    feed_vb_t v;

    st_open(&t, &cfg, 1);
    ck_assert_uint_eq(ws_session_close_code(t.s), 0);
    ck_assert_str_eq(ws_session_close_reason(t.s), "");
    ws_session_peer_eof(t.s);
    ck_assert_int_eq(ws_session_state(t.s), WS_SESSION_CLOSED);
    ck_assert_uint_eq(ws_session_close_code(t.s), WS_CLOSE_ABNORMAL);
    ck_assert_int_eq(ws_session_done(t.s), 1);
    st_done(&t);

    st_open(&t, &cfg, 1);
    feed_vb_init(&v, SERVER);
    feed_vb_str(&v, 1, WS_OP_CLOSE, "\x03\xe8");
    st_feed(&t, &v, 2);
    free(v.b);
    ws_session_peer_eof(t.s);
    ck_assert_uint_eq(ws_session_close_code(t.s), 1000);
    ck_assert_int_eq(ws_session_done(t.s), 0);   /* close reply queued */
    st_expect_out(&t, "out close 1000 ''\n");
    ck_assert_int_eq(ws_session_done(t.s), 1);
    st_done(&t);
}
END_TEST

START_TEST(test_stats)
{
    ws_session_config_t cfg = { 0 };
    sess_t t;
    feed_vb_t v;
    const ws_session_stats_t *st;

    st_open(&t, &cfg, 1);
    feed_vb_init(&v, SERVER);
    feed_vb_str(&v, 1, WS_OP_TEXT, "abc");
    feed_vb_str(&v, 1, WS_OP_PONG, "");
    st_feed(&t, &v, 2);
    st = ws_session_stats(t.s);
    ck_assert_uint_eq(st->bytes_in, v.n);
    ck_assert_uint_eq(st->messages_in, 1);
    ck_assert_uint_eq(st->pongs_received, 1);
    ck_assert_uint_eq(st->bytes_out, 0);
    free(v.b);
    st_done(&t);
}
END_TEST

/* The exact close frames queued for each violation code: opcode 0x8 with
 * FIN, unmasked from a server, the code in network order, the reason. */
START_TEST(test_close_frame_bytes)
{
    static const struct {
        const char *in;
        apr_size_t in_len;
        apr_size_t max;
        const char *out;
        apr_size_t out_len;
    } cases[] = {
        { "\x81\x01x", 3, 0,
          "\x88\x1c\x03\xea" "unmasked frame from client", 30 },
        { "\x81\x82\0\0\0\0\xc0\xaf", 8, 0,
          "\x88\x1f\x03\xef" "invalid UTF-8 in text message", 33 },
        { "\x82\x90\0\0\0\0", 6, 15,
          "\x88\x11\x03\xf1" "message too big", 19 },
    };
    ws_session_config_t cfg = { 0 };
    const unsigned char *d;
    unsigned i;
    sess_t t;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cfg.max_message = cases[i].max;
        st_open(&t, &cfg, 1);
        ws_session_feed(t.s, (const unsigned char *)cases[i].in,
                        cases[i].in_len, 2);
        ck_assert_int_eq(ws_session_state(t.s), WS_SESSION_CLOSED);
        ck_assert_uint_eq(ws_session_pending(t.s, &d), cases[i].out_len);
        ck_assert_mem_eq(d, cases[i].out, cases[i].out_len);
        st_done(&t);
    }
}
END_TEST

/* ---- timers ----------------------------------------------------------- */

#define SEC(n) (T0 + apr_time_from_sec(n))
#define T0 ((apr_time_t)1000000000)

START_TEST(test_timers)
{
    ws_session_config_t cfg = { 0 };
    sess_t t;
    feed_vb_t v;

    cfg.ping_interval = apr_time_from_sec(10);
    cfg.idle_timeout = apr_time_from_sec(30);
    cfg.close_timeout = apr_time_from_sec(5);
    st_open(&t, &cfg, T0);
    ck_assert_int_eq(ws_session_deadline(t.s), SEC(10));
    ws_session_tick(t.s, SEC(9));
    st_expect_out(&t, "");
    ws_session_tick(t.s, SEC(10));
    st_expect_out(&t, "out ping 0 ''\n");
    ck_assert_uint_eq(ws_session_stats(t.s)->pings_sent, 1);
    /* At most one ping per interval. */
    ck_assert_int_eq(ws_session_deadline(t.s), SEC(20));
    ws_session_tick(t.s, SEC(15));
    st_expect_out(&t, "");
    /* A pong at 12 s moves both deadlines. */
    feed_vb_init(&v, SERVER);
    feed_vb_str(&v, 1, WS_OP_PONG, "");
    st_feed(&t, &v, SEC(12));
    free(v.b);
    ck_assert_int_eq(ws_session_deadline(t.s), SEC(22));
    ws_session_tick(t.s, SEC(22));
    st_expect_out(&t, "out ping 0 ''\n");
    ws_session_tick(t.s, SEC(32));
    st_expect_out(&t, "out ping 0 ''\n");
    ck_assert_int_eq(ws_session_deadline(t.s), SEC(42));
    /* Nothing since 12 s: idle at 42 s. */
    ws_session_tick(t.s, SEC(42));
    st_expect_out(&t, "out close 1001 'idle timeout'\n");
    ck_assert_int_eq(ws_session_state(t.s), WS_SESSION_CLOSING);
    ck_assert_uint_eq(ws_session_close_code(t.s), 1001);
    ck_assert_str_eq(ws_session_close_reason(t.s), "idle timeout");
    ck_assert_int_eq(ws_session_deadline(t.s), SEC(47));
    ws_session_tick(t.s, SEC(46));
    ck_assert_int_eq(ws_session_state(t.s), WS_SESSION_CLOSING);
    ws_session_tick(t.s, SEC(47));
    ck_assert_int_eq(ws_session_state(t.s), WS_SESSION_CLOSED);
    ck_assert_int_eq(ws_session_deadline(t.s), 0);
    ck_assert_int_eq(ws_session_done(t.s), 1);
    st_done(&t);
}
END_TEST

START_TEST(test_timers_none)
{
    ws_session_config_t cfg = { 0 };
    sess_t t;

    st_open(&t, &cfg, T0);
    ck_assert_int_eq(ws_session_deadline(t.s), 0);
    ws_session_tick(t.s, SEC(100000));
    ck_assert_int_eq(ws_session_state(t.s), WS_SESSION_OPEN);
    st_expect_out(&t, "");
    /* Default close timeout: 5 s. */
    ws_session_close(t.s, 1000, NULL, SEC(1));
    ck_assert_int_eq(ws_session_deadline(t.s), SEC(6));
    st_done(&t);
}
END_TEST

START_TEST(test_timers_idle_only)
{
    ws_session_config_t cfg = { 0 };
    static const unsigned char junk[] = { 0x8a };   /* half a pong */
    sess_t t;

    cfg.idle_timeout = apr_time_from_sec(30);
    st_open(&t, &cfg, T0);
    ck_assert_int_eq(ws_session_deadline(t.s), SEC(30));
    /* Any received byte counts, even half a frame. */
    ws_session_feed(t.s, junk, 1, SEC(20));
    ck_assert_int_eq(ws_session_deadline(t.s), SEC(50));
    ws_session_tick(t.s, SEC(49));
    ck_assert_int_eq(ws_session_state(t.s), WS_SESSION_OPEN);
    ws_session_tick(t.s, SEC(50));
    ck_assert_int_eq(ws_session_state(t.s), WS_SESSION_CLOSING);
    st_done(&t);
}
END_TEST

/* ---- memory ----------------------------------------------------------- */

START_TEST(test_shrink_after_big_message)
{
    ws_session_config_t cfg = { 0 };
    apr_size_t big = 4 * 1024 * 1024, n, off;
    unsigned char *in = malloc(big + WS_FRAME_HEADER_MAX);
    unsigned char *pl = malloc(big);
    const unsigned char *d;
    sess_t t;

    memset(pl, 'q', big);
    cfg.max_message = 8 * 1024 * 1024;
    st_open(&t, &cfg, 1);
    n = feed_frame(in, 1, WS_OP_TEXT, pl, big, feed_test_mask);
    for (off = 0; off < n; off += 65536) {
        apr_size_t k = n - off < 65536 ? n - off : 65536;
        ck_assert_int_eq(ws_session_feed(t.s, in + off, k, 2), APR_SUCCESS);
    }
    ck_assert_uint_eq(ws_session_stats(t.s)->messages_in, 1);
    ck_assert_uint_le(ws_session_memory(t.s), 64 * 1024);
    /* The output queue shrinks too once drained. */
    ck_assert_int_eq(ws_session_send(t.s, WS_OP_BINARY, pl, big),
                     APR_SUCCESS);
    ck_assert_uint_ge(ws_session_memory(t.s), big);
    n = ws_session_pending(t.s, &d);
    ck_assert_uint_eq(n, big + 10);
    ws_session_consume(t.s, n - 1);
    ck_assert_uint_ge(ws_session_memory(t.s), big);
    ws_session_consume(t.s, 1);
    ck_assert_uint_le(ws_session_memory(t.s), 2 * 64 * 1024);
    /* A small message afterwards still works. */
    ws_session_send(t.s, WS_OP_TEXT, "ok", 2);
    st_expect_out(&t, "out text 2 'ok'\n");
    free(in);
    free(pl);
    st_done(&t);
}
END_TEST

/* ---- suite ------------------------------------------------------------ */

static Suite *session_suite(void)
{
    Suite *s = suite_create("ws_session");
    TCase *tc = tcase_create("vectors");
    TCase *api = tcase_create("api");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_rfc_unmasked_hello);
    tcase_add_test(tc, test_rfc_masked_hello);
    tcase_add_test(tc, test_rfc_fragmented);
    tcase_add_test(tc, test_rfc_ping);
    tcase_add_test(tc, test_rfc_masked_ping);
    tcase_add_test(tc, test_rfc_masked_pong);
    tcase_add_test(tc, test_rfc_unmasked_pong);
    tcase_add_test(tc, test_rfc_binary_256);
    tcase_add_test(tc, test_rfc_binary_64k);
    tcase_add_test(tc, test_length_forms);
    tcase_add_test(tc, test_length_high_bit);
    tcase_add_test(tc, test_length_huge_unlimited);
    tcase_add_test(tc, test_ping_between_fragments);
    tcase_add_test(tc, test_zero_length);
    tcase_add_test(tc, test_ping_125);
    tcase_add_test(tc, test_many_messages);
    tcase_add_test(tc, test_echo_in_callback);
    tcase_add_test(tc, test_pe_rsv);
    tcase_add_test(tc, test_pe_reserved_opcodes);
    tcase_add_test(tc, test_pe_control_rules);
    tcase_add_test(tc, test_pe_masking);
    tcase_add_test(tc, test_pe_continuation_without_start);
    tcase_add_test(tc, test_pe_new_message_inside_fragmented);
    tcase_add_test(tc, test_utf8_split_valid);
    tcase_add_test(tc, test_utf8_split_invalid);
    tcase_add_test(tc, test_utf8_truncated_at_end);
    tcase_add_test(tc, test_utf8_first_fragment);
    tcase_add_test(tc, test_utf8_mid_frame);
    tcase_add_test(tc, test_utf8_binary_not_checked);
    tcase_add_test(tc, test_too_big_header);
    tcase_add_test(tc, test_too_big_fragments);
    tcase_add_test(tc, test_limit_exact);
    tcase_add_test(tc, test_close_echo);
    tcase_add_test(tc, test_close_codes_echoed);
    tcase_add_test(tc, test_close_empty);
    tcase_add_test(tc, test_close_one_byte);
    tcase_add_test(tc, test_close_bad_codes);
    tcase_add_test(tc, test_close_bad_reason);
    tcase_add_test(tc, test_close_between_fragments);
    suite_add_tcase(s, tc);

    tcase_set_timeout(api, 60);
    tcase_add_test(api, test_send_server);
    tcase_add_test(api, test_send_client_masks);
    tcase_add_test(api, test_output_pieces);
    tcase_add_test(api, test_close_by_us);
    tcase_add_test(api, test_close_no_code_and_long_reason);
    tcase_add_test(api, test_close_in_callback);
    tcase_add_test(api, test_violation_while_closing);
    tcase_add_test(api, test_peer_eof);
    tcase_add_test(api, test_stats);
    tcase_add_test(api, test_close_frame_bytes);
    tcase_add_test(api, test_timers);
    tcase_add_test(api, test_timers_none);
    tcase_add_test(api, test_timers_idle_only);
    tcase_add_test(api, test_shrink_after_big_message);
    suite_add_tcase(s, api);
    return s;
}

int main(void)
{
    return ws_test_main(session_suite());
}
