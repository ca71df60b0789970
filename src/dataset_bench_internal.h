// dataset_bench_internal.h — readers of the negation benchmarks' published files
// (`[dataset] format = negbench-mcq | negbench-retrieval | negrefcocog | valse-existence |
// sugarcrepe | ccneg`, docs/benchmarks.md) and the two text parsers they need: an RFC-4180 CSV reader
// (NegBench's CSVs, written by pandas) and a safe reader of Python list literals (NegBench's
// `captions` column, which upstream reads with eval()).
#ifndef CLIPNEG_DATASET_BENCH_INTERNAL_H
#define CLIPNEG_DATASET_BENCH_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "clipneg/config.h"
#include "clipneg/dataset.h"
#include "clipneg/items.h"

// ---- CSV (src/dataset_csv.c) ---------------------------------------------------------------------
// RFC 4180 as pandas' C parser reads it: fields separated by ',', records by \n, \r\n or \r; a
// field that starts with '"' is quoted ("" inside is one '"'; commas and line breaks are data); text
// after a closing quote is appended to the field (pandas: `"ab"c` -> `abc`); a '"' inside an
// unquoted field is data. A UTF-8 BOM at the start is skipped; records with no character at all
// (blank lines) are skipped like pandas' skip_blank_lines. With `comment` set (after csv_init), a
// line that starts with that character is skipped whole. The only error is a quote left open at
// the end of the input.
typedef struct {
    const char *text;
    char comment;      // 0 (csv_init): none; '#': lines starting with '#' are comments
    size_t len, pos;
    int line;          // line (1-based) where the record just read starts
    int next_line;     // line of the next unread character
    char **fields;     // [n_fields] NUL-terminated, valid until the next csv_next / csv_free
    int n_fields;
    int cap_fields;
    char *buf;         // storage of the fields
    size_t cap_buf;
    size_t *offs;      // field starts in buf
    const char *error; // set when csv_next returns -1
} CsvReader;

void csv_init(CsvReader *r, const char *text, size_t len);
// 1: a record is in r->fields (r->line is its first line); 0: end of input; -1: r->error says why.
int csv_next(CsvReader *r);
void csv_free(CsvReader *r);

// ---- Python list literals (src/dataset_pylit.c) ----------------------------------------------------
// `[ 'a', "b", ... ]` of string literals only, as ast.literal_eval reads them: both quote styles,
// optional u/U/r/R prefixes, adjacent literals concatenated ('a' 'b' = 'ab'), a trailing comma,
// whitespace and line breaks anywhere between tokens, the escapes \\ \' \" \a \b \f \n \r \t \v,
// \<newline>, octal \ooo, \xhh, \uXXXX, \UXXXXXXXX (unknown escapes like \d stay as written).
// Nothing is evaluated. Strings come back as UTF-8 (a lone surrogate becomes U+FFFD).
// 0 and *out [*n] (malloc'ed), or -1 with a reason and the byte column (0-based) in err.
int pylit_str_list(const char *s, size_t len, char ***out, int *n, char *err, size_t errn);
void pylit_free(char **list, int n);

// ---- building an item set from a benchmark file (src/dataset_bench.c) -----------------------------
typedef struct BenchImages BenchImages; // path -> image index (hash), private to dataset_bench.c

typedef struct {
    ItemSet *s;
    const JobConfig *job;
    BenchImages *index;
    int cap_items, cap_images, cap_types;
} BenchBuilder;

void bench_begin(BenchBuilder *b, ItemSet *s, const JobConfig *job, const char *source);
// Index of an image by its path as written in the file (resolved once, bench_resolve_image).
int bench_image(BenchBuilder *b, const char *written);
int bench_type(BenchBuilder *b, const char *name);
// Appends *it (taken over: its texts/boxes now belong to the set).
void bench_add(BenchBuilder *b, const Item *it);
// Ends building: frees the index, fixes the shapes (items_set_shape). CN_E_DATA when no item.
int bench_end(BenchBuilder *b, int rc);

// The path (relative to images_dir, or absolute) an image written as `written` is read from:
// `image_prefix` stripped when it starts the path; then the path as written under images_dir if
// that file exists, else its file name alone directly in images_dir if that exists, else as
// written (the image phase then records it as missing and the run goes on). malloc'ed.
char *bench_resolve_image(const char *images_dir, const char *prefix, const char *written);

// One Item with n texts (choice) built from copies of texts; answer given.
void bench_choice(Item *it, int line, const char *const *texts, int n, int answer, int *n_bad_utf8);

// Readers: fill s (tie rule and source set); CN_OK or CN_E_DATA "FILE:LINE: field: reason" /
// "FILE: item ID: field: reason", before any work.
int bench_load_negbench_mcq(ItemSet *s, const JobConfig *job);
int bench_load_negrefcocog(ItemSet *s, const JobConfig *job);
int bench_load_valse(ItemSet *s, const JobConfig *job);
int bench_load_sugarcrepe(ItemSet *s, const JobConfig *job);
// CC-Neg's ccneg_preprocessed.pt (torch.save), the last job->last_n entries (src/dataset_ccneg.c).
int bench_load_ccneg(ItemSet *s, const JobConfig *job);
// NegBench retrieval maps to the main dataset (one image per CSV row, its captions the list).
int bench_load_negbench_retrieval(Dataset *ds, const JobConfig *job);

// PIL's Image.crop((x, y, x + w, y + h)) window: each coordinate rounded with Python's round()
// (half to even), as PIL 9.4 does. 0, or -1 when the window is empty or not inside W x H.
int bench_crop_window_round(const double box[4], int W, int H, int32_t win[4]);

#endif
