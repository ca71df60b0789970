// plan.h — the work plan: fixed GLOBAL shards and which rank takes which shard in which round.
//
// A phase (texts, images, similarity) has n_items rows cut into shards of `shard_size` rows (the
// last one may be shorter). Shard size comes from the job, never from the rank count, so the batch
// composition — and with it every number written — is the same on 1 or 100 ranks. Shard s goes to
// rank s % P in round s / P; a round is one collective HDF5 write step, in which every rank takes
// part (a rank without a shard, or whose shard is already done, selects nothing).
// Resume = skip shards whose flag in /progress is set.
#ifndef CLIPNEG_PLAN_H
#define CLIPNEG_PLAN_H

#include <stdint.h>

typedef struct {
    int64_t n_items;    // rows in the phase
    int64_t shard_size; // rows per shard (>= 1)
    int64_t n_shards;   // ceil(n_items / shard_size)
    int nranks;         // P
    int64_t n_rounds;   // ceil(n_shards / P)
} ShardPlan;

void plan_init(ShardPlan *p, int64_t n_items, int64_t shard_size, int nranks);
// The shard rank `rank` works on in round `round`, or -1 when it has none.
int64_t plan_shard(const ShardPlan *p, int64_t round, int rank);
// Rows [*begin, *end) of shard s.
void plan_shard_rows(const ShardPlan *p, int64_t s, int64_t *begin, int64_t *end);
// 1 when every shard of the round is flagged done in `done` [n_shards] (so the round is skipped).
int plan_round_done(const ShardPlan *p, int64_t round, const uint8_t *done);
// Rows whose shard is flagged done.
int64_t plan_rows_done(const ShardPlan *p, const uint8_t *done);
// Rows of the round's shards (all shards of the round, done or not).
int64_t plan_round_rows(const ShardPlan *p, int64_t round);
// Split [begin, end) into `nparts` contiguous, disjoint, nearly equal parts; part `part` is
// [*b, *e) (possibly empty). Used for each rank's slice of a similarity text tile.
void plan_split(int64_t begin, int64_t end, int nparts, int part, int64_t *b, int64_t *e);

#endif
