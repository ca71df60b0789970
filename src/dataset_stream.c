// dataset_stream.c — reading a big JSON document without holding it: a small buffer that can
// start at any file offset, value capture by bracket and string matching (cJSON then parses each
// captured element alone), and the streamed dataset's caption window, read back from the
// annotation elements' (or JSONL lines') offsets that the index pass recorded (dataset_coco.c,
// dataset_jsonl.c).
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clipneg/common.h"
#include "dataset_internal.h"

enum { JS_BUF = 8192 };  // small on purpose: caption reads jump around the file

int js_open(JsonStream *js, const char *path) {
    memset(js, 0, sizeof *js);
    js->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (js->fd < 0) return cn_fail(CN_E_DATA, "%s: cannot open: %s", path, strerror(errno));
    js->cap = JS_BUF;
    js->buf = mallocCheck(js->cap);
    js->val_cap = 256;
    js->val = mallocCheck(js->val_cap);
    return CN_OK;
}

void js_close(JsonStream *js) {
    if (js->fd >= 0 && js->buf) close(js->fd);
    free(js->buf);
    free(js->val);
    memset(js, 0, sizeof *js);
    js->fd = -1;
}

void js_seek(JsonStream *js, int64_t off) {
    if (off >= js->base && off <= js->base + (int64_t)js->len) {
        js->pos = (size_t)(off - js->base);  // already in the buffer
        return;
    }
    js->base = off;
    js->pos = js->len = 0;
}

int64_t js_offset(const JsonStream *js) { return js->base + (int64_t)js->pos; }

static int fill(JsonStream *js) {
    js->base += (int64_t)js->len;
    js->pos = js->len = 0;
    ssize_t n;
    do n = pread(js->fd, js->buf, js->cap, (off_t)js->base);
    while (n < 0 && errno == EINTR);
    if (n < 0) cn_die(CN_E_IO, "reading a dataset file at offset %lld: %s", (long long)js->base, strerror(errno));
    js->len = (size_t)n;
    return n > 0;
}

int js_peek(JsonStream *js) {
    if (js->pos == js->len && !fill(js)) return -1;
    return (unsigned char)js->buf[js->pos];
}

static int js_get(JsonStream *js) {
    int c = js_peek(js);
    if (c >= 0) js->pos++;
    return c;
}

void js_skip_ws(JsonStream *js) {
    for (int c; (c = js_peek(js)) == ' ' || c == '\t' || c == '\n' || c == '\r';) js->pos++;
}

int js_expect(JsonStream *js, char c) {
    js_skip_ws(js);
    if (js_peek(js) != (unsigned char)c) return 0;
    js->pos++;
    return 1;
}

static void put(JsonStream *js, int c, int capture) {
    if (!capture) return;
    if (js->val_len + 2 > js->val_cap) js->val = reallocCheck(js->val, js->val_cap *= 2);
    js->val[js->val_len++] = (char)c;
}

int js_value(JsonStream *js, int capture) {
    js->val_len = 0;
    js_skip_ws(js);
    int c = js_peek(js), depth = 0, in_string = 0, ok = -1;
    if (c < 0) return -1;
    if (c != '{' && c != '[' && c != '"') {  // a number, true, false, null
        while ((c = js_peek(js)) >= 0 && !strchr(",]} \t\r\n", c)) put(js, js_get(js), capture);
        ok = js->val_len > 0 || !capture ? 0 : -1;
    } else {
        while ((c = js_get(js)) >= 0) {
            put(js, c, capture);
            if (in_string) {
                if (c == '\\') {
                    int d = js_get(js);
                    if (d < 0) break;
                    put(js, d, capture);
                } else if (c == '"') {
                    in_string = 0;
                    if (depth == 0) { ok = 0; break; }
                }
            } else if (c == '"') {
                in_string = 1;
            } else if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                if (--depth == 0) { ok = 0; break; }
                if (depth < 0) break;
            }
        }
    }
    if (capture) js->val[js->val_len] = '\0';
    return ok;
}

int js_array_next(JsonStream *js) {
    if (js_expect(js, ',')) return 1;
    if (js_expect(js, ']')) return 0;
    return -1;
}

int js_line(JsonStream *js, int capture) {
    js->val_len = 0;
    int any = 0;
    for (;;) {
        if (js->pos == js->len && !fill(js)) break;
        const char *p = js->buf + js->pos;
        size_t avail = js->len - js->pos;
        const char *nl = memchr(p, '\n', avail);
        size_t n = nl ? (size_t)(nl - p) : avail;
        if (capture) {
            if (js->val_len + n + 1 > js->val_cap) {
                while (js->val_len + n + 1 > js->val_cap) js->val_cap *= 2;
                js->val = reallocCheck(js->val, js->val_cap);
            }
            memcpy(js->val + js->val_len, p, n);
            js->val_len += n;
        }
        js->pos += n + (nl != NULL);
        any = 1;
        if (nl) break;
    }
    if (capture) js->val[js->val_len] = '\0';
    return any ? 0 : -1;
}

