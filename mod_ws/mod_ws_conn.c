/* mod_ws_conn.c: a WebSocket connection inside httpd (see mod_ws_conn.h).
 *
 * All I/O goes through c->input_filters / c->output_filters, never the raw
 * socket, so wss:// (mod_ssl) and HTTP/2 streams work the same.  Runs only on
 * the connection's owner thread, except the registry's stop, which any
 * thread may call.  No protocol logic here: frames are ws_session's.
 */
#include "mod_ws_conn.h"
#include "mod_ws_hub.h"
#include "mod_ws_status.h"

#include "apr_atomic.h"
#include "apr_strings.h"
#include "apr_thread_mutex.h"
#include "ap_expr.h"
#include "http_core.h"
#include "http_ssl.h"
#include "ws_close.h"
#include "ws_frame.h"

/* How much one ap_get_brigade asks for. */
#define WS_READ_CHUNK (64 * 1024)

/* The most one non-blocking pass hands the output filters. */
#define WS_WRITE_CHUNK (64 * 1024)

/* The per-child list of live connections, so that child_stopping can wake
 * each of them.  Made in child_init, after the fork: one per process. */
static struct {
    apr_thread_mutex_t *mutex;
    ws_conn_t *head;
    volatile apr_uint32_t stopping;
    volatile apr_uint32_t next_id;
} registry;

static void on_message(void *baton, unsigned opcode,
                       const unsigned char *data, apr_size_t len)
{
    ws_conn_t *wc = baton;

    if (APLOGctrace1(wc->c)) {
        ap_log_cerror(APLOG_MARK, APLOG_TRACE1, 0, wc->c,
                      "ws %s: %s message, %" APR_SIZE_T_FMT " bytes", wc->id,
                      opcode == WS_OP_TEXT ? "text" : "binary", len);
    }
    ws_status_traffic(1, 0, 0, 0);
    if (wc->handler->on_message) {
        wc->handler->on_message(wc, wc->handler_ctx, (int)opcode,
                                (const char *)data, len);
    }
    apr_pool_clear(wc->scratch);
}

static void on_peer_close(void *baton, unsigned code, const char *reason,
                          apr_size_t reason_len)
{
    ws_conn_t *wc = baton;

    ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, wc->c,
                  WSLOGNO(00010) "ws %s: peer sent close %u '%.*s'", wc->id,
                  code, (int)(reason_len > 123 ? 123 : reason_len), reason);
}

static const ws_session_callbacks_t callbacks = { on_message, on_peer_close };

/* permessage-deflate: messages below this size go out uncompressed (the
 * frame would hardly shrink and zlib's set-up would cost more), and the
 * zlib settings; see README "WebSocketDeflate" for what they cost. */
#define WS_DEFLATE_MIN_SIZE  64
#define WS_DEFLATE_LEVEL     6

