// dataset_classify.c — the inputs of zero-shot classification (include/clipneg/classify.h,
// docs/classification.md): class names, prompt templates, and labelled images from an ImageFolder
// tree or a CSV `image,label`. Everything is checked before any work: a message names FILE:LINE
// and the field.
//
// ImageFolder follows torchvision's ImageFolder, which is how ImageNet's validation set is laid out
// for open_clip's zero-shot evaluation: classes are the sub-folders sorted by name (class i = the
// i-th folder, so line i of an ImageNet classnames file names folder n0... number i), images the
// files with an image extension inside each, sorted by name. One level only (no nested folders).
#define _DEFAULT_SOURCE // strndup, strcasecmp
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "clipneg/classify.h"
#include "clipneg/common.h"
#include "dataset_bench_internal.h"
#include "dataset_internal.h"

// ---- small helpers ----------------------------------------------------------------------------------
static void free_strs(char **v, int n) {
    for (int i = 0; v && i < n; i++) free(v[i]);
    free(v);
}

void classify_free(ClassifySet *s) {
    if (!s) return;
    free(s->source);
    free(s->image_root);
    free_strs(s->classnames, s->n_classes);
    free_strs(s->templates, s->n_templates);
    free_strs(s->neg_templates, s->n_neg_templates);
    free_strs(s->images, s->n_images);
    free(s->labels);
    free(s->lines);
    memset(s, 0, sizeof *s);
}

char *classify_prompt(const char *tmpl, const char *classname) {
    size_t n = 0, cl = strlen(classname);
    for (const char *p = tmpl; *p;) {
        if (!strncmp(p, "{c}", 3)) n += cl, p += 3;
        else n++, p++;
    }
    char *out = mallocCheck(n + 1), *o = out;
    for (const char *p = tmpl; *p;) {
        if (!strncmp(p, "{c}", 3)) memcpy(o, classname, cl), o += cl, p += 3;
        else *o++ = *p++;
    }
    *o = '\0';
    return out;
}

int classify_topk(const float *x, int n, int k, int32_t *idx) {
    int filled = 0, n_max = 0;
    for (int c = 0; c < n; c++) {
        if (x[c] != x[c]) continue; // NaN never wins
        // insert after every entry >= x[c]: equal values keep the lower index first
        int pos = filled;
        while (pos > 0 && x[idx[pos - 1]] < x[c]) pos--;
        if (pos >= k) continue;
        for (int j = CN_MIN(filled, k - 1); j > pos; j--) idx[j] = idx[j - 1];
        idx[pos] = c;
        if (filled < k) filled++;
    }
    for (int j = filled; j < k; j++) idx[j] = -1;
    if (filled == 0) return 0;
    for (int c = 0; c < n; c++) n_max += x[c] == x[idx[0]];
    return n_max;
}

int classify_read_lines(const char *path, const char *what, char ***lines, int **line_no, int *n) {
    char *text = NULL;
    size_t len = 0;
    *lines = NULL, *line_no = NULL, *n = 0;
    if (cn_read_file(path, &text, &len) != CN_OK) return cn_fail(CN_E_DATA, "%s: %s: cannot read the file", path, what);
    int cap = 0, count = 0, lineno = 0, rc = CN_OK;
    char **v = NULL;
    int *ln = NULL;
    size_t at = (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) ? 3 : 0; // a UTF-8 byte-order mark is not text
    while (at < len && rc == CN_OK) {
        size_t e = at;
        while (e < len && text[e] != '\n') e++;
        size_t l = e - at;
        lineno++;
        if (l > 0 && text[at + l - 1] == '\r') l--;
        const char *s = text + at;
        at = e + 1;
        if (l == 0 || s[0] == '#') continue;
        if (memchr(s, '\0', l)) {
            rc = cn_fail(CN_E_DATA, "%s:%d: %s: a NUL byte (not a text file?)", path, lineno, what);
            break;
        }
        int bad = 0;
        char *line = utf8_sanitize(s, l, &bad);
        if (bad) {
            free(line);
            rc = cn_fail(CN_E_DATA, "%s:%d: %s: not valid UTF-8", path, lineno, what);
            break;
        }
        if (count == cap) {
            cap = 2 * cap + 64;
            v = reallocCheck(v, sizeof(char *) * (size_t)cap);
            ln = reallocCheck(ln, sizeof(int) * (size_t)cap);
        }
        v[count] = line, ln[count++] = lineno;
    }
    free(text);
    if (rc == CN_OK && count == 0) rc = cn_fail(CN_E_DATA, "%s: %s: the file has no entries", path, what);
    if (rc) {
        free_strs(v, count);
        free(ln);
        return rc;
    }
    *lines = v, *line_no = ln, *n = count;
    return CN_OK;
}

