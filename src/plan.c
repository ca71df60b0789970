// plan.c — global shards and round-robin rounds; see include/clipneg/plan.h for why the shard size
// is fixed by the job and not by the number of ranks.
#include "clipneg/plan.h"

#include "clipneg/common.h"

void plan_init(ShardPlan *p, int64_t n_items, int64_t shard_size, int nranks) {
    if (shard_size < 1) cn_die(CN_E_INTERNAL, "plan_init: shard size %lld < 1", (long long)shard_size);
    if (nranks < 1) cn_die(CN_E_INTERNAL, "plan_init: %d ranks", nranks);
    if (n_items < 0) n_items = 0;
    p->n_items = n_items;
    p->shard_size = shard_size;
    p->n_shards = CN_CEIL_DIV(n_items, shard_size);
    p->nranks = nranks;
    p->n_rounds = CN_CEIL_DIV(p->n_shards, (int64_t)nranks);
}

int64_t plan_shard(const ShardPlan *p, int64_t round, int rank) {
    if (round < 0 || rank < 0 || rank >= p->nranks) return -1;
    int64_t s = round * p->nranks + rank;
    return s < p->n_shards ? s : -1;
}

void plan_shard_rows(const ShardPlan *p, int64_t s, int64_t *begin, int64_t *end) {
    if (s < 0 || s >= p->n_shards) {
        *begin = *end = 0;
        return;
    }
    *begin = s * p->shard_size;
    *end = CN_MIN(*begin + p->shard_size, p->n_items);
}

int plan_round_done(const ShardPlan *p, int64_t round, const uint8_t *done) {
    for (int r = 0; r < p->nranks; r++) {
        int64_t s = plan_shard(p, round, r);
        if (s >= 0 && !done[s]) return 0;
    }
    return 1;
}

int64_t plan_rows_done(const ShardPlan *p, const uint8_t *done) {
    int64_t rows = 0;
    for (int64_t s = 0; s < p->n_shards; s++) {
        if (!done[s]) continue;
        int64_t b, e;
        plan_shard_rows(p, s, &b, &e);
        rows += e - b;
    }
    return rows;
}

int64_t plan_round_rows(const ShardPlan *p, int64_t round) {
    int64_t rows = 0;
    for (int r = 0; r < p->nranks; r++) {
        int64_t b, e;
        plan_shard_rows(p, plan_shard(p, round, r), &b, &e);
        rows += e - b;
    }
    return rows;
}

void plan_split(int64_t begin, int64_t end, int nparts, int part, int64_t *b, int64_t *e) {
    int64_t n = end > begin ? end - begin : 0;
    // part k gets [n*k/P, n*(k+1)/P): sizes differ by at most one row
    *b = begin + n * part / nparts;
    *e = begin + n * (part + 1) / nparts;
}
