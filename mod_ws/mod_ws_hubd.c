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

#define HUBD_READ_CHUNK (64 * 1024)

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

/* Write what the client can take now; -1 on a broken connection. */
static int client_flush(hubd_client_t *cl)
{
    ssize_t n;

    while (cl->w.off < cl->w.len) {
        n = send(cl->fd, cl->w.p + cl->w.off, cl->w.len - cl->w.off,
                 MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                   ? 0 : -1;
        }
        cl->w.off += (size_t)n;
    }
    return 0;
}

static void client_free(hubd_client_t *cl)
{
    close(cl->fd);
    ws_hubbuf_free(&cl->r);
    ws_hubbuf_free(&cl->w);
    cl->fd = -1;
}

/* Read what client i sent and pass each whole frame to every client.
 * -1: client i is gone or broke the format. */
static int client_read(hubd_client_t *cls, int n, int i)
{
    hubd_client_t *cl = &cls[i];
    ws_hubframe_t f;
    apr_ssize_t flen;
    ssize_t got;
    int j;

    for (;;) {
        if (ws_hubbuf_reserve(&cl->r, HUBD_READ_CHUNK)) {
            return -1;
        }
        got = recv(cl->fd, cl->r.p + cl->r.len, HUBD_READ_CHUNK,
                   MSG_DONTWAIT);
        if (got == 0) {
            return -1;
        }
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
            return -1;
        }
        cl->r.len += (size_t)got;
        if (got < HUBD_READ_CHUNK) {
            break;
        }
    }
    while ((flen = ws_hubframe_parse(cl->r.p + cl->r.off,
                                     cl->r.len - cl->r.off,
                                     WS_HUB_BUFFER_MAX, &f)) > 0) {
        for (j = 0; j < n; ++j) {
            if (cls[j].fd >= 0
                && client_queue(&cls[j], cl->r.p + cl->r.off, (size_t)flen,
                                j == i)) {
                /* Too far behind: it loses its connection, not the others
                 * their messages; it reconnects. */
                client_free(&cls[j]);
            }
        }
        if (cl->fd < 0) {
            return -1;
        }
        cl->r.off += (size_t)flen;
    }
    return flen < 0 ? -1 : 0;
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
    pid_t parent = getppid();
    hubd_client_t *cls = NULL;
    struct pollfd *pfds = NULL;
    int ncl = 0, cap = 0, i, fd, lfd;

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

    for (;;) {
        int np = 1, m;

        if (ncl + 1 > cap) {
            cap = cap ? cap * 2 : 64;
            cls = realloc(cls, sizeof(*cls) * (size_t)cap);
            pfds = realloc(pfds, sizeof(*pfds) * (size_t)(cap + 1));
            if (!cls || !pfds) {
                exit(1);
            }
        }
        pfds[0].fd = lfd;
        pfds[0].events = POLLIN;
        for (i = 0; i < ncl; ++i) {
            pfds[np].fd = cls[i].fd;
            pfds[np].events = POLLIN
                              | (cls[i].w.off < cls[i].w.len ? POLLOUT : 0);
            pfds[np].revents = 0;
            ++np;
        }
        m = poll(pfds, (nfds_t)np, 1000);
        if (getppid() != parent) {
            exit(0);
        }
        if (m <= 0) {
            continue;
        }
        for (i = 0; i < ncl; ++i) {
            short ev = pfds[i + 1].revents;

            if (cls[i].fd >= 0 && (ev & (POLLIN | POLLHUP | POLLERR))
                && client_read(cls, ncl, i)) {
                if (cls[i].fd >= 0) {
                    client_free(&cls[i]);
                }
            }
        }
        /* Every frame just passed on goes out now where it can. */
        for (i = 0; i < ncl; ++i) {
            if (cls[i].fd >= 0 && client_flush(&cls[i])) {
                client_free(&cls[i]);
            }
        }
        for (i = 0; i < ncl;) {
            if (cls[i].fd < 0) {
                cls[i] = cls[--ncl];
            }
            else {
                ++i;
            }
        }
        if (pfds[0].revents & POLLIN) {
            while (ncl < cap
                   && (fd = accept4(lfd, NULL, NULL,
                                    SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                memset(&cls[ncl], 0, sizeof(cls[ncl]));
                cls[ncl++].fd = fd;
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
