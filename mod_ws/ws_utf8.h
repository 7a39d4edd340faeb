/* Incremental UTF-8 validation (RFC 3629, as RFC 6455 §8.1 requires of text).
 *
 * Part of the protocol core: APR only, no httpd header, no I/O, no allocation.
 * The validator is fed a message in any number of pieces and fails on the
 * first byte that can no longer start or continue a valid sequence, so a bad
 * message is refused as soon as the bad byte arrives (also within the first
 * fragment), not when the message ends.
 */
#ifndef WS_UTF8_H
#define WS_UTF8_H

#include <apr.h>

typedef struct {
    apr_uint32_t state;     /* 0 = between characters; see ws_utf8.c */
} ws_utf8_t;

/* Start a new message. */
void ws_utf8_init(ws_utf8_t *v);

/* Feed the next n bytes.  Returns 1 while the input is valid so far (it may
 * end inside a character), 0 once it is invalid; after 0 the validator stays
 * invalid until ws_utf8_init. */
int ws_utf8_feed(ws_utf8_t *v, const unsigned char *p, apr_size_t n);

/* 1 when everything fed so far is valid and ends on a character boundary:
 * what a complete text message or close reason must satisfy. */
int ws_utf8_complete(const ws_utf8_t *v);

/* Convenience: validate one complete buffer. */
int ws_utf8_valid(const unsigned char *p, apr_size_t n);

#endif /* WS_UTF8_H */
