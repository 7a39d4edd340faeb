/* mod_ws_publish.c: the HTTP publish endpoint, `SetHandler
 * websocket-publish`.
 *
 * `POST …/CHANNEL` delivers the request body to every subscriber of
 * CHANNEL (the last path segment, any channel: user:NAME and conn:ID too)
 * in every child: as text, or binary for application/octet-stream.  The
 * answer is JSON.  Access control is httpd's own: `Require` in front of the
 * location runs before this handler, so a refused request delivers
 * nothing.
 *
 * Runs on a worker thread like any content handler; it waits (briefly)
 * for the hub to have passed the message on, so that one client's
 * successive POSTs arrive in order even when different children serve
 * them.
 */
#include "mod_ws_config.h"
#include "mod_ws_hub.h"
#include "mod_ws_publish.h"

#include "apr_strings.h"
#include "http_protocol.h"
#include "util_filter.h"

#include "ws_utf8.h"

#include <jansson.h>

/* How long a POST waits for the hub to pass its message on. */
#define WS_PUBLISH_WAIT apr_time_from_sec(2)

static int answer(request_rec *r, int status, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);

    json_decref(j);
    r->status = status;
    ap_set_content_type(r, "application/json");
    if (text) {
        ap_rprintf(r, "%s\n", text);
        free(text);
    }
    return OK;
}

static int refuse(request_rec *r, int status, const char *error)
{
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                  WSLOGNO(00120) "publish refused (%d): %s", status, error);
    ap_discard_request_body(r);
    return answer(r, status, json_pack("{s:s}", "error", error));
}

/* The body, at most max bytes; *too_big when there is more. */
static apr_status_t read_body(request_rec *r, apr_size_t max, char **data,
                              apr_size_t *len, int *too_big)
{
    apr_bucket_brigade *bb = apr_brigade_create(r->pool,
                                                r->connection->bucket_alloc);
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    apr_size_t cap = 0, n;
    apr_bucket *b;
    const char *p;
    apr_status_t rv;
    int eos = 0;

    *too_big = 0;
    *data = NULL;
    *len = 0;
    if (cl && apr_atoi64(cl) > (apr_int64_t)max) {
        *too_big = 1;
        return APR_SUCCESS;
    }
    while (!eos) {
        rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES,
                            APR_BLOCK_READ, 64 * 1024);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb);
             b = APR_BUCKET_NEXT(b)) {
            if (APR_BUCKET_IS_EOS(b)) {
                eos = 1;
                break;
            }
            if (APR_BUCKET_IS_METADATA(b)) {
                continue;
            }
            rv = apr_bucket_read(b, &p, &n, APR_BLOCK_READ);
            if (rv != APR_SUCCESS) {
                return rv;
            }
            if (*len + n > max) {
                *too_big = 1;
                return APR_SUCCESS;
            }
            if (*len + n > cap) {
                char *grown;

                cap = cap ? cap : 4096;
                while (cap < *len + n) {
                    cap *= 2;
                }
                grown = apr_palloc(r->pool, cap);
                if (*len) {
                    memcpy(grown, *data, *len);
                }
                *data = grown;
            }
            memcpy(*data + *len, p, n);
            *len += n;
        }
        apr_brigade_cleanup(bb);
    }
    return APR_SUCCESS;
}

int ws_publish_handler(request_rec *r)
{
    const ws_dir_conf_t *d;
    const char *channel, *ctype;
    char *data = NULL;
    apr_size_t len = 0;
    apr_uint64_t seq;
    apr_status_t rv;
    int type, too_big;

    if (!r->handler || strcmp(r->handler, "websocket-publish")) {
        return DECLINED;
    }
    d = ws_config_dir(r);
    if (r->method_number != M_POST) {
        r->allowed = (AP_METHOD_BIT << M_POST);
        apr_table_setn(r->err_headers_out, "Allow", "POST");
        return refuse(r, HTTP_METHOD_NOT_ALLOWED, "method not allowed");
    }
    channel = strrchr(r->uri, '/');
    channel = channel ? channel + 1 : r->uri;
    if (!ws_channel_name_ok(channel, strlen(channel))) {
        return refuse(r, HTTP_BAD_REQUEST, "bad channel name");
    }
    rv = read_body(r, d->max_message, &data, &len, &too_big);
    if (rv != APR_SUCCESS) {
        return ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
    }
    if (too_big) {
        return refuse(r, HTTP_REQUEST_ENTITY_TOO_LARGE, "body too large");
    }
    ctype = apr_table_get(r->headers_in, "Content-Type");
    type = (ctype && !strncasecmp(ctype, "application/octet-stream", 24))
           ? WS_MSG_BINARY : WS_MSG_TEXT;
    if (type == WS_MSG_TEXT
        && !ws_utf8_valid((const unsigned char *)data, len)) {
        return refuse(r, HTTP_BAD_REQUEST, "text body is not valid UTF-8");
    }
    rv = ws_hub_publish(channel, type, data, len, NULL, &seq);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r,
                      WSLOGNO(00121) "cannot publish to %s", channel);
        return answer(r, HTTP_INTERNAL_SERVER_ERROR,
                      json_pack("{s:s}", "error", "cannot publish"));
    }
    rv = ws_hub_wait(seq, WS_PUBLISH_WAIT);
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv == APR_ECONNREFUSED ? 0 : rv, r,
                  WSLOGNO(00122) "published %" APR_SIZE_T_FMT " bytes to %s%s",
                  len, channel, rv == APR_ECONNREFUSED
                  ? " (no hub: this child's subscribers only)" : "");
    return answer(r, HTTP_OK, json_pack("{s:s,s:s,s:I}", "channel", channel,
                                        "type", type == WS_MSG_TEXT
                                                ? "text" : "binary",
                                        "bytes", (json_int_t)len));
}
