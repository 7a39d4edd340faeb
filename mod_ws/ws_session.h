/* The WebSocket connection state machine, sans I/O (RFC 6455 §5-§7).
 *
 * Part of the protocol core: APR only, no httpd header, never reads or writes
 * a socket, never logs.  A driver feeds it the bytes it read and the time,
 * takes the bytes it must write, and calls it back when its deadline comes.
 * It owns the incremental frame parser, message assembly with the size
 * limit, UTF-8 validation of text (fail fast, across fragments), control
 * frames (pong for ping, the close handshake), the outbound queue with byte
 * accounting, the ping and idle deadlines, and permessage-deflate (RFC 7692)
 * when it was negotiated: compressed messages are inflated as their bytes
 * arrive, never beyond max_message.
 *
 * A peer's protocol violation is not an error of the call: the session
 * queues a close frame with the code RFC 6455 names (1002, 1007, 1009), moves
 * to WS_SESSION_CLOSED, and the call still returns APR_SUCCESS.  The
 * violation's code and a static reason are kept for the log.
 *
 * Threads: a session belongs to one thread at a time (the connection's
 * owner); no function here may be called from another thread.
 */
#ifndef WS_SESSION_H
#define WS_SESSION_H

#include <apr.h>
#include <apr_pools.h>
#include <apr_time.h>

#include "ws_deflate.h"

typedef struct ws_session_t ws_session_t;

typedef enum {
    WS_SESSION_OPEN,     /* messages flow both ways */
    WS_SESSION_CLOSING,  /* we sent a close frame and wait for the peer's */
    WS_SESSION_CLOSED    /* handshake over, or connection failed: write
                          * what is still queued, then close TCP */
} ws_session_state_e;

typedef struct {
    /* A complete data message: opcode WS_OP_TEXT (valid UTF-8) or
     * WS_OP_BINARY.  data is valid only during the call.  The callback may
     * call ws_session_send / ws_session_close. */
    void (*on_message)(void *baton, unsigned opcode,
                       const unsigned char *data, apr_size_t len);
    /* Optional: the peer's close frame arrived (code WS_CLOSE_NO_STATUS when
     * it carried none).  reason is not NUL-terminated. */
    void (*on_peer_close)(void *baton, unsigned code,
                          const char *reason, apr_size_t reason_len);
} ws_session_callbacks_t;

typedef struct {
    apr_size_t max_message;            /* 0: no limit; else over it: 1009 */
    int is_client;                     /* 1: mask what we send and refuse
                                        * masked input (tests, load tool);
                                        * 0: server, refuse unmasked input */
    apr_interval_time_t ping_interval; /* 0: never ping.  A ping goes out
                                        * when nothing was received for this
                                        * long (and then again each interval) */
    apr_interval_time_t idle_timeout;  /* 0: never.  Nothing received for
                                        * this long: close 1001 */
    apr_interval_time_t close_timeout; /* how long CLOSING waits for the
                                        * peer's close before CLOSED;
                                        * 0: the default, 5 seconds */
    /* permessage-deflate as negotiated (copied at create); NULL: not in
     * use, and RSV1 is a protocol error like the other RSV bits. */
    const ws_deflate_params_t *deflate;
    apr_size_t deflate_min_size;       /* messages shorter than this go
                                        * out uncompressed (RSV1 clear,
                                        * which §6 allows); 0: compress all */
    int deflate_level;                 /* zlib level 1..9; 0: zlib's (6) */
    int deflate_mem_level;             /* zlib memLevel 1..9; 0: 8 */
} ws_session_config_t;

/* Create a session in OPEN state.  The session lives in pool p; its growing
 * buffers are malloc'd and freed by a cleanup on p (so a large message does
 * not stay in a pool for the life of the connection). */
apr_status_t ws_session_create(ws_session_t **ps, apr_pool_t *p,
                               const ws_session_config_t *cfg,
                               const ws_session_callbacks_t *cb, void *baton,
                               apr_time_t now);

/* Feed bytes read from the peer, in any split.  Calls on_message for each
 * complete message.  Bytes after the peer's close frame, or once CLOSED,
 * are ignored.  Returns APR_SUCCESS, or APR_ENOMEM. */
apr_status_t ws_session_feed(ws_session_t *s, const unsigned char *data,
                             apr_size_t len, apr_time_t now);

/* The peer's byte stream ended (TCP EOF or reset): CLOSED, with code 1006
 * unless a close frame was already seen. */
void ws_session_peer_eof(ws_session_t *s);

/* Queue a data message as one frame: opcode WS_OP_TEXT or WS_OP_BINARY,
 * compressed (RSV1) when deflate is in use and len >= deflate_min_size.
 * APR_EINVAL when the session is not OPEN or the opcode is not a data one;
 * APR_ENOMEM when zlib or the queue cannot get memory. */
apr_status_t ws_session_send(ws_session_t *s, unsigned opcode,
                             const void *data, apr_size_t len);

/* Start the closing handshake: queue a close frame with code (0: no code)
 * and reason (may be NULL; cut to fit 123 bytes), and move to CLOSING.
 * Does nothing unless OPEN. */
void ws_session_close(ws_session_t *s, unsigned code, const char *reason,
                      apr_time_t now);

/* Output.  ws_session_pending points *data at the next contiguous bytes to
 * write and returns their count (0: nothing queued); after writing n of
 * them, call ws_session_consume(s, n). */
apr_size_t ws_session_pending(ws_session_t *s, const unsigned char **data);
void ws_session_consume(ws_session_t *s, apr_size_t n);

/* Bytes queued and not yet consumed (for send-queue limits). */
apr_size_t ws_session_queued(const ws_session_t *s);

/* Bytes the session holds in its malloc'd buffers (message assembly and
 * output queue, by capacity, plus what zlib holds): for status pages and
 * tests.  Both buffers shrink back to at most 64 KiB once emptied after a
 * large message; zlib's streams are freed after every message unless
 * context takeover was agreed, and all of it once CLOSED. */
apr_size_t ws_session_memory(const ws_session_t *s);

/* Timers.  ws_session_deadline is the next time ws_session_tick must run
 * (0: none).  ws_session_tick sends due pings, closes an idle peer (1001),
 * and ends a CLOSING session whose peer never answered. */
apr_time_t ws_session_deadline(const ws_session_t *s);
void ws_session_tick(ws_session_t *s, apr_time_t now);

ws_session_state_e ws_session_state(const ws_session_t *s);

/* 1 when CLOSED and nothing is left to write: the driver closes TCP. */
int ws_session_done(const ws_session_t *s);

/* Why the session ended or is ending: the close code we sent or, when the
 * peer closed first, the peer's code (1006 for a plain EOF), and a static
 * text for the log ("peer closed", "invalid UTF-8 in text message", ...).
 * 0 / "" while OPEN. */
unsigned ws_session_close_code(const ws_session_t *s);
const char *ws_session_close_reason(const ws_session_t *s);

/* Counters for logs and status. */
typedef struct {
    apr_uint64_t messages_in, messages_out;
    apr_uint64_t bytes_in, bytes_out;   /* wire bytes */
    apr_uint64_t pings_sent, pongs_received;
    apr_uint64_t deflated_in, deflated_out;  /* messages compressed */
} ws_session_stats_t;
const ws_session_stats_t *ws_session_stats(const ws_session_t *s);

#endif /* WS_SESSION_H */
