/* mod_ws_config.c: the directives, and config create/merge.
 *
 * Merging follows mod_proxy_wstunnel's pattern: each field has a _set bit, so
 * an inner <Location> overrides only what it names.  Runs at configuration
 * time only; nothing here is touched per request but the two getters.
 */
#include "mod_ws_config.h"

#include "ap_provider.h"
#include "apr_lib.h"
#include "apr_strings.h"
#include "apr_uri.h"


int ws_config_handlers_used;

void *ws_config_create_dir(apr_pool_t *p, char *dir)
{
    ws_dir_conf_t *d = apr_pcalloc(p, sizeof(*d));

    d->max_message = WS_DEFAULT_MAX_MESSAGE;
    d->idle_timeout = WS_DEFAULT_IDLE_TIMEOUT;
    d->ping_interval = WS_DEFAULT_PING_INTERVAL;
    d->origin_mode = WS_ORIGIN_SAME;
    d->send_queue_limit = WS_DEFAULT_SEND_QUEUE_LIMIT;
    d->channel_echo = 1;
    d->forward_timeout = WS_DEFAULT_FORWARD_TIMEOUT;
    d->forward_max_answer = WS_DEFAULT_FORWARD_MAX_ANSWER;
    d->dbd_timeout = WS_DEFAULT_DBD_TIMEOUT;
    return d;
}

#define WS_MERGE(field) \
    do { \
        d->field = add->field##_set ? add->field : base->field; \
        d->field##_set = add->field##_set || base->field##_set; \
    } while (0)

void *ws_config_merge_dir(apr_pool_t *p, void *basev, void *addv)
{
    const ws_dir_conf_t *base = basev, *add = addv;
    ws_dir_conf_t *d = apr_pcalloc(p, sizeof(*d));

    if (add->handler_set) {
        d->handler = add->handler;
        d->handler_name = add->handler_name;
        d->handler_args = add->handler_args;
        d->handler_conf = add->handler_conf;
    }
    else {
        d->handler = base->handler;
        d->handler_name = base->handler_name;
        d->handler_args = base->handler_args;
        d->handler_conf = base->handler_conf;
    }
    d->handler_set = add->handler_set || base->handler_set;
    WS_MERGE(protocols);
    WS_MERGE(max_message);
    WS_MERGE(idle_timeout);
    WS_MERGE(ping_interval);
    WS_MERGE(driver);
    WS_MERGE(send_queue_limit);
    WS_MERGE(user);
    WS_MERGE(channels);
    WS_MERGE(channel_allow);
    WS_MERGE(channel_echo);
    WS_MERGE(channel_control);
    WS_MERGE(forward_events);
    WS_MERGE(forward_timeout);
    WS_MERGE(forward_max_answer);
    WS_MERGE(deflate);
    WS_MERGE(deflate_takeover);
    if (add->origin_set) {
        d->origin_mode = add->origin_mode;
        d->origins = add->origins;
    }
    else {
        d->origin_mode = base->origin_mode;
        d->origins = base->origins;
    }
    d->origin_set = add->origin_set || base->origin_set;
    WS_MERGE(dbd_queries);
    WS_MERGE(dbd_timeout);
    return d;
}

void *ws_config_create_server(apr_pool_t *p, server_rec *s)
{
    ws_server_conf_t *sc = apr_pcalloc(p, sizeof(*sc));

    sc->shutdown_timeout = WS_DEFAULT_SHUTDOWN_TIMEOUT;
    return sc;
}

void *ws_config_merge_server(apr_pool_t *p, void *basev, void *addv)
{
    const ws_server_conf_t *base = basev, *add = addv;
    ws_server_conf_t *d = apr_pcalloc(p, sizeof(*d));

    WS_MERGE(shutdown_timeout);
    WS_MERGE(max_connections);
    d->broker_host = add->broker_set ? add->broker_host : base->broker_host;
    d->broker_port = add->broker_set ? add->broker_port : base->broker_port;
    d->broker_prefix = add->broker_set ? add->broker_prefix
                                       : base->broker_prefix;
    d->broker_set = add->broker_set || base->broker_set;
    return d;
}

const ws_dir_conf_t *ws_config_dir(const request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &ws_module);
}

const ws_server_conf_t *ws_config_server(const server_rec *s)
{
    return ap_get_module_config(s->module_config, &ws_module);
}

