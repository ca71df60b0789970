// fuzz_coco_json.c — the COCO captions/instances JSON reader on arbitrary bytes, then the dataset
// oracle (fuzz_dataset.h: order, contiguity, valid UTF-8) and every variant rendered over it
// (subject detection and swap included, which need the instances' categories).
// The first byte picks the mode: odd = the input is an instances file read beside a fixed valid
// captions file; even = the input is the captions file (max_images = first byte >> 4).
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>

#include "clipneg/common.h"
#include "clipneg/dataset.h"
#include "fuzz_dataset.h"
#include "fuzz_util.h"

static const char VALID_CAPTIONS[] =
    "{\"images\":[{\"id\":1,\"file_name\":\"a.jpg\"},{\"id\":2,\"file_name\":\"b.jpg\"}],"
    "\"annotations\":[{\"id\":10,\"image_id\":1,\"caption\":\"A cat on a sofa.\"},"
    "{\"id\":11,\"image_id\":2,\"caption\":\"Two dogs play with a frisbee.\"},"
    "{\"id\":12,\"image_id\":2,\"caption\":\"A man riding a horse near a car.\"}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    Dataset ds;
    int rc;
    if (data[0] & 1) {
        const char *caps = fuzz_write_temp("captions.json", (const uint8_t *)VALID_CAPTIONS, sizeof VALID_CAPTIONS - 1);
        char capbuf[512];
        snprintf(capbuf, sizeof capbuf, "%s", caps); // fuzz_write_temp's buffer is reused below
        const char *inst = fuzz_write_temp("instances.json", data + 1, size - 1);
        rc = dataset_load_coco(&ds, capbuf, "/nonexistent", inst, 0);
    } else {
        const char *caps = fuzz_write_temp("captions.json", data + 1, size - 1);
        rc = dataset_load_coco(&ds, caps, "/nonexistent", NULL, (int)(data[0] >> 4));
    }
    fuzz_check_load(&ds, rc);
    return 0;
}
