/* mod_ws_status.c: server-wide WebSocket figures, and their section on
 * /server-status.
 *
 * /server-status is served by whichever child gets the request, so the
 * figures live in shared memory made before the fork: one slot per child
 * process, claimed by the child in child_init, written only by that child
 * (with atomic adds, since its reactor and worker threads all count) and
 * read by any.  A slot whose process is gone is shown no more and is
 * claimed again by a later child.
 */
#include "mod_ws_status.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "apr_atomic.h"
#include "apr_shm.h"
#include "apr_strings.h"
#include "ap_mpm.h"
#include "http_protocol.h"
#include "mod_status.h"

#include "ws_close.h"

/* Close codes counted one by one; the rest are "other". */
static const unsigned close_codes[WS_STATUS_CLOSE_CODES] = {
    1000, 1001, 1002, 1003, 1006, 1007, 1008, 1009, 1011
};

static const char *const refusal_names[WS_STATUS_REFUSALS] = {
    "bad request (400)", "origin not allowed (403)",
    "version not 13 (426)", "server full (503)"
};
static const char *const refusal_keys[WS_STATUS_REFUSALS] = {
    "BadRequest", "Origin", "Version", "Full"
};

typedef struct {
    volatile apr_uint32_t pid;          /* 0: free */
    volatile apr_uint32_t open;         /* WebSockets open now */
    volatile apr_uint32_t open_reactor; /* of which on the reactor */
    volatile apr_uint64_t opened;       /* since the child started */
    volatile apr_uint64_t msgs_in, msgs_out;
    volatile apr_uint64_t bytes_in, bytes_out;
    volatile apr_uint64_t closes[WS_STATUS_CLOSE_CODES + 1];
    volatile apr_uint64_t refused[WS_STATUS_REFUSALS];
    volatile apr_uint32_t hub_link;     /* 1: connected to the hub */
    volatile apr_uint64_t published, delivered, dropped;
} ws_status_slot_t;

/* Written in post_config, before the fork; a child adds its slot. */
static struct {
    apr_shm_t *shm;
    ws_status_slot_t *slots;
    int nslots;
    ws_status_slot_t *mine;
} status;

apr_status_t ws_status_post_config(apr_pool_t *pconf, server_rec *s)
{
    int limit = 0;
    apr_size_t size;
    apr_status_t rv;

    ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &limit);
    /* Room for a generation of children and the old one still closing. */
    status.nslots = (limit > 0 ? limit : 1) * 2;
    size = sizeof(ws_status_slot_t) * (apr_size_t)status.nslots;
    rv = apr_shm_create(&status.shm, size, NULL, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                     WSLOGNO(00050) "cannot make shared memory for the "
                     "WebSocket figures; /server-status will not show them");
        status.slots = NULL;
        return rv;
    }
    status.slots = apr_shm_baseaddr_get(status.shm);
    memset(status.slots, 0, size);
    return APR_SUCCESS;
}

