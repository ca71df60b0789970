// threadpool.h — a small fixed pool of worker threads for image decoding (run.decode_threads), so
// decoding batch k+1 overlaps encoding batch k. Workers never call MPI or HDF5 (MPI is initialised
// FUNNELED): they only run the task functions they are given.
#ifndef CLIPNEG_THREADPOOL_H
#define CLIPNEG_THREADPOOL_H

typedef struct ThreadPool ThreadPool;

// n_threads >= 1 starts that many workers; 0 makes a pool without threads whose tasks run inline,
// inside threadpool_submit (same results, no overlap).
ThreadPool *threadpool_create(int n_threads);
// Queue fn(arg). Never blocks on the tasks themselves.
void threadpool_submit(ThreadPool *p, void (*fn)(void *arg), void *arg);
// Block until every task submitted so far has finished.
void threadpool_wait(ThreadPool *p);
// Wait, then stop and join the workers.
void threadpool_destroy(ThreadPool *p);
int threadpool_size(const ThreadPool *p);

#endif
