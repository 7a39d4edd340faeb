/* Unit tests of permessage-deflate (RFC 7692): the Sec-WebSocket-Extensions
 * parser, negotiation on both sides, and compressed messages through
 * ws_session: the §7.2.3 examples, context takeover or not, fragments,
 * decompression bombs, bad RSV use, bad DEFLATE data, what we send, and the
 * memory a deflate socket keeps.
 *
 * Session vectors go through feed_check: fed whole, split in two at every
 * point and one byte at a time, each piece ending at an unreadable page.
 * Compressed test input is made with zlib here, independently of
 * ws_deflate.c (raw DEFLATE, Z_SYNC_FLUSH, 00 00 ff ff dropped).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <zlib.h>
#include <apr_general.h>
#include <apr_strings.h>

#include "check_main.h"
#include "feed.h"
#include "ws_close.h"
#include "ws_deflate.h"
#include "ws_frame.h"
#include "ws_handshake.h"
#include "ws_session.h"

#define SERVER 0
#define CLIENT 1


/* ---- negotiation ------------------------------------------------------ */

static const char *accept_str(apr_pool_t *p, const char *hdr, int nct,
                              unsigned bits, ws_deflate_params_t *out)
{
    ws_deflate_prefs_t prefs = { nct, bits };
    return ws_deflate_accept(p, ws_handshake_parse_extensions(p, hdr),
                             &prefs, out);
}

START_TEST(test_parse_extensions)
{
    apr_pool_t *p;
    apr_array_header_t *a;
    const ws_ext_offer_t *o;
    const ws_ext_param_t *prm;

    apr_pool_create(&p, NULL);
    a = ws_handshake_parse_extensions(p, " foo ; a = 1;b=\"x,y;\\\"z\" ,"
                                      ", bar;c ,baz;=1, q; d=\"1 0\"");
    ck_assert_int_eq(a->nelts, 4);
    o = &APR_ARRAY_IDX(a, 0, ws_ext_offer_t);
    ck_assert_str_eq(o->name, "foo");
    ck_assert_int_eq(o->params->nelts, 2);
    prm = &APR_ARRAY_IDX(o->params, 0, ws_ext_param_t);
    ck_assert_str_eq(prm->name, "a");
    ck_assert_str_eq(prm->value, "1");
    /* The quoted value is not a token once unquoted: the offer is bad,
     * but the comma inside the quotes did not split it. */
    ck_assert_int_eq(o->bad, 1);
    o = &APR_ARRAY_IDX(a, 1, ws_ext_offer_t);
    ck_assert_str_eq(o->name, "bar");
    ck_assert_int_eq(o->bad, 0);
    prm = &APR_ARRAY_IDX(o->params, 0, ws_ext_param_t);
    ck_assert_str_eq(prm->name, "c");
    ck_assert_ptr_null(prm->value);
    o = &APR_ARRAY_IDX(a, 2, ws_ext_offer_t);
    ck_assert_str_eq(o->name, "baz");
    ck_assert_int_eq(o->bad, 1);
    o = &APR_ARRAY_IDX(a, 3, ws_ext_offer_t);
    ck_assert_int_eq(o->bad, 1);

    ck_assert_int_eq(ws_handshake_parse_extensions(p, NULL)->nelts, 0);
    ck_assert_int_eq(ws_handshake_parse_extensions(p, " , ,")->nelts, 0);
    a = ws_handshake_parse_extensions(p, "x; a=\"unterminated");
    ck_assert_int_eq(a->nelts, 1);
    ck_assert_int_eq(APR_ARRAY_IDX(a, 0, ws_ext_offer_t).bad, 1);
    a = ws_handshake_parse_extensions(p, "x; a=\"v\\");
    ck_assert_int_eq(APR_ARRAY_IDX(a, 0, ws_ext_offer_t).bad, 1);
    a = ws_handshake_parse_extensions(p, "x y, z");
    ck_assert_int_eq(a->nelts, 2);
    ck_assert_int_eq(APR_ARRAY_IDX(a, 0, ws_ext_offer_t).bad, 1);
    ck_assert_int_eq(APR_ARRAY_IDX(a, 1, ws_ext_offer_t).bad, 0);
    apr_pool_destroy(p);
}
END_TEST