apr_status_t ws_conn_create(ws_conn_t **pwc, request_rec *r,
                            const ws_dir_conf_t *dcfg,
                            const ws_deflate_params_t *deflate)
{
    conn_rec *c = r->connection;
    ws_conn_t *wc = apr_pcalloc(r->pool, sizeof(*wc));
    ws_session_config_t scfg;
    apr_status_t rv;

    wc->r = r;
    wc->c = c;
    wc->pool = r->pool;
    wc->dcfg = dcfg;
    wc->scfg = ws_config_server(r->server);
    wc->handler = dcfg->handler;
    wc->opened = apr_time_now();
    wc->serial = apr_atomic_inc32(&registry.next_id) + 1;
    wc->id = apr_psprintf(r->pool, "%" APR_PID_T_FMT "-%u", getpid(),
                          wc->serial);
    wc->sock = c->master ? NULL : ap_get_conn_socket(c);
    wc->inbox_tail = &wc->inbox;
    rv = apr_pool_create(&wc->scratch, r->pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    apr_pool_tag(wc->scratch, "ws_scratch");
    wc->bb_in = apr_brigade_create(r->pool, c->bucket_alloc);
    wc->bb_out = apr_brigade_create(r->pool, c->bucket_alloc);

    memset(&scfg, 0, sizeof(scfg));
    scfg.max_message = dcfg->max_message;
    scfg.ping_interval = dcfg->ping_interval;
    scfg.idle_timeout = dcfg->idle_timeout;
    scfg.close_timeout = wc->scfg->shutdown_timeout;
    if (deflate) {
        scfg.deflate = deflate;
        scfg.deflate_min_size = WS_DEFLATE_MIN_SIZE;
        scfg.deflate_level = WS_DEFLATE_LEVEL;
        /* With context takeover the compressor lives as long as the
         * socket: a 4 KiB window (from the negotiation) and a small hash
         * keep it near 40 KiB; without, it only exists while a message is
         * compressed and may take zlib's defaults. */
        scfg.deflate_mem_level = dcfg->deflate_takeover ? 5 : 8;
    }
    rv = ws_session_create(&wc->session, r->pool, &scfg, &callbacks, wc,
                           wc->opened);
    if (rv == APR_SUCCESS) {
        *pwc = wc;
    }
    return rv;
}

/* Every connection can be reached as conn:<id>, and as user:<name> when
 * WebSocketUser names somebody (DESIGN.md §4, addressing). */
static void join_own_channels(ws_conn_t *wc)
{
    const char *err = NULL, *user;

    user = wc->dcfg->user ? ap_expr_str_exec(wc->r, wc->dcfg->user, &err)
                          : wc->r->user;
    if (err) {
        ap_log_cerror(APLOG_MARK, APLOG_WARNING, 0, wc->c,
                      WSLOGNO(00110) "ws %s: WebSocketUser: %s", wc->id, err);
    }
    if (user && *user) {
        wc->user = apr_pstrdup(wc->pool, user);
        if (ws_hub_subscribe(wc, apr_pstrcat(wc->scratch, "user:", user,
                                             NULL)) != APR_SUCCESS) {
            ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, wc->c,
                          WSLOGNO(00111) "ws %s: user '%s' makes no valid "
                          "channel name: not reachable as user:…", wc->id,
                          user);
        }
    }
    ws_hub_subscribe(wc, apr_pstrcat(wc->scratch, "conn:", wc->id, NULL));
}

void ws_conn_open(ws_conn_t *wc)
{
    apr_status_t rv = APR_SUCCESS;

    ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, wc->c,
                  WSLOGNO(00011) "ws %s: open on %s, handler %s", wc->id,
                  wc->r->uri, wc->dcfg->handler_name);
    ws_status_opened(wc->on_reactor);
    join_own_channels(wc);
    if (wc->handler->on_open) {
        rv = wc->handler->on_open(wc, wc->dcfg->handler_conf,
                                  &wc->handler_ctx);
    }
    apr_pool_clear(wc->scratch);
    if (rv != APR_SUCCESS) {
        ap_log_cerror(APLOG_MARK, APLOG_ERR, rv, wc->c,
                      WSLOGNO(00012) "ws %s: handler %s refused to open",
                      wc->id, wc->dcfg->handler_name);
        ws_session_close(wc->session, WS_CLOSE_INTERNAL_ERROR,
                         "handler failed", apr_time_now());
    }
}

