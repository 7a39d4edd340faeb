/* mod_ws_dbd.c: the "dbd" handler: a text message
 *   {"id":7,"query":"label","params":["a",1]}
 * runs the mod_dbd prepared statement of that label (DBDPrepareSQL) with
 * the parameters bound, and answers
 *   {"id":7,"columns":["c1",...],"rows":[["v",null],...]}   (a select)
 *   {"id":7,"affected":n}                                   (anything else)
 *   {"id":7,"error":"..."}                                  (any failure)
 * The socket stays open after an error.  Only the labels listed with
 * WebSocketDBDQuery for the location run.
 *
 * Threads: on_open and on_message run on the connection's owner (maybe the
 * reactor): they only parse and check the message.  Everything that can
 * block (waiting for a handle, the query) runs in a job (mod_ws_job.c), on
 * a thread of the child's job pool; `done` sends the answer on the owner.
 * A database handle is taken with ap_dbd_open and given back with
 * ap_dbd_close inside one job, never held across messages.
 *
 * mod_dbd is optional: its functions are optional functions, so mod_ws
 * loads without it (the handler then answers every query with an error).
 */
#include "mod_ws_config.h"

#include "apr_dbd.h"
#include "apr_hash.h"
#include "apr_lib.h"
#include "apr_optional.h"
#include "apr_strings.h"
#include "apr_thread_cond.h"
#include "apr_thread_mutex.h"
#include "mod_dbd.h"

#include "ws_sql.h"

#include <jansson.h>

/* mod_dbd's per-server config, as 2.4.x declares it in
 * modules/database/mod_dbd.c (svr_cfg).  Only dbd_cfg_t is public, in
 * mod_dbd.h; we read its SQL texts (queries), DBDMax (nmax) and DBDPersist
 * from here, and use the group pointer only as a key: the servers that
 * share it share one pool of handles. */
typedef struct {
    dbd_cfg_t *cfg;
    void *group;
} ws_dbd_svr_cfg_t;

/* One pool of handles of mod_dbd, in this child: at most `max` of our jobs
 * hold a handle at a time, so ap_dbd_open (whose wait for a free handle has
 * no bound) is only called when one is free, and others wait here, with a
 * deadline. */
typedef struct {
    apr_thread_mutex_t *mutex;
    apr_thread_cond_t *cond;
    int busy;
    int max;
} ws_dbd_gate_t;

/* Filled in post_config (the functions) and child_init (the gates); read
 * only afterwards, but for the column-name cache, which has its mutex. */
static struct {
    APR_OPTIONAL_FN_TYPE(ap_dbd_open) *open;
    APR_OPTIONAL_FN_TYPE(ap_dbd_close) *close;
    module *dbd_module;
    int used;                    /* some location says WebSocketHandler dbd */
    apr_hash_t *gates;           /* server_rec * -> ws_dbd_gate_t * */
    apr_pool_t *pool;            /* the child's, for the cache */
    apr_thread_mutex_t *names_mutex;
    apr_hash_t *names;           /* SQL text -> const char ** (SQLite) */
} dbd;

typedef struct {
    const ws_dir_conf_t *dcfg;
    server_rec *s;
} ws_dbd_ctx_t;

/* One message's work.  msg is owned by the job (freed with its pool);
 * everything else lives in the job's pool or in the configuration. */
typedef struct {
    apr_pool_t *pool;
    server_rec *s;
    ws_dbd_gate_t *gate;
    json_t *msg;
    json_t *id;                  /* inside msg, or NULL */
    const char *error;           /* answer this instead of querying */
    const char *label;
    const char *sql;
    int select;
    int nargs;
    const char **args;
    apr_time_t deadline;
} ws_dbd_job_t;

static dbd_cfg_t *dbd_cfg(server_rec *s)
{
    ws_dbd_svr_cfg_t *svr;

    if (!dbd.dbd_module) {
        return NULL;
    }
    svr = ap_get_module_config(s->module_config, dbd.dbd_module);
    return svr ? svr->cfg : NULL;
}

void ws_dbd_post_config(apr_pool_t *pconf, server_rec *s);
void ws_dbd_child_init(apr_pool_t *pchild, server_rec *s);

void ws_dbd_post_config(apr_pool_t *pconf, server_rec *s)
{
    dbd.open = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_open);
    dbd.close = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_close);
    dbd.dbd_module = ap_find_linked_module("mod_dbd.c");
    if (dbd.used && (!dbd.open || !dbd.close || !dbd.dbd_module)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     WSLOGNO(00150) "WebSocketHandler dbd is configured but "
                     "mod_dbd is not loaded: every query will fail");
    }
    dbd.used = 0;
}