START_TEST(test_accept_offers)
{
    apr_pool_t *p;
    ws_deflate_params_t pr;

    apr_pool_create(&p, NULL);
    /* Plain offer, server keeps contexts and full windows. */
    ck_assert_str_eq(accept_str(p, "permessage-deflate", 0, 15, &pr),
                     "permessage-deflate");
    ck_assert_int_eq(pr.server_no_context_takeover, 0);
    ck_assert_int_eq(pr.client_no_context_takeover, 0);
    ck_assert_uint_eq(pr.server_max_window_bits, 15);
    ck_assert_uint_eq(pr.client_max_window_bits, 15);

    /* What Chromium and Firefox send, with mod_ws's memory-saving
     * preferences: both told to reset, the client's window capped. */
    ck_assert_str_eq(accept_str(p, "permessage-deflate; client_max_window_bits",
                                1, 12, &pr),
                     "permessage-deflate; server_no_context_takeover; "
                     "client_no_context_takeover; client_max_window_bits=12");
    ck_assert_int_eq(pr.server_no_context_takeover, 1);
    ck_assert_int_eq(pr.client_no_context_takeover, 1);
    ck_assert_uint_eq(pr.server_max_window_bits, 12);
    ck_assert_uint_eq(pr.client_max_window_bits, 12);

    /* The client's window cannot be capped when it did not offer the
     * parameter (§7.1.2.2), and the answer must not name it. */
    ck_assert_str_eq(accept_str(p, "permessage-deflate", 0, 10, &pr),
                     "permessage-deflate");
    ck_assert_uint_eq(pr.client_max_window_bits, 15);
    ck_assert_uint_eq(pr.server_max_window_bits, 10);

    /* Asked-for limits are honoured and echoed (§7.1.1.1, §7.1.2.1). */
    ck_assert_str_eq(accept_str(p, "permessage-deflate; server_no_context_takeover;"
                                " server_max_window_bits=10; "
                                "client_max_window_bits=9", 0, 15, &pr),
                     "permessage-deflate; server_no_context_takeover; "
                     "server_max_window_bits=10; client_max_window_bits=9");
    ck_assert_uint_eq(pr.server_max_window_bits, 10);
    ck_assert_uint_eq(pr.client_max_window_bits, 9);
    /* ... but never raised above ours. */
    ck_assert_str_eq(accept_str(p, "permessage-deflate; server_max_window_bits=15",
                                0, 11, &pr),
                     "permessage-deflate; server_max_window_bits=11");
    /* client_no_context_takeover offered: said back. */
    ck_assert_str_eq(accept_str(p, "permessage-deflate;client_no_context_takeover",
                                0, 15, &pr),
                     "permessage-deflate; client_no_context_takeover");
    /* Quoted values (§9.1 of RFC 6455), case of the names. */
    ck_assert_str_eq(accept_str(p, "Permessage-Deflate; client_max_window_bits=\"10\"",
                                0, 15, &pr),
                     "permessage-deflate; client_max_window_bits=10");
    apr_pool_destroy(p);
}
END_TEST

START_TEST(test_accept_declines)
{
    static const char *bad[] = {
        "x-webkit-deflate-frame",
        "permessage-deflate; foo",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=08",
        "permessage-deflate; server_max_window_bits=8",     /* zlib can't */
        "permessage-deflate; client_max_window_bits=1.5",
        "permessage-deflate; client_max_window_bits=\"1 0\"",
        "permessage-deflate; client_max_window_bits=\"\"",
        "permessage-deflate;",
        "permessage-deflate x",
        "",
        NULL
    };
    apr_pool_t *p;
    ws_deflate_params_t pr;
    int i;

    apr_pool_create(&p, NULL);
    for (i = 0; bad[i]; i++) {
        ck_assert_msg(accept_str(p, bad[i], 0, 15, &pr) == NULL,
                      "accepted: %s", bad[i]);
    }
    ck_assert_ptr_null(accept_str(p, NULL, 0, 15, &pr));
    /* A bad offer does not spoil the next one. */
    ck_assert_str_eq(accept_str(p, "permessage-deflate; server_max_window_bits=8, "
                                "permessage-deflate; bogus, "
                                "permessage-deflate; client_max_window_bits",
                                0, 15, &pr),
                     "permessage-deflate; client_max_window_bits=15");
    apr_pool_destroy(p);
}
END_TEST

static int client_check(apr_pool_t *p, const char *answer, int nct,
                        unsigned bits, ws_deflate_params_t *out)
{
    ws_deflate_prefs_t prefs = { nct, bits };
    return ws_deflate_client_check(ws_handshake_parse_extensions(p, answer),
                                   &prefs, out);
}

START_TEST(test_client_side)
{
    apr_pool_t *p;
    ws_deflate_params_t pr, sp;
    ws_deflate_prefs_t prefs = { 1, 11 }, none = { 0, 0 };
    const char *offer, *answer;

    apr_pool_create(&p, NULL);
    offer = ws_deflate_client_offer(p, &prefs);
    ck_assert_str_eq(offer, "permessage-deflate; client_max_window_bits; "
                     "server_no_context_takeover; client_no_context_takeover; "
                     "server_max_window_bits=11");
    ck_assert_str_eq(ws_deflate_client_offer(p, &none),
                     "permessage-deflate; client_max_window_bits");
    /* Our own server's answer to our own offer is accepted, and both
     * sides end up with the same parameters. */
    answer = accept_str(p, offer, 0, 13, &sp);
    ck_assert_ptr_nonnull(answer);
    ck_assert_int_eq(client_check(p, answer, 1, 11, &pr), 0);
    ck_assert_mem_eq(&pr, &sp, sizeof(pr));

    ck_assert_int_eq(client_check(p, "permessage-deflate", 0, 0, &pr), 0);
    ck_assert_uint_eq(pr.server_max_window_bits, 15);
    ck_assert_int_eq(client_check(p, "permessage-deflate; client_max_window_bits=10",
                                  0, 0, &pr), 0);
    ck_assert_uint_eq(pr.client_max_window_bits, 10);
    /* Answers a client must fail on. */
    ck_assert_int_eq(client_check(p, "permessage-deflate; x=1", 0, 0, &pr), -1);
    ck_assert_int_eq(client_check(p, "permessage-deflate, permessage-deflate",
                                  0, 0, &pr), -1);
    ck_assert_int_eq(client_check(p, "permessage-deflate; client_max_window_bits",
                                  0, 0, &pr), -1);
    ck_assert_int_eq(client_check(p, "permessage-deflate; client_max_window_bits=8",
                                  0, 0, &pr), -1);
    ck_assert_int_eq(client_check(p, "permessage-deflate", 1, 0, &pr), -1);
    ck_assert_int_eq(client_check(p, "permessage-deflate; server_no_context_takeover",
                                  0, 11, &pr), -1);
    ck_assert_int_eq(client_check(p, "permessage-deflate; "
                                  "server_max_window_bits=12", 0, 11, &pr), -1);
    ck_assert_int_eq(client_check(p, "", 0, 0, &pr), -1);
    apr_pool_destroy(p);
}
END_TEST