/* Feed one brigade's data buckets to the session. */
static apr_status_t feed_brigade(ws_conn_t *wc, apr_size_t *nread,
                                 int *eof)
{
    apr_bucket *b;
    const char *data;
    apr_size_t len;
    apr_status_t rv;

    for (b = APR_BRIGADE_FIRST(wc->bb_in);
         b != APR_BRIGADE_SENTINEL(wc->bb_in); b = APR_BUCKET_NEXT(b)) {
        if (APR_BUCKET_IS_EOS(b)) {
            /* mod_http2 starts an upgraded stream with an EOS of its own
             * (httpd-api.md §7); any later EOS is the end of the stream. */
            if (wc->input_seen) {
                *eof = 1;
            }
            continue;
        }
        if (APR_BUCKET_IS_METADATA(b)) {
            continue;
        }
        rv = apr_bucket_read(b, &data, &len, APR_BLOCK_READ);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        *nread += len;
        rv = ws_session_feed(wc->session, (const unsigned char *)data, len,
                             apr_time_now());
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    return APR_SUCCESS;
}

apr_status_t ws_conn_read(ws_conn_t *wc, apr_size_t budget)
{
    apr_size_t nread = 0, before;
    apr_status_t rv = APR_SUCCESS;
    int eof = 0;
    /* The core input filter alone reads the socket until it has what was
     * asked or the socket says EAGAIN: less than asked means drained, and
     * asking again would only be one more read() returning EAGAIN.  Not so
     * under mod_ssl (OpenSSL keeps decrypted records) or on an HTTP/2
     * stream. */
    int plain = !wc->c->master && !ap_ssl_conn_is_ssl(wc->c);

    while (nread < budget
           && ws_session_state(wc->session) != WS_SESSION_CLOSED) {
        rv = ap_get_brigade(wc->c->input_filters, wc->bb_in,
                            AP_MODE_READBYTES, APR_NONBLOCK_READ,
                            WS_READ_CHUNK);
        /* "Nothing now" is EAGAIN under mod_ssl, an empty brigade on plain
         * connections (reactor-spike.md). */
        if (APR_STATUS_IS_EAGAIN(rv)
            || (rv == APR_SUCCESS && APR_BRIGADE_EMPTY(wc->bb_in))) {
            apr_brigade_cleanup(wc->bb_in);
            rv = APR_SUCCESS;
            break;
        }
        before = nread;
        if (rv == APR_SUCCESS) {
            rv = feed_brigade(wc, &nread, &eof);
        }
        wc->input_seen = 1;
        apr_brigade_cleanup(wc->bb_in);
        if (APR_STATUS_IS_EOF(rv) || eof) {
            rv = WS_CONN_EOF;
        }
        if (rv != APR_SUCCESS || (plain && nread - before < WS_READ_CHUNK)) {
            break;
        }
    }
    ws_status_traffic(0, 0, nread, 0);
    if (rv == APR_SUCCESS && nread >= budget) {
        rv = APR_INCOMPLETE;
    }
    return rv;
}

/* Hand n queued bytes to the output filters as a transient bucket (a
 * filter that cannot write them at once sets them aside, i.e. copies), then
 * let the session forget them. */
static apr_status_t pass_queued(ws_conn_t *wc, const unsigned char *data,
                                apr_size_t n, int flush)
{
    apr_bucket_alloc_t *ba = wc->c->bucket_alloc;
    apr_status_t rv;

    APR_BRIGADE_INSERT_TAIL(wc->bb_out, apr_bucket_transient_create(
                                (const char *)data, n, ba));
    if (flush) {
        APR_BRIGADE_INSERT_TAIL(wc->bb_out, apr_bucket_flush_create(ba));
    }
    rv = ap_pass_brigade(wc->c->output_filters, wc->bb_out);
    apr_brigade_cleanup(wc->bb_out);
    if (rv == APR_SUCCESS) {
        ws_session_consume(wc->session, n);
        ws_status_traffic(0, 0, 0, n);
    }
    return rv;
}

apr_status_t ws_conn_write(ws_conn_t *wc)
{
    const unsigned char *data;
    apr_size_t n;
    apr_status_t rv;

    /* FLUSH in the same brigade, so no filter sets the data aside (a copy)
     * before writing it (httpd-api.md §2.1). */
    while ((n = ws_session_pending(wc->session, &data)) > 0) {
        if ((rv = pass_queued(wc, data, n, 1)) != APR_SUCCESS) {
            return rv;
        }
    }
    return APR_SUCCESS;
}

/* The last filter (the core's) writes what the chain holds without
 * blocking when given no new data. */
static apr_status_t push_pending(conn_rec *c)
{
    ap_filter_t *f = c->output_filters;

    while (f->next) {
        f = f->next;
    }
    return f->frec->filter_func.out_func(f, NULL);
}

apr_status_t ws_conn_write_nonblocking(ws_conn_t *wc)
{
    const unsigned char *data;
    apr_size_t n;
    apr_status_t rv = APR_SUCCESS;

    if (wc->c->data_in_output_filters) {
        rv = push_pending(wc->c);
    }
    while (rv == APR_SUCCESS && !wc->c->data_in_output_filters
           && (n = ws_session_pending(wc->session, &data)) > 0) {
        /* At most FlushMaxThreshold's default per pass: above it the core
         * output filter blocks (reactor-spike.md, trap 7). */
        rv = pass_queued(wc, data, n > WS_WRITE_CHUNK ? WS_WRITE_CHUNK : n, 0);
        if (rv == APR_SUCCESS) {
            rv = push_pending(wc->c);
        }
    }
    return rv;
}

void ws_conn_shutdown(ws_conn_t *wc)
{
    apr_socket_t *sock;

    if (wc->stopping) {
        return;
    }
    wc->stopping = 1;
    ap_log_cerror(APLOG_MARK, APLOG_DEBUG, 0, wc->c,
                  WSLOGNO(00013) "ws %s: server stopping, closing with 1001",
                  wc->id);
    ws_session_close(wc->session, WS_CLOSE_GOING_AWAY,
                     "server shutting down", apr_time_now());
    /* A peer that reads nothing must not hold a blocking write (and so the
     * old child) past the shutdown bound.  HTTP/2 streams have no socket
     * of their own (their c2 "socket" is a dummy). */
    if (!wc->c->master) {
        sock = ap_get_conn_socket(wc->c);
        if (sock) {
            apr_socket_timeout_set(sock, wc->scfg->shutdown_timeout
                                         ? wc->scfg->shutdown_timeout
                                         : apr_time_from_msec(100));
        }
    }
}

apr_status_t ws_conn_take_deliveries(ws_conn_t *wc)
{
    if (ws_hub_drain(wc) == APR_SUCCESS) {
        return APR_SUCCESS;
    }
    ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, wc->c,
                  WSLOGNO(00112) "ws %s: more than WebSocketSendQueueLimit "
                  "(%" APR_SIZE_T_FMT " bytes) waits for the peer; dropping "
                  "it", wc->id, wc->dcfg->send_queue_limit);
    /* The close frame is for the record (access log, on_close): a peer
     * that reads nothing will not see it. */
    ws_session_close(wc->session, WS_CLOSE_POLICY, "send queue limit",
                     apr_time_now());
    wc->c->aborted = 1;
    return APR_ENOSPC;
}

