// dataset_ccneg.c — `[dataset] format = ccneg`: CC-Neg as published, `ccneg_preprocessed.pt`
// (CoN-CLIP, ccneg_dataset/README.md), read with the data-only PyTorch reader (torchfile.h) into an
// item set on the shared benchmark builder (dataset_bench.c): one choice item per entry, K = 2 (the
// true caption, then its negation), answer 0, type "ccneg".
//
// Layout (a torch.save dict): "image_paths": [str], "annotations": [{"json": {"caption": str, ...},
// "sop_data": {"negative-prompt": str, ...}}, ...], same length. As upstream's evaluation
// (src/configs/__init__.py, src/data/evaluation_datasets.py CCNegEvalDataset): the LAST
// `[dataset] last_n` entries (default 40,000) are the test split, commas are removed from the
// negated caption, and the score is argmax over [sim(true), sim(neg)] == 0 (a tie counts as
// correct). Image paths go through bench_image: `image_prefix` (/workspace/datasets/cc3m/) cut
// off, then looked up under `images` like every other benchmark; a path used twice is one image.
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/torchfile.h"
#include "dataset_bench_internal.h"

static char *without_commas(const char *t) {
    char *o = mallocCheck(strlen(t) + 1), *w = o;
    for (; *t; t++)
        if (*t != ',') *w++ = *t;
    *w = '\0';
    return o;
}

static int fail_field(const char *path, int entry, const char *field, const TorchValue *v) {
    return cn_fail(CN_E_DATA, "%s: entry %d: %s: expected a str, found %s", path, entry, field, torchvalue_kind(v));
}

// The file's two lists, checked: CN_OK and their common length in *n.
static int ccneg_lists(const char *path, const TorchData *td, const TorchValue **paths, const TorchValue **anns, int *n) {
    const TorchValue *root = torchdata_root(td);
    *paths = torchvalue_get(root, "image_paths");
    *anns = torchvalue_get(root, "annotations");
    *n = torchvalue_len(*paths);
    if (*n < 0 || torchvalue_len(*anns) < 0)
        return cn_fail(CN_E_DATA, "%s: expected a dict with lists \"image_paths\" and \"annotations\" (found %s and %s)",
                       path, torchvalue_kind(*paths), torchvalue_kind(*anns));
    if (torchvalue_len(*anns) != *n)
        return cn_fail(CN_E_DATA, "%s: %d image_paths but %d annotations", path, *n, torchvalue_len(*anns));
    if (*n == 0) return cn_fail(CN_E_DATA, "%s: no entries", path);
    return CN_OK;
}

int bench_load_ccneg(ItemSet *s, const JobConfig *job) {
    const char *path = job->dataset_path;
    memset(s, 0, sizeof *s);
    TorchData *td;
    int rc = torchdata_open(&td, path);
    if (rc != CN_OK) return rc;
    const TorchValue *paths = NULL, *anns = NULL;
    int n = 0;
    rc = ccneg_lists(path, td, &paths, &anns, &n);
    if (rc != CN_OK) {
        torchdata_close(td);
        return rc;
    }
    BenchBuilder b;
    bench_begin(&b, s, job, path);
    s->tie_first_max = 1; // upstream: argmax over [sim(true), sim(neg)] == 0, the first maximum wins
    s->format = "ccneg";
    int type = bench_type(&b, "ccneg");
    int keep = job->last_n > 0 ? CN_MIN(n, job->last_n) : n; // upstream: [-split_size:]
    for (int e = n - keep; e < n && rc == CN_OK; e++) {
        const TorchValue *a = torchvalue_index(anns, e), *pv = torchvalue_index(paths, e);
        const TorchValue *cv = torchvalue_get(torchvalue_get(a, "json"), "caption");
        const TorchValue *nv = torchvalue_get(torchvalue_get(a, "sop_data"), "negative-prompt");
        const char *p = torchvalue_str(pv), *cap = torchvalue_str(cv), *neg = torchvalue_str(nv);
        if (!p) rc = fail_field(path, e, "image_paths[i]", pv);
        else if (!cap) rc = fail_field(path, e, "annotations[i][\"json\"][\"caption\"]", cv);
        else if (!neg) rc = fail_field(path, e, "annotations[i][\"sop_data\"][\"negative-prompt\"]", nv);
        else if (!p[0]) rc = cn_fail(CN_E_DATA, "%s: entry %d: empty image path", path, e);
        if (rc != CN_OK) break;
        char *nc = without_commas(neg);
        const char *texts[2] = {cap, nc};
        Item it;
        bench_choice(&it, e + 1, texts, 2, 0, &s->n_invalid_utf8); // line: the entry, 1-based
        free(nc);
        it.image = bench_image(&b, p);
        it.type = type;
        bench_add(&b, &it);
    }
    torchdata_close(td); // the items hold copies: the object graph (the big part) goes first
    return bench_end(&b, rc);
}
