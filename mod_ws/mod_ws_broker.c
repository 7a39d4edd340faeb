/* mod_ws_broker.c: the hub process's Redis pub/sub link (see
 * mod_ws_broker.h).
 *
 * hiredis's async contexts with an event adapter of our own: the adapter
 * only records whether hiredis wants to read or write, and the hub's poll
 * loop polls accordingly.  Two connections: one SUBSCRIBEd to the broker
 * channel, one that PUBLISHes.  Each message is this hub's 16-byte random
 * id followed by one hub frame (ws_hubwire.h); a hub drops its own.
 *
 * Runs in the hub process only, on its one thread; nothing here blocks
 * (hiredis connects and writes without waiting).
 */
#include "mod_ws_broker.h"
#include "mod_ws_hub.h"

#include "apr_strings.h"

#include "ws_hubwire.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WS_BROKER_ID_LEN 16
/* How often an absent Redis is tried again. */
#define WS_BROKER_RETRY apr_time_from_sec(1)

typedef struct {
    ws_broker_t *b;
    redisAsyncContext *ac;          /* NULL: not connected */
    int subscriber;
    int reading, writing;           /* what hiredis wants polled */
    int up;                         /* connected */
    int said_down;                  /* "unreachable" was logged */
    apr_time_t retry_at;
} link_t;

struct ws_broker_t {
    const char *host;
    int port;
    const char *channel;
    server_rec *s;
    ws_broker_deliver_fn deliver;
    void *baton;
    unsigned char id[WS_BROKER_ID_LEN];
    link_t pub, sub;
    link_t *polled[2];              /* the links ws_broker_pollfds gave */
    apr_uint64_t dropped;           /* publications Redis was too slow for */
};

/* ---- the event adapter: remember what hiredis asks for ---- */

static void ev_add_read(void *d) { ((link_t *)d)->reading = 1; }
static void ev_del_read(void *d) { ((link_t *)d)->reading = 0; }
static void ev_add_write(void *d) { ((link_t *)d)->writing = 1; }
static void ev_del_write(void *d) { ((link_t *)d)->writing = 0; }

static void ev_cleanup(void *d)
{
    link_t *l = d;

    l->reading = l->writing = 0;
}

static const char *link_name(const link_t *l)
{
    return l->subscriber ? "subscriber" : "publisher";
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    link_t *l = ac->data;

    if (status != REDIS_OK) {
        /* hiredis frees the context after this. */
        if (!l->said_down) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, l->b->s,
                         WSLOGNO(00130) "broker: cannot reach Redis at "
                         "%s:%d (%s); messages stay on this server until "
                         "it can", l->b->host, l->b->port,
                         ac->errstr ? ac->errstr : "?");
            l->said_down = 1;
        }
        l->ac = NULL;
        l->up = 0;
        l->retry_at = apr_time_now() + WS_BROKER_RETRY;
        return;
    }
    l->up = 1;
    l->said_down = 0;
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, l->b->s,
                 WSLOGNO(00131) "broker: %s connected to Redis at %s:%d, "
                 "channel %s", link_name(l), l->b->host, l->b->port,
                 l->b->channel);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    link_t *l = ac->data;

    if (l->up) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, l->b->s,
                     WSLOGNO(00132) "broker: %s lost Redis at %s:%d (%s); "
                     "reconnecting", link_name(l), l->b->host, l->b->port,
                     ac->errstr && *ac->errstr ? ac->errstr : "closed");
        l->said_down = 1;
    }
    l->ac = NULL;
    l->up = 0;
    l->reading = l->writing = 0;
    l->retry_at = apr_time_now() + WS_BROKER_RETRY;
}

/* A message on the broker channel: another server's frame, or our own. */
static void on_message(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *reply = r;
    ws_broker_t *b = priv;
    const redisReply *msg;
    ws_hubframe_t f;
    apr_size_t len;

    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3
        || reply->element[0]->type != REDIS_REPLY_STRING
        || strcmp(reply->element[0]->str, "message")) {
        return;        /* the subscription's own confirmation */
    }
    msg = reply->element[2];
    if (msg->type != REDIS_REPLY_STRING || msg->len < WS_BROKER_ID_LEN
        || !memcmp(msg->str, b->id, WS_BROKER_ID_LEN)) {
        return;
    }
    len = (apr_size_t)msg->len - WS_BROKER_ID_LEN;
    if (ws_hubframe_parse(msg->str + WS_BROKER_ID_LEN, len, WS_HUB_BUFFER_MAX,
                          &f) != (apr_ssize_t)len) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, b->s,
                     WSLOGNO(00133) "broker: a message on %s is not a "
                     "mod_ws frame; ignored", b->channel);
        return;
    }
    b->deliver(b->baton, msg->str + WS_BROKER_ID_LEN, len);
}