void ws_conn_finish(ws_conn_t *wc)
{
    const ws_session_stats_t *st = ws_session_stats(wc->session);
    unsigned code;
    int level;

    /* First: from here on no other thread can reach wc. */
    ws_hub_unsubscribe_all(wc);
    code = ws_session_close_code(wc->session);

    if (wc->handler->on_close) {
        wc->handler->on_close(wc, wc->handler_ctx, code);
    }
    ws_status_closed(wc->on_reactor, code);
    /* A peer's protocol violation is the client's error: info, as httpd
     * logs client errors; an ordinary close is debug. */
    level = (code == WS_CLOSE_PROTOCOL_ERROR || code == WS_CLOSE_INVALID_DATA
             || code == WS_CLOSE_TOO_BIG) ? APLOG_INFO : APLOG_DEBUG;
    ap_log_cerror(APLOG_MARK, level, 0, wc->c,
                  WSLOGNO(00014) "ws %s: closed with %u (%s) after %"
                  APR_TIME_T_FMT " ms; messages in %" APR_UINT64_T_FMT
                  ", out %" APR_UINT64_T_FMT "; bytes in %" APR_UINT64_T_FMT
                  ", out %" APR_UINT64_T_FMT, wc->id, code,
                  ws_session_close_reason(wc->session),
                  apr_time_as_msec(apr_time_now() - wc->opened),
                  st->messages_in, st->messages_out, st->bytes_in,
                  st->bytes_out);
    /* For the access-log line httpd writes when the request ends:
     * %b shows the WebSocket's bytes out, %{ws-close}n the close code. */
    wc->r->bytes_sent = (apr_off_t)st->bytes_out;
    wc->r->sent_bodyct = 1;
    apr_table_setn(wc->r->notes, "ws-close",
                   apr_psprintf(wc->r->pool, "%u", code));
    apr_table_setn(wc->r->notes, "ws-id", wc->id);
}

