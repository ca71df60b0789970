// cmd_reduce.c — `clipneg reduce OUT.h5 [options]`: global statistics into /stats, stats.json and a
// markdown table (docs/reduce.md). Runs alone or under mpirun/srun (MPI is initialised by main.c).
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "clipneg/commands.h"
#include "clipneg/common.h"
#include "clipneg/classify.h"
#include "clipneg/items.h"
#include "clipneg/reduce.h"

static void usage(FILE *fp) {
    fprintf(fp,
            "usage: clipneg reduce OUT.h5 [options]\n"
            "  --base NAME         positive base variant (default: the job's base_variant, else the first positive)\n"
            "  --bootstrap N       bootstrap resamples for the 95%% CI of the mean difference (default 1000, 0 = off)\n"
            "  --seed S            bootstrap seed (default 0)\n"
            "  --json PATH         where to write the JSON copy (default: OUT.stats.json beside OUT.h5)\n"
            "  --no-table          do not print the markdown table on stdout\n"
            "  --allow-incomplete  reduce a file whose evaluation has not finished\n"
            "  --block-rows N      captions per global block (default %d; results depend on it only by rounding)\n"
            "  --tile-texts N, --tile-images N   retrieval tile sizes (defaults %d, %d)\n",
            REDUCE_BLOCK_ROWS, REDUCE_TILE_TEXTS, REDUCE_TILE_IMAGES);
}

static char *default_json_path(const char *h5) {
    size_t n = strlen(h5);
    char *out = mallocCheck(n + 16);
    memcpy(out, h5, n + 1);
    if (n > 3 && strcmp(h5 + n - 3, ".h5") == 0) out[n - 3] = '\0';
    else if (n > 5 && strcmp(h5 + n - 5, ".hdf5") == 0) out[n - 5] = '\0';
    strcat(out, ".stats.json");
    return out;
}

static int parse_args(int argc, char **argv, ReduceOptions *o) {
    long long v = 0;
    int rc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = !strcmp(a, "--base") || !strcmp(a, "--bootstrap") || !strcmp(a, "--seed") || !strcmp(a, "--json") ||
                    !strcmp(a, "--block-rows") || !strcmp(a, "--tile-texts") || !strcmp(a, "--tile-images");
        if (takes && !next) return cn_fail(CN_E_USAGE, "%s needs a value", a);
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return -1;
        } else if (!strcmp(a, "--base")) {
            o->base = next;
        } else if (!strcmp(a, "--json")) {
            o->json_path = next;
        } else if (!strcmp(a, "--bootstrap")) {
            if ((rc = cn_parse_int(a, next, 0, 100000000, &v))) return rc;
            o->bootstrap = (int)v;
        } else if (!strcmp(a, "--seed")) {
            if ((rc = cn_parse_u64(a, next, &o->seed))) return rc;
        } else if (!strcmp(a, "--block-rows")) {
            if ((rc = cn_parse_int(a, next, 1, 1 << 24, &v))) return rc;
            o->block_rows = (int)v;
        } else if (!strcmp(a, "--tile-texts")) {
            if ((rc = cn_parse_int(a, next, 1, 1 << 20, &v))) return rc;
            o->tile_texts = (int)v;
        } else if (!strcmp(a, "--tile-images")) {
            if ((rc = cn_parse_int(a, next, 1, 1 << 20, &v))) return rc;
            o->tile_images = (int)v;
        } else if (!strcmp(a, "--no-table")) {
            o->print_table = 0;
            continue;
        } else if (!strcmp(a, "--allow-incomplete")) {
            o->allow_incomplete = 1;
            continue;
        } else if (a[0] == '-') {
            return cn_fail(CN_E_USAGE, "unknown option '%s' (see clipneg reduce --help)", a);
        } else if (!o->path) {
            o->path = a;
            continue;
        } else {
            return cn_fail(CN_E_USAGE, "one file at a time: '%s' and '%s'", o->path, a);
        }
        i++;  // the option's value
    }
    if (!o->path) return cn_fail(CN_E_USAGE, "missing OUT.h5 (see clipneg reduce --help)");
    return CN_OK;
}

int cmd_reduce(int argc, char **argv) {
    ReduceOptions o;
    reduce_options_default(&o);
    int rc = parse_args(argc, argv, &o);
    if (rc < 0) return CN_OK;  // --help
    if (rc) {
        if (cn_rank() == 0) fprintf(stderr, "clipneg reduce: %s\n", cn_last_error());
        return rc;
    }
    ReduceResult r;
    rc = reduce_compute(&o, &r);
    if (rc == CN_OK) rc = reduce_write_h5(o.path, &r);
    char *json = o.json_path ? strdupCheck(o.json_path) : default_json_path(o.path);
    if (rc == CN_OK && cn_rank() == 0) {
        rc = reduce_write_json(json, &r);
        if (rc == CN_OK && o.print_table) reduce_print_table(stdout, &r);
        if (rc == CN_OK) cn_log("wrote /stats into %s and %s", o.path, json);
    }
    // Files with /items (docs/items.md) also get /stats/items and an "items" part of the JSON; a
    // no-op otherwise. After the block above: /stats is replaced as a whole there.
    MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (rc == CN_OK) rc = reduce_items(o.path, json, o.print_table);
    // Zero-shot classification files (docs/classification.md): /stats/classify, "classify" in the JSON.
    MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (rc == CN_OK) rc = reduce_classify(o.path, json, o.print_table);
    if (rc && cn_rank() == 0) fprintf(stderr, "[clipneg] error: %s\n", cn_last_error());
    free(json);
    reduce_result_free(&r);
    return rc;
}