static const char *known_handlers(apr_pool_t *p)
{
    apr_array_header_t *names = ap_list_provider_names(p, WS_PROVIDER_GROUP,
                                                       WS_PROVIDER_VERSION);
    const ap_list_provider_names_t *n;
    const char *list = NULL;
    int i;

    for (i = 0; names && i < names->nelts; ++i) {
        n = &APR_ARRAY_IDX(names, i, ap_list_provider_names_t);
        list = list ? apr_pstrcat(p, list, ", ", n->provider_name, NULL)
                    : n->provider_name;
    }
    return list ? list : "none";
}

/* RFC 7230 §3.2.6 token, which §4.1 of RFC 6455 asks of subprotocols. */
static int is_token(const char *s)
{
    if (!*s) {
        return 0;
    }
    for (; *s; ++s) {
        if (!apr_isalnum(*s) && !strchr("!#$%&'*+-.^_`|~", *s)) {
            return 0;
        }
    }
    return 1;
}

/* WebSocketHandler NAME [args…]: NAME is a provider of group "websocket";
 * an unknown NAME is an error naming the ones that exist. */
static const char *set_handler(cmd_parms *cmd, void *dv, const char *line)
{
    ws_dir_conf_t *d = dv;
    const char *name = ap_getword_conf(cmd->pool, &line);

    if (!*name) {
        return "WebSocketHandler needs a handler name";
    }
    d->handler = ap_lookup_provider(WS_PROVIDER_GROUP, name,
                                    WS_PROVIDER_VERSION);
    if (!d->handler) {
        return apr_psprintf(cmd->pool, "WebSocketHandler: unknown handler "
                            "'%s' (known: %s)", name,
                            known_handlers(cmd->pool));
    }
    while (apr_isspace(*line)) {
        ++line;
    }
    d->handler_name = name;
    d->handler_args = *line ? line : NULL;
    d->handler_conf = NULL;
    if (d->handler->configure) {
        const char *err = d->handler->configure(cmd->pool, d->handler_args,
                                                &d->handler_conf);

        if (err) {
            return apr_psprintf(cmd->pool, "WebSocketHandler %s: %s", name,
                                err);
        }
    }
    else if (d->handler_args) {
        return apr_psprintf(cmd->pool, "WebSocketHandler %s takes no "
                            "arguments", name);
    }
    d->handler_set = 1;
    ws_config_handlers_used = 1;
    return NULL;
}

static const char *set_protocols(cmd_parms *cmd, void *dv, const char *arg)
{
    ws_dir_conf_t *d = dv;

    if (!d->protocols_set) {
        d->protocols = apr_array_make(cmd->pool, 4, sizeof(const char *));
        d->protocols_set = 1;
    }
    if (!is_token(arg)) {
        return apr_psprintf(cmd->pool, "WebSocketProtocols: '%s' is not an "
                            "HTTP token (RFC 6455 §4.1)", arg);
    }
    APR_ARRAY_PUSH(d->protocols, const char *) = arg;
    return NULL;
}

static const char *set_origin(cmd_parms *cmd, void *dv, const char *arg)
{
    ws_dir_conf_t *d = dv;

    if (!d->origin_set) {
        d->origins = apr_array_make(cmd->pool, 2, sizeof(const char *));
        d->origin_mode = WS_ORIGIN_LIST;
        d->origin_set = 1;
    }
    if (!strcasecmp(arg, "same") || !strcasecmp(arg, "any")) {
        if (d->origins->nelts || d->origin_mode != WS_ORIGIN_LIST) {
            return "WebSocketAllowOrigin: 'same' and 'any' stand alone";
        }
        d->origin_mode = strcasecmp(arg, "same") ? WS_ORIGIN_ANY
                                                 : WS_ORIGIN_SAME;
        return NULL;
    }
    if (d->origin_mode != WS_ORIGIN_LIST) {
        return "WebSocketAllowOrigin: 'same' and 'any' stand alone";
    }
    if (strncasecmp(arg, "http://", 7) && strncasecmp(arg, "https://", 8)) {
        return apr_psprintf(cmd->pool, "WebSocketAllowOrigin: '%s' is not "
                            "same, any, or an http(s)://host[:port] origin",
                            arg);
    }
    APR_ARRAY_PUSH(d->origins, const char *) = arg;
    return NULL;
}

static const char *parse_size(cmd_parms *cmd, const char *arg,
                              apr_size_t *out)
{
    char *end;
    apr_int64_t v = apr_strtoi64(arg, &end, 10);

    if (*end || v < 1 || (apr_uint64_t)v > APR_SIZE_MAX) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a positive number "
                            "of bytes", cmd->cmd->name, arg);
    }
    *out = (apr_size_t)v;
    return NULL;
}

