/* Test helpers shared by the unit tests: guarded input buffers and a
 * session runner that turns everything a session does into a text log.
 *
 * Inputs are copied so that they end right before a PROT_NONE page (the
 * picohttpparser trick), so any read past the end crashes the test.  The
 * log lets one vector fed whole, split in two at every point and one byte
 * at a time be compared for exact equality.
 */
#ifndef WS_TEST_FEED_H
#define WS_TEST_FEED_H

#include <apr.h>
#include <apr_pools.h>

#include "ws_session.h"

/* Copy n bytes so that they end right at an unreadable page.  The buffer
 * is reused by the next call; do not free it. */
unsigned char *feed_guard(const void *data, apr_size_t n);

/* A session test vector: input bytes and the configuration to feed them to. */
typedef struct {
    const char *name;
    const unsigned char *in;
    apr_size_t len;
    int is_client;
    apr_size_t max_message;
    int echo;              /* on_message sends the message back */
    const ws_deflate_params_t *deflate;   /* NULL: no permessage-deflate */
    apr_size_t deflate_min_size;
} feed_vec_t;

/* Feed v->in cut at the `ncuts` ascending offsets in cuts, each piece
 * through feed_guard, then describe what happened.  Returns a malloc'd
 * NUL-terminated log (free it). */
char *feed_run(const feed_vec_t *v, const apr_size_t *cuts, int ncuts);

/* Feed v whole, at every split point into two pieces, and one byte at a
 * time; fail the running Check test on the first log that differs from the
 * whole-input one.  Returns the whole-input log (malloc'd). */
char *feed_check(const feed_vec_t *v);

/* Describe the frames in buf[0..n) (our output), unmasking when masked:
 * one line each, "out <op>[ nofin][ masked][ rsvN] <details>", appended to a malloc'd
 * log.  Used by feed_run and by tests that inspect output directly. */
void feed_log_frames(char **log, const unsigned char *buf, apr_size_t n);

/* The hash the log shows for data that is not short printable text. */
apr_uint32_t feed_hash(const unsigned char *d, apr_size_t n);

/* printf to a malloc'd growing string. */
void feed_logf(char **log, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Build a frame into out (must be big enough): header plus payload,
 * masked with `mask` when non-NULL.  Returns its size. */
apr_size_t feed_frame(unsigned char *out, unsigned fin, unsigned opcode,
                      const void *payload, apr_size_t len,
                      const unsigned char *mask);

/* The mask the tests' client frames use. */
extern const unsigned char feed_test_mask[4];

/* A vector of frames as the peer sends them: masked when the session
 * under test is the server (the peer is a client), unmasked otherwise. */
typedef struct {
    unsigned char *b;
    apr_size_t n, cap;
    int is_client;         /* the session under test is the client */
} feed_vb_t;

void feed_vb_init(feed_vb_t *v, int is_client);
void feed_vb_raw(feed_vb_t *v, const void *p, apr_size_t n);
/* One frame with these RSV bits (RSV1..3 as bits 2..0). */
void feed_vb_frame_rsv(feed_vb_t *v, unsigned fin, unsigned rsv,
                       unsigned op, const void *p, apr_size_t n);
void feed_vb_frame(feed_vb_t *v, unsigned fin, unsigned op, const void *p,
                   apr_size_t n);
void feed_vb_str(feed_vb_t *v, unsigned fin, unsigned op, const char *s);

#endif /* WS_TEST_FEED_H */