/* ---- vectors ---------------------------------------------------------- */

/* Parameters for the session tests: contexts kept, or not. */
static const ws_deflate_params_t takeover = { 0, 0, 15, 15 };
static const ws_deflate_params_t no_takeover = { 1, 1, 15, 15 };

/* Compress a message the way a peer does (§7.2.1); z keeps the context
 * between calls when the caller reuses it.  Returns a malloc'd buffer. */
static unsigned char *zmsg(z_stream *z, const void *in, apr_size_t len,
                           apr_size_t *outlen)
{
    apr_size_t cap = len + len / 2 + 64;
    unsigned char *out = malloc(cap);

    z->next_in = (Bytef *)(apr_uintptr_t)in;
    z->avail_in = (uInt)len;
    z->next_out = out;
    z->avail_out = (uInt)cap;
    ck_assert_int_eq(deflate(z, Z_SYNC_FLUSH), Z_OK);
    ck_assert_uint_gt(z->avail_out, 0);
    *outlen = cap - z->avail_out;
    ck_assert_mem_eq(out + *outlen - 4, "\0\0\xff\xff", 4);
    *outlen -= 4;
    return out;
}

static void zinit(z_stream *z, int level)
{
    memset(z, 0, sizeof(*z));
    ck_assert_int_eq(deflateInit2(z, level, Z_DEFLATED, -15, 8,
                                  Z_DEFAULT_STRATEGY), Z_OK);
}

static char *run_vec(const char *name, const feed_vb_t *v, apr_size_t max,
                     const ws_deflate_params_t *params, int echo)
{
    feed_vec_t fv = { name, v->b, v->n, v->is_client, max, echo, params, 0 };
    return feed_check(&fv);
}

static void check_vb(const char *name, feed_vb_t *v, apr_size_t max,
                     const ws_deflate_params_t *params, const char *expect)
{
    char *log = run_vec(name, v, max, params, 0);

    ck_assert_msg(strcmp(log, expect) == 0, "%s:\ngot\n%s\nexpected\n%s",
                  name, log, expect);
    free(log);
    free(v->b);
    v->b = NULL;
}

static void check_raw(const char *name, const unsigned char *in,
                      apr_size_t n, int is_client,
                      const ws_deflate_params_t *params, const char *expect)
{
    feed_vec_t fv = { name, in, n, is_client, 0, 0, params, 0 };
    char *log = feed_check(&fv);

    ck_assert_msg(strcmp(log, expect) == 0, "%s:\ngot\n%s\nexpected\n%s",
                  name, log, expect);
    free(log);
}

#define OPEN_0 "state open 0\n"
#define HELLO "msg text 5 'Hello'\n"

/* ---- RFC 7692 §7.2.3 examples ------------------------------------------ */

START_TEST(test_rfc_hello)
{
    /* §7.2.3.1, unmasked (server to client) and, masked, to a server. */
    static const unsigned char in[] = { 0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9,
                                        0xc9, 0x07, 0x00 };
    feed_vb_t v;

    check_raw("rfc hello", in, sizeof(in), CLIENT, &takeover,
              HELLO OPEN_0 "stats msgs 1 pongs 0\n");
    check_raw("rfc hello, no takeover", in, sizeof(in), CLIENT, &no_takeover,
              HELLO OPEN_0 "stats msgs 1 pongs 0\n");
    feed_vb_init(&v, SERVER);
    feed_vb_frame_rsv(&v, 1, 4, WS_OP_TEXT, in + 2, 7);
    check_vb("rfc hello masked", &v, 0, &takeover,
             HELLO OPEN_0 "stats msgs 1 pongs 0\n");
}
END_TEST

START_TEST(test_rfc_fragmented)
{
    /* §7.2.3.1: the same payload in two frames; RSV1 on the first only. */
    static const unsigned char in[] = { 0x41, 0x03, 0xf2, 0x48, 0xcd,
                                        0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00 };
    check_raw("rfc fragmented", in, sizeof(in), CLIENT, &no_takeover,
              HELLO OPEN_0 "stats msgs 1 pongs 0\n");
}
END_TEST

START_TEST(test_rfc_shared_window)
{
    /* §7.2.3.2: the second "Hello" refers back into the first. */
    static const unsigned char in[] = { 0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9,
                                        0xc9, 0x07, 0x00,
                                        0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00,
                                        0x00 };
    check_raw("rfc shared window", in, sizeof(in), CLIENT, &takeover,
              HELLO HELLO OPEN_0 "stats msgs 2 pongs 0\n");
    /* Without context takeover the back-reference points at nothing. */
    check_raw("rfc shared window, no takeover", in, sizeof(in), CLIENT,
              &no_takeover,
              HELLO "out close masked 1007 'invalid compressed data'\n"
              "state closed 1007\nstats msgs 1 pongs 0\n");
}
END_TEST

