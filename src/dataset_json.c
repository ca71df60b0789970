// dataset_json.c — what every JSON reader of the dataset family shares: UTF-8 repair, parsing with
// FILE:LINE:COL messages, typed field readers, and blanking big values we never read. Kept apart from
// dataset.c so that the streamed readers (dataset_stream.c) can use it without calling back into
// the file that calls them.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "dataset_internal.h"
// ---- UTF-8 ---------------------------------------------------------------------------------------

char *utf8_sanitize(const char *s, size_t n, int *n_bad) {
    const unsigned char *u = (const unsigned char *)s;
    char *out = mallocCheck(3 * n + 1);  // worst case: every byte becomes U+FFFD (3 bytes)
    size_t o = 0;
    int bad = 0;
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        if (c < 0x80) { out[o++] = (char)c; i++; continue; }
        // Length of the sequence and the allowed range of its second byte (Unicode table 3-7).
        int len = 0;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) len = 2;
        else if (c == 0xE0) len = 3, lo = 0xA0;
        else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) len = 3;
        else if (c == 0xED) len = 3, hi = 0x9F;
        else if (c == 0xF0) len = 4, lo = 0x90;
        else if (c >= 0xF1 && c <= 0xF3) len = 4;
        else if (c == 0xF4) len = 4, hi = 0x8F;
        int k = 1;  // bytes of the longest valid prefix (the "maximal subpart")
        if (len) {
            if (i + 1 < n && u[i + 1] >= lo && u[i + 1] <= hi) {
                k = 2;
                while (k < len && i + k < n && u[i + k] >= 0x80 && u[i + k] <= 0xBF) k++;
            }
        }
        if (len && k == len) {
            memcpy(out + o, s + i, (size_t)len);
            o += (size_t)len;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            bad++;
        }
        i += (size_t)k;
    }
    out[o] = '\0';
    if (n_bad) *n_bad = bad;
    return out;
}

// ---- JSON helpers ----------------------------------------------------------------------------------

// Position of an escaped NUL (\u0000) in a JSON text, or NULL. cJSON would end the C string
// there and silently drop the rest of the caption.
static const char *find_escaped_nul(const char *text, size_t len) {
    for (size_t i = 0; i + 6 <= len; i++) {
        if (text[i] != '\\' || text[i + 1] != 'u' || memcmp(text + i + 2, "0000", 4) != 0) continue;
        size_t slashes = 0;  // "\\u0000" is a backslash followed by the text u0000
        while (slashes < i && text[i - 1 - slashes] == '\\') slashes++;
        if (slashes % 2 == 0) return text + i;
    }
    return NULL;
}

static void text_position(const char *text, const char *at, int *line, int *col) {
    *line = 1, *col = 1;
    for (const char *p = text; p < at; p++) {
        if (*p == '\n') ++*line, *col = 1;
        else ++*col;
    }
}

