// config.h — the job file (INI, parsed with inih). Every key, its default and meaning is
// documented in docs/job-file.md. Unknown sections/keys, missing files and impossible values are
// refused before any work with "FILE:LINE: [section] key: reason".
// Relative paths are resolved against the job file's folder; values may use ${VAR} and
// ${VAR:-default} (environment), so one job file serves many clusters.
#ifndef CLIPNEG_CONFIG_H
#define CLIPNEG_CONFIG_H

#include <stdint.h>

typedef enum { BACKEND_AUTO = 0, BACKEND_CPU = 1, BACKEND_CUDA = 2 } BackendKind;
// PREC_AUTO: fp16 on the CUDA backend, fp32 on the CPU backend (backend_create resolves it).
typedef enum { PREC_FP32 = 0, PREC_TF32 = 1, PREC_FP16 = 2, PREC_BF16 = 3, PREC_AUTO = 4 } Precision;
// The job-file name of a precision ("fp16"). Inline so that the CUDA backend and its emulated tests
// need no C object for it.
static inline const char *precision_name(Precision p) {
    switch (p) {
    case PREC_FP32: return "fp32";
    case PREC_TF32: return "tf32";
    case PREC_FP16: return "fp16";
    case PREC_BF16: return "bf16";
    case PREC_AUTO: return "auto";
    }
    return "?";
}
// DATASET_ITEMS: a manifest of choice/region items (docs/items.md, include/clipneg/items.h).
// The benchmark formats read published files as they are (docs/benchmarks.md): NEGBENCH_RETRIEVAL
// becomes a main dataset, the others item sets (items_format_is_bench in items.h).
// DATASET_CLASSIFY: zero-shot classification over labelled images (docs/classification.md, classify.h).
typedef enum {
    DATASET_COCO = 0,
    DATASET_JSONL = 1,
    DATASET_ITEMS = 2,
    DATASET_NEGBENCH_MCQ = 3,
    DATASET_NEGBENCH_RETRIEVAL = 4,
    DATASET_NEGREFCOCOG = 5,
    DATASET_VALSE_EXISTENCE = 6,
    DATASET_SUGARCREPE = 7,
    DATASET_CLASSIFY = 8,
    DATASET_CCNEG = 9,      // CC-Neg's ccneg_preprocessed.pt (a torch.save file), an item benchmark
} DatasetKind;

typedef struct {
    char *job_path;         // as given
    char *job_text;         // the whole file + the overrides as "; --set ..." comment lines (provenance)
    // [model]
    char *model_path;       // folder or .safetensors file (required)
    char *tokenizer_path;   // optional explicit vocabulary (file or folder)
    int quick_gelu;         // activation: -1 auto (from config), 0 gelu, 1 quick_gelu
    char *state_key;        // PyTorch file: top-level entry holding the weights (NULL: detect)
    char *strip_prefix;     // PyTorch file: name prefix to keep and strip (NULL: detect)
    // [dataset]
    DatasetKind dataset_kind;
    char *captions_json;    // coco: captions_*.json (required for coco)
    char *instances_json;   // coco: instances_*.json (optional; needed by {swap}/{other})
    char *images_dir;       // folder the image file names are relative to (required for coco;
                            // jsonl: NULL = the manifest's folder)
    char *manifest;         // jsonl/items: manifest path (required for both)
    int max_images;         // 0 = all (first N images by id: quick trials)
    double crop_expand;     // items: region boxes grow by this factor about their centre (default 1.0)
    char *dataset_path;     // benchmark formats: the published file or folder; classification: an
                            // ImageFolder folder or CSV file ([dataset] path)
    char *image_prefix;     // benchmark formats: stripped from image paths that start with it (optional)
    int last_n;             // ccneg: evaluate the last N entries (default 40000, upstream's test split; 0 = all)
    char *classnames;       // classification: class names, one per line (optional for ImageFolder)
    char *templates;        // classification: prompt templates with {c}, one per line (required)
    char *negated_templates;// classification: the negation probe's templates (default "a photo of no {c}.")
    // [variants]
    char *variants_file;    // required
    char *base_variant;     // positive base for flips/accuracy (job_load fills in the first positive
                            // variant when the job names none; NULL only if there is none)
    // [output]
    char *output_path;      // NULL when neither the file nor --set output.path=... gave one (the
                            // caller then needs --output; pass it as the override output.path=PATH)
    int store_embeddings;   // default 1
    int full_similarity;    // default 0: the N_img x N_text matrix is optional
    int full_dtype_f16;     // default 1 (float16), 0 = float32
    int compression;        // default 0: deflate level 0..9 of the output's chunked datasets
    // [run]
    BackendKind backend;    // default auto
    Precision precision;    // default auto: fp16 on cuda, fp32 on cpu (cpu supports fp32 only)
    int image_batch;        // default 32
    int text_batch;         // default 256
    int image_shard;        // images per global shard, default 64 (fixes batch composition)
    int text_shard;         // texts per global shard, default 512
    int tile_texts;         // texts per similarity tile, default 4096
    uint64_t seed;          // default 0
    int threads;            // 0 = auto
    int decode_threads;     // default 2
} JobConfig;

// Parse and validate (files exist, values in range). `overrides` is a NULL-terminated list of
// "section.key=value" strings from --set, applied after the file (may be NULL).
// Also loads the variants file once to validate it and fills base_variant with the first
// positive variant when the job names none (NULL only if the file has no positive variant).
// `--output PATH` of the command line is the override "output.path=PATH". Relative paths in
// overrides are relative to the current directory, in the file to the job file's folder.
// On failure *job is left empty (nothing to free) and cn_last_error() says
// "FILE:LINE: [section] key: reason" (or "--set section.key: reason").
int job_load(JobConfig *job, const char *path, const char *const *overrides);
void job_free(JobConfig *job);

#endif