/* One gate per mod_dbd handle pool, made in each child before any thread
 * uses them. */
void ws_dbd_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_hash_t *by_group = apr_hash_make(pchild);
    server_rec *sp;

    dbd.pool = pchild;
    dbd.gates = apr_hash_make(pchild);
    dbd.names = apr_hash_make(pchild);
    apr_thread_mutex_create(&dbd.names_mutex, APR_THREAD_MUTEX_DEFAULT,
                            pchild);
    if (!dbd.dbd_module) {
        return;
    }
    for (sp = s; sp; sp = sp->next) {
        ws_dbd_svr_cfg_t *svr = ap_get_module_config(sp->module_config,
                                                     dbd.dbd_module);
        ws_dbd_gate_t *g;
        server_rec **key;

        if (!svr || !svr->cfg || !svr->group || !svr->cfg->persist
            || svr->cfg->nmax < 1) {
            continue;   /* unconfigured, or a new connection per open */
        }
        g = apr_hash_get(by_group, &svr->group, sizeof(svr->group));
        if (!g) {
            g = apr_pcalloc(pchild, sizeof(*g));
            g->max = svr->cfg->nmax;
            if (apr_thread_mutex_create(&g->mutex, APR_THREAD_MUTEX_DEFAULT,
                                        pchild) != APR_SUCCESS
                || apr_thread_cond_create(&g->cond, pchild) != APR_SUCCESS) {
                ap_log_error(APLOG_MARK, APLOG_ERR, 0, sp,
                             WSLOGNO(00151) "dbd: cannot make the handle "
                             "gate; queries wait for mod_dbd unbounded");
                continue;
            }
            apr_hash_set(by_group, &svr->group, sizeof(svr->group), g);
        }
        key = apr_pmemdup(pchild, &sp, sizeof(sp));
        apr_hash_set(dbd.gates, key, sizeof(*key), g);
    }
}

/* Wait for a free handle until the deadline: 0 when none came. */
static int gate_enter(ws_dbd_gate_t *g, apr_time_t deadline)
{
    int ok = 1;

    if (!g) {
        return 1;
    }
    apr_thread_mutex_lock(g->mutex);
    while (g->busy >= g->max) {
        apr_interval_time_t left = deadline - apr_time_now();

        if (left <= 0) {
            ok = 0;
            break;
        }
        apr_thread_cond_timedwait(g->cond, g->mutex, left);
    }
    if (ok) {
        g->busy++;
    }
    apr_thread_mutex_unlock(g->mutex);
    return ok;
}

static void gate_leave(ws_dbd_gate_t *g)
{
    if (g) {
        apr_thread_mutex_lock(g->mutex);
        g->busy--;
        apr_thread_cond_signal(g->cond);
        apr_thread_mutex_unlock(g->mutex);
    }
}

static apr_status_t free_json(void *data)
{
    json_decref(data);
    return APR_SUCCESS;
}

/* The string bound for one JSON parameter; NULL (SQL NULL) for null. */
static const char *param_text(apr_pool_t *p, json_t *v, const char **err)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return apr_pstrmemdup(p, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return apr_psprintf(p, "%" APR_INT64_T_FMT,
                            (apr_int64_t)json_integer_value(v));
    case JSON_REAL:
        return apr_psprintf(p, "%.17g", json_real_value(v));
    case JSON_TRUE:
        return "1";
    case JSON_FALSE:
        return "0";
    case JSON_NULL:
        return NULL;
    default:
        *err = "parameters are strings, numbers, booleans or null";
        return NULL;
    }
}