static int slot_alive(const ws_status_slot_t *sl)
{
    apr_uint32_t pid = apr_atomic_read32((volatile apr_uint32_t *)&sl->pid);

    return pid && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

void ws_status_child_init(void)
{
    apr_uint32_t me = (apr_uint32_t)getpid(), pid;
    ws_status_slot_t *sl;
    int i;

    status.mine = NULL;
    for (i = 0; status.slots && i < status.nslots; ++i) {
        sl = &status.slots[i];
        pid = apr_atomic_read32(&sl->pid);
        if (pid && slot_alive(sl)) {
            continue;
        }
        if (apr_atomic_cas32(&sl->pid, me, pid) == pid) {
            memset((char *)sl + sizeof(sl->pid), 0,
                   sizeof(*sl) - sizeof(sl->pid));
            status.mine = sl;
            return;
        }
    }
}

void ws_status_opened(void)
{
    if (status.mine) {
        apr_atomic_inc32(&status.mine->open);
        apr_atomic_inc64(&status.mine->opened);
    }
}

void ws_status_adopted(void)
{
    if (status.mine) {
        apr_atomic_inc32(&status.mine->open_reactor);
    }
}

void ws_status_closed(int reactor, unsigned code)
{
    int i;

    if (!status.mine) {
        return;
    }
    apr_atomic_dec32(&status.mine->open);
    if (reactor) {
        apr_atomic_dec32(&status.mine->open_reactor);
    }
    for (i = 0; i < WS_STATUS_CLOSE_CODES && close_codes[i] != code; ++i) {
    }
    apr_atomic_inc64(&status.mine->closes[i]);
}

void ws_status_traffic(apr_size_t msgs_in, apr_size_t msgs_out,
                       apr_size_t bytes_in, apr_size_t bytes_out)
{
    if (!status.mine) {
        return;
    }
    if (msgs_in) {
        apr_atomic_add64(&status.mine->msgs_in, msgs_in);
    }
    if (msgs_out) {
        apr_atomic_add64(&status.mine->msgs_out, msgs_out);
    }
    if (bytes_in) {
        apr_atomic_add64(&status.mine->bytes_in, bytes_in);
    }
    if (bytes_out) {
        apr_atomic_add64(&status.mine->bytes_out, bytes_out);
    }
}

void ws_status_refused(ws_status_refusal_e why)
{
    if (status.mine) {
        apr_atomic_inc64(&status.mine->refused[why]);
    }
}

long ws_status_open_now(void)
{
    long n = 0;
    int i;

    if (!status.slots) {
        return -1;
    }
    for (i = 0; i < status.nslots; ++i) {
        /* A child that died without closing its sockets counts no more. */
        if (slot_alive(&status.slots[i])) {
            n += (long)apr_atomic_read32(&status.slots[i].open);
        }
    }
    return n;
}

void ws_status_hub_link(int up)
{
    if (status.mine) {
        apr_atomic_set32(&status.mine->hub_link, up ? 1 : 0);
    }
}

void ws_status_channel(apr_size_t published, apr_size_t delivered,
                       apr_size_t dropped)
{
    if (!status.mine) {
        return;
    }
    if (published) {
        apr_atomic_add64(&status.mine->published, published);
    }
    if (delivered) {
        apr_atomic_add64(&status.mine->delivered, delivered);
    }
    if (dropped) {
        apr_atomic_add64(&status.mine->dropped, dropped);
    }
}

typedef struct {
    apr_uint64_t hub_links, published, delivered, dropped;
    apr_uint64_t open, open_reactor, opened, msgs_in, msgs_out;
    apr_uint64_t bytes_in, bytes_out;
    apr_uint64_t closes[WS_STATUS_CLOSE_CODES + 1];
    apr_uint64_t refused[WS_STATUS_REFUSALS];
} totals_t;

#define RD64(f) apr_atomic_read64((volatile apr_uint64_t *)&(f))
#define RD32(f) apr_atomic_read32((volatile apr_uint32_t *)&(f))

static void add_slot(totals_t *t, const ws_status_slot_t *sl)
{
    int i;

    t->hub_links += RD32(sl->hub_link);
    t->published += RD64(sl->published);
    t->delivered += RD64(sl->delivered);
    t->dropped += RD64(sl->dropped);
    t->open += RD32(sl->open);
    t->open_reactor += RD32(sl->open_reactor);
    t->opened += RD64(sl->opened);
    t->msgs_in += RD64(sl->msgs_in);
    t->msgs_out += RD64(sl->msgs_out);
    t->bytes_in += RD64(sl->bytes_in);
    t->bytes_out += RD64(sl->bytes_out);
    for (i = 0; i <= WS_STATUS_CLOSE_CODES; ++i) {
        t->closes[i] += RD64(sl->closes[i]);
    }
    for (i = 0; i < WS_STATUS_REFUSALS; ++i) {
        t->refused[i] += RD64(sl->refused[i]);
    }
}

static void print_short(request_rec *r, const totals_t *t, int children)
{
    int i;

    ap_rprintf(r, "WebSocketChildren: %d\n", children);
    ap_rprintf(r, "WebSocketsOpen: %" APR_UINT64_T_FMT "\n", t->open);
    ap_rprintf(r, "WebSocketsOpenReactor: %" APR_UINT64_T_FMT "\n",
               t->open_reactor);
    ap_rprintf(r, "WebSocketsOpened: %" APR_UINT64_T_FMT "\n", t->opened);
    ap_rprintf(r, "WebSocketMessagesIn: %" APR_UINT64_T_FMT "\n", t->msgs_in);
    ap_rprintf(r, "WebSocketMessagesOut: %" APR_UINT64_T_FMT "\n",
               t->msgs_out);
    ap_rprintf(r, "WebSocketBytesIn: %" APR_UINT64_T_FMT "\n", t->bytes_in);
    ap_rprintf(r, "WebSocketBytesOut: %" APR_UINT64_T_FMT "\n", t->bytes_out);
    for (i = 0; i < WS_STATUS_CLOSE_CODES; ++i) {
        ap_rprintf(r, "WebSocketCloses%u: %" APR_UINT64_T_FMT "\n",
                   close_codes[i], t->closes[i]);
    }
    ap_rprintf(r, "WebSocketClosesOther: %" APR_UINT64_T_FMT "\n",
               t->closes[WS_STATUS_CLOSE_CODES]);
    for (i = 0; i < WS_STATUS_REFUSALS; ++i) {
        ap_rprintf(r, "WebSocketRefused%s: %" APR_UINT64_T_FMT "\n",
                   refusal_keys[i], t->refused[i]);
    }
    ap_rprintf(r, "WebSocketHubLinks: %" APR_UINT64_T_FMT "\n", t->hub_links);
    ap_rprintf(r, "WebSocketChannelPublished: %" APR_UINT64_T_FMT "\n",
               t->published);
    ap_rprintf(r, "WebSocketChannelDelivered: %" APR_UINT64_T_FMT "\n",
               t->delivered);
    ap_rprintf(r, "WebSocketChannelDroppedSlow: %" APR_UINT64_T_FMT "\n",
               t->dropped);
}

static void print_html(request_rec *r, const totals_t *t)
{
    const ws_status_slot_t *sl;
    int i;

    ap_rputs("<hr />\n<h2>WebSockets (mod_ws)</h2>\n", r);
    ap_rprintf(r, "<dl><dt>%" APR_UINT64_T_FMT " open (%" APR_UINT64_T_FMT
               " on reactors), %" APR_UINT64_T_FMT " opened</dt>\n"
               "<dt>messages in %" APR_UINT64_T_FMT ", out %"
               APR_UINT64_T_FMT "; bytes in %" APR_UINT64_T_FMT ", out %"
               APR_UINT64_T_FMT "</dt></dl>\n", t->open, t->open_reactor,
               t->opened, t->msgs_in, t->msgs_out, t->bytes_in,
               t->bytes_out);
    ap_rputs("<table><tr><th>PID</th><th>open</th><th>reactor</th>"
             "<th>opened</th><th>msgs in</th><th>msgs out</th>"
             "<th>bytes in</th><th>bytes out</th></tr>\n", r);
    for (i = 0; i < status.nslots; ++i) {
        sl = &status.slots[i];
        if (!slot_alive(sl)) {
            continue;
        }
        ap_rprintf(r, "<tr><td>%u</td><td>%u</td><td>%u</td><td>%"
                   APR_UINT64_T_FMT "</td><td>%" APR_UINT64_T_FMT "</td><td>%"
                   APR_UINT64_T_FMT "</td><td>%" APR_UINT64_T_FMT "</td><td>%"
                   APR_UINT64_T_FMT "</td></tr>\n", RD32(sl->pid),
                   RD32(sl->open), RD32(sl->open_reactor), RD64(sl->opened),
                   RD64(sl->msgs_in), RD64(sl->msgs_out), RD64(sl->bytes_in),
                   RD64(sl->bytes_out));
    }
    ap_rputs("</table>\n<p>Closes by code:", r);
    for (i = 0; i < WS_STATUS_CLOSE_CODES; ++i) {
        ap_rprintf(r, " %u: %" APR_UINT64_T_FMT ";", close_codes[i],
                   t->closes[i]);
    }
    ap_rprintf(r, " other: %" APR_UINT64_T_FMT "</p>\n<p>Handshakes refused:",
               t->closes[WS_STATUS_CLOSE_CODES]);
    for (i = 0; i < WS_STATUS_REFUSALS; ++i) {
        ap_rprintf(r, "%s %s: %" APR_UINT64_T_FMT, i ? ";" : "",
                   refusal_names[i], t->refused[i]);
    }
    ap_rprintf(r, "</p>\n<p>Channels: %" APR_UINT64_T_FMT " children linked "
               "to the hub; messages published %" APR_UINT64_T_FMT
               ", queued for subscribers %" APR_UINT64_T_FMT "; slow "
               "subscribers dropped %" APR_UINT64_T_FMT "</p>\n",
               t->hub_links, t->published, t->delivered, t->dropped);
}

static int ws_status_hook(request_rec *r, int flags)
{
    totals_t t;
    int i, children = 0;

    if (!status.slots) {
        return OK;
    }
    memset(&t, 0, sizeof(t));
    for (i = 0; i < status.nslots; ++i) {
        if (slot_alive(&status.slots[i])) {
            add_slot(&t, &status.slots[i]);
            ++children;
        }
    }
    if (flags & AP_STATUS_SHORT) {
        print_short(r, &t, children);
    }
    else {
        print_html(r, &t);
    }
    return OK;
}

void ws_status_register_hooks(apr_pool_t *p)
{
    /* An optional hook: mod_ws loads with or without mod_status. */
    APR_OPTIONAL_HOOK(ap, status_hook, ws_status_hook, NULL, NULL,
                      APR_HOOK_MIDDLE);
}
