/* build/bench.d/echo-lws.c: the libwebsockets peer of build/bench.
 *
 * Usage: echo-lws PORT.  Listens on 127.0.0.1:PORT (one thread, lws's own
 * event loop) and echoes every message with its own type, on any path.
 * Messages are gathered from their fragments (lws hands a large frame over
 * in pieces) and queued per connection, so several may be in flight; each
 * goes out in SERVER_WRITEABLE, as lws wants writes done.
 * build/bench compiles it: gcc -O2 echo-lws.c $(pkg-config --libs libwebsockets)
 */
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct msg_s {
    struct msg_s *next;
    size_t len;
    int binary;
    unsigned char buf[];         /* LWS_PRE bytes of room, then the payload */
} msg_t;

typedef struct {
    msg_t *head, *tail;
    unsigned char *rx;           /* the message being gathered */
    size_t rx_len, rx_cap;
    int rx_binary, in_msg;
} pss_t;

static volatile int interrupted;

static void pss_free(pss_t *pss)
{
    msg_t *m;

    while ((m = pss->head)) {
        pss->head = m->next;
        free(m);
    }
    pss->tail = NULL;
    free(pss->rx);
    pss->rx = NULL;
    pss->rx_cap = pss->rx_len = 0;
}

static int receive(struct lws *wsi, pss_t *pss, const void *in, size_t len)
{
    msg_t *m;

    if (!pss->in_msg) {
        pss->in_msg = 1;
        pss->rx_len = 0;
        pss->rx_binary = lws_frame_is_binary(wsi);
    }
    if (pss->rx_len + len > pss->rx_cap) {
        size_t cap = (pss->rx_len + len) * 2;
        unsigned char *n = realloc(pss->rx, cap);

        if (!n) {
            return -1;
        }
        pss->rx = n;
        pss->rx_cap = cap;
    }
    memcpy(pss->rx + pss->rx_len, in, len);
    pss->rx_len += len;
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi)) {
        return 0;
    }
    pss->in_msg = 0;
    m = malloc(sizeof(*m) + LWS_PRE + pss->rx_len);
    if (!m) {
        return -1;
    }
    m->next = NULL;
    m->len = pss->rx_len;
    m->binary = pss->rx_binary;
    memcpy(m->buf + LWS_PRE, pss->rx, pss->rx_len);
    if (pss->tail) {
        pss->tail->next = m;
    }
    else {
        pss->head = m;
    }
    pss->tail = m;
    lws_callback_on_writable(wsi);
    return 0;
}

static int callback_echo(struct lws *wsi, enum lws_callback_reasons reason,
                         void *user, void *in, size_t len)
{
    pss_t *pss = user;
    msg_t *m;

    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        memset(pss, 0, sizeof(*pss));
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return receive(wsi, pss, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (!(m = pss->head)) {
            return 0;
        }
        if (lws_write(wsi, m->buf + LWS_PRE, m->len,
                      m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT)
            < (int)m->len) {
            return -1;
        }
        pss->head = m->next;
        if (!pss->head) {
            pss->tail = NULL;
        }
        free(m);
        if (pss->head) {
            lws_callback_on_writable(wsi);
        }
        return 0;
    case LWS_CALLBACK_CLOSED:
        pss_free(pss);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* The first protocol is the one a client without Sec-WebSocket-Protocol
 * gets. */
static const struct lws_protocols protocols[] = {
    { "echo", callback_echo, sizeof(pss_t), 65536, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 }
};

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

int main(int argc, char **argv)
{
    struct lws_context_creation_info info;
    struct lws_context *ctx;

    if (argc != 2) {
        return 2;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
    memset(&info, 0, sizeof(info));
    info.port = atoi(argv[1]);
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    ctx = lws_create_context(&info);
    if (!ctx) {
        return 1;
    }
    fprintf(stderr, "libwebsockets %s on %d\n", lws_get_library_version(),
            info.port);
    while (!interrupted && lws_service(ctx, 0) >= 0) {
    }
    lws_context_destroy(ctx);
    return 0;
}