/* Check the message on the owner thread; what is wrong goes in j->error. */
static void parse_message(ws_dbd_job_t *j, const ws_dbd_ctx_t *ctx,
                          int type, const char *data, apr_size_t len)
{
    json_error_t jerr;
    json_t *query, *params;
    dbd_cfg_t *cfg;
    const char *err = NULL;
    apr_size_t i, nparams;
    int k, listed = 0;

    if (type != WS_MSG_TEXT) {
        j->error = "binary messages are not queries: send a JSON text "
                   "message";
        return;
    }
    j->msg = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j->msg) {
        j->error = apr_psprintf(j->pool, "invalid JSON: %s", jerr.text);
        return;
    }
    apr_pool_cleanup_register(j->pool, j->msg, free_json,
                              apr_pool_cleanup_null);
    if (!json_is_object(j->msg)) {
        j->error = "a query is a JSON object";
        return;
    }
    j->id = json_object_get(j->msg, "id");
    query = json_object_get(j->msg, "query");
    if (!json_is_string(query)) {
        j->error = "\"query\" must be the label of a statement";
        return;
    }
    j->label = json_string_value(query);
    for (k = 0; ctx->dcfg->dbd_queries && k < ctx->dcfg->dbd_queries->nelts;
         ++k) {
        if (!strcmp(APR_ARRAY_IDX(ctx->dcfg->dbd_queries, k, const char *),
                    j->label)) {
            listed = 1;
            break;
        }
    }
    if (!listed) {
        j->error = apr_psprintf(j->pool, "query '%s' is not allowed here",
                                j->label);
        return;
    }
    cfg = dbd_cfg(ctx->s);
    if (!dbd.open || !cfg) {
        j->error = "mod_dbd is not loaded";
        return;
    }
    j->sql = apr_hash_get(cfg->queries, j->label, APR_HASH_KEY_STRING);
    if (!j->sql) {
        j->error = apr_psprintf(j->pool, "no DBDPrepareSQL statement is "
                                "labelled '%s'", j->label);
        return;
    }
    params = json_object_get(j->msg, "params");
    if (params && !json_is_array(params)) {
        j->error = "\"params\" must be an array";
        return;
    }
    nparams = params ? json_array_size(params) : 0;
    j->nargs = ws_sql_params(j->sql);
    if (nparams != (apr_size_t)j->nargs) {
        j->error = apr_psprintf(j->pool, "query '%s' takes %d parameter%s, "
                                "got %" APR_SIZE_T_FMT, j->label, j->nargs,
                                j->nargs == 1 ? "" : "s", nparams);
        return;
    }
    j->args = apr_pcalloc(j->pool, sizeof(*j->args) * (nparams + 1));
    for (i = 0; i < nparams; ++i) {
        j->args[i] = param_text(j->pool, json_array_get(params, i), &err);
        if (err) {
            j->error = err;
            return;
        }
    }
    j->select = ws_sql_returns_rows(j->sql);
}

/* SQLite names a result's columns only from its first row, so an empty
 * result has none (apr_dbd_sqlite3 reads sqlite3_column_name per row).
 * The names depend only on the statement: ask once per statement and
 * child, with a query that always gives one row (NULLs when the statement
 * gives none), and remember them. */
static const char **sqlite_names(ws_dbd_job_t *j, ap_dbd_t *rec, int ncols)
{
    const char **names, *probe;
    apr_dbd_prepared_t *st = NULL;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int i, ok;

    apr_thread_mutex_lock(dbd.names_mutex);
    names = apr_hash_get(dbd.names, j->sql, APR_HASH_KEY_STRING);
    apr_thread_mutex_unlock(dbd.names_mutex);
    if (names) {
        return names;
    }
    probe = ws_sql_names_probe(j->pool, j->sql);
    /* Prepared on the handle (apr_dbd_sqlite3 keeps it until the handle
     * closes), once per statement and child. */
    ok = !apr_dbd_prepare(rec->driver, j->pool, rec->handle, probe, NULL,
                          &st)
         && !apr_dbd_pselect(rec->driver, j->pool, rec->handle, &res, st, 1,
                             j->nargs, j->args)
         && apr_dbd_num_cols(rec->driver, res) == ncols
         && !apr_dbd_get_row(rec->driver, j->pool, res, &row, -1);
    if (!ok) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, j->s,
                     WSLOGNO(00154) "dbd: cannot learn the column names of "
                     "'%s' (SQLite, empty result): %s", j->label,
                     apr_dbd_error(rec->driver, rec->handle, 1));
    }
    /* Remembered even when the probe failed (the names are then NULL):
     * every probe leaves a statement on the handle, so it runs once. */
    apr_thread_mutex_lock(dbd.names_mutex);
    names = apr_pcalloc(dbd.pool, sizeof(*names) * (apr_size_t)ncols);
    for (i = 0; ok && i < ncols; ++i) {
        const char *n = apr_dbd_get_name(rec->driver, res, i);

        names[i] = n ? apr_pstrdup(dbd.pool, n) : NULL;
    }
    apr_hash_set(dbd.names, apr_pstrdup(dbd.pool, j->sql),
                 APR_HASH_KEY_STRING, names);
    apr_thread_mutex_unlock(dbd.names_mutex);
    if (!ok) {
        return names;
    }
    /* Drain: the driver keeps the statement's state until the end. */
    while (apr_dbd_get_row(rec->driver, j->pool, res, &row, -1) == 0) {
    }
    return names;
}

