// eval_progress.c — round bookkeeping for the evaluator: stop signals agreed at round boundaries,
// the test hooks that kill or signal a run at a chosen round, and rank 0's progress lines.
//
// Preemption: SLURM sends SIGTERM (preemption, scancel) or, with --signal=B:USR1@120, SIGUSR1 to the
// batch script, which forwards it (slurm/eval.sbatch); mpirun forwards SIGUSR1 itself. The handler
// only sets a flag; at the next round boundary every rank learns (MPI_Allreduce) whether any rank
// got one, so all stop at the same point: data and flags of finished rounds are on disk, the file
// is closed, and `clipneg eval` exits 75 for the requeued job to resume.
#define _POSIX_C_SOURCE 200809L
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clipneg/common.h"
#include "eval_internal.h"

static volatile sig_atomic_t g_stop_signal = 0;

static void on_stop_signal(int sig) { g_stop_signal = sig; }

void eval_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; // system calls in flight (file I/O, MPI progress) are not interrupted
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

int eval_signal_pending(void) { return (int)g_stop_signal; }

static int g_failed_rank = -1;

int eval_failed_rank(void) { return g_failed_rank; }

int eval_agree(int rc) {
    // worst status, and the lowest rank that has it (that rank's message is the one to print):
    // MAXLOC on (status, rank) picks the highest status and, on ties, the lowest rank
    int local[2] = {rc, cn_rank()}, global[2];
    MPI_Allreduce(local, global, 1, MPI_2INT, MPI_MAXLOC, MPI_COMM_WORLD);
    if (global[0] == CN_OK) return CN_OK;
    g_failed_rank = global[1];
    if (rc != global[0]) return cn_fail(global[0], "stopped because rank %d failed (see its message)", g_failed_rank);
    return rc;
}

static int64_t env_int(const char *name, int64_t dflt) {
    const char *v = getenv(name);
    return (v && v[0]) ? atoll(v) : dflt;
}

