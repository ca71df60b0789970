// torchfile_value.c — the object graph of a torch.save file for callers that want data, not
// tensors (include/clipneg/torchfile.h: TorchData / TorchValue). Same container and pickle checks
// as the checkpoint reader; the file is unmapped once data.pkl has run (values hold copies), and its
// pages are handed back while it runs (tf_pickle_run_mapped), so only the values stay resident.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "clipneg/common.h"
#include "clipneg/torchfile.h"
#include "torchfile_internal.h"

struct TorchData {
    uint8_t *map;
    size_t size;
    TfPickle p;
};

int torchdata_open(TorchData **out, const char *path) {
    *out = NULL;
    TorchData *td = callocCheck(1, sizeof *td);
    TfZip z = {0};
    char top[512], name[600], what[4700];
    int rc = cn_map_file(path, &td->map, &td->size);
    if (rc == CN_OK && (td->size < 4 || memcmp(td->map, "PK\3\4", 4) != 0))
        rc = cn_fail(CN_E_MODEL, "%s: not a torch.save zip file (legacy files: re-save with torch >= 1.6)", path);
    if (rc == CN_OK) rc = tf_zip_open(&z, td->map, td->size, path);
    if (rc == CN_OK) rc = tf_zip_top(&z, top, sizeof top);
    const TfZipEntry *pk = NULL;
    if (rc == CN_OK) {
        snprintf(name, sizeof name, "%s/data.pkl", top);
        pk = tf_zip_find(&z, name);
        rc = tf_zip_stored(&z, pk);
    }
    if (rc == CN_OK) {
        snprintf(what, sizeof what, "%s: %s", path, name);
        rc = tf_pickle_run_mapped(&td->p, td->map + pk->offset, pk->size, what, TF_MAX_VALUES_DATA);
    }
    tf_zip_free(&z);
    if (td->map) munmap(td->map, td->size); // the values hold copies: the file is not needed any more
    td->map = NULL;
    if (rc != CN_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", cn_last_error());
        torchdata_close(td);
        return cn_fail(CN_E_DATA, "%s", msg);
    }
    *out = td;
    return CN_OK;
}

const TorchValue *torchdata_root(const TorchData *td) { return td ? td->p.root : NULL; }

void torchdata_close(TorchData *td) {
    if (!td) return;
    tf_pickle_free(&td->p);
    if (td->map) munmap(td->map, td->size);
    free(td);
}

const TorchValue *torchvalue_get(const TorchValue *d, const char *key) { return tf_dict_get(d, key); }

int torchvalue_len(const TorchValue *v) {
    return v && (v->kind == PV_LIST || v->kind == PV_TUPLE) ? v->n : -1;
}

const TorchValue *torchvalue_index(const TorchValue *v, int i) {
    return i >= 0 && i < torchvalue_len(v) ? v->items[i] : NULL;
}

const char *torchvalue_str(const TorchValue *v) { return v && v->kind == PV_STR ? v->s : NULL; }

const char *torchvalue_kind(const TorchValue *v) {
    static const char *names[] = {"None", "bool", "int", "float", "str", "bytes", "tuple", "list", "dict", "set",
                                  "class", "object", "storage", "tensor", "mark"};
    return v ? names[v->kind] : "missing";
}
