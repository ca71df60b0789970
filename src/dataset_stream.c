// dataset_stream.c — reading a big JSON document without holding it: a small buffer that can
// start at any file offset, value capture by bracket and string matching (cJSON then parses each
// captured element alone), and the streamed dataset's caption window, read back from the
// annotation elements' offsets that the index pass recorded (dataset_coco.c).
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

// ---- the caption window of a streamed dataset ---------------------------------------------------------

typedef struct {
    int where, slot;
} Want;

static int cmp_want(const void *a, const void *b) {
    const Want *x = a, *y = b;
    return (x->where > y->where) - (x->where < y->where);
}

int ds_stream_read(DsStream *st, const DsKey *keys, int n, DsCaption *win) {
    Want *want = mallocCheck(sizeof *want * (size_t)(n + 1));
    for (int i = 0; i < n; i++) want[i] = (Want){keys[i].where, i};
    qsort(want, (size_t)n, sizeof *want, cmp_want);  // file order: nearby elements are read once
    JsonStream *js = &st->js;
    js->pos = js->len = 0;  // read the file afresh, never bytes buffered by an earlier call
    int at = -1, rc = CN_OK;  // the annotation element js is positioned at (-1: unknown)
    for (int i = 0; i < n && rc == CN_OK; i++) {
        int w = want[i].where;
        if (w < 0 || w >= st->n_where) {
            rc = cn_fail(CN_E_INTERNAL, "%s: annotation %d is not in the index", st->path, w);
            break;
        }
        if (at < 0 || w < at || w / DS_MARK_EVERY != at / DS_MARK_EVERY) {
            js_seek(js, st->mark[w / DS_MARK_EVERY]);
            at = w / DS_MARK_EVERY * DS_MARK_EVERY;
        }
        for (; at < w; at++)
            if (js_value(js, 0) != 0 || js_array_next(js) != 1) break;
        cJSON *item = at == w && js_value(js, 1) == 0 ? cJSON_ParseWithLength(js->val, js->val_len) : NULL;
        JsonPlace place = {.path = st->path};
        snprintf(place.where, sizeof place.where, "annotations[%d]", w);
        int64_t id = 0;
        DsCaption *d = &win[want[i].slot];
        memset(d, 0, sizeof *d);
        if (!item || ds_get_int(&place, item, "id", 1, &id, NULL) != CN_OK || id != keys[want[i].slot].id ||
            ds_get_string(&place, item, "caption", 1, 0, 0, &d->text, NULL) != CN_OK)
            rc = cn_fail(CN_E_DATA, "%s: %s no longer matches the index made when the run started (the file was "
                         "changed during the run?)", st->path, place.where);
        cJSON_Delete(item);
        d->id = keys[want[i].slot].id;
        d->image_index = keys[want[i].slot].image_index;
        at = js_array_next(js) == 1 ? w + 1 : -1;
    }
    free(want);
    if (rc != CN_OK)
        for (int i = 0; i < n; i++) free(win[i].text), win[i].text = NULL;
    return rc;
}

void ds_stream_free(DsStream *st) {
    if (!st) return;
    js_close(&st->js);
    for (int i = 0; i < st->c1 - st->c0; i++) free(st->win[i].text);
    free(st->win);
    free(st->mark);
    free(st->path);
    free(st);
}
