// fuzz_job_ini.c — the job file and variants file parsers (inih line feeding, validation, ${VAR}
// expansion, template placeholders) and the --set override parser.
// Input: the job text, optionally followed by a line "--" and one override per line. The same
// bytes are also read as a variants file. The folder the job lives in holds what the seed job names
// (model/, img/, c.json, v.ini), so mutations get past the existence checks into the validation.
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/config.h"
#include "clipneg/variants.h"
#include "fuzz_util.h"

static const char VARIANTS[] = "[caption]\ntemplate = {caption}\npolarity = positive\n\n"
                               "[this_is_not]\ntemplate = This is not {caption_lc}\npolarity = negative\n";
static const char CAPTIONS[] = "{\"images\":[{\"id\":1,\"file_name\":\"a.jpg\"}],"
                               "\"annotations\":[{\"id\":2,\"image_id\":1,\"caption\":\"A cat.\"}]}";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_write_temp("v.ini", (const uint8_t *)VARIANTS, sizeof VARIANTS - 1);
    fuzz_write_temp("c.json", (const uint8_t *)CAPTIONS, sizeof CAPTIONS - 1);
    fuzz_make_temp_dir("model");
    fuzz_make_temp_dir("img");
    setenv("CLIPNEG_FUZZ_SET", "7", 1); // for ${CLIPNEG_FUZZ_SET} in seeds
    return 0;
}

#define MAX_OVERRIDES 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = fuzz_cstr(data, size);
    size_t job_len = size;
    const char *overrides[MAX_OVERRIDES + 1] = {NULL};
    char *sep = strstr(text, "\n--\n");
    if (sep) {
        job_len = (size_t)(sep - text) + 1;
        int n = 0;
        for (char *line = sep + 4; *line && n < MAX_OVERRIDES;) {
            char *nl = strchr(line, '\n');
            if (nl) *nl = '\0';
            overrides[n++] = line;
            if (!nl) break;
            line = nl + 1;
        }
    }
    const char *path = fuzz_write_temp("job.ini", data, job_len);
    JobConfig job;
    if (job_load(&job, path, overrides) == CN_OK) {
        // a valid job holds its required keys (docs/job-file.md)
        if (!job.model_path || !job.variants_file || !job.job_text) abort();
        job_free(&job);
    }
    path = fuzz_write_temp("variants-under-test.ini", data, size);
    VariantSet vs;
    if (variants_load(&vs, path) == CN_OK) variants_free(&vs);
    free(text);
    return 0;
}
