/* mod_ws_hubd.c: the hub process, which carries published messages
 * between the child processes of one server.
 *
 * The parent forks it in post_config and forks it again when it dies, the
 * way mod_cgid keeps its daemon (apr_proc_other_child_register); a pool
 * cleanup of pconf ends it on restart and stop.  It listens on a Unix
 * socket under DefaultRuntimeDir, owned by User, and every child's hub
 * thread connects to it.  Each frame a child sends goes to every child, the
 * sender included (flagged WS_HUB_YOURS), in the order the hub read them:
 * so all children see the messages of one publisher in one order.
 *
 * It holds no httpd state and serves no request: one thread, poll(2),
 * plain buffers.  A child that cannot take what it is sent (over
 * WS_HUB_BUFFER_MAX) is dropped; it reconnects.  It exits when the parent
 * is gone.
 */
#include "mod_ws_broker.h"
#include "mod_ws_config.h"
#include "mod_ws_hub.h"
#include "ws_hubwire.h"

#include "ap_listen.h"
#include "ap_mpm.h"
#include "apr_signal.h"
#include "apr_strings.h"
#include "http_core.h"
#include "http_main.h"
#include "mpm_common.h"
#include "unixd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

const char *ws_hub_socket_path;

/* Written in post_config, before any fork: the parent's own. */
static struct {
    apr_pool_t *pconf;
    server_rec *server;
    const char *pid_path;
    apr_proc_t *proc;
} hubd;

typedef struct {
    int fd;
    ws_hubbuf_t r, w;
} hubd_client_t;

/* The hub's own state, on its stack: it is its own process. */
typedef struct {
    hubd_client_t *cls;
    int ncl, cap;
    ws_broker_t *broker;            /* NULL: WebSocketBroker local */
} hubd_loop_t;


/* Queue one frame for a client; -1 when it has more waiting than the
 * bound allows (it is then dropped). */
static int client_queue(hubd_client_t *cl, const char *frame, size_t len,
                        int yours)
{
    if (cl->w.len - cl->w.off + len > WS_HUB_BUFFER_MAX
        || ws_hubbuf_reserve(&cl->w, len)) {
        return -1;
    }
    memcpy(cl->w.p + cl->w.len, frame, len);
    ws_hubframe_set_flags(cl->w.p + cl->w.len, yours ? WS_HUBWIRE_YOURS : 0);
    cl->w.len += len;
    return 0;
}

static void client_free(hubd_client_t *cl)
{
    close(cl->fd);
    ws_hubbuf_free(&cl->r);
    ws_hubbuf_free(&cl->w);
    cl->fd = -1;
}

/* One frame to every child (`from` gets it flagged as its own; -1: none). */
static void broadcast(hubd_loop_t *lp, const char *frame, size_t len,
                      int from)
{
    int j;

    for (j = 0; j < lp->ncl; ++j) {
        if (lp->cls[j].fd >= 0
            && client_queue(&lp->cls[j], frame, len, j == from)) {
            /* Too far behind: it loses its connection, not the others
             * their messages; it reconnects. */
            client_free(&lp->cls[j]);
        }
    }
}

/* Another server's message, through the broker. */
static void from_broker(void *baton, const char *frame, apr_size_t len)
{
    broadcast(baton, frame, len, -1);
}

/* Read what client i sent and pass each whole frame to every client (and
 * to the other servers).  -1: client i is gone or broke the format. */
static int client_read(hubd_loop_t *lp, int i)
{
    hubd_client_t *cl = &lp->cls[i];
    ws_hubframe_t f;
    apr_ssize_t flen;
    int ended = ws_hub_recv(cl->fd, &cl->r);   /* parse what came first */

    while ((flen = ws_hubframe_parse(cl->r.p + cl->r.off,
                                     cl->r.len - cl->r.off,
                                     WS_HUB_BUFFER_MAX, &f)) > 0) {
        if (lp->broker) {
            ws_broker_publish(lp->broker, cl->r.p + cl->r.off, (size_t)flen);
        }
        broadcast(lp, cl->r.p + cl->r.off, (size_t)flen, i);
        if (cl->fd < 0) {
            return -1;
        }
        cl->r.off += (size_t)flen;
    }
    return (ended || flen < 0) ? -1 : 0;
}

