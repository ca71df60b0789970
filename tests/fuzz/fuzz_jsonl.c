// fuzz_jsonl.c — the JSONL manifest reader on arbitrary bytes, then the dataset oracle
// (fuzz_dataset.h) and every variant rendered over it ({negative} included).
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>

#include "clipneg/common.h"
#include "clipneg/dataset.h"
#include "fuzz_dataset.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write_temp("manifest.jsonl", data, size);
    Dataset ds;
    int rc = dataset_load_jsonl(&ds, path, "/nonexistent", 0);
    fuzz_check_load(&ds, rc);
    return 0;
}