// Templates: every line must hold the class-name slot "{c}".
static int read_templates(const char *path, const char *what, char ***out, int *n) {
    int *ln = NULL;
    int rc = classify_read_lines(path, what, out, &ln, n);
    for (int i = 0; rc == CN_OK && i < *n; i++)
        if (!strstr((*out)[i], "{c}"))
            rc = cn_fail(CN_E_DATA, "%s:%d: %s: '%s' has no {c} (where the class name goes)", path, ln[i], what, (*out)[i]);
    if (rc) {
        free_strs(*out, *n);
        *out = NULL, *n = 0;
    }
    free(ln);
    return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_image_name(const char *name) {
    static const char *const EXT[] = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", NULL};
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    for (int i = 0; EXT[i]; i++)
        if (!strcasecmp(dot, EXT[i])) return 1;
    return 0;
}

// Sorted entries of `dir` that are folders (want_dirs) or regular image files; symlinks followed.
static int list_dir(const char *dir, int want_dirs, char ***out, int *n) {
    DIR *d = opendir(dir);
    if (!d) return cn_fail(CN_E_DATA, "%s: cannot open the folder: %s", dir, strerror(errno));
    char **v = NULL;
    int count = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue; // ".", "..", hidden files (torchvision lists them; nobody means them)
        if (!want_dirs && !is_image_name(de->d_name)) continue;
        size_t pl = strlen(dir) + strlen(de->d_name) + 2;
        char *full = mallocCheck(pl);
        snprintf(full, pl, "%s/%s", dir, de->d_name);
        struct stat st;
        int ok = stat(full, &st) == 0 && (want_dirs ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));
        free(full);
        if (!ok) continue;
        if (count == cap) v = reallocCheck(v, sizeof(char *) * (size_t)(cap = 2 * cap + 16));
        v[count++] = strdupCheck(de->d_name);
    }
    closedir(d);
    qsort(v, (size_t)count, sizeof(char *), cmp_str);
    *out = v, *n = count;
    return CN_OK;
}

static void add_image(ClassifySet *s, int *cap, char *path, int label, int line) {
    if (s->n_images == *cap) {
        *cap = 2 * *cap + 64;
        s->images = reallocCheck(s->images, sizeof(char *) * (size_t)*cap);
        s->labels = reallocCheck(s->labels, sizeof(int32_t) * (size_t)*cap);
        s->lines = reallocCheck(s->lines, sizeof(int) * (size_t)*cap);
    }
    s->images[s->n_images] = path, s->labels[s->n_images] = label, s->lines[s->n_images++] = line;
}

static int load_image_folder(ClassifySet *s, const ClassifyFiles *f) {
    char **dirs = NULL;
    int n_dirs = 0, cap = 0;
    int rc = list_dir(f->path, 1, &dirs, &n_dirs);
    if (rc) return rc;
    if (n_dirs == 0) rc = cn_fail(CN_E_DATA, "%s: no class folders (expected DIR/<class>/<image>)", f->path);
    else if (s->classnames && s->n_classes != n_dirs)
        rc = cn_fail(CN_E_DATA, "%s: classnames: %d class names for %d class folders in %s (class i names the i-th folder in sorted order)",
                     f->classnames, s->n_classes, n_dirs, f->path);
    if (rc == CN_OK && !s->classnames) { // the folder names are the class names
        s->classnames = dirs, s->n_classes = n_dirs;
        dirs = NULL;
    }
    for (int c = 0; c < n_dirs && rc == CN_OK; c++) {
        const char *name = dirs ? dirs[c] : s->classnames[c];
        size_t pl = strlen(f->path) + strlen(name) + 2;
        char *sub = mallocCheck(pl);
        snprintf(sub, pl, "%s/%s", f->path, name);
        char **files = NULL;
        int nf = 0;
        rc = list_dir(sub, 0, &files, &nf);
        free(sub);
        for (int i = 0; i < nf; i++) {
            size_t l = strlen(name) + strlen(files[i]) + 2;
            char *rel = mallocCheck(l);
            snprintf(rel, l, "%s/%s", name, files[i]);
            add_image(s, &cap, rel, c, 0);
        }
        free_strs(files, nf);
    }
    free_strs(dirs, n_dirs);
    if (rc == CN_OK) s->image_root = strdupCheck(f->path);
    return rc;
}

