// fuzz_job_ini.c — the job file and variants file parsers (inih + validation + template placeholders).
#include <stdint.h>

#include "clipneg/common.h"
#include "clipneg/config.h"
#include "clipneg/variants.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write_temp("job.ini", data, size);
    JobConfig job;
    if (job_load(&job, path, NULL) == CN_OK) job_free(&job);
    VariantSet vs;
    if (variants_load(&vs, path) == CN_OK) variants_free(&vs);
    return 0;
}