int ds_parse_json(const char *path, const char *text, size_t len, int jsonl_line, cJSON **root) {
    const char *end = NULL;
    const char *nul = find_escaped_nul(text, len);
    if (nul) {
        int line, col;
        *root = NULL;
        text_position(text, nul, &line, &col);
        if (jsonl_line > 0) return cn_fail(CN_E_DATA, "%s:%d: \\u0000 in a string is not supported (column %d)",
                                           path, jsonl_line, col);
        return cn_fail(CN_E_DATA, "%s:%d:%d: \\u0000 in a string is not supported", path, line, col);
    }
    *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (*root) {
        // Only blanks may follow the value.
        const char *p = end;
        while (p < text + len && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
        if (p == text + len) return CN_OK;
        end = p;
        cJSON_Delete(*root);
        *root = NULL;
    }
    if (!end || end < text || end > text + len) end = text;
    int line, col;
    text_position(text, end, &line, &col);
    if (jsonl_line > 0) return cn_fail(CN_E_DATA, "%s:%d: invalid JSON (column %d)", path, jsonl_line, col);
    return cn_fail(CN_E_DATA, "%s:%d:%d: invalid JSON", path, line, col);
}

void ds_place_prefix(const JsonPlace *at, char *buf, size_t n) {
    if (at->jsonl) snprintf(buf, n, "%s:%s: ", at->path, at->where);
    else snprintf(buf, n, "%s: %s%s", at->path, at->where, at->where[0] ? "." : "");
}

static const char *json_type_name(const cJSON *v) {
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    return "something else";
}

int ds_get_int(const JsonPlace *at, const cJSON *obj, const char *key, int required, int64_t *out, int *present) {
    char pre[512];
    ds_place_prefix(at, pre, sizeof pre);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (present) *present = v != NULL;
    if (!v) return required ? cn_fail(CN_E_DATA, "%s%s: missing (expected an integer)", pre, key) : CN_OK;
    if (!cJSON_IsNumber(v)) return cn_fail(CN_E_DATA, "%s%s: expected an integer, got %s", pre, key, json_type_name(v));
    double d = v->valuedouble;
    // cJSON keeps numbers as doubles: beyond 2^53 an id could silently merge with its neighbour.
    if (d != floor(d) || fabs(d) > 9007199254740992.0)
        return cn_fail(CN_E_DATA, "%s%s: expected an integer, got %.17g", pre, key, d);
    *out = (int64_t)d;
    return CN_OK;
}

int ds_get_string(const JsonPlace *at, const cJSON *obj, const char *key, int required, int strict, int nonempty,
                  char **out, int *n_bad) {
    char pre[512];
    ds_place_prefix(at, pre, sizeof pre);
    *out = NULL;
    if (n_bad) *n_bad = 0;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return required ? cn_fail(CN_E_DATA, "%s%s: missing (expected a string)", pre, key) : CN_OK;
    if (!cJSON_IsString(v)) return cn_fail(CN_E_DATA, "%s%s: expected a string, got %s", pre, key, json_type_name(v));
    const char *s = v->valuestring;
    if (nonempty && !s[0]) return cn_fail(CN_E_DATA, "%s%s: empty", pre, key);
    int bad = 0;
    char *clean = utf8_sanitize(s, strlen(s), &bad);
    if (bad && strict) {
        free(clean);
        return cn_fail(CN_E_DATA, "%s%s: not valid UTF-8", pre, key);
    }
    *out = clean;
    if (n_bad) *n_bad = bad;
    return CN_OK;
}

// Skip one JSON string starting at s[i] == '"'; returns the index after its closing quote (or n).
static size_t skip_string(const char *s, size_t n, size_t i) {
    for (i++; i < n; i++) {
        if (s[i] == '\\') i++;
        else if (s[i] == '"') return i + 1;
    }
    return n;
}

// Index after the JSON value starting at s[i], or i when it is malformed (cJSON reports it then).
static size_t skip_value(const char *s, size_t n, size_t i) {
    if (i >= n) return i;
    if (s[i] == '"') {
        size_t e = skip_string(s, n, i);
        return e <= n && e > i + 1 && s[e - 1] == '"' ? e : i;
    }
    if (s[i] != '[' && s[i] != '{') {
        size_t j = i;
        while (j < n && !strchr(",}] \t\r\n", s[j])) j++;
        return j;
    }
    int depth = 0;
    for (size_t j = i; j < n; j++) {
        if (s[j] == '"') { j = skip_string(s, n, j) - 1; continue; }
        if (s[j] == '[' || s[j] == '{') depth++;
        else if ((s[j] == ']' || s[j] == '}') && --depth == 0) return j + 1;
    }
    return i;
}

void ds_blank_values(char *text, size_t len, const char *key) {
    size_t klen = strlen(key);
    for (size_t i = 0; i < len;) {
        if (text[i] != '"') { i++; continue; }
        size_t j = skip_string(text, len, i);
        if (j - i == klen + 2 && !memcmp(text + i + 1, key, klen)) {
            size_t k = j;
            while (k < len && strchr(" \t\r\n", text[k])) k++;
            if (k < len && text[k] == ':') {
                k++;
                while (k < len && strchr(" \t\r\n", text[k])) k++;
                size_t e = skip_value(text, len, k);
                if (e > k) {  // keep newlines so that line numbers of later errors stay right
                    text[k] = '0';
                    for (size_t q = k + 1; q < e; q++)
                        if (text[q] != '\n') text[q] = ' ';
                    j = e;
                }
            }
        }
        i = j;
    }
}