static int listen_on(const char *path)
{
    struct sockaddr_un sa;
    int fd;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return -1;
    }
    unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0
        || listen(fd, SOMAXCONN) < 0) {
        close(fd);
        return -1;
    }
    /* The children run as User: the socket is theirs, nobody else's. */
    if (geteuid() == 0
        && chown(path, ap_unixd_config.user_id, (gid_t)-1) < 0) {
        close(fd);
        return -1;
    }
    chmod(path, S_IRUSR | S_IWUSR);
    return fd;
}

static void hubd_main(server_rec *s, apr_pool_t *p)
{
    const ws_server_conf_t *sc = ws_config_server(s);
    pid_t parent = getppid();
    hubd_loop_t lp;
    hubd_client_t *cls;
    struct pollfd *pfds = NULL;
    int i, fd, lfd;

    memset(&lp, 0, sizeof(lp));
    apr_signal(SIGTERM, SIG_DFL);
    apr_signal(SIGHUP, SIG_DFL);
    apr_signal(SIGINT, SIG_DFL);
    apr_signal(SIGUSR1, SIG_IGN);
    apr_signal(SIGWINCH, SIG_IGN);
    apr_signal(SIGPIPE, SIG_IGN);
    ap_close_listeners();

    lfd = listen_on(ws_hub_socket_path);
    if (lfd < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, s,
                     WSLOGNO(00100) "hub: cannot listen on %s",
                     ws_hub_socket_path);
        exit(1);
    }
    if (ap_run_drop_privileges(p, s)) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     WSLOGNO(00101) "hub: cannot drop privileges");
        exit(1);
    }
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s,
                 WSLOGNO(00102) "hub: pid %" APR_PID_T_FMT " listening on %s",
                 getpid(), ws_hub_socket_path);
    if (sc->broker_host) {
        lp.broker = ws_broker_create(sc->broker_host, sc->broker_port,
                                     sc->broker_prefix, s, from_broker, &lp);
    }

    for (;;) {
        int np = 1, nb = 0, m;

        if (lp.ncl + 1 > lp.cap) {
            lp.cap = lp.cap ? lp.cap * 2 : 64;
            lp.cls = realloc(lp.cls, sizeof(*lp.cls) * (size_t)lp.cap);
            pfds = realloc(pfds, sizeof(*pfds) * (size_t)(lp.cap + 3));
            if (!lp.cls || !pfds) {
                exit(1);
            }
        }
        cls = lp.cls;
        pfds[0].fd = lfd;
        pfds[0].events = POLLIN;
        pfds[0].revents = 0;
        for (i = 0; i < lp.ncl; ++i) {
            pfds[np].fd = cls[i].fd;
            pfds[np].events = POLLIN
                              | (cls[i].w.off < cls[i].w.len ? POLLOUT : 0);
            pfds[np].revents = 0;
            ++np;
        }
        if (lp.broker) {
            nb = ws_broker_pollfds(lp.broker, pfds + np);
        }
        m = poll(pfds, (nfds_t)(np + nb), 1000);
        if (getppid() != parent) {
            exit(0);
        }
        if (m < 0) {
            m = 0;
            memset(pfds, 0, sizeof(*pfds) * (size_t)(np + nb));
        }
        for (i = 0; m > 0 && i < lp.ncl; ++i) {
            short ev = pfds[i + 1].revents;

            if (cls[i].fd >= 0 && (ev & (POLLIN | POLLHUP | POLLERR))
                && client_read(&lp, i)) {
                if (cls[i].fd >= 0) {
                    client_free(&cls[i]);
                }
            }
        }
        if (lp.broker) {
            /* Also when poll timed out: reconnecting is due then. */
            ws_broker_handle(lp.broker, pfds + np, nb);
        }
        /* Every frame just passed on goes out now where it can. */
        for (i = 0; i < lp.ncl; ++i) {
            if (cls[i].fd >= 0 && ws_hub_send(cls[i].fd, &cls[i].w)) {
                client_free(&cls[i]);
            }
        }
        for (i = 0; i < lp.ncl;) {
            if (cls[i].fd < 0) {
                cls[i] = cls[--lp.ncl];
            }
            else {
                ++i;
            }
        }
        if (pfds[0].revents & POLLIN) {
            while (lp.ncl < lp.cap
                   && (fd = accept4(lfd, NULL, NULL,
                                    SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                memset(&cls[lp.ncl], 0, sizeof(cls[lp.ncl]));
                cls[lp.ncl++].fd = fd;
            }
        }
    }
}

static apr_status_t hubd_start(void);

/* The parent is told of the hub's death (or of a restart) here. */
static void hubd_maint(int reason, void *data, apr_wait_t status)
{
    apr_proc_t *proc = data;
    int state = AP_MPMQ_STOPPING;

    switch (reason) {
    case APR_OC_REASON_DEATH:
    case APR_OC_REASON_LOST:
        apr_proc_other_child_unregister(data);
        if (ap_mpm_query(AP_MPMQ_MPM_STATE, &state) == APR_SUCCESS
            && state != AP_MPMQ_STOPPING) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, hubd.server,
                         WSLOGNO(00103) "hub process %" APR_PID_T_FMT
                         " died; starting a new one", proc->pid);
            hubd_start();
        }
        break;
    case APR_OC_REASON_RESTART:
        apr_proc_other_child_unregister(data);
        break;
    case APR_OC_REASON_UNREGISTER:
        /* pconf is going: restart or stop.  The pool's note_subprocess
         * ends the process; the socket goes with it. */
        kill(proc->pid, SIGTERM);
        unlink(ws_hub_socket_path);
        unlink(hubd.pid_path);
        break;
    }
}