// ---- CSV: a header naming the columns `image` and `label` (any order, others ignored) ----------------
// Records as pandas reads them (dataset_csv.c: quotes, commas and line breaks inside quotes), lines
// starting with '#' skipped; image paths found like the benchmark readers' (bench_resolve_image).
static int parse_label(const ClassifySet *s, const char *csv, int line, const char *v, int32_t *label) {
    if (!v[0]) return cn_fail(CN_E_DATA, "%s:%d: label: empty", csv, line);
    char *end;
    long k = strtol(v, &end, 10);
    if (isdigit((unsigned char)v[0]) && !*end) {
        if (k < 0 || k >= s->n_classes)
            return cn_fail(CN_E_DATA, "%s:%d: label: %ld is out of range (%d classes, 0..%d)", csv, line, k, s->n_classes,
                           s->n_classes - 1);
        *label = (int32_t)k;
        return CN_OK;
    }
    int found = -1;
    for (int c = 0; c < s->n_classes; c++) {
        if (strcmp(s->classnames[c], v)) continue;
        if (found >= 0) // ImageNet's list names two classes "missile" and two "sunglasses"
            return cn_fail(CN_E_DATA, "%s:%d: label: '%s' names classes %d and %d: use the class index", csv, line, v,
                           found, c);
        found = c;
    }
    if (found >= 0) {
        *label = found;
        return CN_OK;
    }
    return cn_fail(CN_E_DATA, "%s:%d: label: '%s' is neither a class index nor a class name of the classnames file", csv,
                   line, v);
}

// A record's fields must be valid UTF-8 (they become file names and texts in the output).
static int csv_utf8(const CsvReader *r, const char *csv) {
    for (int j = 0; j < r->n_fields; j++) {
        int bad = 0;
        free(utf8_sanitize(r->fields[j], strlen(r->fields[j]), &bad));
        if (bad) return cn_fail(CN_E_DATA, "%s:%d: CSV: not valid UTF-8", csv, r->line);
    }
    return CN_OK;
}

static int load_csv(ClassifySet *s, const ClassifyFiles *f) {
    if (!s->classnames)
        return cn_fail(CN_E_DATA, "%s: a CSV needs [dataset] classnames (the labels are class indices or names)", f->path);
    char *text = NULL;
    size_t len = 0;
    if (cn_read_file(f->path, &text, &len) != CN_OK) return cn_fail(CN_E_DATA, "%s: CSV: cannot read the file", f->path);
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        int line = 1;
        for (const char *p = text; p < nul; p++) line += *p == '\n';
        free(text);
        return cn_fail(CN_E_DATA, "%s:%d: CSV: a NUL byte (not a text file?)", f->path, line);
    }
    // the folder the image paths are relative to: [dataset] images, else the CSV's own
    if (f->images_dir) s->image_root = strdupCheck(f->images_dir);
    else {
        const char *slash = strrchr(f->path, '/');
        s->image_root = slash ? strndup(f->path, (size_t)(slash - f->path)) : NULL;
        if (!s->image_root) s->image_root = strdupCheck(".");
    }
    CsvReader r;
    csv_init(&r, text, len);
    r.comment = '#';
    int rc = CN_OK, got, cap = 0, col_img = -1, col_lab = -1, n_head = -1;
    while (rc == CN_OK && (got = csv_next(&r)) != 0) {
        if (got < 0) {
            rc = cn_fail(CN_E_DATA, "%s:%d: unterminated quote (%s)", f->path, r.line, r.error);
            break;
        }
        if ((rc = csv_utf8(&r, f->path))) break;
        if (n_head < 0) { // the header
            n_head = r.n_fields;
            for (int j = 0; j < n_head; j++) {
                if (!strcmp(r.fields[j], "image")) col_img = j;
                if (!strcmp(r.fields[j], "label")) col_lab = j;
            }
            if (col_img < 0 || col_lab < 0)
                rc = cn_fail(CN_E_DATA, "%s:%d: header: expected the columns 'image' and 'label' (e.g. \"image,label\")",
                             f->path, r.line);
            continue;
        }
        if (r.n_fields <= CN_MAX(col_img, col_lab)) {
            rc = cn_fail(CN_E_DATA, "%s:%d: %s: missing (the row has %d columns, the header %d)", f->path, r.line,
                         r.n_fields <= col_img ? "image" : "label", r.n_fields, n_head);
            break;
        }
        if (!r.fields[col_img][0]) {
            rc = cn_fail(CN_E_DATA, "%s:%d: image: empty", f->path, r.line);
            break;
        }
        int32_t label = 0;
        if ((rc = parse_label(s, f->path, r.line, r.fields[col_lab], &label))) break;
        add_image(s, &cap, bench_resolve_image(s->image_root, NULL, r.fields[col_img]), label, r.line);
    }
    csv_free(&r);
    free(text);
    if (rc == CN_OK && n_head < 0) rc = cn_fail(CN_E_DATA, "%s: CSV: the file has no entries", f->path);
    if (rc == CN_OK && s->n_images == 0) rc = cn_fail(CN_E_DATA, "%s: no rows after the header", f->path);
    return rc;
}

