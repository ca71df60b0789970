// cmd_export_tsne.c — `clipneg export-tsne OUT.h5 [options]`: sampled embeddings -> PCA -> /tsne
// (docs/reduce.md). Runs alone or under mpirun/srun (MPI is initialised by main.c).
#include <stdlib.h>
#include <string.h>

#include "clipneg/commands.h"
#include "clipneg/common.h"
#include "clipneg/tsne_export.h"

static void usage(FILE *fp) {
    fprintf(fp,
            "usage: clipneg export-tsne OUT.h5 [options]\n"
            "  --max-points N   points in total, an equal share per kind: images, positive, negative (and other)\n"
            "                   texts (default %d; 0 = every valid row)\n"
            "  --pca K          principal components kept (default %d, or D when the embeddings are smaller)\n"
            "  --variants a,b   variants whose texts are included (default: the base variant + every negative)\n"
            "  --base NAME      base variant for the default selection (default: the job's base_variant)\n"
            "  --seed S         sampling seed (default 0)\n"
            "  --block-rows N   sampled rows per global block (default %d; changes results only by rounding)\n",
            TSNE_DEFAULT_POINTS, TSNE_DEFAULT_PCA, TSNE_BLOCK_ROWS);
}

static int parse_args(int argc, char **argv, TsneOptions *o) {
    long long v = 0;
    int rc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return -1;
        }
        if (a[0] != '-') {
            if (o->path) return cn_fail(CN_E_USAGE, "one file at a time: '%s' and '%s'", o->path, a);
            o->path = a;
            continue;
        }
        if (!next) return cn_fail(CN_E_USAGE, "%s needs a value (see clipneg export-tsne --help)", a);
        if (!strcmp(a, "--max-points")) {
            if ((rc = cn_parse_int(a, next, 0, 1LL << 40, &v))) return rc;
            o->max_points = v;
        } else if (!strcmp(a, "--pca")) {
            if ((rc = cn_parse_int(a, next, 1, 100000, &v))) return rc;
            o->pca = (int)v;
        } else if (!strcmp(a, "--block-rows")) {
            if ((rc = cn_parse_int(a, next, 2, 1 << 24, &v))) return rc;
            o->block_rows = (int)v;
        } else if (!strcmp(a, "--variants")) {
            o->variants = next;
        } else if (!strcmp(a, "--base")) {
            o->base = next;
        } else if (!strcmp(a, "--seed")) {
            if ((rc = cn_parse_u64(a, next, &o->seed))) return rc;
        } else {
            return cn_fail(CN_E_USAGE, "unknown option '%s' (see clipneg export-tsne --help)", a);
        }
        i++;
    }
    if (!o->path) return cn_fail(CN_E_USAGE, "missing OUT.h5 (see clipneg export-tsne --help)");
    return CN_OK;
}

int cmd_export_tsne(int argc, char **argv) {
    TsneOptions o;
    tsne_options_default(&o);
    int rc = parse_args(argc, argv, &o);
    if (rc < 0) return CN_OK;  // --help
    if (rc == CN_OK) rc = tsne_export_run(&o);
    if (rc == CN_OK) cn_log("wrote /tsne into %s", o.path);
    if (rc && cn_rank() == 0) fprintf(stderr, "[clipneg] error: export-tsne: %s\n", cn_last_error());
    return rc;
}