START_TEST(test_rfc_stored_and_bfinal)
{
    /* §7.2.3.3: no compression (a stored block). */
    static const unsigned char stored[] = { 0xc1, 0x0b, 0x00, 0x05, 0x00,
                                            0xfa, 0xff, 0x48, 0x65, 0x6c,
                                            0x6c, 0x6f, 0x00 };
    /* §7.2.3.4: a final block, then the next message as in §7.2.3.1. */
    static const unsigned char bfinal[] = { 0xc1, 0x08, 0xf3, 0x48, 0xcd,
                                            0xc9, 0xc9, 0x07, 0x00, 0x00,
                                            0xc1, 0x07, 0xf2, 0x48, 0xcd,
                                            0xc9, 0xc9, 0x07, 0x00 };
    /* §7.2.3.5: two blocks in one message. */
    static const unsigned char two[] = { 0xc1, 0x0d, 0xf2, 0x48, 0x05, 0x00,
                                         0x00, 0x00, 0xff, 0xff, 0xca, 0xc9,
                                         0xc9, 0x07, 0x00 };
    /* §7.2.3.6: an empty message is one 0x00 byte; an empty payload is
     * taken as an empty message too. */
    static const unsigned char empty[] = { 0xc1, 0x01, 0x00, 0xc2, 0x00,
                                           0xc1, 0x01, 0x00 };

    check_raw("rfc stored", stored, sizeof(stored), CLIENT, &takeover,
              HELLO OPEN_0 "stats msgs 1 pongs 0\n");
    check_raw("rfc bfinal", bfinal, sizeof(bfinal), CLIENT, &takeover,
              HELLO HELLO OPEN_0 "stats msgs 2 pongs 0\n");
    check_raw("rfc bfinal, no takeover", bfinal, sizeof(bfinal), CLIENT,
              &no_takeover, HELLO HELLO OPEN_0 "stats msgs 2 pongs 0\n");
    check_raw("rfc two blocks", two, sizeof(two), CLIENT, &takeover,
              HELLO OPEN_0 "stats msgs 1 pongs 0\n");
    check_raw("rfc empty", empty, sizeof(empty), CLIENT, &takeover,
              "msg text 0 ''\nmsg binary 0 ''\nmsg text 0 ''\n" OPEN_0
              "stats msgs 3 pongs 0\n");
}
END_TEST

/* ---- streams made with zlib ------------------------------------------- */

START_TEST(test_takeover_many)
{
    /* 20 similar JSON messages on one context, fragmented at odd points,
     * with pings between fragments and uncompressed messages between. */
    z_stream z;
    feed_vb_t v;
    char *expect = NULL, *pongs = NULL;
    int i;

    zinit(&z, 6);
    feed_vb_init(&v, SERVER);
    for (i = 0; i < 20; i++) {
        char msg[128];
        apr_size_t n, clen, cut;
        unsigned char *c;

        n = (apr_size_t)snprintf(msg, sizeof(msg),
                                 "{\"id\":%d,\"user\":\"alice\",\"text\":"
                                 "\"caf\xc3\xa9 %d\"}", i, i * 7);
        c = zmsg(&z, msg, n, &clen);
        cut = clen / 3;
        feed_vb_frame_rsv(&v, 0, 4, WS_OP_TEXT, c, cut);
        feed_vb_frame_rsv(&v, 1, 0, WS_OP_PING, "p", 1);
        feed_vb_frame_rsv(&v, 1, 0, WS_OP_CONTINUATION, c + cut, clen - cut);
        feed_vb_frame_rsv(&v, 1, 0, WS_OP_BINARY, "raw", 3);
        free(c);
        feed_logf(&pongs, "out pong 1 'p'\n");
        feed_logf(&expect, "msg text %u ", (unsigned)n);
        /* Not printable ASCII (the é): the log shows a hash. */
        feed_logf(&expect, "#%08x\n",
                  (unsigned)feed_hash((unsigned char *)msg, n));
        feed_logf(&expect, "msg binary 3 'raw'\n");
    }
    deflateEnd(&z);
    /* The pongs go out after the messages are logged, in one drain. */
    feed_logf(&expect, "%s" OPEN_0 "stats msgs 40 pongs 0\n", pongs);
    check_vb("takeover many", &v, 0, &takeover, expect);
    free(expect);
    free(pongs);
}
END_TEST

START_TEST(test_big_message_limits)
{
    /* 100 000 compressible bytes: under a limit of 100 000 it arrives;
     * under 99 999 it closes 1009. */
    apr_size_t n = 100000, clen;
    unsigned char *pl = malloc(n), *c;
    z_stream z;
    feed_vb_t v;
    char expect[160];

    memset(pl, 'a', n);
    memcpy(pl, "start", 5);
    zinit(&z, 9);
    c = zmsg(&z, pl, n, &clen);
    deflateEnd(&z);
    ck_assert_uint_lt(clen, 1000);
    feed_vb_init(&v, SERVER);
    feed_vb_frame_rsv(&v, 1, 4, WS_OP_BINARY, c, clen);
    snprintf(expect, sizeof(expect), "msg binary 100000 #%08x\n" OPEN_0
             "stats msgs 1 pongs 0\n", (unsigned)feed_hash(pl, n));
    {
        feed_vec_t fv = { "big exact", v.b, v.n, SERVER, n, 0, &takeover, 0 };
        char *log = feed_run(&fv, NULL, 0);
        ck_assert_str_eq(log, expect);
        free(log);
        fv.max_message = n - 1;
        log = feed_check(&fv);
        ck_assert_str_eq(log, "out close 1009 'message too big'\n"
                         "state closed 1009\nstats msgs 0 pongs 0\n");
        free(log);
    }
    free(v.b);
    free(c);
    free(pl);
}
END_TEST

/* A decompression bomb: 64 MiB of zeros in ~64 KiB.  The session must
 * close with 1009 having inflated no more than the limit. */
