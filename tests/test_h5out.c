// test_h5out.c — the HDF5 writer on its own (run under mpirun with 1..3 ranks, see tests/cmake/eval.cmake):
// rank 0 creates a small file serially (atomic rename), every rank writes its rows collectively
// (some ranks selecting none in a round), float16 blocks, progress flags, an error string in a serial
// section, then finish; everything is read back and compared exactly, for both embeddings layouts
// (in the file / in the scratch file), and deflated (collective filtered writes, ranks selecting none
// still join). CLIPNEG_H5_CHECK_COLLECTIVE=1 makes any non-collective
// transfer an error. Exact comparisons: the writer stores bytes, it computes nothing.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clipneg/common.h"
#include "clipneg/h5out.h"
#include "clipneg/half.h"
#include "clipneg/plan.h"

static int fails = 0;
#define EXPECT(cond, ...) \
    do { \
        if (!(cond)) { \
            fprintf(stderr, "[r%d] FAIL %s:%d: ", cn_rank(), __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__); \
            fputc('\n', stderr); \
            fails++; \
        } \
    } while (0)
#define OK(call) \
    do { \
        int rc_ = (call); \
        if (rc_) { \
            fprintf(stderr, "[r%d] FAIL %s:%d: %s -> %d: %s\n", cn_rank(), __FILE__, __LINE__, #call, rc_, \
                    cn_last_error()); \
            MPI_Abort(MPI_COMM_WORLD, 1); \
        } \
    } while (0)

static float emb_value(int64_t row, int64_t k) { return (float)(row * 100 + k) * 0.25f; }