/* One value as JSON: SQL NULL is null, anything else the driver's text;
 * NULL when that text is not UTF-8 (a WebSocket text message must be).
 * apr_dbd_get_entry cannot tell NULL from '' on pgsql; datum_get can. */
static json_t *value(const apr_dbd_driver_t *driver, apr_dbd_row_t *row,
                     int col)
{
    char *text = NULL;
    apr_status_t rv = apr_dbd_datum_get(driver, row, col,
                                        APR_DBD_TYPE_STRING, &text);

    if (rv == APR_ENOENT) {
        return json_null();
    }
    if (rv != APR_SUCCESS) {
        const char *entry = apr_dbd_get_entry(driver, row, col);

        return entry ? json_string(entry) : json_null();
    }
    return text ? json_string(text) : json_null();
}

/* Run the statement once; fills answer, or returns the driver's code. */
static int run_statement(ws_dbd_job_t *j, ap_dbd_t *rec,
                         apr_dbd_prepared_t *st, json_t *answer,
                         const char **err)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    json_t *columns, *rows;
    const char **cached = NULL;
    int rv, ncols, i;

    if (!j->select) {
        int n = 0;

        rv = apr_dbd_pquery(rec->driver, j->pool, rec->handle, &n, st,
                            j->nargs, j->args);
        if (rv == 0) {
            json_object_set_new(answer, "affected", json_integer(n));
        }
        return rv;
    }
    /* random access: the whole result at once, so the names are known
     * even without rows (pgsql) */
    rv = apr_dbd_pselect(rec->driver, j->pool, rec->handle, &res, st, 1,
                         j->nargs, j->args);
    if (rv != 0) {
        return rv;
    }
    ncols = apr_dbd_num_cols(rec->driver, res);
    /* The names first: apr_dbd_pgsql frees the result after the last row. */
    columns = json_array();
    for (i = 0; i < ncols; ++i) {
        const char *n = apr_dbd_get_name(rec->driver, res, i);

        if (!n && !cached) {
            cached = sqlite_names(j, rec, ncols);
        }
        if (!n && cached) {
            n = cached[i];
        }
        json_array_append_new(columns, n ? json_string(n) : json_null());
    }
    rows = json_array();
    while (apr_dbd_get_row(rec->driver, j->pool, res, &row, -1) == 0) {
        json_t *r = json_array();

        for (i = 0; i < ncols; ++i) {
            json_t *v = value(rec->driver, row, i);

            if (!v) {
                *err = "a value is not UTF-8 text";
                v = json_null();
            }
            json_array_append_new(r, v);
        }
        json_array_append_new(rows, r);
    }
    json_object_set_new(answer, "columns", columns);
    json_object_set_new(answer, "rows", rows);
    return 0;
}

static const char *db_error(ap_dbd_t *rec, int rv, apr_pool_t *p)
{
    const char *e = apr_dbd_error(rec->driver, rec->handle, rv);
    char *s = apr_pstrdup(p, e && *e ? e : "the query failed");
    apr_size_t n = strlen(s);

    while (n && apr_isspace(s[n - 1])) {
        s[--n] = '\0';
    }
    return s;
}