START_TEST(test_bomb)
{
    apr_size_t n = 64 * 1024 * 1024, clen, i;
    unsigned char *pl = calloc(n, 1), *c;
    z_stream z;
    ws_session_config_t cfg;
    ws_session_t *s;
    apr_pool_t *pool;
    feed_vb_t v;
    const unsigned char *out;

    zinit(&z, 9);
    c = zmsg(&z, pl, n, &clen);
    deflateEnd(&z);
    free(pl);
    ck_assert_uint_lt(clen, 128 * 1024);
    feed_vb_init(&v, SERVER);
    feed_vb_frame_rsv(&v, 1, 4, WS_OP_BINARY, c, clen);
    free(c);

    memset(&cfg, 0, sizeof(cfg));
    cfg.max_message = 1024 * 1024;
    cfg.deflate = &takeover;
    apr_pool_create(&pool, NULL);
    ck_assert_int_eq(ws_session_create(&s, pool, &cfg, NULL, NULL, 1),
                     APR_SUCCESS);
    /* In 1 KiB reads, as a socket would give it. */
    for (i = 0; i < v.n && ws_session_state(s) == WS_SESSION_OPEN;
         i += 1024) {
        ws_session_feed(s, v.b + i, v.n - i < 1024 ? v.n - i : 1024, 2);
        /* Never more held than the limit plus buffer slack and zlib. */
        ck_assert_uint_le(ws_session_memory(s), 2 * 1024 * 1024 + 64 * 1024);
    }
    ck_assert_int_eq(ws_session_state(s), WS_SESSION_CLOSED);
    ck_assert_uint_eq(ws_session_close_code(s), 1009);
    /* Refused well before the frame's end: inflating stopped at 1 MiB. */
    ck_assert_uint_lt(i, v.n / 2);
    ck_assert_uint_gt(ws_session_pending(s, &out), 0);
    ws_session_consume(s, ws_session_pending(s, &out));
    ck_assert_uint_le(ws_session_memory(s), 64 * 1024);
    apr_pool_destroy(pool);
    free(v.b);

    /* The same bomb through every split (small limit, small bomb). */
    {
        apr_size_t m = 300000;
        unsigned char *zero = calloc(m, 1);
        char *log;
        feed_vec_t fv;

        zinit(&z, 9);
        c = zmsg(&z, zero, m, &clen);
        deflateEnd(&z);
        feed_vb_init(&v, SERVER);
        feed_vb_frame_rsv(&v, 1, 4, WS_OP_TEXT, c, clen);
        fv = (feed_vec_t){ "small bomb", v.b, v.n, SERVER, 1000, 0,
                           &no_takeover, 0 };
        log = feed_check(&fv);
        ck_assert_str_eq(log, "out close 1009 'message too big'\n"
                         "state closed 1009\nstats msgs 0 pongs 0\n");
        free(log);
        free(c);
        free(zero);
        free(v.b);
    }
}
END_TEST

START_TEST(test_bad_rsv)
{
    static const unsigned char hello[] = { 0xf2, 0x48, 0xcd, 0xc9, 0xc9,
                                           0x07, 0x00 };
    const char *pe = "out close 1002 'reserved bits set'\n"
                     "state closed 1002\nstats msgs 0 pongs 0\n";
    feed_vb_t v;

    /* RSV1 without the extension negotiated: 1002 as always. */
    feed_vb_init(&v, SERVER);
    feed_vb_frame_rsv(&v, 1, 4, WS_OP_TEXT, hello, sizeof(hello));
    check_vb("rsv1 not negotiated", &v, 0, NULL, pe);
    /* RSV1 on a continuation frame. */
    feed_vb_init(&v, SERVER);
    feed_vb_frame_rsv(&v, 0, 4, WS_OP_TEXT, hello, 3);
    feed_vb_frame_rsv(&v, 1, 4, WS_OP_CONTINUATION, hello + 3, 4);
    check_vb("rsv1 on continuation", &v, 0, &takeover, pe);
    feed_vb_init(&v, SERVER);
    feed_vb_frame_rsv(&v, 0, 0, WS_OP_TEXT, "He", 2);
    feed_vb_frame_rsv(&v, 1, 4, WS_OP_CONTINUATION, "llo", 3);
    check_vb("rsv1 on continuation of plain", &v, 0, &takeover, pe);
    /* RSV1 on control frames. */
    feed_vb_init(&v, SERVER);
    feed_vb_frame_rsv(&v, 1, 4, WS_OP_PING, "", 0);
    check_vb("rsv1 on ping", &v, 0, &takeover, pe);
    feed_vb_init(&v, SERVER);
    feed_vb_frame_rsv(&v, 1, 4, WS_OP_CLOSE, "\x03\xe8", 2);
    check_vb("rsv1 on close", &v, 0, &takeover, pe);
    /* RSV2, RSV3 stay errors with deflate. */
    feed_vb_init(&v, SERVER);
    feed_vb_frame_rsv(&v, 1, 2, WS_OP_TEXT, "x", 1);
    check_vb("rsv2", &v, 0, &takeover, pe);
    feed_vb_init(&v, SERVER);
    feed_vb_frame_rsv(&v, 1, 5, WS_OP_TEXT, hello, sizeof(hello));
    check_vb("rsv1+3", &v, 0, &takeover, pe);
    /* Uncompressed messages still work with the extension on. */
    feed_vb_init(&v, SERVER);
    feed_vb_frame_rsv(&v, 1, 0, WS_OP_TEXT, "plain", 5);
    check_vb("plain with deflate", &v, 0, &takeover,
             "msg text 5 'plain'\n" OPEN_0 "stats msgs 1 pongs 0\n");
}
END_TEST