static apr_status_t hubd_start(void)
{
    apr_proc_t *proc = apr_pcalloc(hubd.pconf, sizeof(*proc));
    apr_file_t *f;
    apr_status_t rv = apr_proc_fork(proc, hubd.pconf);

    if (rv == APR_INCHILD) {
        hubd_main(hubd.server, hubd.pconf);
        exit(0);
    }
    if (rv != APR_INPARENT) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, hubd.server,
                     WSLOGNO(00104) "cannot fork the hub process: messages "
                     "reach only subscribers in the publishing child");
        return rv;
    }
    hubd.proc = proc;
    apr_pool_note_subprocess(hubd.pconf, proc, APR_KILL_AFTER_TIMEOUT);
    apr_proc_other_child_register(proc, hubd_maint, proc, NULL, hubd.pconf);
    if (apr_file_open(&f, hubd.pid_path, APR_FOPEN_WRITE | APR_FOPEN_CREATE
                      | APR_FOPEN_TRUNCATE, APR_FPROT_UREAD | APR_FPROT_UWRITE
                      | APR_FPROT_GREAD | APR_FPROT_WREAD, hubd.pconf)
        == APR_SUCCESS) {
        apr_file_printf(f, "%" APR_PID_T_FMT "\n", proc->pid);
        apr_file_close(f);
    }
    return APR_SUCCESS;
}

apr_status_t ws_hubd_post_config(apr_pool_t *pconf, server_rec *s)
{
    hubd.pconf = pconf;
    hubd.server = s;
    ws_hub_socket_path = ap_runtime_dir_relative(pconf,
        apr_psprintf(pconf, "mod_ws_hub.%" APR_PID_T_FMT ".sock", getpid()));
    hubd.pid_path = ap_runtime_dir_relative(pconf, "mod_ws_hub.pid");
    /* httpd reads its configuration twice at startup: the hub starts on
     * the second pass only, as mod_cgid's daemon does. */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG
        || !ws_config_handlers_used) {
        return APR_SUCCESS;
    }
    return hubd_start();
}
