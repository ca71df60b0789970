// fuzz_jsonl.c — the JSONL manifest reader on arbitrary bytes.
#include <stdint.h>

#include "clipneg/common.h"
#include "clipneg/dataset.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write_temp("manifest.jsonl", data, size);
    Dataset ds;
    if (dataset_load_jsonl(&ds, path, "/nonexistent", 0) == CN_OK) dataset_free(&ds);
    return 0;
}