START_TEST(test_bad_data)
{
    const char *bad = "out close 1007 'invalid compressed data'\n"
                      "state closed 1007\nstats msgs 0 pongs 0\n";
    feed_vb_t v;

    /* A reserved block type (BTYPE 11). */
    feed_vb_init(&v, SERVER);
    feed_vb_frame_rsv(&v, 1, 4, WS_OP_BINARY, "\x07\x00", 2);
    check_vb("btype 3", &v, 0, &takeover, bad);
    /* A stored block whose NLEN does not match. */
    feed_vb_init(&v, SERVER);
    feed_vb_frame_rsv(&v, 1, 4, WS_OP_BINARY, "\x00\x05\x00\x00\x00" "Hello", 10);
    check_vb("bad nlen", &v, 0, &takeover, bad);
    /* Cut inside a block: the tail cannot end it. */
    feed_vb_init(&v, SERVER);
    feed_vb_frame_rsv(&v, 1, 4, WS_OP_TEXT, "\xf2\x48\xcd", 3);
    check_vb("cut short", &v, 0, &takeover, bad);
    /* A distance back past the start of the stream. */
    feed_vb_init(&v, SERVER);
    feed_vb_frame_rsv(&v, 1, 4, WS_OP_TEXT, "\xf2\x00\x11\x00\x00", 5);
    check_vb("distance too far", &v, 0, &no_takeover, bad);
}
END_TEST

START_TEST(test_utf8_after_inflate)
{
    static const char *bad_text = "ok \xc3\x28 not utf-8 at all, and long "
                                  "enough to be worth it";
    z_stream z;
    apr_size_t clen;
    unsigned char *c;
    feed_vb_t v;

    /* Invalid UTF-8 inside compressed text: 1007. */
    zinit(&z, 6);
    c = zmsg(&z, bad_text, strlen(bad_text), &clen);
    deflateEnd(&z);
    feed_vb_init(&v, SERVER);
    feed_vb_frame_rsv(&v, 1, 4, WS_OP_TEXT, c, clen);
    free(c);
    check_vb("bad utf8 compressed", &v, 0, &takeover,
             "out close 1007 'invalid UTF-8 in text message'\n"
             "state closed 1007\nstats msgs 0 pongs 0\n");
    /* A character cut at the end of the message. */
    zinit(&z, 6);
    c = zmsg(&z, "abc\xe2\x82", 5, &clen);
    deflateEnd(&z);
    feed_vb_init(&v, SERVER);
    feed_vb_frame_rsv(&v, 1, 4, WS_OP_TEXT, c, clen);
    free(c);
    check_vb("cut utf8 compressed", &v, 0, &takeover,
             "out close 1007 'invalid UTF-8 in text message'\n"
             "state closed 1007\nstats msgs 0 pongs 0\n");
    /* The same bytes as binary are fine. */
    zinit(&z, 6);
    c = zmsg(&z, "abc\xe2\x82", 5, &clen);
    deflateEnd(&z);
    feed_vb_init(&v, SERVER);
    feed_vb_frame_rsv(&v, 1, 4, WS_OP_BINARY, c, clen);
    free(c);
    {
        char expect[100];
        snprintf(expect, sizeof(expect), "msg binary 5 #%08x\n" OPEN_0
                 "stats msgs 1 pongs 0\n",
                 (unsigned)feed_hash((const unsigned char *)"abc\xe2\x82", 5));
        check_vb("binary compressed", &v, 0, &takeover, expect);
    }
}
END_TEST

/* ---- what we send ----------------------------------------------------- */

typedef struct {
    apr_pool_t *pool;
    ws_session_t *s;
} peer_t;

static void peer_open(peer_t *t, int is_client,
                      const ws_deflate_params_t *params, apr_size_t min)
{
    ws_session_config_t cfg;

    memset(&cfg, 0, sizeof(cfg));
    cfg.is_client = is_client;
    cfg.deflate = params;
    cfg.deflate_min_size = min;
    apr_pool_create(&t->pool, NULL);
    ck_assert_int_eq(ws_session_create(&t->s, t->pool, &cfg, NULL, NULL, 1),
                     APR_SUCCESS);
}

/* The inflated payload of one frame of ours, with a fresh stream or the
 * caller's. */
static apr_size_t inflate_payload(z_stream *z, const unsigned char *pl,
                                  apr_size_t n, unsigned char *out,
                                  apr_size_t cap)
{
    unsigned char *in = malloc(n + 4);

    memcpy(in, pl, n);
    memcpy(in + n, "\0\0\xff\xff", 4);
    z->next_in = in;
    z->avail_in = (uInt)(n + 4);
    z->next_out = out;
    z->avail_out = (uInt)cap;
    ck_assert_int_eq(inflate(z, Z_SYNC_FLUSH), Z_OK);
    ck_assert_uint_eq(z->avail_in, 0);
    free(in);
    return cap - z->avail_out;
}