int classify_load(ClassifySet *s, const ClassifyFiles *f) {
    memset(s, 0, sizeof *s);
    struct stat st;
    if (!f->path || stat(f->path, &st) != 0)
        return cn_fail(CN_E_DATA, "%s: [dataset] path: no such file or folder", f->path ? f->path : "(none)");
    s->source = strdupCheck(f->path);
    s->is_csv = !S_ISDIR(st.st_mode);
    int rc = CN_OK, *ln = NULL;
    if (f->classnames) {
        rc = classify_read_lines(f->classnames, "classnames", &s->classnames, &ln, &s->n_classes);
        free(ln);
    }
    if (rc == CN_OK) rc = read_templates(f->templates, "templates", &s->templates, &s->n_templates);
    if (rc == CN_OK && f->neg_templates)
        rc = read_templates(f->neg_templates, "negated_templates", &s->neg_templates, &s->n_neg_templates);
    else if (rc == CN_OK) {
        s->neg_templates = mallocCheck(sizeof(char *));
        s->neg_templates[0] = strdupCheck(CLASSIFY_DEFAULT_NEGATED);
        s->n_neg_templates = 1;
    }
    if (rc == CN_OK) rc = s->is_csv ? load_csv(s, f) : load_image_folder(s, f);
    if (rc == CN_OK && s->n_images == 0) rc = cn_fail(CN_E_DATA, "%s: no images", f->path);
    if (rc == CN_OK && f->max_images > 0 && f->max_images < s->n_images) {
        for (int i = f->max_images; i < s->n_images; i++) free(s->images[i]);
        s->n_images = f->max_images;
    }
    if (rc) classify_free(s);
    return rc;
}

int classify_to_dataset(const ClassifySet *s, Dataset *ds) {
    memset(ds, 0, sizeof *ds);
    ds->image_root = strdupCheck(s->image_root);
    RawImage *images = callocCheck((size_t)s->n_images + 1, sizeof(RawImage));
    for (int i = 0; i < s->n_images; i++) images[i] = (RawImage){.id = i, .file_name = strdupCheck(s->images[i]), .where = i + 1};
    DsBuild b = {.path = s->source, .jsonl = 1, .resident = 1};
    ds_build_images(ds, &b, images, s->n_images);  // ids 0..n-1: image index = id
    for (int i = 0; i < s->n_images; i++) {
        DsText t = {.text = classify_prompt("a photo of a {c}.", s->classnames[s->labels[i]])};
        ds_build_caption(&b, i, i, i, i, &t, 0);
    }
    int rc = ds_build_finish(ds, &b, 0);
    if (rc) dataset_free(ds);
    return rc;
}
