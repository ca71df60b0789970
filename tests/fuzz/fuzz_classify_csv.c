// fuzz_classify_csv.c — the classification CSV reader (src/dataset_classify.c) on arbitrary bytes,
// with a fixed class-name file (one name containing a comma and quotes, one repeated) and template
// file; then the oracle: labels in range, image paths non-empty valid UTF-8, and the induced
// dataset (fuzz_dataset.h) with every variant rendered over it.
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>

#include "clipneg/classify.h"
#include "clipneg/common.h"
#include "fuzz_dataset.h"
#include "fuzz_util.h"

static const char CLASSES[] = "cat\ndog\nbig, \"red\" bus\nmissile\nmissile\n";
static const char TEMPLATES[] = "a photo of a {c}.\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char classes[600], templates[600];
    snprintf(classes, sizeof classes, "%s", fuzz_write_temp("classes.txt", (const uint8_t *)CLASSES, sizeof CLASSES - 1));
    snprintf(templates, sizeof templates, "%s", fuzz_write_temp("t.txt", (const uint8_t *)TEMPLATES, sizeof TEMPLATES - 1));
    const char *csv = fuzz_write_temp("labels.csv", data, size);
    ClassifySet s;
    ClassifyFiles f = {.path = csv, .images_dir = "/nonexistent", .classnames = classes, .templates = templates};
    int rc = classify_load(&s, &f);
    if (rc != CN_OK) {
        if (rc != CN_E_DATA || !cn_last_error()[0]) abort(); // bad data is CN_E_DATA with a message
        return 0;
    }
    if (s.n_classes != 5 || s.n_images <= 0) abort();
    for (int i = 0; i < s.n_images; i++) {
        if (s.labels[i] < 0 || s.labels[i] >= s.n_classes) abort();
        if (!s.images[i] || !s.images[i][0] || !fuzz_utf8_valid(s.images[i])) abort();
        if (s.lines[i] < 2) abort(); // line 1 at least is the header
    }
    Dataset ds;
    if (classify_to_dataset(&s, &ds) != CN_OK) abort(); // a loaded set always induces a dataset
    if (ds.n_images != s.n_images || ds.n_captions != s.n_images) abort();
    fuzz_check_dataset(&ds);
    fuzz_render_all(&ds);
    dataset_free(&ds);
    classify_free(&s);
    return 0;
}