/* Holds a handle, then gives it back: the query itself. */
static void query(ws_dbd_job_t *j, json_t *answer)
{
    ap_dbd_t *rec;
    apr_dbd_prepared_t *st;
    const char *err = NULL;
    int rv = -1;

    if (!gate_enter(j->gate, j->deadline)) {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, j->s,
                     WSLOGNO(00153) "dbd: no free handle for '%s' within "
                     "WebSocketDBDTimeout", j->label);
        j->error = "busy";
        return;
    }
    rec = dbd.open(j->pool, j->s);
    if (!rec) {
        gate_leave(j->gate);
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, j->s,
                     WSLOGNO(00155) "dbd: no database handle for '%s' "
                     "(see mod_dbd's message before this one)", j->label);
        j->error = "database unavailable";
        return;
    }
    st = rec->prepared ? apr_hash_get(rec->prepared, j->label,
                                      APR_HASH_KEY_STRING)
                       : NULL;
    if (st) {
        rv = run_statement(j, rec, st, answer, &err);
    }
    /* PostgreSQL: after the server restarted, a pooled handle reconnects
     * (apr_dbd_check_conn) but its server-side prepared statements are
     * gone, and mod_dbd would never prepare them again.  Run the same SQL
     * once more as an unnamed statement (libpq's PQexecParams: still bound
     * parameters, nothing kept on the server or the handle). */
    if (rv != 0 && !strcmp(apr_dbd_name(rec->driver), "pgsql")
        && apr_dbd_check_conn(rec->driver, j->pool, rec->handle)
           == APR_SUCCESS) {
        apr_dbd_prepared_t *again = NULL;
        const char *first = st ? db_error(rec, rv, j->pool) : "unprepared";

        if (apr_dbd_prepare(rec->driver, j->pool, rec->handle, j->sql, NULL,
                            &again) == 0) {
            ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, j->s,
                         WSLOGNO(00156) "dbd: '%s' failed (%s); running it "
                         "again unprepared", j->label, first);
            json_object_clear(answer);
            rv = run_statement(j, rec, again, answer, &err);
        }
    }
    if (rv != 0) {
        j->error = st || !strcmp(apr_dbd_name(rec->driver), "pgsql")
                   ? db_error(rec, rv, j->pool)
                   : apr_psprintf(j->pool, "statement '%s' is not prepared "
                                  "(see the error log)", j->label);
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, j->s,
                     WSLOGNO(00152) "dbd: '%s' failed: %s", j->label,
                     j->error);
    }
    else if (err) {
        j->error = err;
    }
    dbd.close(j->s, rec);
    gate_leave(j->gate);
}

/* On a job thread: returns the answer's text, in the job's pool. */
static void *dbd_work(void *baton)
{
    ws_dbd_job_t *j = baton;
    json_t *answer = json_object();
    char *text;
    const char *out;

    if (!j->error) {
        query(j, answer);
    }
    if (j->error) {
        json_t *e = json_string(j->error);

        json_object_clear(answer);
        json_object_set_new(answer, "error",
                            e ? e : json_string("(an error message that is "
                                                "not UTF-8)"));
    }
    if (j->id) {
        json_object_set(answer, "id", j->id);
    }
    text = json_dumps(answer, JSON_COMPACT | JSON_PRESERVE_ORDER);
    out = text ? apr_pstrdup(j->pool, text)
               : "{\"error\":\"the answer could not be written\"}";
    free(text);
    json_decref(answer);
    return (void *)out;
}

static void dbd_done(ws_conn_t *wc, void *baton, void *result)
{
    const char *text = result;

    ws_conn_send(wc, WS_MSG_TEXT, text, strlen(text));
}

static void dbd_message(ws_conn_t *wc, void *ctxv, int type,
                        const char *data, apr_size_t len)
{
    ws_dbd_ctx_t *ctx = ctxv;
    ws_dbd_job_t *j;
    ws_job_t *job;
    apr_pool_t *p;

    if (ws_conn_job_create(wc, &job, &p) != APR_SUCCESS) {
        ws_conn_close(wc, 1011, "out of memory");
        return;
    }
    j = apr_pcalloc(p, sizeof(*j));
    j->pool = p;
    j->s = ctx->s;
    j->gate = dbd.gates ? apr_hash_get(dbd.gates, &ctx->s, sizeof(ctx->s))
                        : NULL;
    /* the bound counts from the message's arrival, not from when a job
     * thread is free */
    j->deadline = apr_time_now() + ctx->dcfg->dbd_timeout;
    parse_message(j, ctx, type, data, len);
    /* Errors found here go through a job too, so that every answer keeps
     * the order of the messages. */
    ws_conn_job_run(job, dbd_work, dbd_done, j);
}

static apr_status_t dbd_open_conn(ws_conn_t *wc, void *conf, void **ctxp)
{
    request_rec *r = ws_conn_request(wc);
    ws_dbd_ctx_t *ctx = apr_pcalloc(ws_conn_pool(wc), sizeof(*ctx));

    ctx->dcfg = ws_config_dir(r);
    ctx->s = r->server;
    *ctxp = ctx;
    return APR_SUCCESS;
}

static const char *dbd_configure(apr_pool_t *p, const char *args,
                                 void **conf)
{
    if (args) {
        return "takes no arguments (list the statements with "
               "WebSocketDBDQuery)";
    }
    dbd.used = 1;
    *conf = NULL;
    return NULL;
}

const ws_handler_t ws_dbd_handler = {
    dbd_configure, dbd_open_conn, dbd_message, NULL
};