apr_status_t ws_conn_registry_init(apr_pool_t *pchild)
{
    registry.head = NULL;
    registry.stopping = 0;
    return apr_thread_mutex_create(&registry.mutex, APR_THREAD_MUTEX_DEFAULT,
                                   pchild);
}

void ws_conn_registry_add(ws_conn_t *wc)
{
    apr_thread_mutex_lock(registry.mutex);
    wc->prev = NULL;
    wc->next = registry.head;
    if (registry.head) {
        registry.head->prev = wc;
    }
    registry.head = wc;
    apr_thread_mutex_unlock(registry.mutex);
}

void ws_conn_registry_remove(ws_conn_t *wc)
{
    apr_thread_mutex_lock(registry.mutex);
    if (wc->prev) {
        wc->prev->next = wc->next;
    }
    else {
        registry.head = wc->next;
    }
    if (wc->next) {
        wc->next->prev = wc->prev;
    }
    wc->prev = wc->next = NULL;
    apr_thread_mutex_unlock(registry.mutex);
}

void ws_conn_registry_stop(void)
{
    ws_conn_t *wc;

    apr_atomic_set32(&registry.stopping, 1);
    if (!registry.mutex) {
        return;
    }
    apr_thread_mutex_lock(registry.mutex);
    for (wc = registry.head; wc; wc = wc->next) {
        if (wc->pollset) {
            apr_pollset_wakeup(wc->pollset);
        }
    }
    apr_thread_mutex_unlock(registry.mutex);
}

int ws_conn_registry_stopping(void)
{
    return apr_atomic_read32(&registry.stopping) != 0;
}

void ws_conn_wake(ws_conn_t *wc)
{
    if (wc->on_reactor) {
        ws_reactor_post(wc);
    }
    else if (wc->pollset) {
        apr_pollset_wakeup(wc->pollset);
    }
}

/* The handlers' API (mod_ws.h). */

apr_status_t ws_conn_send(ws_conn_t *wc, int type, const void *data,
                          apr_size_t len)
{
    apr_status_t rv = ws_session_send(wc->session, (unsigned)type, data,
                                      len);

    if (rv == APR_SUCCESS) {
        ws_status_traffic(0, 1, 0, 0);
    }
    return rv;
}

void ws_conn_close(ws_conn_t *wc, unsigned code, const char *reason)
{
    ws_session_close(wc->session, code, reason, apr_time_now());
}

request_rec *ws_conn_request(ws_conn_t *wc)
{
    return wc->r;
}

apr_pool_t *ws_conn_pool(ws_conn_t *wc)
{
    return wc->pool;
}

apr_pool_t *ws_conn_scratch_pool(ws_conn_t *wc)
{
    return wc->scratch;
}

const char *ws_conn_id(ws_conn_t *wc)
{
    return wc->id;
}

const char *ws_conn_user(ws_conn_t *wc)
{
    return wc->user;
}

apr_status_t ws_conn_subscribe(ws_conn_t *wc, const char *channel)
{
    return ws_hub_subscribe(wc, channel);
}

void ws_conn_unsubscribe(ws_conn_t *wc, const char *channel)
{
    ws_hub_unsubscribe(wc, channel);
}

apr_status_t ws_publish(const char *channel, int type, const void *data,
                        apr_size_t len)
{
    return ws_hub_publish(channel, type, data, len, NULL, NULL);
}

apr_status_t ws_conn_publish(ws_conn_t *wc, const char *channel, int type,
                             const void *data, apr_size_t len, int flags)
{
    return ws_hub_publish(channel, type, data, len,
                          (flags & WS_PUBLISH_NOT_SELF) ? wc : NULL, NULL);
}