int eval_round_begin(Eval *e, const char *phase, int64_t round) {
    if (e->test_round_delay_ms > 0) { // test hook: slow rounds so an external signal lands mid-run
        struct timespec ts = {e->test_round_delay_ms / 1000, (long)(e->test_round_delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    int sig = eval_signal_pending(), any = 0;
    MPI_Allreduce(&sig, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (any) {
        return cn_fail(CN_E_PREEMPTED,
                       "stopped by signal %d (%s) before %s round %lld: finished shards are "
                       "recorded in the file; re-run the same command to resume",
                       any,
                       any == SIGTERM   ? "SIGTERM"
                       : any == SIGUSR1 ? "SIGUSR1"
                                        : "?",
                       phase, (long long)round);
    }
    return CN_OK;
}

void eval_round_mid(Eval *e) {
    // CLIPNEG_TEST_KILL_AFTER_ROUNDS=N: after N complete rounds, rank 0 dies by SIGKILL in the middle of
    // the next one — its data written and flushed, its progress flags not — like a node failure.
    if (e->test_kill_after >= 0 && e->rounds_run == e->test_kill_after && e->rank == 0) {
        fprintf(stderr, "[clipneg] test hook: SIGKILL after %lld rounds\n", (long long)e->rounds_run);
        fflush(stderr);
        raise(SIGKILL);
    }
}

void eval_round_end(Eval *e, int64_t items_done_total) {
    e->rounds_run++;
    // CLIPNEG_TEST_SIGNAL_AFTER_ROUNDS=N: rank 0 sends itself SIGTERM after N rounds (a preemption
    // notice arriving on one rank only: the others learn it at the next boundary).
    if (e->test_signal_after >= 0 && e->rounds_run == e->test_signal_after && e->rank == 0) raise(SIGTERM);
    progress_update(&e->prog, items_done_total);
}

// ---- progress lines (rank 0, stderr) ------------------------------------------------------------
static void fmt_duration(double s, char *buf, size_t n) {
    if (s < 0 || s > 1e7) {
        snprintf(buf, n, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else
        snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

static void progress_print(Progress *p, double now, int final) {
    double el = now - p->t_start;
    int64_t here = p->done - p->done_at_start; // items computed by this run
    double rate = el > 0 ? here / el : 0;
    char eta[32], took[32];
    fmt_duration(rate > 0 ? (p->total - p->done) / rate : -1, eta, sizeof eta);
    fmt_duration(el, took, sizeof took);
    double pct = p->total ? 100.0 * p->done / p->total : 100.0;
    if (final)
        cn_log("%-10s %lld/%lld done (%.0f%%) in %s, %.1f items/s", p->phase, (long long)p->done, (long long)p->total,
               pct, took, rate);
    else
        cn_log("%-10s %lld/%lld (%.0f%%)  %.1f items/s  ETA %s", p->phase, (long long)p->done, (long long)p->total, pct,
               rate, eta);
}

void progress_begin(Progress *p, const char *phase, int64_t total, int64_t already_done) {
    memset(p, 0, sizeof *p);
    p->phase = phase;
    p->total = total;
    p->done = p->done_at_start = already_done;
    p->t_start = p->t_last = cn_now();
    const char *iv = getenv("CLIPNEG_PROGRESS_INTERVAL");
    p->interval = (iv && iv[0]) ? atof(iv) : 2.0;
    if (already_done > 0)
        cn_log("%-10s %lld/%lld already done (resuming)", phase, (long long)already_done, (long long)total);
}

void progress_update(Progress *p, int64_t done) {
    p->done = done;
    double now = cn_now();
    if (now - p->t_last >= p->interval && done < p->total) {
        p->t_last = now;
        progress_print(p, now, 0);
    }
}

void progress_end(Progress *p) { progress_print(p, cn_now(), 1); }

// Read the CLIPNEG_TEST_* hooks once (documented in docs/eval.md; tests only).
void eval_test_hooks_read(Eval *e) {
    e->test_kill_after = env_int("CLIPNEG_TEST_KILL_AFTER_ROUNDS", -1);
    e->test_signal_after = env_int("CLIPNEG_TEST_SIGNAL_AFTER_ROUNDS", -1);
    e->test_round_delay_ms = (int)env_int("CLIPNEG_TEST_ROUND_DELAY_MS", 0);
}

// ---- stage breakdown ------------------------------------------------------------------------------
const char *eval_stage_name(EvalStage s) {
    static const char *const names[EVAL_STAGES] = {"decode", "tokenize", "text_tower", "image_tower", "similarity",
                                                   "io"};
    return (unsigned)s < EVAL_STAGES ? names[s] : "?";
}

// One line a script can parse (bench/gpu/run.py does): `stages: NAME=MAX/MEAN ...` in seconds, max and
// mean over ranks. `other` is the rest of the run's wall time (progress flags, signals, setup of a phase).
void eval_stages_report(const Eval *e, double total) {
    enum { N = EVAL_STAGES + 2 };
    double mine[N], mx[N], sum[N];
    double known = 0;
    for (int s = 0; s < EVAL_STAGES; s++) known += (mine[s] = e->stage[s]);
    mine[EVAL_STAGES] = total - known;    // other
    mine[EVAL_STAGES + 1] = e->decode_busy;
    MPI_Reduce(mine, mx, N, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    MPI_Reduce(mine, sum, N, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    if (e->rank != 0) return;
    char line[1024];
    size_t len = 0;
    for (int s = 0; s < N; s++) {
        const char *name = s < EVAL_STAGES ? eval_stage_name((EvalStage)s) : s == EVAL_STAGES ? "other" : "decode_busy";
        len += (size_t)snprintf(line + len, sizeof line - len, " %s=%.3f/%.3f", name, mx[s], sum[s] / e->nranks);
    }
    cn_log("stages (s, max/mean over %d ranks; decode_busy sums the decode threads):%s total=%.3f", e->nranks, line,
           total);
}