static void link_connect(link_t *l)
{
    ws_broker_t *b = l->b;
    redisAsyncContext *ac = redisAsyncConnect(b->host, b->port);

    l->retry_at = apr_time_now() + WS_BROKER_RETRY;
    if (!ac || ac->err) {
        if (!l->said_down) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, b->s,
                         WSLOGNO(00130) "broker: cannot reach Redis at "
                         "%s:%d (%s); messages stay on this server until "
                         "it can", b->host, b->port,
                         ac && ac->errstr ? ac->errstr : "out of memory");
            l->said_down = 1;
        }
        if (ac) {
            redisAsyncFree(ac);
        }
        return;
    }
    ac->data = l;
    ac->ev.data = l;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    l->ac = ac;
    /* hiredis asked to write before the hooks were in place. */
    l->writing = 1;
    if (l->subscriber) {
        redisAsyncCommand(ac, on_message, b, "SUBSCRIBE %s", b->channel);
    }
}

ws_broker_t *ws_broker_create(const char *host, int port, const char *prefix,
                              server_rec *s, ws_broker_deliver_fn deliver,
                              void *baton)
{
    ws_broker_t *b = calloc(1, sizeof(*b));

    if (!b) {
        return NULL;
    }
    b->host = host;
    b->port = port;
    b->channel = prefix;
    b->s = s;
    b->deliver = deliver;
    b->baton = baton;
    if (apr_generate_random_bytes(b->id, sizeof(b->id)) != APR_SUCCESS) {
        apr_time_t now = apr_time_now();
        pid_t pid = getpid();

        memcpy(b->id, &now, sizeof(now));
        memcpy(b->id + sizeof(now), &pid, sizeof(pid));
    }
    b->pub.b = b->sub.b = b;
    b->sub.subscriber = 1;
    link_connect(&b->sub);
    link_connect(&b->pub);
    return b;
}

int ws_broker_pollfds(ws_broker_t *b, struct pollfd *pfd)
{
    link_t *links[2] = { &b->sub, &b->pub };
    int i, n = 0;

    for (i = 0; i < 2; ++i) {
        link_t *l = links[i];

        if (l->ac && (l->reading || l->writing)) {
            pfd[n].fd = l->ac->c.fd;
            pfd[n].events = (short)((l->reading ? POLLIN : 0)
                                    | (l->writing ? POLLOUT : 0));
            pfd[n].revents = 0;
            b->polled[n++] = l;
        }
    }
    return n;
}

void ws_broker_handle(ws_broker_t *b, const struct pollfd *pfd, int n)
{
    apr_time_t now;
    int i;

    for (i = 0; i < n; ++i) {
        link_t *l = b->polled[i];

        if (l->ac && (pfd[i].revents & (POLLIN | POLLERR | POLLHUP))) {
            redisAsyncHandleRead(l->ac);
        }
        /* The read may have ended the connection (and freed it). */
        if (l->ac && (pfd[i].revents & (POLLOUT | POLLERR))) {
            redisAsyncHandleWrite(l->ac);
        }
    }
    now = apr_time_now();
    if (!b->sub.ac && now >= b->sub.retry_at) {
        link_connect(&b->sub);
    }
    if (!b->pub.ac && now >= b->pub.retry_at) {
        link_connect(&b->pub);
    }
}

void ws_broker_publish(ws_broker_t *b, const char *frame, apr_size_t len)
{
    redisAsyncContext *ac = b->pub.ac;

    if (!ac || !b->pub.up) {
        return;
    }
    /* hiredis buffers without bound: a Redis that does not keep up loses
     * messages, not the hub its memory. */
    if (sdslen(ac->c.obuf) > WS_HUB_BUFFER_MAX) {
        if (b->dropped++ % 10000 == 0) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, b->s,
                         WSLOGNO(00134) "broker: Redis is not keeping up; "
                         "%" APR_UINT64_T_FMT " messages not sent to other "
                         "servers so far", b->dropped);
        }
        return;
    }
    redisAsyncCommand(ac, NULL, NULL, "PUBLISH %s %b%b", b->channel,
                      b->id, (size_t)WS_BROKER_ID_LEN, frame, (size_t)len);
}
