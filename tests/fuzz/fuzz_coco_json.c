// fuzz_coco_json.c — the COCO captions/instances JSON reader on arbitrary bytes. The first byte picks
// whether the input is read as the captions file or (with a fixed valid captions file) as instances.
#include <stdint.h>

#include "clipneg/common.h"
#include "clipneg/dataset.h"
#include "fuzz_util.h"

static const char VALID_CAPTIONS[] =
    "{\"images\":[{\"id\":1,\"file_name\":\"a.jpg\"},{\"id\":2,\"file_name\":\"b.jpg\"}],"
    "\"annotations\":[{\"id\":10,\"image_id\":1,\"caption\":\"A cat on a sofa.\"},"
    "{\"id\":11,\"image_id\":2,\"caption\":\"Two dogs.\"}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    Dataset ds;
    if (data[0] & 1) {
        const char *caps = fuzz_write_temp("captions.json", (const uint8_t *)VALID_CAPTIONS, sizeof VALID_CAPTIONS - 1);
        char capbuf[512];
        snprintf(capbuf, sizeof capbuf, "%s", caps);
        const char *inst = fuzz_write_temp("instances.json", data + 1, size - 1);
        if (dataset_load_coco(&ds, capbuf, "/nonexistent", inst, 0) == CN_OK) dataset_free(&ds);
    } else {
        const char *caps = fuzz_write_temp("captions.json", data + 1, size - 1);
        if (dataset_load_coco(&ds, caps, "/nonexistent", NULL, (int)(data[0] >> 4)) == CN_OK) dataset_free(&ds);
    }
    return 0;
}