void ds_mark_line(const JsonStream *js, int lineno, int64_t **mark, int *n_mark) {
    if (lineno != 1 && lineno % DS_MARK_EVERY != 0) return;
    if (lineno / DS_MARK_EVERY >= *n_mark) *mark = reallocCheck(*mark, sizeof **mark * (size_t)(*n_mark = 2 * *n_mark + 64));
    (*mark)[lineno / DS_MARK_EVERY] = js_offset(js);
}

// ---- the caption window of a streamed dataset ---------------------------------------------------------

typedef struct {
    int where, slot;
} Want;

static int cmp_want(const void *a, const void *b) {
    const Want *x = a, *y = b;
    return (x->where > y->where) - (x->where < y->where);
}

void ds_caption_clear(DsCaption *c) {
    free(c->text);
    for (int k = 0; k < c->n_negatives; k++) free(c->negatives[k]);
    free(c->negatives);
    memset(c, 0, sizeof *c);
}

// Skip the element (COCO annotation or JSONL line) js is positioned at: 0 ok, -1 the file ended.
static int skip_one(DsStream *st) {
    if (st->jsonl) return js_line(&st->js, 0);
    return js_value(&st->js, 0) == 0 && js_array_next(&st->js) == 1 ? 0 : -1;
}

// The element at `where` is not what the index pass saw.
static int changed(const DsStream *st, int w) {
    const char *why = "no longer matches the index made when the run started (the file was changed during the run?)";
    if (st->jsonl) return cn_fail(CN_E_DATA, "%s:%d: %s", st->path, w, why);
    return cn_fail(CN_E_DATA, "%s: annotations[%d] %s", st->path, w, why);
}

// Read the COCO annotation element js is positioned at into d; *more: another element follows.
static int coco_read_one(DsStream *st, int w, const DsKey *key, DsCaption *d, int *more) {
    JsonStream *js = &st->js;
    cJSON *item = js_value(js, 1) == 0 ? cJSON_ParseWithLength(js->val, js->val_len) : NULL;
    JsonPlace place = {.path = st->path};
    snprintf(place.where, sizeof place.where, "annotations[%d]", w);
    int64_t id = 0;
    int rc = CN_OK;
    if (!item || ds_get_int(&place, item, "id", 1, &id, NULL) != CN_OK || id != key->id ||
        ds_get_string(&place, item, "caption", 1, 0, 0, &d->text, NULL) != CN_OK)
        rc = changed(st, w);
    cJSON_Delete(item);
    *more = js_array_next(js) == 1;
    return rc;
}

int ds_stream_read(DsStream *st, const DsKey *keys, int n, DsCaption *win) {
    Want *want = mallocCheck(sizeof *want * (size_t)(n + 1));
    for (int i = 0; i < n; i++) want[i] = (Want){keys[i].where, i};
    qsort(want, (size_t)n, sizeof *want, cmp_want);  // file order: nearby elements are read once
    JsonStream *js = &st->js;
    js->pos = js->len = 0;  // read the file afresh, never bytes buffered by an earlier call
    int at = -1, rc = CN_OK;  // the element (annotation index / line number) js is positioned at (-1: unknown)
    for (int i = 0; i < n && rc == CN_OK; i++) {
        int w = want[i].where;
        if (w < st->jsonl || w >= st->n_where) {
            rc = cn_fail(CN_E_INTERNAL, "%s: element %d is not in the index", st->path, w);
            break;
        }
        if (at < 0 || w < at || w / DS_MARK_EVERY != at / DS_MARK_EVERY) {
            js_seek(js, st->mark[w / DS_MARK_EVERY]);
            at = CN_MAX(st->jsonl, w / DS_MARK_EVERY * DS_MARK_EVERY);  // (JSONL lines count from 1)
        }
        for (; at < w; at++)
            if (skip_one(st) != 0) break;
        const DsKey *key = &keys[want[i].slot];
        DsCaption *d = &win[want[i].slot];
        memset(d, 0, sizeof *d);
        int more = 0;
        if (at != w)
            rc = changed(st, w);
        else if (st->jsonl) {
            if (js_line(js, 1) != 0 || st->read_line(st->path, js->val, js->val_len, w, key, d) != CN_OK)
                rc = changed(st, w);
            more = 1;
        } else
            rc = coco_read_one(st, w, key, d, &more);
        d->id = key->id;
        d->image_index = key->image_index;
        at = more ? w + 1 : -1;
    }
    free(want);
    if (rc != CN_OK)
        for (int i = 0; i < n; i++) ds_caption_clear(&win[i]);
    return rc;
}

void ds_stream_free(DsStream *st) {
    if (!st) return;
    js_close(&st->js);
    for (int i = 0; i < st->c1 - st->c0; i++) ds_caption_clear(&st->win[i]);
    free(st->win);
    free(st->mark);
    free(st->path);
    free(st);
}
