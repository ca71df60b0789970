// threadpool.c — fixed worker threads over one task queue (see include/clipneg/threadpool.h).
// One mutex guards the queue and the counters; `work` wakes workers, `idle` wakes waiters.
#define _POSIX_C_SOURCE 200809L
#include "clipneg/threadpool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"

typedef struct {
    void (*fn)(void *);
    void *arg;
} Task;

struct ThreadPool {
    pthread_t *threads;
    int n_threads;
    pthread_mutex_t mu;
    pthread_cond_t work, idle;
    Task *queue; // ring buffer
    int cap, head, count;
    int running; // tasks taken by workers and not finished yet
    int stop;
};

static void *worker(void *p_) {
    ThreadPool *p = p_;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->count == 0 && !p->stop) pthread_cond_wait(&p->work, &p->mu);
        if (p->count == 0 && p->stop) break;
        Task t = p->queue[p->head];
        p->head = (p->head + 1) % p->cap;
        p->count--;
        p->running++;
        pthread_mutex_unlock(&p->mu);
        t.fn(t.arg);
        pthread_mutex_lock(&p->mu);
        p->running--;
        if (p->count == 0 && p->running == 0) pthread_cond_broadcast(&p->idle);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

ThreadPool *threadpool_create(int n_threads) {
    ThreadPool *p = callocCheck(1, sizeof *p);
    p->n_threads = n_threads > 0 ? n_threads : 0;
    p->cap = 64;
    p->queue = mallocCheck((size_t)p->cap * sizeof(Task));
    if (pthread_mutex_init(&p->mu, NULL) || pthread_cond_init(&p->work, NULL) || pthread_cond_init(&p->idle, NULL))
        cn_die(CN_E_INTERNAL, "threadpool: cannot initialise mutex/conditions");
    p->threads = callocCheck((size_t)p->n_threads + 1, sizeof(pthread_t));
    for (int i = 0; i < p->n_threads; i++)
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0)
            cn_die(CN_E_INTERNAL, "threadpool: cannot start worker %d of %d", i, p->n_threads);
    return p;
}

void threadpool_submit(ThreadPool *p, void (*fn)(void *), void *arg) {
    if (p->n_threads == 0) { // no workers: run now, in the caller
        fn(arg);
        return;
    }
    pthread_mutex_lock(&p->mu);
    if (p->count == p->cap) { // grow the ring, unrolling it to start at 0
        Task *q = mallocCheck((size_t)p->cap * 2 * sizeof(Task));
        for (int i = 0; i < p->count; i++) q[i] = p->queue[(p->head + i) % p->cap];
        free(p->queue);
        p->queue = q;
        p->head = 0;
        p->cap *= 2;
    }
    p->queue[(p->head + p->count) % p->cap] = (Task){fn, arg};
    p->count++;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
}

void threadpool_wait(ThreadPool *p) {
    pthread_mutex_lock(&p->mu);
    while (p->count > 0 || p->running > 0) pthread_cond_wait(&p->idle, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void threadpool_destroy(ThreadPool *p) {
    if (!p) return;
    threadpool_wait(p);
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_threads; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->idle);
    free(p->threads);
    free(p->queue);
    free(p);
}

int threadpool_size(const ThreadPool *p) { return p->n_threads; }
