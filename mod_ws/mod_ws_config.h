/* mod_ws_config.h: per-directory and per-server configuration. */
#ifndef MOD_WS_CONFIG_H
#define MOD_WS_CONFIG_H

#include "mod_ws_private.h"

#include "ap_expr.h"

typedef enum {
    WS_ORIGIN_SAME = 0,   /* Origin must be the request's own (default) */
    WS_ORIGIN_ANY,        /* any Origin */
    WS_ORIGIN_LIST        /* one of the listed origins */
} ws_origin_mode_e;

typedef enum {
    WS_DRIVER_AUTO = 0,   /* the reactor where it works, else a thread */
    WS_DRIVER_THREAD      /* always a worker thread per WebSocket */
} ws_driver_e;

typedef struct {
    const ws_handler_t *handler;     /* NULL: not a WebSocket location */
    const char *handler_name;
    const char *handler_args;
    void *handler_conf;              /* from the handler's configure */
    apr_array_header_t *protocols;   /* const char *, server's preference */
    apr_array_header_t *origins;     /* const char *, for WS_ORIGIN_LIST */
    ws_origin_mode_e origin_mode;
    apr_size_t max_message;
    apr_interval_time_t idle_timeout;
    apr_interval_time_t ping_interval;
    ws_driver_e driver;
    apr_size_t send_queue_limit;     /* deliveries over it: dropped */
    ap_expr_info_t *user;            /* NULL: r->user */
    apr_array_header_t *channels;    /* ap_expr_info_t *: channel's own */
    apr_array_header_t *channel_allow; /* const char *: fnmatch patterns */
    int channel_echo;                /* sender gets its own messages */
    int channel_control;             /* JSON control messages, hello */
    int forward_events;              /* WS_FORWARD_OPEN | WS_FORWARD_CLOSE */
    apr_interval_time_t forward_timeout;
    apr_size_t forward_max_answer;
    int deflate;                     /* WebSocketDeflate: permessage-deflate */
    int deflate_takeover;            /* WebSocketDeflateContextTakeover */
    unsigned int handler_set:1;
    unsigned int driver_set:1;
    unsigned int protocols_set:1;
    unsigned int origin_set:1;
    unsigned int max_message_set:1;
    unsigned int idle_timeout_set:1;
    unsigned int ping_interval_set:1;
    unsigned int send_queue_limit_set:1;
    unsigned int user_set:1;
    unsigned int channels_set:1;
    unsigned int channel_allow_set:1;
    unsigned int channel_echo_set:1;
    unsigned int channel_control_set:1;
    unsigned int forward_events_set:1;
    unsigned int forward_timeout_set:1;
    unsigned int forward_max_answer_set:1;
    unsigned int deflate_set:1;
    unsigned int deflate_takeover_set:1;

    /* The dbd handler (mod_ws_dbd.c). */
    apr_array_header_t *dbd_queries; /* const char *: labels it may run */
    apr_interval_time_t dbd_timeout; /* longest wait for a free handle */
    unsigned int dbd_queries_set:1;
    unsigned int dbd_timeout_set:1;
} ws_dir_conf_t;

typedef struct {
    apr_interval_time_t shutdown_timeout;
    long max_connections;            /* 0: no limit */
    const char *broker_host;         /* NULL: WebSocketBroker local */
    int broker_port;
    const char *broker_prefix;       /* the Redis channel */
    unsigned int shutdown_timeout_set:1;
    unsigned int max_connections_set:1;
    unsigned int broker_set:1;
} ws_server_conf_t;

#define WS_DEFAULT_MAX_MESSAGE      (16 * 1024 * 1024)
#define WS_DEFAULT_IDLE_TIMEOUT     apr_time_from_sec(120)
#define WS_DEFAULT_PING_INTERVAL    apr_time_from_sec(30)
#define WS_DEFAULT_SHUTDOWN_TIMEOUT apr_time_from_sec(5)
#define WS_DEFAULT_SEND_QUEUE_LIMIT (8 * 1024 * 1024)
#define WS_DEFAULT_FORWARD_TIMEOUT  apr_time_from_sec(10)
#define WS_DEFAULT_FORWARD_MAX_ANSWER (1024 * 1024)

/* WebSocketForwardEvents */
#define WS_FORWARD_OPEN  0x1
#define WS_FORWARD_CLOSE 0x2
#define WS_DEFAULT_DBD_TIMEOUT      apr_time_from_sec(5)

extern const command_rec ws_config_cmds[];

/* Set while reading the configuration when some location has a
 * WebSocketHandler (then the MPM settings are worth checking). */
extern int ws_config_handlers_used;

void *ws_config_create_dir(apr_pool_t *p, char *dir);
void *ws_config_merge_dir(apr_pool_t *p, void *basev, void *addv);
void *ws_config_create_server(apr_pool_t *p, server_rec *s);
void *ws_config_merge_server(apr_pool_t *p, void *basev, void *addv);

const ws_dir_conf_t *ws_config_dir(const request_rec *r);
const ws_server_conf_t *ws_config_server(const server_rec *s);

#endif /* MOD_WS_CONFIG_H */