static void run_case(const char *path, int store_embeddings, int compression) {
    int rank = cn_rank(), P = cn_nranks();
    H5Shape sh = {.n_img = 5,
                  .n_cap = 7,
                  .n_var = 3,
                  .n_text = 21,
                  .dim = 4,
                  .text_shard = 4,
                  .image_shard = 2,
                  .store_embeddings = store_embeddings,
                  .full_similarity = 1,
                  .full_f16 = 1,
                  .compression = compression};
    if (rank == 0) {
        H5Creating c;
        H5Provenance pv = {.job_text = "[run]\nseed = 1\n",
                           .job_sha256 = "abc",
                           .variants_text = "[base]\n",
                           .model_path = "m",
                           .model_arch = "ViT-test",
                           .model_sha256 = "m=1",
                           .random_weights = 1,
                           .backend = "cpu",
                           .precision = "fp32",
                           .ranks = P,
                           .start_time = "2026-01-01T00:00:00Z"};
        OK(h5out_create_begin(&c, path, &sh, &pv));
        EXPECT(access(path, F_OK) != 0, "the final path must not exist before commit");
        const char *names[5] = {"a.jpg", "b.jpg", "caf\xc3\xa9.jpg", "d.jpg", "e.jpg"};
        OK(h5c_write_strings(&c, DS_IMG_FILE, 0, 5, names));
        int64_t ids[5] = {10, 20, 30, 40, 50};
        OK(h5c_write_rows(&c, DS_IMG_ID, 0, 5, ids));
        OK(h5out_create_commit(&c));
        EXPECT(access(path, F_OK) == 0, "committed file exists");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    H5Out o;
    OK(h5out_open(&o, path, &sh, MPI_COMM_WORLD));

    // text embeddings by rounds of global shards: rank p writes shard r*P+p
    ShardPlan tp;
    plan_init(&tp, sh.n_text, sh.text_shard, P);
    for (int64_t r = 0; r < tp.n_rounds; r++) {
        int64_t s = plan_shard(&tp, r, rank), b, e;
        plan_shard_rows(&tp, s, &b, &e);
        float *buf = mallocCheck((size_t)((e - b) * sh.dim + 1) * sizeof(float));
        for (int64_t i = b; i < e; i++)
            for (int64_t k = 0; k < sh.dim; k++) buf[(i - b) * sh.dim + k] = emb_value(i, k);
        OK(h5out_write_rows(&o, DS_EMB_TEXT, b, e - b, buf));
        OK(h5out_flush(&o));
        OK(h5out_mark_done(&o, DS_PROG_TEXT, s));
        free(buf);
    }
    // full similarity as float16 blocks: image shard rows x text tiles of 8 columns
    ShardPlan ip;
    plan_init(&ip, sh.n_img, sh.image_shard, P);
    for (int64_t r = 0; r < ip.n_rounds; r++) {
        int64_t s = plan_shard(&ip, r, rank), b, e;
        plan_shard_rows(&ip, s, &b, &e);
        for (int64_t t0 = 0; t0 < sh.n_text; t0 += 8) {
            int64_t t1 = CN_MIN(t0 + 8, sh.n_text);
            uint16_t blk[2 * 8];
            for (int64_t i = b; i < e; i++)
                for (int64_t t = t0; t < t1; t++)
                    blk[(i - b) * (t1 - t0) + (t - t0)] = f32_to_f16((float)(i - t) / 16.0f);
            OK(h5out_write_block(&o, DS_SIM_FULL, b, e - b, t0, t1 - t0, blk));
        }
        int8_t st[2] = {1, 1};
        OK(h5out_write_rows(&o, DS_IMG_STATUS, b, e - b, st));
        OK(h5out_mark_done(&o, DS_PROG_IMAGE, s));
        OK(h5out_mark_done(&o, DS_PROG_SIM, s));
    }
    // an error string born mid-run, written in a serial section by rank 0
    int64_t row = 3;
    const char *msg = "decode error: not a JPEG \xe2\x98\x95";
    OK(h5out_write_strings_serial(&o, DS_IMG_ERROR, &row, &msg, rank == 0 ? 1 : 0));

    // read back (collective): every rank reads a different slice
    int64_t b, e;
    plan_split(0, sh.n_text, P, rank, &b, &e);
    float *got = mallocCheck((size_t)((e - b) * sh.dim + 1) * sizeof(float));
    OK(h5out_read_rows(&o, DS_EMB_TEXT, b, e - b, got));
    for (int64_t i = b; i < e; i++)
        for (int64_t k = 0; k < sh.dim; k++)
            EXPECT(got[(i - b) * sh.dim + k] == emb_value(i, k), "emb text [%lld,%lld]", (long long)i, (long long)k);
    free(got);
    OK(h5out_finish(&o, P, 1, "cpu", "fp32"));

    if (rank == 0) {
        H5Existing ex;
        OK(h5out_inspect(path, &ex));
        EXPECT(ex.complete == 1, "complete");
        EXPECT(!strcmp(ex.job_sha256, "abc") && !strcmp(ex.model_sha256, "m=1"), "hashes");
        EXPECT(ex.shape.n_img == 5 && ex.shape.n_cap == 7 && ex.shape.n_var == 3 && ex.shape.n_text == 21 &&
                   ex.shape.dim == 4 && ex.shape.text_shard == 4 && ex.shape.image_shard == 2 &&
                   ex.shape.store_embeddings == store_embeddings && ex.has_full && ex.shape.full_f16,
               "shape");
        EXPECT(ex.n_text_shards == 6 && ex.n_image_shards == 3, "shard counts");
        for (int i = 0; i < ex.n_text_shards; i++) EXPECT(ex.text_done[i] == 1, "text shard %d done", i);
        for (int i = 0; i < ex.n_image_shards; i++) EXPECT(ex.image_done[i] && ex.sim_done[i], "image shard %d", i);
        h5out_existing_free(&ex);
        hid_t fid = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        uint16_t full[5 * 21];
        OK(h5_read_all(fid, "/similarity/full", H5K_F16, full, 5 * 21));
        for (int i = 0; i < 5; i++)
            for (int t = 0; t < 21; t++)
                EXPECT(full[i * 21 + t] == f32_to_f16((float)(i - t) / 16.0f), "full[%d,%d]", i, t);
        int8_t st[5], tst[21];
        OK(h5_read_all(fid, "/images/status", H5K_I8, st, 5));
        OK(h5_read_all(fid, "/texts/status", H5K_I8, tst, 21));
        for (int i = 0; i < 5; i++) EXPECT(st[i] == 1, "status %d", i);
        for (int i = 0; i < 21; i++) EXPECT(tst[i] == -1, "text status fill -1 (pending), got %d", tst[i]);
        float paired[7 * 3];
        OK(h5_read_all(fid, "/similarity/paired", H5K_F32, paired, 21));
        for (int i = 0; i < 21; i++) EXPECT(isnan(paired[i]), "paired fill NaN");
        int64_t complete = 0;
        OK(h5_attr_read_int(fid, "complete", &complete));
        EXPECT(complete == 1, "complete attribute");
        EXPECT((H5Lexists(fid, "/embeddings", H5P_DEFAULT) > 0) == store_embeddings, "/embeddings presence");
        // The 1.10 file format's chunk indexes, never the version-1 B-tree whose nodes grew the
        // writers' memory with the chunk count: none at all (addresses computed) for uncompressed
        // chunks allocated early, a fixed array for deflated ones, a single-chunk index for the
        // datasets this small test keeps in one chunk. (H5Dget_chunk_index_type is in the "internal
        // API" section of H5Dpublic.h, exported since 1.10.0.)
        const char *chunked[] = {"/texts/status", "/similarity/full", "/similarity/paired", "/captions/id"};
        const int one_chunk[] = {0, 0, 1, 1}; // /texts/status: 6 shards of 4 rows; full: 3 image shards
        for (int i = 0; i < 4; i++) {
            hid_t d = H5Dopen2(fid, chunked[i], H5P_DEFAULT);
            H5D_chunk_index_t idx = H5D_CHUNK_IDX_BTREE, want = one_chunk[i] ? H5D_CHUNK_IDX_SINGLE
                                                                 : compression ? H5D_CHUNK_IDX_FARRAY
                                                                               : H5D_CHUNK_IDX_NONE;
            EXPECT(H5Dget_chunk_index_type(d, &idx) >= 0, "%s: chunk index type", chunked[i]);
            EXPECT(idx == want, "%s: chunk index %d, expected %d (compression %d)", chunked[i], (int)idx, (int)want,
                   compression);
            H5Dclose(d);
        }
        H5Fclose(fid);
        char scratch[4200];
        h5out_scratch_path(path, scratch, sizeof scratch);
        EXPECT(access(scratch, F_OK) != 0, "scratch file removed at finish");
        char creating[4200];
        snprintf(creating, sizeof creating, "%s.creating", path);
        EXPECT(access(creating, F_OK) != 0, "no temporary left");
    }
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    cn_set_rank(rank, size);
    setenv("CLIPNEG_H5_CHECK_COLLECTIVE", "1", 1);
    char path[256];
    if (rank == 0) snprintf(path, sizeof path, "/tmp/clipneg_test_h5out_%d.h5", (int)getpid());
    MPI_Bcast(path, sizeof path, MPI_CHAR, 0, MPI_COMM_WORLD);
    for (int level = 0; level <= 5; level += 5) {
        run_case(path, 1, level);
        MPI_Barrier(MPI_COMM_WORLD);
        if (rank == 0) unlink(path);
        run_case(path, 0, level);
        MPI_Barrier(MPI_COMM_WORLD);
        if (rank == 0) unlink(path);
    }

    // an unwritable place fails with a message naming it
    if (rank == 0) {
        H5Creating c;
        H5Shape sh = {.n_img = 1,
                      .n_cap = 1,
                      .n_var = 1,
                      .n_text = 1,
                      .dim = 2,
                      .text_shard = 1,
                      .image_shard = 1,
                      .store_embeddings = 1};
        H5Provenance pv = {0};
        int rc = h5out_create_begin(&c, "/nonexistent-dir/x.h5", &sh, &pv);
        EXPECT(rc == CN_E_IO && strstr(cn_last_error(), "/nonexistent-dir/x.h5"), "unwritable: %d '%s'", rc,
               cn_last_error());
        h5out_create_abort(&c);
    }
    int all = 0;
    MPI_Allreduce(&fails, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) printf("h5out (%d ranks): %s\n", size, all ? "FAILED" : "all checks passed");
    MPI_Finalize();
    return all ? 1 : 0;
}
