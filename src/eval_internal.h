// eval_internal.h — what the eval_*.c files share; internal to src/ (the public API, eval_run,
// is include/clipneg/eval.h). The stage reads top-down:
//
//   cmd_eval.c -> eval_run (eval.c) -> output file (eval_output.c) -> phases -> eval_progress.c
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
#ifndef CLIPNEG_EVAL_INTERNAL_H
#define CLIPNEG_EVAL_INTERNAL_H

#include <stdint.h>

#include "clipneg/backend.h"
#include "clipneg/classify.h"
#include "clipneg/common.h"
#include "clipneg/config.h"
#include "clipneg/dataset.h"
#include "clipneg/eval.h"
#include "clipneg/h5out.h"
#include "clipneg/items.h"
#include "clipneg/model.h"
#include "clipneg/plan.h"
#include "clipneg/sha256.h"
#include "clipneg/tokenizer.h"
#include "clipneg/variants.h"

typedef struct {
    const char *phase;
    int64_t total;          // items in the phase
    int64_t done;           // items done (including those done by earlier runs)
    int64_t done_at_start;  // items done before this run
    double t_start, t_last; // when the phase started, when the last line was printed
    double interval;        // seconds between lines (2, or CLIPNEG_PROGRESS_INTERVAL)
} Progress;

// Per-stage wall seconds of one rank (main thread), reported at the end of a run (eval_stages_report).
typedef enum {
    STAGE_DECODE,      // waiting for the decode threads (their own busy time: Eval.decode_busy)
    STAGE_TOKENIZE,    // rendering + tokenising texts, or waiting for the tokeniser thread
    STAGE_TEXT_TOWER,  // Backend.encode_texts (uploads and downloads included)
    STAGE_IMAGE_TOWER, // Backend.encode_images
    STAGE_SIMILARITY,  // paired dot products and full-similarity tiles (Backend.similarity)
    STAGE_IO,          // HDF5 reads/writes/flushes, the tile all-gather, and waiting for other ranks
    EVAL_STAGES
} EvalStage;

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
    double stage[EVAL_STAGES]; // seconds per EvalStage (this rank)
    double decode_busy;        // seconds the decode threads spent decoding (summed over threads)
    ItemSet *items; // [dataset] format = items: the item manifest (eval_items.c), else NULL
    ClassifySet *cls; // [dataset] format = classification (eval_classify.c), else NULL
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
int eval_items_create(Eval *e, H5Creating *c); // eval_items_create.c
int eval_items(Eval *e);
// /items/status values (docs/items.md)
enum { ITEM_PENDING = 0, ITEM_OK = 1, ITEM_IMAGE_FAILED = 2, ITEM_BOX_OUTSIDE = 3 };
// The /items datasets written per round (created with the file, sized by eval_items_dims: their
// rank, 0 when absent, i.e. embeddings not stored).
typedef enum {
    IT_STATUS,    // [N] int8, written per round
    IT_SIM,       // [N, K] float32 (NaN fill), written per round
    IT_CROP,      // [N, KI, 4] int32 crop windows x0, y0, x1, y1 (-1 fill), written per round
    IT_EMB_TEXT,  // [N * KT, D] float32 (output.embeddings), written per round
    IT_EMB_IMAGE, // [N * KI, D] float32 (output.embeddings), written per round
    IT_PROGRESS,  // [n_shards] uint8
    IT_DYN_COUNT
} ItemDs;
extern const char *const IT_PATHS[IT_DYN_COUNT];
extern const H5Kind IT_KINDS[IT_DYN_COUNT];
int eval_items_dims(const Eval *e, ItemDs id, hsize_t dims[3]);
// HDF5 helpers of the extra phases (eval_h5.c): collective read/write of full rows [row0, row0 + nr)
// of an open dataset (nr = 0: join, select none), then the check that the transfer was collective
// (when the file asks for it); creation (rank 0) of a dataset of kind k (-1: float64) laid out by
// h5_dcpl (chunked, deflated at [output] compression; contiguous when empty) with an optional fill
// and data; a group.
int eval_h5_rows(H5Out *o, hid_t d, const char *name, H5Kind k, int write, int64_t row0, int64_t nr, void *buf);
int eval_h5_check_collective(H5Out *o, const char *name);
int eval_h5_create(H5Creating *c, const char *name, int k, int rank, const hsize_t *dims, const void *fill,
                   const void *data);
int eval_h5_group(H5Creating *c, const char *name);
// The same without data, whose rows [row0, row0 + nr) (all columns) are then written block by block
// (rank 0, serial: what a manifest fixes, written without holding it whole).
int eval_h5_create_later(H5Creating *c, const char *name, int k, int rank, const hsize_t *dims);
int eval_h5_write_rows(H5Creating *c, const char *name, int k, int64_t row0, int64_t nr, const void *data);
// Open dataset `name` of the output on this rank and check that it has `rank` dims equal to `want`;
// else CN_E_RESUME naming the job kind that writes it (`writer`) and --fresh.
int eval_h5_open_shape(Eval *e, const char *name, int rank, const hsize_t *want, const char *writer, hid_t *d);
// Zero-shot classification ([dataset] format = classification, docs/classification.md): /classify
// created by rank 0 with the file, the classifier and prediction phases after the main phases.
int eval_classify_load(Eval *e); // classes, templates, labelled images + the induced dataset (into e->ds)
int eval_classify_create(Eval *e, H5Creating *c);
int eval_classify(Eval *e);
// Adds what the results depend on beyond the job text (class names, templates, negated templates,
// image paths and labels) to the job hash, so a resume after editing those files is refused.
void eval_classify_hash(const Eval *e, Sha256 *h);

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

// Read the CLIPNEG_TEST_* hooks (kill/signal after N rounds, per-round delay; tests only).
void eval_test_hooks_read(Eval *e);

// Add the seconds since t0 to stage s; returns now (the start of the next timed span).
static inline double eval_stage_add(Eval *e, EvalStage s, double t0) {
    double now = cn_now();
    e->stage[s] += now - t0;
    return now;
}
// Rank 0 logs the stage breakdown of this run: max and mean over ranks, plus `total` (collective).
void eval_stages_report(const Eval *e, double total);
// The name of a stage in that report ("decode", "tokenize", "text_tower", ...).
const char *eval_stage_name(EvalStage s);

void progress_begin(Progress *p, const char *phase, int64_t total, int64_t already_done);
void progress_update(Progress *p, int64_t done);
void progress_end(Progress *p);

void eval_signals_install(void);
int eval_signal_pending(void); // the signal number that asked us to stop, or 0

#endif
