// classify.h — zero-shot classification (`[dataset] format = classification`, docs/classification.md):
// images with a class label, from an ImageFolder tree (DIR/<class>/<image>) or a CSV `image,label`;
// class names and prompt templates from files. The classifier is open_clip's
// build_zero_shot_classifier: per class, the mean of the L2-normalised embeddings of its prompts
// (one per template), normalised again; an image's prediction is the first maximum of its cosines
// with the C class vectors (ties go to the lower class index, as numpy's and torch's argmax). A second classifier from negated templates ("a photo of no {c}.") is the negation
// probe: a model that reads "no" should not pick the image's class with it.
//
//   src/dataset_classify.c   the files (classnames, templates, ImageFolder/CSV) and the induced dataset
//   src/eval_classify.c      the classifier and prediction phases of `clipneg eval` (/classify)
//   src/reduce_classify.c    top-1/top-5/ties/negation probe in /stats/classify
#ifndef CLIPNEG_CLASSIFY_H
#define CLIPNEG_CLASSIFY_H

#include <stdint.h>
#include <stdio.h>

#include "clipneg/dataset.h"

#define CLASSIFY_TOPK 5                             // predictions kept per image
#define CLASSIFY_DEFAULT_NEGATED "a photo of no {c}." // the negation probe without a negated_templates file

enum { CLASSIFY_PENDING = 0, CLASSIFY_OK = 1, CLASSIFY_IMAGE_FAILED = 2 }; // /classify/status

typedef struct {
    char *source;          // [dataset] path as given: the ImageFolder folder or the CSV file
    int is_csv;
    char *image_root;      // image paths are relative to it
    char **classnames;     // [n_classes]
    int n_classes;
    char **templates;      // [n_templates] with "{c}" where the class name goes
    int n_templates;
    char **neg_templates;  // [n_neg_templates] the negation probe's templates
    int n_neg_templates;
    char **images;         // [n_images] relative to image_root (ImageFolder: "<class folder>/<file>")
    int32_t *labels;       // [n_images] class index
    int *lines;            // [n_images] CSV line (1-based); 0 for ImageFolder
    int n_images;
} ClassifySet;

typedef struct {
    const char *path;          // ImageFolder DIR or CSV FILE
    const char *images_dir;    // CSV: folder image paths are relative to (NULL: the CSV's folder)
    const char *classnames;    // file, one class name per line (NULL: ImageFolder folder names)
    const char *templates;     // file, one template per line with {c} (required)
    const char *neg_templates; // file (NULL: CLASSIFY_DEFAULT_NEGATED)
    int max_images;            // > 0: the first N images only
} ClassifyFiles;

// Read everything; CN_OK or CN_E_DATA "FILE:LINE: field: reason" (nothing allocated on failure).
int classify_load(ClassifySet *s, const ClassifyFiles *f);
void classify_free(ClassifySet *s);
// The dataset the main phases evaluate: the images in order (id = index) with one caption each,
// "a photo of a <class name>." (caption id = image index), so the job's variants run on them too.
int classify_to_dataset(const ClassifySet *s, Dataset *ds);
// A template with every "{c}" replaced by the class name (malloc'ed).
char *classify_prompt(const char *tmpl, const char *classname);
// Lines of a text file (UTF-8; blank lines and lines starting with '#' skipped; \r\n fine). `what`
// names the field in messages. CN_OK or CN_E_DATA; *lines/*line_no malloc'ed.
int classify_read_lines(const char *path, const char *what, char ***lines, int **line_no, int *n);

// First-maximum top-k of x[0..n) (NaN never wins): idx[j] is the j-th best, ties to the lower index.
// k <= n. Returns the number of entries equal to the maximum (1 = no tie at the top).
int classify_topk(const float *x, int n, int k, int32_t *idx);

// ---- statistics (src/reduce_classify.c) ---------------------------------------------------------
typedef struct {
    int64_t n, n_valid, n_classes;
    int64_t top1, top5, ties;       // correct top-1 / top-5; images with a tie at the top
    int64_t negated_top1;           // the negated classifier's first maximum is the image's class
    double acc_top1, acc_top5, acc_negated_top1, chance; // over valid images; chance = 1 / n_classes
} ClassifyStats;

// *present = 0 when the file has no /classify. Every rank reads and computes the same numbers.
int reduce_classify_compute(const char *path, ClassifyStats *st, int *present);
// All of `clipneg reduce` for /classify: /stats/classify (collective), "classify" in stats.json and
// the table (rank 0). A no-op for a file without /classify.
int reduce_classify(const char *path, const char *json_path, int print_table);
void reduce_classify_print_table(FILE *fp, const ClassifyStats *st);

#endif
