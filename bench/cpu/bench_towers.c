// bench_towers.c — clipneg's CPU towers alone, for bench/cpu/run.py (never a unit test).
//   bench_towers MODEL_DIR image PIXELS.f32 B REPEATS   -> images/s per repeat
//   bench_towers MODEL_DIR text  IDS.i32   N REPEATS    -> texts/s per repeat (batches of 256)
//   bench_towers sgemm M N K REPEATS                    -> GFLOP/s of cblas_sgemm (machine peak probe,
//                                                          OpenBLAS's own threads: OPENBLAS_NUM_THREADS)
//   bench_towers sgemm-tiled M N K REPEATS              -> GFLOP/s of sgemm_rowmajor, clipneg's fixed tile
//                                                          grid (OMP_NUM_THREADS threads, OpenBLAS 1 each)
// bench_towers_plain (bench/cpu/CMakeLists.txt) is the same program linked against an ops_cpu.c whose
// sgemm_rowmajor is ONE multithreaded OpenBLAS call: the towers' cost of the determinism invariant.
// Inputs are raw little-endian arrays written by run.py from open_clip's own preprocessing and
// tokenizer, so both implementations see exactly the same numbers. One line per repeat on stdout.
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/encoder.h"
#include "clipneg/model.h"
#include "clipneg/ops.h"

static void *read_all(const char *path, size_t *n) {
    char *data;
    if (cn_read_file(path, &data, n) != CN_OK) cn_die(CN_E_IO, "%s", cn_last_error());
    return data;
}

static int bench_sgemm(int M, int N, int K, int reps, int tiled) {
    float *a = mallocCheck((size_t)M * K * sizeof(float)), *b = mallocCheck((size_t)K * N * sizeof(float));
    float *c = mallocCheck((size_t)M * N * sizeof(float));
    for (long i = 0; i < (long)M * K; i++) a[i] = (float)((i * 7919) % 1000) / 1000.0f;
    for (long i = 0; i < (long)K * N; i++) b[i] = (float)((i * 104729) % 1000) / 1000.0f;
    for (int r = 0; r < reps + 1; r++) {
        double t0 = cn_now();
        if (tiled)
            sgemm_rowmajor(1, M, N, K, a, K, b, K, 0.0f, c, N);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
        double dt = cn_now() - t0;
        if (r > 0) printf("%.3f\n", 2.0 * M * N * K / dt / 1e9);  // first run warms up
    }
    free(a); free(b); free(c);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 6 && !strcmp(argv[1], "sgemm"))
        return bench_sgemm(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), 0);
    if (argc == 6 && !strcmp(argv[1], "sgemm-tiled")) {
        ops_set_threads(0); // OMP_NUM_THREADS threads over the tile grid, OpenBLAS single-threaded
        return bench_sgemm(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), 1);
    }
    if (argc != 6) {
        fprintf(stderr, "usage: bench_towers MODEL image|text INPUT COUNT REPEATS | sgemm|sgemm-tiled M N K REPEATS\n");
        return CN_E_USAGE;
    }
    ClipModel m;
    ClipLoadOptions opt = {.force_quick_gelu = -1};
    if (clip_model_load(&m, argv[1], &opt) != CN_OK) cn_die(CN_E_MODEL, "%s", cn_last_error());
    int count = atoi(argv[4]), reps = atoi(argv[5]);
    size_t n = 0;
    void *in = read_all(argv[3], &n);
    float *out = mallocCheck((size_t)count * m.cfg.embed_dim * sizeof(float));
    int is_image = !strcmp(argv[2], "image");
    for (int r = 0; r < reps + 1; r++) {
        double t0 = cn_now();
        if (is_image) {
            if (encode_images_cpu(&m, (const float *)in, count, out) != CN_OK) cn_die(CN_E_INTERNAL, "%s", cn_last_error());
        } else {
            const int32_t *ids = in;
            for (int i = 0; i < count; i += 256) {
                int b = CN_MIN(256, count - i);
                if (encode_texts_cpu(&m, ids + (size_t)i * m.cfg.context_length, b, out + (size_t)i * m.cfg.embed_dim) != CN_OK)
                    cn_die(CN_E_INTERNAL, "%s", cn_last_error());
            }
        }
        double dt = cn_now() - t0;
        if (r > 0) printf("%.3f\n", count / dt);  // first run warms up (page faults, thread pools)
    }
    // print a checksum so run.py can verify both implementations computed the same thing
    double s = 0;
    for (long i = 0; i < (long)count * m.cfg.embed_dim; i++) s += out[i];
    fprintf(stderr, "checksum %.6f\n", s);
    free(out); free(in);
    clip_model_free(&m);
    return 0;
}