/* Seconds, 0 allowed (= off) where the directive says so. */
static const char *parse_secs(cmd_parms *cmd, const char *arg, int zero_ok,
                              apr_interval_time_t *out)
{
    char *end;
    apr_int64_t v = apr_strtoi64(arg, &end, 10);

    if (*end || v < (zero_ok ? 0 : 1) || v > 86400 * 365) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a number of seconds"
                            "%s", cmd->cmd->name, arg,
                            zero_ok ? " (0 turns it off)" : "");
    }
    *out = apr_time_from_sec(v);
    return NULL;
}

static const char *set_max_message(cmd_parms *cmd, void *dv, const char *a)
{
    ws_dir_conf_t *d = dv;

    d->max_message_set = 1;
    return parse_size(cmd, a, &d->max_message);
}

static const char *set_idle_timeout(cmd_parms *cmd, void *dv, const char *a)
{
    ws_dir_conf_t *d = dv;

    d->idle_timeout_set = 1;
    return parse_secs(cmd, a, 1, &d->idle_timeout);
}

static const char *set_ping_interval(cmd_parms *cmd, void *dv, const char *a)
{
    ws_dir_conf_t *d = dv;

    d->ping_interval_set = 1;
    return parse_secs(cmd, a, 1, &d->ping_interval);
}

static const char *set_driver(cmd_parms *cmd, void *dv, const char *a)
{
    ws_dir_conf_t *d = dv;

    if (!strcasecmp(a, "auto")) {
        d->driver = WS_DRIVER_AUTO;
    }
    else if (!strcasecmp(a, "thread")) {
        d->driver = WS_DRIVER_THREAD;
    }
    else {
        return "WebSocketDriver: auto or thread";
    }
    d->driver_set = 1;
    return NULL;
}

static const char *set_send_queue_limit(cmd_parms *cmd, void *dv,
                                        const char *a)
{
    ws_dir_conf_t *d = dv;

    d->send_queue_limit_set = 1;
    return parse_size(cmd, a, &d->send_queue_limit);
}

/* An ap_expr string: "chat", "room-%{REMOTE_USER}". */
static const char *parse_expr(cmd_parms *cmd, const char *arg,
                              ap_expr_info_t **out)
{
    const char *err = NULL;

    *out = ap_expr_parse_cmd(cmd, arg, AP_EXPR_FLAG_STRING_RESULT, &err,
                             NULL);
    if (err) {
        return apr_psprintf(cmd->pool, "%s: cannot parse '%s': %s",
                            cmd->cmd->name, arg, err);
    }
    return NULL;
}

static const char *set_user(cmd_parms *cmd, void *dv, const char *a)
{
    ws_dir_conf_t *d = dv;

    d->user_set = 1;
    return parse_expr(cmd, a, &d->user);
}

static const char *set_channel(cmd_parms *cmd, void *dv, const char *a)
{
    ws_dir_conf_t *d = dv;
    ap_expr_info_t *e;
    const char *err;

    if (!d->channels_set) {
        d->channels = apr_array_make(cmd->pool, 2, sizeof(e));
        d->channels_set = 1;
    }
    if ((err = parse_expr(cmd, a, &e))) {
        return err;
    }
    APR_ARRAY_PUSH(d->channels, ap_expr_info_t *) = e;
    return NULL;
}

static const char *set_channel_allow(cmd_parms *cmd, void *dv, const char *a)
{
    ws_dir_conf_t *d = dv;

    if (!d->channel_allow_set) {
        d->channel_allow = apr_array_make(cmd->pool, 2, sizeof(a));
        d->channel_allow_set = 1;
    }
    APR_ARRAY_PUSH(d->channel_allow, const char *) = a;
    return NULL;
}

static const char *set_forward_events(cmd_parms *cmd, void *dv,
                                      const char *a)
{
    ws_dir_conf_t *d = dv;

    if (!d->forward_events_set) {
        d->forward_events = 0;
        d->forward_events_set = 1;
    }
    if (!strcasecmp(a, "open")) {
        d->forward_events |= WS_FORWARD_OPEN;
    }
    else if (!strcasecmp(a, "close")) {
        d->forward_events |= WS_FORWARD_CLOSE;
    }
    else if (strcasecmp(a, "none")) {
        return apr_psprintf(cmd->pool, "WebSocketForwardEvents: '%s' is not "
                            "open, close or none", a);
    }
    return NULL;
}

static const char *set_forward_timeout(cmd_parms *cmd, void *dv,
                                       const char *a)
{
    ws_dir_conf_t *d = dv;

    d->forward_timeout_set = 1;
    return parse_secs(cmd, a, 0, &d->forward_timeout);
}