START_TEST(test_send_compressed)
{
    static const char *json = "{\"type\":\"update\",\"values\":[1,2,3,4,5],"
                              "\"type2\":\"update\",\"values2\":[1,2,3,4,5]}";
    apr_size_t jl = strlen(json), n, hl, i;
    const unsigned char *d;
    unsigned char out[256];
    ws_frame_header_t h;
    z_stream z;
    peer_t t;
    int pass;

    /* The frame leaves with RSV1, shorter than the text, and inflates
     * back to it; with context takeover the second one is shorter. */
    for (pass = 0; pass < 2; pass++) {
        apr_size_t first = 0;
        peer_open(&t, SERVER, pass ? &no_takeover : &takeover, 0);
        memset(&z, 0, sizeof(z));
        ck_assert_int_eq(inflateInit2(&z, -15), Z_OK);
        for (i = 0; i < 3; i++) {
            ck_assert_int_eq(ws_session_send(t.s, WS_OP_TEXT, json, jl),
                             APR_SUCCESS);
            n = ws_session_pending(t.s, &d);
            hl = (apr_size_t)ws_frame_header_parse(d, n, &h);
            ck_assert_uint_eq(h.rsv, 4);
            ck_assert_uint_eq(h.opcode, WS_OP_TEXT);
            ck_assert_uint_eq(h.fin, 1);
            ck_assert_uint_eq(h.masked, 0);
            ck_assert_uint_eq(hl + h.length, n);
            ck_assert_uint_lt(h.length, jl);
            if (pass) {
                inflateReset(&z);
            }
            ck_assert_uint_eq(inflate_payload(&z, d + hl, (apr_size_t)h.length,
                                              out, sizeof(out)), jl);
            ck_assert_mem_eq(out, json, jl);
            if (i == 0) {
                first = (apr_size_t)h.length;
            }
            else if (pass == 0) {
                ck_assert_uint_lt(h.length, first);
            }
            else {
                ck_assert_uint_eq(h.length, first);
                /* No context takeover: nothing kept between messages. */
                ck_assert_uint_le(ws_session_memory(t.s), 4096);
            }
            ws_session_consume(t.s, n);
        }
        inflateEnd(&z);
        ck_assert_uint_eq(ws_session_stats(t.s)->deflated_out, 3);
        apr_pool_destroy(t.pool);
    }

    /* A client masks the compressed payload. */
    peer_open(&t, CLIENT, &takeover, 0);
    ws_session_send(t.s, WS_OP_BINARY, json, jl);
    n = ws_session_pending(t.s, &d);
    hl = (apr_size_t)ws_frame_header_parse(d, n, &h);
    ck_assert_uint_eq(h.masked, 1);
    ck_assert_uint_eq(h.rsv, 4);
    memcpy(out, d + hl, (apr_size_t)h.length);
    ws_frame_mask(out, (apr_size_t)h.length, h.mask, 0);
    {
        unsigned char plain[256];
        memset(&z, 0, sizeof(z));
        inflateInit2(&z, -15);
        ck_assert_uint_eq(inflate_payload(&z, out, (apr_size_t)h.length,
                                          plain, sizeof(plain)), jl);
        ck_assert_mem_eq(plain, json, jl);
        inflateEnd(&z);
    }
    apr_pool_destroy(t.pool);

    /* Below the threshold: RSV1 clear, sent as is (§6 allows it). */
    peer_open(&t, SERVER, &takeover, 64);
    ws_session_send(t.s, WS_OP_TEXT, "short", 5);
    n = ws_session_pending(t.s, &d);
    ck_assert_uint_eq(n, 7);
    ck_assert_mem_eq(d, "\x81\x05short", 7);
    ws_session_consume(t.s, n);
    ws_session_send(t.s, WS_OP_TEXT, json, jl);
    n = ws_session_pending(t.s, &d);
    ck_assert_uint_eq(d[0], 0xc1);
    apr_pool_destroy(t.pool);
}
END_TEST

/* A client session and a server session, both ours, talking: every size
 * across the 7/16/64-bit length forms, both ways, with the output queue
 * already holding bytes and partly drained. */
START_TEST(test_roundtrip)
{
    static const apr_size_t sizes[] = { 0, 1, 100, 125, 126, 200, 65535,
                                        65536, 300000 };
    const ws_deflate_params_t *params[] = { &takeover, &no_takeover };
    unsigned pi, si;

    for (pi = 0; pi < 2; pi++) {
        for (si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
            apr_size_t len = sizes[si], i, n;
            unsigned char *msg = malloc(len + 1);
            const unsigned char *d;
            char expect[128], *log = NULL;
            peer_t cl;
            feed_vec_t fv;

            for (i = 0; i < len; i++) {
                msg[i] = (unsigned char)("abcdefgh"[(i * 7) % 8] + (i % 97 == 0));
            }
            unsigned char first;

            peer_open(&cl, CLIENT, params[pi], 0);
            ws_session_send(cl.s, WS_OP_BINARY, "x", 1);
            ws_session_pending(cl.s, &d);
            first = d[0];
            ws_session_consume(cl.s, 1);       /* part of a frame drained */
            ck_assert_int_eq(ws_session_send(cl.s, WS_OP_BINARY, msg, len),
                             APR_SUCCESS);
            ck_assert_int_eq(ws_session_send(cl.s, WS_OP_TEXT, msg, len),
                             APR_SUCCESS);
            n = ws_session_pending(cl.s, &d);
            feed_log_frames(&log, d, n);
            free(log);
            /* The client's frames minus the first byte, to a server. */
            {
                unsigned char *wire = malloc(n + 1);
                wire[0] = first;
                memcpy(wire + 1, d, n);
                fv = (feed_vec_t){ "roundtrip", wire, n + 1, SERVER, 0, 0,
                                   params[pi], 0 };
                log = len <= 70000 ? feed_check(&fv) : feed_run(&fv, NULL, 0);
                snprintf(expect, sizeof(expect), "msg binary 1 'x'\n"
                         "msg binary %u ", (unsigned)len);
                ck_assert_msg(strncmp(log, expect, strlen(expect)) == 0,
                              "%s", log);
                ck_assert_ptr_nonnull(strstr(log, "stats msgs 3 pongs 0"));
                free(log);
                free(wire);
            }
            apr_pool_destroy(cl.pool);
            free(msg);
        }
    }
}
END_TEST

