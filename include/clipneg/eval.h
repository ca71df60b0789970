// eval.h — `clipneg eval`: the distributed evaluation driver (docs/eval.md).
//
//   setup (eval.c)          every rank loads job, dataset, variants, tokenizer, model, backend; any
//                           error stops all ranks before any work. Rank 0 creates or checks the output.
//   texts (eval_texts.c)    global text shards: render, tokenize, encode, L2-normalise, write.
//   images (eval_images.c)  global image shards: decode on a thread pool overlapping the encoder, write.
//   similarity (eval_similarity.c)  per image shard: paired cosines, and optionally the full
//                           [shard x N_text] block, tile by tile over all-gathered text tiles.
//   progress/signals (eval_progress.c)  rank-0 progress lines, SIGTERM/SIGUSR1 -> stop at a round boundary.
// Every phase runs in rounds (plan.h): one collective write step per round, then the round's
// progress flags, so a killed job loses at most the shards in flight and a re-run resumes.
#ifndef CLIPNEG_EVAL_H
#define CLIPNEG_EVAL_H

#include <stdint.h>

#include "clipneg/backend.h"
#include "clipneg/config.h"
#include "clipneg/dataset.h"
#include "clipneg/h5out.h"
#include "clipneg/items.h"
#include "clipneg/model.h"
#include "clipneg/plan.h"
#include "clipneg/tokenizer.h"
#include "clipneg/variants.h"

typedef struct {
    const char *job_path;
    const char *output;           // --output (NULL: the job's [output] path)
    const char *const *overrides; // --set section.key=value, NULL-terminated (may be NULL)
    int fresh;                    // --fresh: overwrite an existing output instead of resuming
} EvalOptions;

// Run the whole evaluation (collective over MPI_COMM_WORLD). Returns a process exit code:
// 0 done (or already complete), CN_E_PREEMPTED (75) stopped by a signal after flushing, else the error.
int eval_run(const EvalOptions *opt);

// ---- shared by the eval_*.c files --------------------------------------------------------------
typedef struct {
    const char *phase;
    int64_t total;          // items in the phase
    int64_t done;           // items done (including those done by earlier runs)
    int64_t done_at_start;  // items done before this run
    double t_start, t_last; // when the phase started, when the last line was printed
    double interval;        // seconds between lines (2, or CLIPNEG_PROGRESS_INTERVAL)
} Progress;

typedef struct {
    int rank, nranks;
    EvalOptions opt;
    JobConfig job;
    Dataset ds;
    VariantSet vs;
    ClipTokenizer *tok;
    ClipModel model;
    Backend *be;
    int have_job, have_ds, have_vs, have_model;
    int threads;         // compute threads of this rank
    int random_weights;  // the model is a random test model (numbers mean nothing)
    char *job_text_full; // job text + the --set overrides as comments
    char *variants_text;
    char job_sha256[65];
    char *model_sha256; // "file=hash" lines
    char out_path[4096];
    int lock_fd;        // rank 0: the fcntl-locked `<out>.lock` (eval_lock.c), else -1
    H5Shape shape;
    H5Out out;
    int out_open;
    ShardPlan text_plan, image_plan;
    uint8_t *text_done, *image_done, *sim_done; // progress flags, identical on every rank
    int64_t rounds_run;                         // rounds executed by this run (all phases; test hooks count these)
    int64_t test_kill_after, test_signal_after; // CLIPNEG_TEST_* hooks, -1 = off
    int test_round_delay_ms;
    Progress prog;
    ItemSet *items; // [dataset] format = items: the item manifest (eval_items.c), else NULL
} Eval;

// Output file (eval_output.c). probe: rank 0, before the model loads: can `path` be created or
// updated? prepare: collective; rank 0 creates the file or checks an existing one (job, model and
// shape must match, else CN_E_RESUME saying what differs) and broadcasts the finished-shard flags;
// *complete = 1 when the file is already complete.
int eval_output_probe(const char *path);
// One writer per output (eval_lock.c), rank 0: take the exclusive lock on `<out>.lock` (CN_E_IO
// naming the holder's host/PID when another live run has it; a dead holder's lock is taken over
// with a note). *fd = -1 where the filesystem has no fcntl locks (warned). release unlinks it.
int eval_lock_take(const char *out_path, int *fd);
void eval_lock_release(const char *out_path, int fd);
int eval_output_prepare(Eval *e, int *complete);

int eval_texts(Eval *e);
int eval_images(Eval *e);
int eval_similarity(Eval *e);
// The item phase ([dataset] format = items, docs/items.md): /items created by rank 0 with the file,
// then scored after the main phases (eval_items.c).
int eval_items_load(Eval *e); // the manifest + the induced dataset (into e->ds)
int eval_items_create(Eval *e, H5Creating *c);
int eval_items(Eval *e);

// Round bookkeeping shared by the phases (eval_progress.c).
// At a round boundary: all ranks agree whether a stop signal arrived anywhere (MPI_Allreduce).
// Returns CN_OK to go on, CN_E_PREEMPTED (message set) to stop.
int eval_round_begin(Eval *e, const char *phase, int64_t round);
// Between a round's data writes and its progress flags (the CLIPNEG_TEST_KILL_AFTER_ROUNDS hook).
void eval_round_mid(Eval *e);
// After the round's flags: count it, run the signal test hook, report progress.
void eval_round_end(Eval *e, int64_t items_done_total);
// All ranks agree on the worst status; a rank that failed alone keeps its message, the others
// get "rank R failed". Use after local work and before a collective write.
int eval_agree(int rc);
// Keep the first failure of a sequence of collective calls: every call is still made (every rank
// joins every collective call), and one eval_agree after the sequence stops all ranks together.
static inline int eval_keep_first(int acc, int rc) { return acc != 0 ? acc : rc; }
// The lowest rank holding the worst status of the last failed eval_agree (-1: none failed):
// that rank prints the error, the others stay quiet.
int eval_failed_rank(void);

// Read the CLIPNEG_TEST_* hooks (kill/signal after N rounds, per-round delay; tests only).
void eval_test_hooks_read(Eval *e);

void progress_begin(Progress *p, const char *phase, int64_t total, int64_t already_done);
void progress_update(Progress *p, int64_t done);
void progress_end(Progress *p);

void eval_signals_install(void);
int eval_signal_pending(void); // the signal number that asked us to stop, or 0

#endif
