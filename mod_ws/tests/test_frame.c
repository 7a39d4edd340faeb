/* Unit tests of ws_frame: header parsing (7/16/64-bit lengths, masks, the
 * stateless rules of RFC 6455 §5.2 and §5.5), header writing, and masking
 * against a byte-at-a-time reference.
 */
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <apr_general.h>

#include "check_main.h"
#include "ws_frame.h"

static int parse(const char *p, apr_size_t n, ws_frame_header_t *h)
{
    return ws_frame_header_parse((const unsigned char *)p, n, h);
}

START_TEST(test_parse_lengths)
{
    ws_frame_header_t h;

    ck_assert_int_eq(parse("\x81\x05", 2, &h), 2);
    ck_assert_uint_eq(h.fin, 1);
    ck_assert_uint_eq(h.opcode, WS_OP_TEXT);
    ck_assert_uint_eq(h.masked, 0);
    ck_assert_uint_eq(h.length, 5);

    ck_assert_int_eq(parse("\x02\x7d", 2, &h), 2);
    ck_assert_uint_eq(h.fin, 0);
    ck_assert_uint_eq(h.length, 125);

    ck_assert_int_eq(parse("\x82\x7e\x01\x00", 4, &h), 4);
    ck_assert_uint_eq(h.length, 256);

    ck_assert_int_eq(parse("\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10,
                           &h), 10);
    ck_assert_uint_eq(h.length, 65536);

    ck_assert_int_eq(parse("\x82\x7f\x7f\xff\xff\xff\xff\xff\xff\xff", 10,
                           &h), 10);
    ck_assert_uint_eq(h.length, APR_UINT64_C(0x7fffffffffffffff));

    /* Masked: the key follows the length. */
    ck_assert_int_eq(parse("\x81\x85\x37\xfa\x21\x3d", 6, &h), 6);
    ck_assert_uint_eq(h.masked, 1);
    ck_assert_mem_eq(h.mask, "\x37\xfa\x21\x3d", 4);
    ck_assert_int_eq(parse("\x82\xfe\x01\x00\x01\x02\x03\x04", 8, &h), 8);
    ck_assert_mem_eq(h.mask, "\x01\x02\x03\x04", 4);
    ck_assert_int_eq(parse("\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00"
                           "\x01\x02\x03\x04", 14, &h), 14);
    ck_assert_uint_eq(h.length, 65536);

    /* RSV bits are reported, not judged. */
    ck_assert_int_eq(parse("\xf1\x00", 2, &h), 2);
    ck_assert_uint_eq(h.rsv, 7);
    ck_assert_int_eq(parse("\xc1\x00", 2, &h), 2);
    ck_assert_uint_eq(h.rsv, 4);

    /* Non-minimal lengths are accepted. */
    ck_assert_int_eq(parse("\x82\x7e\x00\x01", 4, &h), 4);
    ck_assert_uint_eq(h.length, 1);
}
END_TEST

START_TEST(test_parse_incomplete)
{
    static const char *hdrs[] = {
        "\x81\x05", "\x82\x7e\x01\x00",
        "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00",
        "\x81\x85\x37\xfa\x21\x3d",
        "\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00\x01\x02\x03\x04",
    };
    static const int lens[] = { 2, 4, 10, 6, 14 };
    ws_frame_header_t h;
    unsigned i;
    int k;

    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        for (k = 0; k < lens[i]; k++) {
            ck_assert_int_eq(parse(hdrs[i], (apr_size_t)k, &h),
                             WS_FRAME_INCOMPLETE);
        }
        ck_assert_int_eq(parse(hdrs[i], (apr_size_t)lens[i], &h), lens[i]);
    }
}
END_TEST

START_TEST(test_parse_errors)
{
    ws_frame_header_t h;
    unsigned op;

    for (op = 0; op < 16; op++) {
        char b[2] = { (char)(0x80 | op), 0x00 };
        int reserved = (op >= 3 && op <= 7) || op >= 0xB;
        ck_assert_int_eq(parse(b, 2, &h), reserved ? -1 : 2);
    }
    /* Control frames: no fragmentation, at most 125 bytes (§5.5), known
     * from the first two bytes. */
    ck_assert_int_eq(parse("\x09\x00", 2, &h), -1);
    ck_assert_int_eq(parse("\x08\x00", 2, &h), -1);
    ck_assert_int_eq(parse("\x0a\x00", 2, &h), -1);
    ck_assert_int_eq(parse("\x89\x7d", 2, &h), 2);
    ck_assert_int_eq(parse("\x89\x7e", 2, &h), -1);
    ck_assert_int_eq(parse("\x88\x7f", 2, &h), -1);
    /* High bit of a 64-bit length (§5.2). */
    ck_assert_int_eq(parse("\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00", 10,
                           &h), -1);
    ck_assert_int_eq(parse("\x82\x7f\x80", 3, &h), WS_FRAME_INCOMPLETE);
}
END_TEST