static const char *set_forward_max_answer(cmd_parms *cmd, void *dv,
                                          const char *a)
{
    ws_dir_conf_t *d = dv;

    d->forward_max_answer_set = 1;
    return parse_size(cmd, a, &d->forward_max_answer);
}

/* WebSocketChannelEcho and WebSocketChannelControl (cmd->info says which). */
static const char *set_channel_flag(cmd_parms *cmd, void *dv, int on)
{
    ws_dir_conf_t *d = dv;

    if (cmd->info) {
        d->channel_control = on;
        d->channel_control_set = 1;
    }
    else {
        d->channel_echo = on;
        d->channel_echo_set = 1;
    }
    return NULL;
}

static const char *set_deflate(cmd_parms *cmd, void *dv, int on)
{
    ws_dir_conf_t *d = dv;

    d->deflate = on;
    d->deflate_set = 1;
    return NULL;
}

static const char *set_deflate_takeover(cmd_parms *cmd, void *dv, int on)
{
    ws_dir_conf_t *d = dv;

    d->deflate_takeover = on;
    d->deflate_takeover_set = 1;
    return NULL;
}

static const char *set_shutdown_timeout(cmd_parms *cmd, void *dv,
                                        const char *a)
{
    ws_server_conf_t *sc = ap_get_module_config(cmd->server->module_config,
                                                &ws_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (err) {
        return err;
    }
    sc->shutdown_timeout_set = 1;
    return parse_secs(cmd, a, 0, &sc->shutdown_timeout);
}

static const char *set_max_connections(cmd_parms *cmd, void *dv,
                                       const char *a)
{
    ws_server_conf_t *sc = ap_get_module_config(cmd->server->module_config,
                                                &ws_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    char *end;
    apr_int64_t v;

    if (err) {
        return err;
    }
    v = apr_strtoi64(a, &end, 10);
    if (*end || v < 0 || v > 100000000) {
        return apr_psprintf(cmd->pool, "WebSocketMaxConnections: '%s' is "
                            "not a number of connections (0: no limit)", a);
    }
    sc->max_connections = (long)v;
    sc->max_connections_set = 1;
    return NULL;
}

/* WebSocketBroker local | redis://host[:port][/prefix] */
static const char *set_broker(cmd_parms *cmd, void *dv, const char *a)
{
    ws_server_conf_t *sc = ap_get_module_config(cmd->server->module_config,
                                                &ws_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    apr_uri_t u;

    if (err) {
        return err;
    }
    sc->broker_set = 1;
    if (!strcasecmp(a, "local")) {
        sc->broker_host = NULL;
        return NULL;
    }
    if (apr_uri_parse(cmd->pool, a, &u) != APR_SUCCESS || !u.scheme
        || strcasecmp(u.scheme, "redis") || !u.hostname || !*u.hostname
        || u.query || u.user) {
        return apr_psprintf(cmd->pool, "WebSocketBroker: '%s' is neither "
                            "local nor redis://host[:port][/prefix]", a);
    }
    sc->broker_host = u.hostname;
    sc->broker_port = u.port_str ? (int)u.port : 6379;
    sc->broker_prefix = (u.path && u.path[0] == '/' && u.path[1])
                        ? u.path + 1 : "mod_ws";
    if (sc->broker_port <= 0 || strpbrk(sc->broker_prefix, " /\r\n")) {
        return apr_psprintf(cmd->pool, "WebSocketBroker: '%s': bad port or "
                            "prefix", a);
    }
    return NULL;
}

/* WebSocketDBDQuery label…: the DBDPrepareSQL labels the dbd handler may
 * run here; repeated lines add to the list. */
static const char *set_dbd_query(cmd_parms *cmd, void *dv, const char *arg)
{
    ws_dir_conf_t *d = dv;

    if (!d->dbd_queries_set) {
        d->dbd_queries = apr_array_make(cmd->pool, 4, sizeof(const char *));
        d->dbd_queries_set = 1;
    }
    APR_ARRAY_PUSH(d->dbd_queries, const char *) = arg;
    return NULL;
}

static const char *set_dbd_timeout(cmd_parms *cmd, void *dv, const char *a)
{
    ws_dir_conf_t *d = dv;

    d->dbd_timeout_set = 1;
    return parse_secs(cmd, a, 1, &d->dbd_timeout);
}

const command_rec ws_config_cmds[] = {
    AP_INIT_RAW_ARGS("WebSocketHandler", set_handler, NULL, ACCESS_CONF,
                     "the handler that serves WebSockets here, and its "
                     "arguments"),
    AP_INIT_ITERATE("WebSocketProtocols", set_protocols, NULL, ACCESS_CONF,
                    "subprotocols offered, in order of preference"),
    AP_INIT_ITERATE("WebSocketAllowOrigin", set_origin, NULL, ACCESS_CONF,
                    "'same' (default), 'any', or the origins allowed"),
    AP_INIT_TAKE1("WebSocketMaxMessageSize", set_max_message, NULL,
                  ACCESS_CONF, "largest message in bytes; larger ones "
                  "close with 1009"),
    AP_INIT_TAKE1("WebSocketIdleTimeout", set_idle_timeout, NULL, ACCESS_CONF,
                  "seconds without anything from the peer before closing "
                  "(0: never)"),
    AP_INIT_TAKE1("WebSocketPingInterval", set_ping_interval, NULL,
                  ACCESS_CONF, "seconds of silence before the server pings "
                  "(0: never)"),
    AP_INIT_TAKE1("WebSocketDriver", set_driver, NULL, ACCESS_CONF,
                  "auto (default: a per-child reactor on the event MPM) or "
                  "thread (a worker thread per WebSocket)"),
    AP_INIT_TAKE1("WebSocketSendQueueLimit", set_send_queue_limit, NULL,
                  ACCESS_CONF, "bytes of published messages a slow peer may "
                  "have waiting before it is dropped (1008)"),
    AP_INIT_TAKE1("WebSocketUser", set_user, NULL, ACCESS_CONF,
                  "expression naming the connection's user (default "
                  "%{REMOTE_USER}); it joins channel user:<name>"),
    AP_INIT_ITERATE("WebSocketChannel", set_channel, NULL, ACCESS_CONF,
                    "channels (names or expressions) the channel handler "
                    "joins and publishes to"),
    AP_INIT_ITERATE("WebSocketChannelAllow", set_channel_allow, NULL,
                    ACCESS_CONF, "channels (wildcards) that control "
                    "messages may subscribe and publish to"),
    AP_INIT_FLAG("WebSocketChannelEcho", set_channel_flag, NULL, ACCESS_CONF,
                 "on (default): a sender gets its own channel messages"),
    AP_INIT_FLAG("WebSocketChannelControl", set_channel_flag, (void *)1,
                 ACCESS_CONF, "on: JSON control messages and a hello "
                 "message with the connection's id"),
    AP_INIT_ITERATE("WebSocketForwardEvents", set_forward_events, NULL,
                    ACCESS_CONF, "also forward these events: open, close "
                    "(or none)"),
    AP_INIT_TAKE1("WebSocketForwardTimeout", set_forward_timeout, NULL,
                  ACCESS_CONF, "seconds a backend has to answer"),
    AP_INIT_TAKE1("WebSocketForwardMaxResponse", set_forward_max_answer, NULL,
                  ACCESS_CONF, "largest backend answer in bytes"),
    AP_INIT_TAKE1("WebSocketMaxConnections", set_max_connections, NULL,
                  RSRC_CONF, "the most WebSockets open at once in the whole "
                  "server; beyond it handshakes get 503 (0: no limit)"),
    AP_INIT_TAKE1("WebSocketBroker", set_broker, NULL, RSRC_CONF,
                  "local (default) or redis://host[:port][/prefix]: how "
                  "channel messages reach other servers"),
    AP_INIT_FLAG("WebSocketDeflate", set_deflate, NULL, ACCESS_CONF,
                 "on: accept permessage-deflate (RFC 7692) when the client "
                 "offers it (default off)"),
    AP_INIT_FLAG("WebSocketDeflateContextTakeover", set_deflate_takeover,
                 NULL, ACCESS_CONF, "on: keep each side's compression "
                 "context between messages (better ratio, ~50 KiB per "
                 "socket); off (default): none kept"),
    AP_INIT_TAKE1("WebSocketShutdownTimeout", set_shutdown_timeout, NULL,
                  RSRC_CONF, "seconds WebSockets get to close on graceful "
                  "restart or stop"),
    AP_INIT_ITERATE("WebSocketDBDQuery", set_dbd_query, NULL, ACCESS_CONF,
                    "DBDPrepareSQL labels the dbd handler may run here"),
    AP_INIT_TAKE1("WebSocketDBDTimeout", set_dbd_timeout, NULL, ACCESS_CONF,
                  "seconds a dbd query waits for a free database handle "
                  "before answering busy (0: no wait)"),
    { NULL }
};
