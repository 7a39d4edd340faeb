/* permessage-deflate (RFC 7692): negotiation, and the two zlib streams of
 * one connection.
 *
 * Part of the protocol core: APR and zlib only, no httpd header, no I/O, no
 * logging.  Negotiation works on the parsed Sec-WebSocket-Extensions offers
 * (ws_handshake_parse_extensions) and writes the response header's value.
 * The streams are driven by ws_session: a compressor for the messages we
 * send and a decompressor for the ones we receive, each made on first use
 * and, without context takeover, freed again after every message, so an
 * idle socket holds no zlib memory.  All zlib memory goes through a
 * counting allocator, so ws_deflate_memory is exact.
 *
 * Threads: a ws_deflate_t belongs to its session's thread.
 */
#ifndef WS_DEFLATE_H
#define WS_DEFLATE_H

#include <apr.h>
#include <apr_pools.h>
#include <apr_tables.h>

/* The extension's parameters as agreed (§7.1), in the RFC's terms: which
 * side may keep its LZ77 window between messages, and the largest window
 * each side's compressor may use (8..15; 15 when not limited). */
typedef struct {
    int server_no_context_takeover;
    int client_no_context_takeover;
    unsigned server_max_window_bits;
    unsigned client_max_window_bits;
} ws_deflate_params_t;

/* What the server is willing to do (from its configuration). */
typedef struct {
    int no_context_takeover;   /* 1: ask both sides to reset every message */
    unsigned max_window_bits;  /* 9..15: cap on both sides' windows, where
                                * the client lets us set it */
} ws_deflate_prefs_t;

#define WS_DEFLATE_WINDOW_BITS_MIN 9    /* zlib's raw deflate cannot do 8 */
#define WS_DEFLATE_WINDOW_BITS_MAX 15

/* Server side of §5/§7: take the first offer named permessage-deflate
 * whose parameters are all known, valid, not repeated and supported
 * (server_max_window_bits=8 is not: zlib cannot compress with a 256-byte
 * window), fill *out with what will be used and return the response's
 * Sec-WebSocket-Extensions value (allocated from p).  NULL when no offer
 * is acceptable: the handshake goes on without the extension.
 * offers: ws_ext_offer_t from ws_handshake_parse_extensions. */
const char *ws_deflate_accept(apr_pool_t *p, const apr_array_header_t *offers,
                              const ws_deflate_prefs_t *prefs,
                              ws_deflate_params_t *out);

/* Client side (the load generator and the tests): the offer to send, and
 * the check of the server's answer against it.  ws_deflate_client_check
 * returns 0 and fills *out when the answer is a valid acceptance of the
 * offer, -1 when the client must fail the connection (§7: unknown or
 * repeated parameters, a value out of range, client_max_window_bits that
 * was not offered or is below 9, more than one extension answered). */
const char *ws_deflate_client_offer(apr_pool_t *p,
                                    const ws_deflate_prefs_t *prefs);
int ws_deflate_client_check(const apr_array_header_t *answer,
                            const ws_deflate_prefs_t *prefs,
                            ws_deflate_params_t *out);

/* ---- streams ---------------------------------------------------------- */

typedef struct ws_deflate_t ws_deflate_t;

/* Settings of one connection's streams, from the agreed parameters and
 * the side we are on. */
typedef struct {
    unsigned tx_window_bits;   /* 9..15, our compressor */
    int tx_no_context_takeover;
    unsigned rx_window_bits;   /* 8..15, the peer's compressor */
    int rx_no_context_takeover;
    int level;                 /* zlib level 1..9 (0: zlib's default) */
    int mem_level;             /* zlib memLevel 1..9 (0: 8) */
} ws_deflate_config_t;

/* The streams' settings for our side of agreed parameters. */
void ws_deflate_config_for(ws_deflate_config_t *cfg,
                           const ws_deflate_params_t *params, int is_client);

/* Make the (still empty) pair of streams; a pool cleanup frees them. */
apr_status_t ws_deflate_create(ws_deflate_t **pd, apr_pool_t *p,
                               const ws_deflate_config_t *cfg);

/* Free both streams now (the connection is over); a later use would make
 * them again. */
void ws_deflate_release(ws_deflate_t *d);

/* Bytes zlib holds for this connection right now. */
apr_size_t ws_deflate_memory(const ws_deflate_t *d);

/* Results of the stream calls. */
#define WS_DEFLATE_OK      0   /* progress made; call again as the text says */
#define WS_DEFLATE_DONE    1   /* the message is complete */
#define WS_DEFLATE_BAD    -1   /* the peer's data is not valid DEFLATE */
#define WS_DEFLATE_NOMEM  -2   /* zlib could not get memory */

/* Compress one message (§7.2.1): ws_deflate_tx_begin with the whole
 * message (it must stay valid until WS_DEFLATE_DONE), then ws_deflate_tx
 * with output room out/outcap; *produced is what was written.  Returns
 * WS_DEFLATE_OK when the room ran out (call again with more), or
 * WS_DEFLATE_DONE when the message is compressed and flushed: the whole
 * output then ends in 00 00 ff ff, which the caller drops (§7.2.1). */
int ws_deflate_tx_begin(ws_deflate_t *d, const unsigned char *in,
                        apr_size_t inlen);
int ws_deflate_tx(ws_deflate_t *d, unsigned char *out, apr_size_t outcap,
                  apr_size_t *produced);

/* End the message ws_deflate_tx completed: without context takeover the
 * compressor is freed. */
void ws_deflate_tx_end(ws_deflate_t *d);

/* A message could not be completed (no memory): free the compressor.
 * With context takeover its window now holds bytes the peer never got,
 * so the caller must not send compressed messages any more. */
void ws_deflate_tx_drop(ws_deflate_t *d);

/* Decompress the next piece of a received message's payload.  Takes bytes
 * from in (*consumed of them) and writes at most outcap bytes
 * (*produced).  Returns WS_DEFLATE_OK (call again while input is left;
 * when out was filled, with more room), or WS_DEFLATE_BAD / _NOMEM. */
int ws_deflate_rx(ws_deflate_t *d, const unsigned char *in, apr_size_t inlen,
                  apr_size_t *consumed, unsigned char *out,
                  apr_size_t outcap, apr_size_t *produced);

/* The message's last frame has been fed: append 00 00 ff ff (§7.2.2) and
 * decompress what is left.  Returns WS_DEFLATE_OK when out was filled
 * (call again with more room), WS_DEFLATE_DONE when the message is
 * complete (then ws_deflate_rx_end), WS_DEFLATE_BAD when the data did not
 * end on a block boundary. */
int ws_deflate_rx_finish(ws_deflate_t *d, unsigned char *out,
                         apr_size_t outcap, apr_size_t *produced);

/* End (or abandon) a received message: without context takeover the
 * decompressor is freed; with it, a stream that ended with a final block
 * (§7.2.3.4) starts anew but keeps its window. */
int ws_deflate_rx_end(ws_deflate_t *d);

#endif /* WS_DEFLATE_H */
