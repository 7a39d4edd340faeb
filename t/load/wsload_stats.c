/* wsload_stats.c: the latency histogram and the /proc readings.
 *
 * The histogram is log-linear (HdrHistogram's idea in a few lines): fixed
 * size, so a long run at a high rate costs no memory, and per thread, so
 * recording takes no lock; the main thread merges them at the end.
 */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsload.h"

static int hist_index(apr_uint64_t v)
{
    int m;

    if (v < 128) {
        return (int)v;
    }
    m = 63 - __builtin_clzll(v);             /* 7..63 */
    return 128 + (m - 7) * 64 + (int)((v >> (m - 6)) & 63);
}

/* The lowest value of a bucket. */
static apr_uint64_t hist_value(int i)
{
    int m;

    if (i < 128) {
        return (apr_uint64_t)i;
    }
    m = (i - 128) / 64 + 7;
    return (apr_uint64_t)(64 + (i - 128) % 64) << (m - 6);
}

void wsload_hist_add(wsload_hist_t *h, apr_uint64_t ns)
{
    h->b[hist_index(ns)]++;
    h->n++;
    if (ns > h->max) {
        h->max = ns;
    }
}

void wsload_hist_merge(wsload_hist_t *into, const wsload_hist_t *from)
{
    int i;

    for (i = 0; i < HIST_BUCKETS; ++i) {
        into->b[i] += from->b[i];
    }
    into->n += from->n;
    if (from->max > into->max) {
        into->max = from->max;
    }
}

double wsload_hist_us(const wsload_hist_t *h, double q)
{
    apr_uint64_t rank, seen = 0;
    int i;

    if (!h->n) {
        return 0;
    }
    if (q >= 1.0) {
        return (double)h->max / 1000.0;
    }
    rank = (apr_uint64_t)(q * (double)(h->n - 1)) + 1;
    for (i = 0; i < HIST_BUCKETS; ++i) {
        seen += h->b[i];
        if (seen >= rank) {
            return (double)hist_value(i) / 1000.0;
        }
    }
    return (double)h->max / 1000.0;
}

/* ---- /proc ------------------------------------------------------------ */

static int proc_ppid(int pid)
{
    char path[64], buf[512], *p;
    FILE *f;
    int ppid = -1;

    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    if (!(f = fopen(path, "r"))) {
        return -1;
    }
    if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')'))) {
        sscanf(p + 2, "%*c %d", &ppid);
    }
    fclose(f);
    return ppid;
}

static long proc_rss_kb(int pid)
{
    char path[64], line[256];
    FILE *f;
    long kb = -1;

    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    if (!(f = fopen(path, "r"))) {
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "VmRSS:", 6)) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb < 0 ? 0 : kb;      /* a kernel thread or zombie has none */
}

/* The given processes and their descendants: one pass over /proc for the
 * parent of every process, then a closure from the roots. */
long wsload_rss_kb(const int *pids, int npids)
{
    enum { MAXP = 65536 };
    static int pid[MAXP], ppid[MAXP];
    static char in[MAXP];
    int n = 0, i, k, grew;
    long total = -1, kb;
    struct dirent *de;
    DIR *d = opendir("/proc");

    if (!d) {
        return -1;
    }
    while ((de = readdir(d)) && n < MAXP) {
        if (!isdigit((unsigned char)de->d_name[0])) {
            continue;
        }
        pid[n] = atoi(de->d_name);
        ppid[n] = proc_ppid(pid[n]);
        in[n] = 0;
        for (k = 0; k < npids; ++k) {
            if (pid[n] == pids[k]) {
                in[n] = 1;
            }
        }
        n++;
    }
    closedir(d);
    do {
        grew = 0;
        for (i = 0; i < n; ++i) {
            if (in[i]) {
                continue;
            }
            for (k = 0; k < n; ++k) {
                if (in[k] && ppid[i] == pid[k]) {
                    in[i] = 1;
                    grew = 1;
                    break;
                }
            }
        }
    } while (grew);
    for (i = 0; i < n; ++i) {
        if (in[i] && (kb = proc_rss_kb(pid[i])) >= 0) {
            total = (total < 0 ? 0 : total) + kb;
        }
    }
    return total;
}
