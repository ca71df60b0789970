// test_h5schema.c — the layout and coordinate helpers of src/h5schema.c on their own: chunk shapes
// (writers' blocks; rows cut by their smallest factors past 16 MiB; ~1 MiB row blocks without a
// hint), contiguous for empty datasets, shuffle + deflate only when asked, the compression check of
// this HDF5 (Debian 12: 1.10.8 >= 1.10.2), and coordinates that are dimension scales with the values
// written. The file-level result (xarray axes, descriptions) is tests/python/test_eval_schema.py.
#define _POSIX_C_SOURCE 200809L
#include <hdf5.h>
#include <hdf5_hl.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../src/h5_internal.h"
#include "clipneg/common.h"
#include "test_check.h"

// Chunk dims of h5_dcpl(rank, dims, elem, level, hint); returns the layout.
static H5D_layout_t chunk_of(int rank, const hsize_t *dims, size_t elem, int level, const hsize_t *hint,
                             hsize_t out[3], int *n_filters) {
    hid_t p = h5_dcpl(rank, dims, elem, level, hint);
    CHECK(p >= 0);
    H5D_layout_t l = H5Pget_layout(p);
    out[0] = out[1] = out[2] = 0;
    if (l == H5D_CHUNKED) H5Pget_chunk(p, 3, out);
    *n_filters = H5Pget_nfilters(p);
    H5Pclose(p);
    return l;
}

static void test_chunks(void) {
    hsize_t c[3];
    int nf;
    // /similarity/full: image shard 64 x tile 4096 float16 = 512 KiB, as hinted
    hsize_t full[2] = {5000, 175000}, hint_full[2] = {64, 4096};
    CHECK_INT(chunk_of(2, full, 2, 0, hint_full, c, &nf), H5D_CHUNKED);
    CHECK_INT(c[0], 64);
    CHECK_INT(c[1], 4096);
    CHECK_INT(nf, 0);
    // hint larger than the dataset: the whole axis
    hsize_t small[2] = {12, 420}, hint_big[2] = {64, 4096};
    chunk_of(2, small, 2, 0, hint_big, c, &nf);
    CHECK_INT(c[0], 12);
    CHECK_INT(c[1], 420);
    // embeddings: text shard 2^20 rows x 768 float32 = 3 GiB -> halved until <= 16 MiB: 4096 rows
    hsize_t emb[2] = {1 << 22, 768}, hint_emb[2] = {1 << 20, 0};
    chunk_of(2, emb, 4, 0, hint_emb, c, &nf);
    CHECK_INT(c[0], 4096);
    CHECK_INT(c[1], 768);
    // odd shard 100001 = 11 x 9091 (prime) rows x 768 float32: 307 MB -> /11 = 28 MB -> /9091 = 1 row
    hsize_t hint_odd[2] = {100001, 0};
    chunk_of(2, emb, 4, 0, hint_odd, c, &nf);
    CHECK_INT(c[0], 1);
    // a shard of 3 * 2^k rows keeps a divisor of the shard: 3 * 2^20 rows x 768 x 4 -> 3 * 2^20 / 2^10 ...
    hsize_t hint_3[2] = {3 << 20, 0};
    chunk_of(2, emb, 4, 0, hint_3, c, &nf);
    CHECK((3u << 20) % c[0] == 0 && c[0] * 768 * 4 <= (16u << 20) && c[0] * 768 * 4 * 2 > (16u << 20));
    // no hint: ~1 MiB of whole rows (paired [N_cap, 7] float32: 1 MiB / 28 B = 37449 rows)
    hsize_t paired[2] = {1000000, 7};
    CHECK_INT(chunk_of(2, paired, 4, 0, NULL, c, &nf), H5D_CHUNKED);
    CHECK_INT(c[0], (1 << 20) / 4 / 7);
    CHECK_INT(c[1], 7);
    // deflate: shuffle + deflate
    CHECK_INT(chunk_of(2, paired, 4, 6, NULL, c, &nf), H5D_CHUNKED);
    CHECK_INT(nf, 2);
    // empty dataset, or level < 0: contiguous
    hsize_t empty[1] = {0};
    CHECK_INT(chunk_of(1, empty, 4, 6, NULL, c, &nf), H5D_CONTIGUOUS);
    CHECK_INT(chunk_of(2, paired, 4, -1, NULL, c, &nf), H5D_CONTIGUOUS);
}

static void test_coords(const char *path) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(f >= 0);
    static const char *const names[] = {"caption", "this_is_not", "x"};
    CHECK_INT(h5_coord_range(f, "row", 70000, H5P_DEFAULT, 1, 3), CN_OK); // more than one block of 65536
    CHECK_INT(h5_coord_strings(f, "variant", names, 3, H5P_DEFAULT, 1), CN_OK);
    hid_t d = H5Dopen2(f, "row", H5P_DEFAULT);
    CHECK(H5DSis_scale(d) > 0);
    char name[32] = "";
    H5DSget_scale_name(d, name, sizeof name);
    CHECK_STR(name, "row");
    static int64_t v[70000];
    H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    int ok = 1;
    for (int i = 0; i < 70000; i++) ok &= v[i] == i;
    CHECK(ok);
    H5Dclose(d);
    d = H5Dopen2(f, "variant", H5P_DEFAULT);
    CHECK(H5DSis_scale(d) > 0);
    hid_t t = H5Dget_type(d);
    CHECK_INT(H5Tget_size(t), strlen("this_is_not") + 1);
    char buf[3][12];
    H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    CHECK_STR(buf[1], "this_is_not");
    CHECK_STR(buf[2], "x");
    H5Tclose(t);
    H5Dclose(d);
    H5Fclose(f);
    unlink(path);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    CHECK_INT(h5_compression_check(0), CN_OK);
    CHECK_INT(h5_compression_check(9), CN_OK); // this HDF5 (>= 1.10.2, with deflate)
    test_chunks();
    char path[128];
    snprintf(path, sizeof path, "/tmp/clipneg_test_h5schema_%d.h5", (int)getpid());
    test_coords(path);
    printf("h5schema: %s\n", g_failures ? "FAILED" : "all checks passed");
    MPI_Finalize();
    return g_failures ? 1 : 0;
}
