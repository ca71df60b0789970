// test_threadpool.c — the decode pool: every submitted task runs exactly once, wait() returns only
// after all of them, the pool is reusable after wait(), the queue grows past its initial size,
// tasks really run on the worker threads (not the caller), and 0 threads runs tasks inline.
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "clipneg/common.h"
#include "clipneg/threadpool.h"

typedef struct {
    int index;
    int runs;         // how often the task ran
    pthread_t thread; // where it ran
    atomic_int *finished;
} Job;

static void job_fn(void *arg) {
    Job *j = arg;
    struct timespec ts = {0, 200000}; // 0.2 ms: lets tasks overlap
    nanosleep(&ts, NULL);
    j->runs++;
    j->thread = pthread_self();
    atomic_fetch_add(j->finished, 1);
}

static int check(int n_threads, int n_tasks) {
    int fails = 0;
    ThreadPool *p = threadpool_create(n_threads);
    atomic_int finished = 0;
    Job *jobs = callocCheck((size_t)n_tasks, sizeof(Job));
    for (int round = 0; round < 3; round++) { // reusable after wait()
        atomic_store(&finished, 0);
        for (int i = 0; i < n_tasks; i++) {
            jobs[i] = (Job){.index = i, .finished = &finished};
            threadpool_submit(p, job_fn, &jobs[i]);
        }
        threadpool_wait(p);
        if (atomic_load(&finished) != n_tasks) {
            fprintf(stderr, "FAIL: %d threads: wait returned after %d of %d tasks\n", n_threads, atomic_load(&finished),
                    n_tasks);
            fails++;
        }
        int on_caller = 0;
        for (int i = 0; i < n_tasks; i++) {
            if (jobs[i].runs != 1) {
                fprintf(stderr, "FAIL: task %d ran %d times\n", i, jobs[i].runs);
                fails++;
            }
            on_caller += pthread_equal(jobs[i].thread, pthread_self()) != 0;
        }
        if (n_threads > 0 && on_caller) {
            fprintf(stderr, "FAIL: %d tasks ran on the caller\n", on_caller);
            fails++;
        }
        if (n_threads == 0 && on_caller != n_tasks) {
            fprintf(stderr, "FAIL: inline pool ran off the caller\n");
            fails++;
        }
    }
    if (threadpool_size(p) != n_threads) {
        fprintf(stderr, "FAIL: size\n");
        fails++;
    }
    threadpool_destroy(p);
    free(jobs);
    printf("threadpool %d threads x %d tasks: %s\n", n_threads, n_tasks, fails ? "FAILED" : "ok");
    return fails;
}

int main(void) {
    int fails = check(0, 10) + check(1, 5) + check(2, 200) + check(4, 300);
    return fails ? 1 : 0;
}
