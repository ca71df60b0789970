// eval.h — `clipneg eval`: the distributed evaluation driver (docs/eval.md). The stage's own
// structures and phases are internal to src/ (src/eval_internal.h, which maps the eval_*.c files).
#ifndef CLIPNEG_EVAL_H
#define CLIPNEG_EVAL_H

typedef struct {
    const char *job_path;
    const char *output;           // --output (NULL: the job's [output] path)
    const char *const *overrides; // --set section.key=value, NULL-terminated (may be NULL)
    int fresh;                    // --fresh: overwrite an existing output instead of resuming
} EvalOptions;

// Run the whole evaluation (collective over MPI_COMM_WORLD). Returns a process exit code:
// 0 done (or already complete), CN_E_PREEMPTED (75) stopped by a signal after flushing, else the error.
int eval_run(const EvalOptions *opt);
// The lowest rank holding the worst status of the last failed eval_agree (-1: none failed):
// that rank prints the error, the others stay quiet.
int eval_failed_rank(void);

#endif
