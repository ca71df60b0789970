// dataset_csv.c — an RFC-4180 CSV reader that splits records the way pandas' C parser does
// (NegBench writes its CSVs with pandas and reads them with pd.read_csv): LLM paraphrases put
// commas, doubled quotes, line breaks and text after a closing quote inside fields, so a naive
// split on ',' or '\n' gets the columns wrong. Rules in dataset_bench_internal.h.
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "dataset_bench_internal.h"

void csv_init(CsvReader *r, const char *text, size_t len) {
    memset(r, 0, sizeof *r);
    r->text = text;
    r->len = len;
    r->next_line = 1;
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) r->pos = 3; // UTF-8 BOM (Excel, pandas' utf-8-sig)
}

void csv_free(CsvReader *r) {
    free(r->fields);
    free(r->buf);
    free(r->offs);
    memset(r, 0, sizeof *r);
}

static void put(CsvReader *r, size_t *n, char c) {
    if (*n + 1 >= r->cap_buf) r->buf = reallocCheck(r->buf, r->cap_buf = 2 * r->cap_buf + 256);
    r->buf[(*n)++] = c;
}

// A field starts at buf[n].
static void begin_field(CsvReader *r, size_t n) {
    if (r->n_fields == r->cap_fields) {
        r->cap_fields = 2 * r->cap_fields + 16;
        r->offs = reallocCheck(r->offs, sizeof(size_t) * (size_t)r->cap_fields);
        r->fields = reallocCheck(r->fields, sizeof(char *) * (size_t)r->cap_fields);
    }
    r->offs[r->n_fields] = n;
}

// At a line break at r->pos? Consumes it (\r\n as one) and counts the line.
static int eat_newline(CsvReader *r) {
    char c = r->text[r->pos];
    if (c != '\n' && c != '\r') return 0;
    r->pos += (c == '\r' && r->pos + 1 < r->len && r->text[r->pos + 1] == '\n') ? 2 : 1;
    r->next_line++;
    return 1;
}

int csv_next(CsvReader *r) {
    const char *t = r->text;
    for (;;) {
        if (r->pos >= r->len) return 0;
        r->line = r->next_line;
        if (r->comment && t[r->pos] == r->comment) { // a comment line: skipped to its end (quotes in it open nothing)
            while (r->pos < r->len && t[r->pos] != '\n' && t[r->pos] != '\r') r->pos++;
            if (r->pos >= r->len) return 0;
        }
        if (!eat_newline(r)) break; // a blank line: skipped
    }
    r->n_fields = 0;
    size_t n = 0;
    for (;;) { // one field per pass
        begin_field(r, n);
        if (r->pos < r->len && t[r->pos] == '"') { // quoted: until a '"' not followed by '"'
            r->pos++;
            for (;;) {
                if (r->pos >= r->len) {
                    r->error = "a quoted field is not closed before the end of the file";
                    return -1;
                }
                char c = t[r->pos];
                if (c == '"') {
                    if (r->pos + 1 < r->len && t[r->pos + 1] == '"') {
                        put(r, &n, '"');
                        r->pos += 2;
                        continue;
                    }
                    r->pos++;
                    break;
                }
                if (c == '\n' || (c == '\r' && !(r->pos + 1 < r->len && t[r->pos + 1] == '\n'))) r->next_line++;
                put(r, &n, c);
                r->pos++;
            }
        }
        // unquoted text (or text after a closing quote, appended as pandas does) up to , or a line break
        while (r->pos < r->len && t[r->pos] != ',' && t[r->pos] != '\n' && t[r->pos] != '\r') put(r, &n, t[r->pos++]);
        put(r, &n, '\0');
        r->n_fields++;
        if (r->pos < r->len && t[r->pos] == ',') {
            r->pos++;
            continue;
        }
        if (r->pos < r->len) eat_newline(r);
        break;
    }
    for (int i = 0; i < r->n_fields; i++) r->fields[i] = r->buf + r->offs[i];
    return 1;
}