START_TEST(test_write)
{
    static const apr_uint64_t lens[] = { 0, 1, 125, 126, 65535, 65536,
                                         APR_UINT64_C(0x100000000),
                                         APR_UINT64_C(0x7fffffffffffffff) };
    static const int sizes[] = { 2, 2, 2, 4, 4, 10, 10, 10 };
    static const unsigned char mask[4] = { 9, 8, 7, 6 };
    unsigned char out[WS_FRAME_HEADER_MAX];
    ws_frame_header_t h;
    unsigned i;

    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        apr_size_t n = ws_frame_header_write(out, 1, 0, WS_OP_BINARY,
                                             lens[i], NULL);
        ck_assert_uint_eq(n, (apr_size_t)sizes[i]);
        ck_assert_int_eq(ws_frame_header_parse(out, n, &h), (int)n);
        ck_assert_uint_eq(h.length, lens[i]);
        ck_assert_uint_eq(h.masked, 0);
        ck_assert_uint_eq(h.fin, 1);

        n = ws_frame_header_write(out, 0, 5, WS_OP_CONTINUATION, lens[i],
                                  mask);
        ck_assert_uint_eq(n, (apr_size_t)sizes[i] + 4);
        ck_assert_int_eq(ws_frame_header_parse(out, n, &h), (int)n);
        ck_assert_uint_eq(h.length, lens[i]);
        ck_assert_uint_eq(h.masked, 1);
        ck_assert_uint_eq(h.fin, 0);
        ck_assert_uint_eq(h.rsv, 5);
        ck_assert_mem_eq(h.mask, mask, 4);
    }
    ck_assert_uint_eq(ws_frame_header_write(out, 1, 0, WS_OP_TEXT, 5, NULL),
                      2);
    ck_assert_mem_eq(out, "\x81\x05", 2);
    ck_assert_uint_eq(ws_frame_header_write(out, 1, 0, WS_OP_BINARY, 256,
                                            NULL), 4);
    ck_assert_mem_eq(out, "\x82\x7e\x01\x00", 4);
}
END_TEST

START_TEST(test_mask_rfc)
{
    unsigned char p[5] = { 'H', 'e', 'l', 'l', 'o' };
    static const unsigned char mask[4] = { 0x37, 0xfa, 0x21, 0x3d };

    ws_frame_mask(p, 5, mask, 0);
    ck_assert_mem_eq(p, "\x7f\x9f\x4d\x51\x58", 5);
    ws_frame_mask(p, 5, mask, 0);
    ck_assert_mem_eq(p, "Hello", 5);
}
END_TEST

START_TEST(test_mask_reference)
{
    static const unsigned char mask[4] = { 0xA1, 0x5B, 0x3C, 0xE7 };
    unsigned char *buf = malloc(64 + 80 + 64), *ref = malloc(80);
    unsigned offset, len, align, i;

    for (align = 0; align < 8; align++) {
        for (offset = 0; offset < 8; offset++) {
            for (len = 0; len <= 70; len++) {
                unsigned char *p = buf + 64 + align;
                memset(buf, 0x55, 64 + 80 + 64);
                for (i = 0; i < len; i++) {
                    ref[i] = p[i] = (unsigned char)(i * 31 + len);
                    ref[i] ^= mask[(offset + i) % 4];
                }
                ws_frame_mask(p, len, mask, offset);
                ck_assert_msg(memcmp(p, ref, len) == 0,
                              "align %u offset %u len %u", align, offset, len);
                /* Nothing outside p[0..len) is touched. */
                for (i = 0; i < 64 + align; i++) {
                    ck_assert_uint_eq(buf[i], 0x55);
                }
                for (i = 64 + align + len; i < 64 + 80 + 64; i++) {
                    ck_assert_uint_eq(buf[i], 0x55);
                }
            }
        }
    }
    /* Large offsets wrap the same way. */
    {
        unsigned char a[3] = { 0, 0, 0 };
        ws_frame_mask(a, 3, mask, APR_UINT64_C(0x100000001));
        ck_assert_mem_eq(a, "\x5b\x3c\xe7", 3);
    }
    free(buf);
    free(ref);
}
END_TEST

START_TEST(test_mask_in_pieces)
{
    static const unsigned char mask[4] = { 1, 2, 3, 4 };
    unsigned char whole[300], pieces[300];
    apr_size_t i, k;

    for (k = 0; k <= 300; k += 7) {
        for (i = 0; i < 300; i++) {
            whole[i] = pieces[i] = (unsigned char)i;
        }
        ws_frame_mask(whole, 300, mask, 0);
        ws_frame_mask(pieces, k, mask, 0);
        ws_frame_mask(pieces + k, 300 - k, mask, k);
        ck_assert_mem_eq(whole, pieces, 300);
    }
}
END_TEST

static Suite *frame_suite(void)
{
    Suite *s = suite_create("ws_frame");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_parse_lengths);
    tcase_add_test(tc, test_parse_incomplete);
    tcase_add_test(tc, test_parse_errors);
    tcase_add_test(tc, test_write);
    tcase_add_test(tc, test_mask_rfc);
    tcase_add_test(tc, test_mask_reference);
    tcase_add_test(tc, test_mask_in_pieces);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ws_test_main(frame_suite());
}
