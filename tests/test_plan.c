// test_plan.c — the work plan: every row in exactly one shard, every shard taken exactly once,
// shard rows independent of the rank count, round-robin s % P, resume bookkeeping, tile splits.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/plan.h"

static int fails = 0;
#define EXPECT(cond, ...) \
    do { \
        if (!(cond)) { \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__); \
            fputc('\n', stderr); \
            fails++; \
        } \
    } while (0)

static void check_cover(int64_t n_items, int64_t shard, int P) {
    ShardPlan p;
    plan_init(&p, n_items, shard, P);
    EXPECT(p.n_shards == (n_items + shard - 1) / shard, "n_shards %lld", (long long)p.n_shards);
    EXPECT(p.n_rounds == (p.n_shards + P - 1) / P, "n_rounds %lld", (long long)p.n_rounds);
    int *row_seen = callocCheck((size_t)n_items + 1, sizeof(int));
    int *shard_seen = callocCheck((size_t)p.n_shards + 1, sizeof(int));
    for (int64_t r = 0; r < p.n_rounds; r++) {
        int64_t round_rows = 0;
        for (int k = 0; k < P; k++) {
            int64_t s = plan_shard(&p, r, k);
            if (s < 0) continue;
            EXPECT(s % P == k && s / P == r, "shard %lld in round %lld rank %d", (long long)s, (long long)r, k);
            shard_seen[s]++;
            int64_t b, e;
            plan_shard_rows(&p, s, &b, &e);
            // rows depend on (s, shard size) only: the same for any P
            EXPECT(b == s * shard && e == CN_MIN((s + 1) * shard, n_items), "rows of shard %lld", (long long)s);
            for (int64_t i = b; i < e; i++) row_seen[i]++;
            round_rows += e - b;
        }
        EXPECT(round_rows == plan_round_rows(&p, r), "round rows");
    }
    for (int64_t i = 0; i < n_items; i++) EXPECT(row_seen[i] == 1, "row %lld seen %d times", (long long)i, row_seen[i]);
    for (int64_t s = 0; s < p.n_shards; s++)
        EXPECT(shard_seen[s] == 1, "shard %lld taken %d times", (long long)s, shard_seen[s]);
    EXPECT(plan_shard(&p, p.n_rounds, 0) == -1, "no shard past the last round");
    free(row_seen);
    free(shard_seen);
}

int main(void) {
    int64_t sizes[] = {0, 1, 7, 64, 65, 100, 1000};
    int64_t shards[] = {1, 3, 8, 64};
    for (int a = 0; a < 7; a++)
        for (int b = 0; b < 4; b++)
            for (int P = 1; P <= 5; P++) check_cover(sizes[a], shards[b], P);

    // resume bookkeeping: 10 shards of 8 rows (last has 4), 3 ranks -> rounds {0,1,2} {3,4,5} {6,7,8} {9}
    ShardPlan p;
    plan_init(&p, 76, 8, 3);
    uint8_t done[10] = {1, 1, 1, 1, 0, 1, 0, 0, 0, 1};
    EXPECT(plan_round_done(&p, 0, done) == 1, "round 0 done");
    EXPECT(plan_round_done(&p, 1, done) == 0, "round 1 has shard 4 pending");
    EXPECT(plan_round_done(&p, 3, done) == 1, "round 3 (only shard 9) done");
    EXPECT(plan_rows_done(&p, done) == 5 * 8 + 4, "rows done %lld", (long long)plan_rows_done(&p, done));
    EXPECT(plan_round_rows(&p, 3) == 4, "last round rows");

    // tile splits: disjoint, contiguous, cover, sizes differ by <= 1, empty parts allowed
    for (int64_t n = 0; n < 20; n++)
        for (int P = 1; P <= 6; P++) {
            int64_t prev_e = 5, mn = n, mx = 0;
            for (int k = 0; k < P; k++) {
                int64_t b, e;
                plan_split(5, 5 + n, P, k, &b, &e);
                EXPECT(b == prev_e && e >= b, "split %lld/%d part %d: [%lld,%lld)", (long long)n, P, k, (long long)b,
                       (long long)e);
                prev_e = e;
                mn = CN_MIN(mn, e - b);
                mx = CN_MAX(mx, e - b);
            }
            EXPECT(prev_e == 5 + n, "split covers");
            EXPECT(mx - mn <= 1, "balanced split");
        }
    printf("%s\n", fails ? "plan: FAILED" : "plan: all checks passed");
    return fails ? 1 : 0;
}
