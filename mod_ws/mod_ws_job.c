/* mod_ws_job.c: blocking handler work off the connection's thread.
 *
 * A per-child apr_thread_pool runs jobs; a finished job goes on its
 * connection's "done" list (under one per-child mutex) and the owner is
 * woken: the thread driver through its pollset, the reactor through its
 * posted list.  The owner runs the job's done callback and starts the
 * connection's next job, so one connection's jobs run in order.  A
 * connection is not destroyed while a job of its own is unfinished
 * (wc->jobs counts them).
 *
 * Threads: ws_conn_job_create/run and ws_conn_jobs_finish run on the owner;
 * job_main on a pool thread, and ws_job_complete on whatever thread did an
 * asynchronous job's work, touching only the job and the done list.
 */
#include "mod_ws_conn.h"

#include "apr_atomic.h"
#include "apr_thread_mutex.h"
#include "apr_thread_pool.h"

/* The most threads one child runs jobs on; they start on demand. */
#define WS_JOB_THREADS 16

struct ws_job_t {
    ws_conn_t *wc;
    apr_pool_t *pool;          /* unmanaged: any thread may use it */
    ws_work_fn work;
    ws_start_fn start;              /* asynchronous: hands the work over */
    ws_done_fn done;
    void *baton;
    void *result;
    ws_job_t *next;
};

/* Made in child_init, one per process. */
static struct {
    apr_thread_pool_t *threads;
    apr_thread_mutex_t *mutex;  /* guards every wc->job_done list */
} jobs;

apr_status_t ws_job_child_init(apr_pool_t *pchild)
{
    apr_status_t rv = apr_thread_mutex_create(&jobs.mutex,
                                              APR_THREAD_MUTEX_DEFAULT,
                                              pchild);

    if (rv == APR_SUCCESS) {
        rv = apr_thread_pool_create(&jobs.threads, 0, WS_JOB_THREADS,
                                    pchild);
    }
    return rv;
}

apr_status_t ws_conn_job_create(ws_conn_t *wc, ws_job_t **pjob,
                                apr_pool_t **ppool)
{
    apr_pool_t *p;
    ws_job_t *job;
    apr_status_t rv = apr_pool_create_unmanaged_ex(&p, NULL, NULL);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    job = apr_pcalloc(p, sizeof(*job));
    job->wc = wc;
    job->pool = p;
    apr_atomic_inc32(&wc->jobs);
    *pjob = job;
    *ppool = p;
    return APR_SUCCESS;
}

void ws_job_complete(ws_job_t *job, void *result)
{
    ws_conn_t *wc = job->wc;
    ws_job_t **pp;

    job->result = result;
    apr_thread_mutex_lock(jobs.mutex);
    for (pp = &wc->job_done; *pp; pp = &(*pp)->next) {
    }
    *pp = job;
    /* Woken under the mutex: once the owner has seen this job done it may
     * destroy wc, so nothing here may touch wc after the unlock. */
    ws_conn_wake(wc);
    apr_thread_mutex_unlock(jobs.mutex);
}

static void *APR_THREAD_FUNC job_main(apr_thread_t *thread, void *data)
{
    ws_job_t *job = data;

    ws_job_complete(job, job->work ? job->work(job->baton) : NULL);
    return NULL;
}

static void start(ws_job_t *job)
{
    job->wc->job_running = 1;
    if (job->start) {
        job->start(job, job->baton);
        return;
    }
    if (!jobs.threads
        || apr_thread_pool_push(jobs.threads, job_main, job,
                                APR_THREAD_TASK_PRIORITY_NORMAL, NULL)
           != APR_SUCCESS) {
        /* No pool thread: run it here rather than lose it. */
        ap_log_cerror(APLOG_MARK, APLOG_WARNING, 0, job->wc->c,
                      WSLOGNO(00070) "ws %s: no job thread; running a job on "
                      "the connection's own thread", job->wc->id);
        job_main(NULL, job);
    }
}

static void run(ws_job_t *job, ws_work_fn work, ws_start_fn start_fn,
                ws_done_fn done, void *baton)
{
    ws_conn_t *wc = job->wc;
    ws_job_t **pp;

    job->work = work;
    job->start = start_fn;
    job->done = done;
    job->baton = baton;
    job->next = NULL;
    if (!wc->job_running) {
        start(job);
        return;
    }
    for (pp = &wc->job_queue; *pp; pp = &(*pp)->next) {
    }
    *pp = job;
}

void ws_conn_job_run(ws_job_t *job, ws_work_fn work, ws_done_fn done,
                     void *baton)
{
    run(job, work, NULL, done, baton);
}

void ws_conn_job_run_async(ws_job_t *job, ws_start_fn start_fn,
                           ws_done_fn done, void *baton)
{
    run(job, NULL, start_fn, done, baton);
}

static void end_job(ws_job_t *job)
{
    ws_conn_t *wc = job->wc;

    apr_pool_destroy(job->pool);
    apr_atomic_dec32(&wc->jobs);
}

void ws_conn_jobs_finish(ws_conn_t *wc, int ended)
{
    ws_job_t *done, *next;

    apr_thread_mutex_lock(jobs.mutex);
    done = wc->job_done;
    wc->job_done = NULL;
    apr_thread_mutex_unlock(jobs.mutex);
    for (; done; done = next) {
        next = done->next;
        wc->job_running = 0;
        if (done->done) {
            done->done(wc, done->baton, done->result);
        }
        end_job(done);
        apr_pool_clear(wc->scratch);
    }
    if (ended) {
        /* Nobody will read the answers: queued jobs never start. */
        for (done = wc->job_queue; done; done = next) {
            next = done->next;
            end_job(done);
        }
        wc->job_queue = NULL;
    }
    if (!wc->job_running && wc->job_queue) {
        done = wc->job_queue;
        wc->job_queue = done->next;
        done->next = NULL;
        start(done);
    }
}