/* ---- memory ----------------------------------------------------------- */

START_TEST(test_memory)
{
    ws_deflate_params_t small = { 1, 1, 10, 10 };
    char json[2000];
    unsigned char buf[4096];
    apr_size_t i, clen, n;
    unsigned char *c;
    z_stream z;
    peer_t t;
    const unsigned char *d;

    static const char unit[] = "{\"k\":\"value\",\"n\":12345678},";

    for (i = 0; i + sizeof(unit) < sizeof(json); i += sizeof(unit) - 1) {
        memcpy(json + i, unit, sizeof(unit) - 1);
    }
    json[i] = '\0';
    /* No context takeover: zlib memory only while a message is worked on,
     * none between messages. */
    peer_open(&t, SERVER, &small, 0);
    ck_assert_uint_eq(ws_session_memory(t.s), 0);
    ws_session_send(t.s, WS_OP_TEXT, json, strlen(json));
    n = ws_session_pending(t.s, &d);
    ws_session_consume(t.s, n);
    ck_assert_uint_le(ws_session_memory(t.s), 4096);
    zinit(&z, 6);
    c = zmsg(&z, json, strlen(json), &clen);
    deflateEnd(&z);
    n = ws_frame_header_write(buf, 1, 4, WS_OP_TEXT, clen, feed_test_mask);
    memcpy(buf + n, c, clen);
    ws_frame_mask(buf + n, clen, feed_test_mask, 0);
    free(c);
    ws_session_feed(t.s, buf, n + clen, 2);
    ck_assert_uint_eq(ws_session_stats(t.s)->deflated_in, 1);
    ck_assert_uint_le(ws_session_memory(t.s), 2 * 4096);
    apr_pool_destroy(t.pool);

    /* Context takeover keeps both streams: what that costs, printed for
     * the README's figure and bounded here. */
    {
        static const struct { unsigned bits; int mem; } cases[] = {
            { 15, 8 }, { 15, 0 }, { 12, 5 }, { 10, 4 }, { 9, 1 } };
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            ws_deflate_params_t kp = { 0, 0, cases[i].bits, cases[i].bits };
            ws_session_config_t cfg;
            apr_size_t held;
            memset(&cfg, 0, sizeof(cfg));
            cfg.deflate = &kp;
            cfg.deflate_mem_level = cases[i].mem;
            apr_pool_create(&t.pool, NULL);
            ws_session_create(&t.s, t.pool, &cfg, NULL, NULL, 1);
            ws_session_send(t.s, WS_OP_TEXT, json, strlen(json));
            ws_session_consume(t.s, ws_session_pending(t.s, &d));
            zinit(&z, 6);
            c = zmsg(&z, json, strlen(json), &clen);
            deflateEnd(&z);
            n = ws_frame_header_write(buf, 1, 4, WS_OP_TEXT, clen, feed_test_mask);
            memcpy(buf + n, c, clen);
            ws_frame_mask(buf + n, clen, feed_test_mask, 0);
            free(c);
            ws_session_feed(t.s, buf, n + clen, 2);
            held = ws_session_memory(t.s) - 2 * 4096;
            printf("deflate memory, context takeover, windowBits %u, "
                   "memLevel %d: %u bytes held between messages\n",
                   cases[i].bits, cases[i].mem ? cases[i].mem : 8,
                   (unsigned)held);
            if (cases[i].bits == 15 && cases[i].mem == 8) {
                ck_assert_uint_gt(held, 256 * 1024);
            }
            if (cases[i].bits <= 10) {
                ck_assert_uint_lt(held, 40 * 1024);
            }
            /* Once closed, all of it is given back. */
            ws_session_peer_eof(t.s);
            ck_assert_uint_le(ws_session_memory(t.s), 4096);
            apr_pool_destroy(t.pool);
        }
    }
}
END_TEST

/* ---- suite ------------------------------------------------------------ */

static Suite *deflate_suite(void)
{
    Suite *s = suite_create("ws_deflate");
    TCase *neg = tcase_create("negotiation");
    TCase *vec = tcase_create("vectors");

    tcase_add_test(neg, test_parse_extensions);
    tcase_add_test(neg, test_accept_offers);
    tcase_add_test(neg, test_accept_declines);
    tcase_add_test(neg, test_client_side);
    suite_add_tcase(s, neg);

    tcase_set_timeout(vec, 300);
    tcase_add_test(vec, test_rfc_hello);
    tcase_add_test(vec, test_rfc_fragmented);
    tcase_add_test(vec, test_rfc_shared_window);
    tcase_add_test(vec, test_rfc_stored_and_bfinal);
    tcase_add_test(vec, test_takeover_many);
    tcase_add_test(vec, test_big_message_limits);
    tcase_add_test(vec, test_bomb);
    tcase_add_test(vec, test_bad_rsv);
    tcase_add_test(vec, test_bad_data);
    tcase_add_test(vec, test_utf8_after_inflate);
    tcase_add_test(vec, test_send_compressed);
    tcase_add_test(vec, test_roundtrip);
    tcase_add_test(vec, test_memory);
    suite_add_tcase(s, vec);
    return s;
}

int main(void)
{
    return ws_test_main(deflate_suite());
}
