/* mod_ws_channel.c: the "channel" handler: every data message a client
 * sends goes to every subscriber of the location's channels
 * (WebSocketChannel), in every child process.
 *
 * With WebSocketChannelControl on, the client learns its id from a hello
 * message, and text messages that are JSON objects with an "action" member
 * subscribe, unsubscribe and publish to further channels that
 * WebSocketChannelAllow lets it use.  Formats: README, "The channel
 * handler".
 *
 * Uses the public mod_ws.h for everything it does; its directives are
 * mod_ws's own, so it reads them from the engine's per-directory config.
 * Runs on the connection's owner thread; nothing here blocks.
 */
#include "mod_ws.h"
#include "mod_ws_config.h"

#include "apr_fnmatch.h"
#include "apr_strings.h"

#include <jansson.h>

typedef struct {
    const ws_dir_conf_t *d;
    apr_array_header_t *names;      /* const char *: the location's own */
} channel_ctx_t;

static void send_json(ws_conn_t *wc, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

    if (text) {
        ws_conn_send(wc, WS_MSG_TEXT, text, strlen(text));
        free(text);
    }
    json_decref(j);
}

static void send_error(ws_conn_t *wc, const char *error, const char *key,
                       const char *value)
{
    send_json(wc, key ? json_pack("{s:s,s:s}", "error", error, key, value)
                      : json_pack("{s:s}", "error", error));
}

static apr_status_t channel_open(ws_conn_t *wc, void *conf, void **pctx)
{
    request_rec *r = ws_conn_request(wc);
    channel_ctx_t *ctx = apr_pcalloc(ws_conn_pool(wc), sizeof(*ctx));
    const char *name, *err;
    json_t *list;
    int i;

    ctx->d = ws_config_dir(r);
    ctx->names = apr_array_make(ws_conn_pool(wc), 2, sizeof(name));
    for (i = 0; ctx->d->channels && i < ctx->d->channels->nelts; ++i) {
        err = NULL;
        name = ap_expr_str_exec(r, APR_ARRAY_IDX(ctx->d->channels, i,
                                                 ap_expr_info_t *), &err);
        if (err || !name || !ws_channel_name_ok(name, strlen(name))) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          WSLOGNO(00113) "ws %s: WebSocketChannel gives no "
                          "valid channel name ('%s'%s%s): left out",
                          ws_conn_id(wc), name ? name : "",
                          err ? ": " : "", err ? err : "");
            continue;
        }
        if (ws_conn_subscribe(wc, name) == APR_SUCCESS) {
            APR_ARRAY_PUSH(ctx->names, const char *)
                = apr_pstrdup(ws_conn_pool(wc), name);
        }
    }
    *pctx = ctx;
    if (ctx->d->channel_control) {
        list = json_array();
        for (i = 0; i < ctx->names->nelts; ++i) {
            json_array_append_new(list, json_string(
                APR_ARRAY_IDX(ctx->names, i, const char *)));
        }
        send_json(wc, json_pack("{s:s,s:s,s:s?,s:o}", "event", "hello",
                                "id", ws_conn_id(wc), "user",
                                ws_conn_user(wc), "channels", list));
    }
    return APR_SUCCESS;
}

/* A channel a control message may use: the location's own, or one that a
 * WebSocketChannelAllow pattern matches. */
static int allowed(const channel_ctx_t *ctx, const char *name)
{
    const apr_array_header_t *pats = ctx->d->channel_allow;
    int i;

    for (i = 0; i < ctx->names->nelts; ++i) {
        if (!strcmp(APR_ARRAY_IDX(ctx->names, i, const char *), name)) {
            return 1;
        }
    }
    for (i = 0; pats && i < pats->nelts; ++i) {
        if (apr_fnmatch(APR_ARRAY_IDX(pats, i, const char *), name, 0)
            == APR_SUCCESS) {
            return 1;
        }
    }
    return 0;
}

static int publish_flags(const channel_ctx_t *ctx)
{
    return ctx->d->channel_echo ? 0 : WS_PUBLISH_NOT_SELF;
}

static void control(ws_conn_t *wc, channel_ctx_t *ctx, json_t *msg)
{
    const char *action = json_string_value(json_object_get(msg, "action"));
    json_t *jch = json_object_get(msg, "channel");
    json_t *jdata = json_object_get(msg, "data");
    const char *ch = json_string_value(jch);
    int sub = !strcmp(action, "subscribe");
    int unsub = !strcmp(action, "unsubscribe");
    int pub = !strcmp(action, "publish");

    if (!sub && !unsub && !pub) {
        send_error(wc, "unknown action", "action", action);
        return;
    }
    if (!ch || (pub && !json_is_string(jdata))) {
        send_error(wc, "bad control message", NULL, NULL);
        return;
    }
    if (!ws_channel_name_ok(ch, json_string_length(jch))) {
        send_error(wc, "bad channel name", "channel", ch);
        return;
    }
    if (!allowed(ctx, ch)) {
        send_error(wc, "channel not allowed", "channel", ch);
        return;
    }
    if (pub) {
        ws_conn_publish(wc, ch, WS_MSG_TEXT, json_string_value(jdata),
                        json_string_length(jdata), publish_flags(ctx));
        return;
    }
    if (sub && ws_conn_subscribe(wc, ch) != APR_SUCCESS) {
        send_error(wc, "cannot subscribe", "channel", ch);
        return;
    }
    if (unsub) {
        ws_conn_unsubscribe(wc, ch);
    }
    send_json(wc, json_pack("{s:s,s:s}", "event",
                            sub ? "subscribed" : "unsubscribed",
                            "channel", ch));
}

static void channel_message(ws_conn_t *wc, void *pctx, int type,
                            const char *data, apr_size_t len)
{
    channel_ctx_t *ctx = pctx;
    json_t *msg;
    int i;

    /* A JSON object with a string "action" is a control message; any
     * other message is data. */
    if (ctx->d->channel_control && type == WS_MSG_TEXT && len
        && data[0] == '{') {
        msg = json_loadb(data, len, 0, NULL);
        if (json_is_object(msg)
            && json_is_string(json_object_get(msg, "action"))) {
            control(wc, ctx, msg);
            json_decref(msg);
            return;
        }
        json_decref(msg);
    }
    if (!ctx->names->nelts) {
        send_error(wc, "no channel to publish to", NULL, NULL);
        return;
    }
    for (i = 0; i < ctx->names->nelts; ++i) {
        ws_conn_publish(wc, APR_ARRAY_IDX(ctx->names, i, const char *), type,
                        data, len, publish_flags(ctx));
    }
}

const ws_handler_t ws_channel_handler = {
    NULL, channel_open, channel_message, NULL
};
