// test_cuda_similarity.cu — the text-embedding table, its all-gather across ranks and the image x
// text similarity tiles (cuda_backend.h). Runs as one rank (singleton MPI) or under mpiexec.
//
//   test_cuda_similarity            all checks (any number of ranks)
//   test_cuda_similarity --probe    exit 0 when a GPU is visible, 77 otherwise
//
// Rank r provides the rows t with t % (nranks + 1) == r, so one residue class is never provided and
// must stay NaN. Expected values are a closed-form function of (row, column), known to every rank.
// Tolerances: gathered rows must be bit-identical (pure copies). Similarities are an fp32 GEMM
// (CUBLAS_COMPUTE_32F, TF32 deliberately switched ON beforehand to prove the tile forces fp32):
// |gpu - exact| <= 1e-5 * sum_d |img_d * txt_d| + 1e-7 (fp32 dot products of length 64 round to
// ~1e-7 relative; TF32 would give ~1e-3 and fail).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "cuda_common.cuh"

#include "clipneg/cuda_backend.h"
#include "clipneg/ops_cuda.h"
#include "cuda_test_gate.h"

static int g_failures = 0, g_rank = 0;

static void expect(int ok, const char *what) {
    if (!ok) g_failures++;
    if (g_rank == 0 || !ok) printf("[rank %d] %s %s\n", g_rank, ok ? "ok  " : "FAIL", what);
}

static float row_value(int64_t t, int d) { return sinf(0.37f * (float)t + 0.11f * (float)d) + 0.01f * (float)(d % 7); }
static float img_value(int i, int d) { return cosf(0.23f * (float)i - 0.05f * (float)d); }

int main(int argc, char **argv) {
    const int gate = cuda_test_gate(argc, argv);
    if (gate >= 0) return gate;
    const int n_gpus = clipneg_cuda_device_count();
    MPI_Init(&argc, &argv);
    int nranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    cn_set_rank(g_rank, nranks);
    const int device = g_rank % n_gpus;
    const int64_t N = 1000;
    const int D = 64;

    // this rank's rows
    std::vector<int64_t> idx;
    std::vector<float> rows;
    for (int64_t t = 0; t < N; t++)
        if (t % (nranks + 1) == g_rank) {
            idx.push_back(t);
            for (int d = 0; d < D; d++) rows.push_back(row_value(t, d));
        }

    CudaComm *comm = nullptr;
    expect(cuda_comm_create(&comm, MPI_COMM_WORLD, device) == CN_OK, "cuda_comm_create");
    if (g_rank == 0)
        printf("%d rank(s), %d GPU(s) visible, all-gather through %s\n", nranks, n_gpus,
               cuda_comm_uses_nccl(comm) ? "NCCL" : "MPI");
    CudaTextTable *table = nullptr;
    expect(cuda_text_table_create(&table, device, N, D) == CN_OK, "cuda_text_table_create");
    expect(cuda_text_table_allgather(table, comm, rows.data(), idx.data(), (int)idx.size()) == CN_OK, "allgather");

    // every row: provided ones bit-identical, the never-provided class NaN
    std::vector<float> back((size_t)N * D);
    expect(cuda_text_table_read(table, 0, (int)N, back.data()) == CN_OK, "table read");
    long wrong = 0, not_nan = 0;
    for (int64_t t = 0; t < N; t++)
        for (int d = 0; d < D; d++) {
            const float v = back[(size_t)t * D + d];
            if (t % (nranks + 1) == nranks)
                not_nan += !isnan(v);
            else
                wrong += v != row_value(t, d);
        }
    char msg[160];
    snprintf(msg, sizeof msg, "gathered rows exact (%ld wrong), missing rows NaN (%ld not NaN)", wrong, not_nan);
    expect(wrong == 0 && not_nan == 0, msg);

    // similarity tile against double-precision dot products, with TF32 switched on around it
    const int n_img = 37, n_txt = 300;
    const int64_t t0 = 100;
    std::vector<float> img((size_t)n_img * D), sim((size_t)n_img * n_txt, 12345.0f);
    for (int i = 0; i < n_img; i++)
        for (int d = 0; d < D; d++) img[(size_t)i * D + d] = img_value(i, d);
    cuda_ops_set_tf32(1);
    expect(cuda_similarity_tile(table, img.data(), n_img, t0, n_txt, sim.data()) == CN_OK, "similarity tile");
    expect(cuda_ops_tf32() == 1, "similarity tile restores the TF32 setting");
    cuda_ops_set_tf32(0);
    long bad = 0, nan_wrong = 0;
    double worst = 0;
    for (int i = 0; i < n_img; i++)
        for (int j = 0; j < n_txt; j++) {
            const int64_t t = t0 + j;
            const float g = sim[(size_t)i * n_txt + j];
            if (t % (nranks + 1) == nranks) {
                nan_wrong += !isnan(g);
                continue;
            }
            double exact = 0, mag = 0;
            for (int d = 0; d < D; d++) {
                exact += (double)img_value(i, d) * row_value(t, d);
                mag += fabs((double)img_value(i, d) * row_value(t, d));
            }
            const double err = fabs(g - exact), tol = 1e-5 * mag + 1e-7;
            worst = fmax(worst, err / tol);
            bad += !(err <= tol);
        }
    snprintf(msg, sizeof msg, "similarity %dx%d: %ld outside tolerance (worst err/tol %.2f), %ld NaN rows not NaN",
             n_img, n_txt, bad, worst, nan_wrong);
    expect(bad == 0 && nan_wrong == 0, msg);

    // out-of-range requests are refused, not read
    expect(cuda_similarity_tile(table, img.data(), n_img, N - 10, 11, sim.data()) == CN_E_INTERNAL,
           "tile past the end refused");
    expect(cuda_text_table_read(table, -1, 2, back.data()) == CN_E_INTERNAL, "read before the start refused");
    // a bad index on rank 0 fails the all-gather on every rank (no rank left waiting)
    int64_t bad_idx = g_rank == 0 ? N : 0;
    float one_row[D] = {0};
    expect(cuda_text_table_allgather(table, comm, one_row, &bad_idx, 1) == CN_E_INTERNAL,
           "bad row index refused on every rank");

    // single-rank path without a communicator
    if (nranks == 1) {
        CudaTextTable *t2 = nullptr;
        expect(cuda_text_table_create(&t2, device, 5, D) == CN_OK, "second table");
        int64_t i2[2] = {4, 1};
        std::vector<float> r2((size_t)2 * D);
        for (int d = 0; d < D; d++) r2[d] = row_value(4, d), r2[(size_t)D + d] = row_value(1, d);
        expect(cuda_text_table_allgather(t2, nullptr, r2.data(), i2, 2) == CN_OK, "allgather without comm");
        std::vector<float> b2((size_t)5 * D);
        expect(cuda_text_table_read(t2, 0, 5, b2.data()) == CN_OK, "read");
        expect(b2[(size_t)4 * D + 3] == row_value(4, 3) && b2[(size_t)1 * D] == row_value(1, 0) && isnan(b2[0]) &&
                   isnan(b2[(size_t)2 * D]),
               "rows 4 and 1 placed, others NaN");
        cuda_text_table_destroy(t2);
    }

    cuda_text_table_destroy(table);
    cuda_comm_destroy(comm);
    int worst_failures = 0;
    MPI_Allreduce(&g_failures, &worst_failures, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    if (g_rank == 0) printf("%s\n", worst_failures ? "FAILED" : "all checks passed");
    return worst_failures ? 1 : 0;
}
