// dataset_bench_formats.c — which reader serves which published benchmark format
// (docs/benchmarks.md). Kept apart from the readers so that the table calls them and they call the
// shared builder in dataset_bench.c, never back (no call circle).
#include "clipneg/common.h"
#include "dataset_bench_internal.h"
#include "dataset_internal.h"

typedef struct {
    DatasetKind kind;
    int (*load)(ItemSet *s, const JobConfig *job);
} BenchFormat;

// Item benchmarks read from published files; add a row for a new one.
static const BenchFormat BENCH_FORMATS[] = {
    {DATASET_NEGBENCH_MCQ, bench_load_negbench_mcq},
    {DATASET_NEGREFCOCOG, bench_load_negrefcocog},
    {DATASET_VALSE_EXISTENCE, bench_load_valse},
    {DATASET_SUGARCREPE, bench_load_sugarcrepe},
    {DATASET_CCNEG, bench_load_ccneg},
};
#define N_BENCH_FORMATS ((int)(sizeof BENCH_FORMATS / sizeof BENCH_FORMATS[0]))

int items_format_is_bench(int kind) {
    for (int i = 0; i < N_BENCH_FORMATS; i++)
        if ((int)BENCH_FORMATS[i].kind == kind) return 1;
    return 0;
}

int items_load_bench(ItemSet *s, const JobConfig *job) {
    for (int i = 0; i < N_BENCH_FORMATS; i++)
        if (BENCH_FORMATS[i].kind == job->dataset_kind) return BENCH_FORMATS[i].load(s, job);
    return cn_fail(CN_E_INTERNAL, "dataset format %d has no item reader", (int)job->dataset_kind);
}

