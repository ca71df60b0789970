// torchfile_pickle.c — a pickle interpreter that only BUILDS DATA.
//
// Python's pickle runs code: GLOBAL names any importable callable and REDUCE calls it (a
// checkpoint can hold `os.system` + REDUCE). This VM never imports or calls anything. GLOBAL gives
// an inert name; REDUCE / NEWOBJ / BUILD on a name we recognise build plain data (tensors through
// torch._utils._rebuild_tensor_v2/_v3 and _rebuild_parameter, collections.OrderedDict -> dict),
// and on every other name an inert placeholder object that records the name and its arguments
// (argparse.Namespace, numpy scalars, TorchScript module classes, os.system alike).
// Opcodes: the binary ones torch.save / torch.jit.save emit (protocol 2) plus the protocol-4
// framing ones; anything else stops with the opcode and its offset. Every length is checked against
// the bytes left; value count, stack size, MARK nesting and memo indices are bounded.
#define _DEFAULT_SOURCE // madvise
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "clipneg/common.h"
#include "torchfile_internal.h"

#define MAX_STACK (1 << 20)
#define MAX_MARKS 1000

// ---- dtypes ---------------------------------------------------------------------------------------
typedef struct {
    const char *storage, *torch, *st;
    size_t size;
    StDtype kind;
} TfDtype;

static const TfDtype DTYPES[] = {
    {"FloatStorage", "float32", "F32", 4, ST_F32},     {"HalfStorage", "float16", "F16", 2, ST_F16},
    {"BFloat16Storage", "bfloat16", "BF16", 2, ST_BF16}, {"DoubleStorage", "float64", "F64", 8, ST_OTHER},
    {"LongStorage", "int64", "I64", 8, ST_OTHER},      {"IntStorage", "int32", "I32", 4, ST_OTHER},
    {"ShortStorage", "int16", "I16", 2, ST_OTHER},     {"CharStorage", "int8", "I8", 1, ST_OTHER},
    {"ByteStorage", "uint8", "U8", 1, ST_OTHER},       {"BoolStorage", "bool", "BOOL", 1, ST_OTHER},
};
#define N_DTYPES ((int)(sizeof DTYPES / sizeof DTYPES[0]))

int tf_dtype_from_storage(const char *g) {
    if (strncmp(g, "torch.", 6) != 0) return -1;
    for (int i = 0; i < N_DTYPES; i++)
        if (!strcmp(g + 6, DTYPES[i].storage)) return i;
    return -1;
}
int tf_dtype_from_torch(const char *g) {
    if (strncmp(g, "torch.", 6) != 0) return -1;
    for (int i = 0; i < N_DTYPES; i++)
        if (!strcmp(g + 6, DTYPES[i].torch)) return i;
    return -1;
}
const char *tf_dtype_st(int d) { return DTYPES[d].st; }
size_t tf_dtype_size(int d) { return DTYPES[d].size; }
StDtype tf_dtype_kind(int d) { return DTYPES[d].kind; }

// ---- values ---------------------------------------------------------------------------------------
typedef struct {
    TfPickle *p;
    const uint8_t *buf;
    size_t size, pos;
    const char *what;
    PValue **stack;
    int sp, cap;
    int marks[MAX_MARKS];
    int n_marks;
    PValue **memo;
    int memo_cap;
    int max_values;
} Vm;

#define TF_SLAB 4096             // values per slab
#define TF_CHUNK ((size_t)1 << 20) // bytes per string chunk (a longer string gets a chunk of its own)

static PValue *new_value(Vm *vm, PvKind kind) {
    TfPickle *p = vm->p;
    if (p->n_all >= vm->max_values) return NULL;
    if (p->n_slabs == 0 || p->slab_used == TF_SLAB) {
        if (p->n_slabs == p->cap_slabs) {
            p->cap_slabs = p->cap_slabs ? 2 * p->cap_slabs : 16;
            p->slabs = reallocCheck(p->slabs, (size_t)p->cap_slabs * sizeof(PValue *));
        }
        p->slabs[p->n_slabs++] = mallocCheck(TF_SLAB * sizeof(PValue));
        p->slab_used = 0;
    }
    PValue *v = &p->slabs[p->n_slabs - 1][p->slab_used++];
    memset(v, 0, sizeof *v);
    v->kind = kind;
    v->dtype = -1;
    p->n_all++;
    return v;
}

// n bytes of string storage, freed with the pickle.
static char *new_bytes(TfPickle *p, size_t n) {
    if (p->n_chunks == 0 || p->chunk_cap - p->chunk_used < n) {
        if (p->n_chunks == p->cap_chunks) {
            p->cap_chunks = p->cap_chunks ? 2 * p->cap_chunks : 16;
            p->chunks = reallocCheck(p->chunks, (size_t)p->cap_chunks * sizeof(char *));
        }
        p->chunk_cap = n > TF_CHUNK ? n : TF_CHUNK;
        p->chunks[p->n_chunks++] = mallocCheck(p->chunk_cap);
        p->chunk_used = 0;
    }
    char *s = p->chunks[p->n_chunks - 1] + p->chunk_used;
    p->chunk_used += n;
    return s;
}

static char *copy_str(TfPickle *p, const char *s, size_t len) {
    char *o = new_bytes(p, len + 1);
    memcpy(o, s, len);
    o[len] = '\0';
    return o;
}

// None, True, False: one value each.
static PValue *shared_value(Vm *vm, PValue **slot, PvKind kind, int64_t i) {
    if (!*slot && (*slot = new_value(vm, kind))) (*slot)->i = i;
    return *slot;
}

static void add_item(PValue *c, PValue *x) {
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 8;
        c->items = reallocCheck(c->items, (size_t)c->cap * sizeof(PValue *));
    }
    c->items[c->n++] = x;
}

PValue *tf_dict_get(const PValue *d, const char *key) {
    if (!d || d->kind != PV_DICT) return NULL;
    for (int i = 0; i + 1 < d->n; i += 2)
        if (d->items[i]->kind == PV_STR && !strcmp(d->items[i]->s, key)) return d->items[i + 1];
    return NULL;
}

void tf_pickle_free(TfPickle *p) {
    for (int k = 0; k < p->n_slabs; k++) {
        int used = k == p->n_slabs - 1 ? p->slab_used : TF_SLAB;
        for (int i = 0; i < used; i++) {
            free(p->slabs[k][i].items);
            if (p->slabs[k][i].kind == PV_TENSOR) free(p->slabs[k][i].shape); // a union with OBJECT's cls/args
        }
        free(p->slabs[k]);
    }
    for (int k = 0; k < p->n_chunks; k++) free(p->chunks[k]);
    free(p->slabs);
    free(p->chunks);
    memset(p, 0, sizeof *p);
}

// ---- the machine ----------------------------------------------------------------------------------
#define FAIL(...) cn_fail(CN_E_MODEL, __VA_ARGS__)

static int push(Vm *vm, PValue *v) {
    if (!v) return FAIL("%s: more than %d pickle values: refusing", vm->what, vm->max_values);
    if (vm->sp >= MAX_STACK) return FAIL("%s: pickle stack deeper than %d: refusing", vm->what, MAX_STACK);
    if (vm->sp == vm->cap) {
        vm->cap = vm->cap ? 2 * vm->cap : 64;
        vm->stack = reallocCheck(vm->stack, (size_t)vm->cap * sizeof(PValue *));
    }
    vm->stack[vm->sp++] = v;
    return CN_OK;
}

static int pop(Vm *vm, PValue **out, size_t at) {
    int floor = vm->n_marks ? vm->marks[vm->n_marks - 1] : 0;
    if (vm->sp <= floor) return FAIL("%s: pickle stack underflow at byte %zu", vm->what, at);
    *out = vm->stack[--vm->sp];
    return CN_OK;
}

// Pop everything above the last MARK into `c` (NULL: discard) and drop the mark.
static int pop_mark(Vm *vm, PValue *c, size_t at) {
    if (!vm->n_marks) return FAIL("%s: pickle opcode at byte %zu needs a MARK and there is none", vm->what, at);
    int m = vm->marks[--vm->n_marks];
    if (c && c->n + (vm->sp - m) > c->cap) { // a first batch exactly: dicts of a data file stay tight
        int need = c->n + (vm->sp - m);
        c->cap = c->n && 2 * c->cap > need ? 2 * c->cap : need; // later batches (lists of 1000s): doubling
        c->items = reallocCheck(c->items, (size_t)c->cap * sizeof(PValue *));
    }
    if (c)
        for (int i = m; i < vm->sp; i++) add_item(c, vm->stack[i]);
    vm->sp = m;
    return CN_OK;
}

static int take(Vm *vm, size_t n, const uint8_t **out) {
    if (n > vm->size - vm->pos) return FAIL("%s: pickle truncated at byte %zu (needs %zu more bytes)", vm->what,
                                            vm->pos, n);
    *out = vm->buf + vm->pos;
    vm->pos += n;
    return CN_OK;
}

static uint64_t le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static int push_str(Vm *vm, PvKind kind, size_t len) {
    const uint8_t *d = NULL;
    int rc = take(vm, len, &d);
    if (rc) return rc;
    PValue *v = new_value(vm, kind);
    if (v) {
        v->s = copy_str(vm->p, (const char *)d, len);
        v->slen = len;
    }
    return push(vm, v);
}

static int push_int(Vm *vm, int64_t x) {
    PValue *v = new_value(vm, PV_INT);
    if (v) v->i = x;
    return push(vm, v);
}

static int memo_put(Vm *vm, uint64_t idx, size_t at) {
    // A pickler numbers its memo 0, 1, 2, ...: an index beyond the values built so far is forged
    // (and would make us allocate a huge memo).
    if (idx >= (uint64_t)vm->max_values || idx > (uint64_t)vm->p->n_all + 64)
        return FAIL("%s: pickle memo index %llu at byte %zu is too large", vm->what, (unsigned long long)idx, at);
    if (vm->sp == 0) return FAIL("%s: pickle PUT on an empty stack at byte %zu", vm->what, at);
    if ((int)idx >= vm->memo_cap) {
        int cap = vm->memo_cap ? vm->memo_cap : 64;
        while (cap <= (int)idx) cap *= 2;
        vm->memo = reallocCheck(vm->memo, (size_t)cap * sizeof(PValue *));
        memset(vm->memo + vm->memo_cap, 0, (size_t)(cap - vm->memo_cap) * sizeof(PValue *));
        vm->memo_cap = cap;
    }
    vm->memo[idx] = vm->stack[vm->sp - 1];
    return CN_OK;
}

static int memo_get(Vm *vm, uint64_t idx, size_t at) {
    if (idx >= (uint64_t)vm->memo_cap || !vm->memo[idx])
        return FAIL("%s: pickle GET of unset memo slot %llu at byte %zu", vm->what, (unsigned long long)idx, at);
    return push(vm, vm->memo[idx]);
}

static int is_int_tuple(const PValue *t, int max) {
    if (!t || t->kind != PV_TUPLE || t->n > max) return 0;
    for (int i = 0; i < t->n; i++)
        if (t->items[i]->kind != PV_INT) return 0;
    return 1;
}

// _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]);
// _v3 adds a dtype after the hooks. Every bound is checked here, where the numbers are read.
static int rebuild_tensor(Vm *vm, PValue *args, int v3, PValue **out, size_t at) {
    if (args->kind != PV_TUPLE || args->n < 4 || args->items[0]->kind != PV_STORAGE ||
        args->items[1]->kind != PV_INT || !is_int_tuple(args->items[2], TF_MAX_DIMS) ||
        !is_int_tuple(args->items[3], TF_MAX_DIMS) || args->items[2]->n != args->items[3]->n)
        return FAIL("%s: malformed tensor record at byte %zu (expected storage, offset, size, stride)", vm->what, at);
    PValue *st = args->items[0], *t = new_value(vm, PV_TENSOR);
    if (!t) return FAIL("%s: more than %d pickle values: refusing", vm->what, vm->max_values);
    t->storage = st;
    t->dtype = st->dtype;
    if (v3 && args->n >= 7 && args->items[6]->kind == PV_GLOBAL) {
        int d = tf_dtype_from_torch(args->items[6]->s);
        if (d < 0) return FAIL("%s: tensor dtype %s at byte %zu is not supported", vm->what, args->items[6]->s, at);
        if (tf_dtype_size(d) != tf_dtype_size(st->dtype))
            return FAIL("%s: tensor dtype %s over a %s storage at byte %zu: not supported", vm->what,
                        args->items[6]->s, tf_dtype_st(st->dtype), at);
        t->dtype = d;
    }
    t->i = args->items[1]->i;
    t->ndim = args->items[2]->n;
    t->shape = callocCheck(2 * TF_MAX_DIMS, sizeof(int64_t));
    t->stride = t->shape + TF_MAX_DIMS;
    // Extent: offset + sum((size - 1) * stride) + 1 elements must lie inside the storage.
    uint64_t last = 0, numel = 1;
    if (t->i < 0 || t->i > st->i)  // also for an empty tensor: its data pointer must stay inside the storage
        return FAIL("%s: storage offset %lld at byte %zu outside storage '%s' (%lld elements)", vm->what,
                    (long long)t->i, at, st->s, (long long)st->i);
    for (int d = 0; d < t->ndim; d++) {
        int64_t n = args->items[2]->items[d]->i, s = args->items[3]->items[d]->i;
        if (n < 0 || s < 0 || n > (int64_t)1 << 40 || s > (int64_t)1 << 40)
            return FAIL("%s: tensor size/stride out of range at byte %zu", vm->what, at);
        t->shape[d] = n;
        t->stride[d] = s;
        numel *= (uint64_t)n;
        if (numel > (uint64_t)1 << 40) return FAIL("%s: tensor element count too large at byte %zu", vm->what, at);
        if (n > 0) last += (uint64_t)(n - 1) * (uint64_t)s;
    }
    if (numel > 0 && ((uint64_t)t->i + last + 1 > (uint64_t)st->i))
        return FAIL("%s: tensor at byte %zu reaches element %llu of storage '%s' which holds %lld", vm->what, at,
                    (unsigned long long)((uint64_t)t->i + last), st->s, (long long)st->i);
    *out = t;
    return CN_OK;
}

// REDUCE: `callable(*args)`. Known names build data; every other name builds a placeholder.
static int reduce(Vm *vm, PValue *fn, PValue *args, size_t at) {
    const char *name = fn->kind == PV_GLOBAL ? fn->s : "";
    PValue *out = NULL;
    int rc;
    if (!strcmp(name, "torch._utils._rebuild_tensor_v2") || !strcmp(name, "torch._utils._rebuild_tensor_v3")) {
        if ((rc = rebuild_tensor(vm, args, name[27] == '3', &out, at))) return rc;
        return push(vm, out);
    }
    if ((!strcmp(name, "torch._utils._rebuild_parameter") ||
         !strcmp(name, "torch._utils._rebuild_parameter_with_state")) &&
        args->kind == PV_TUPLE && args->n >= 1 && args->items[0]->kind == PV_TENSOR)
        return push(vm, args->items[0]);
    if (!strcmp(name, "collections.OrderedDict")) {
        out = new_value(vm, PV_DICT);
        // OrderedDict([(k, v), ...]) keeps its pairs; torch.save writes OrderedDict() + SETITEMS.
        if (out && args->kind == PV_TUPLE && args->n == 1 && args->items[0]->kind == PV_LIST)
            for (int i = 0; i < args->items[0]->n; i++) {
                PValue *kv = args->items[0]->items[i];
                if (kv->kind != PV_TUPLE || kv->n != 2) continue;
                add_item(out, kv->items[0]);
                add_item(out, kv->items[1]);
            }
        return push(vm, out);
    }
    out = new_value(vm, PV_OBJECT);
    if (out) {
        out->cls = fn;
        out->args = args;
    }
    return push(vm, out);
}

// BINPERSID ('storage', torch.<T>Storage, key, location, numel)
static int persistent(Vm *vm, PValue *pid, size_t at) {
    if (pid->kind != PV_TUPLE || pid->n < 5 || pid->items[0]->kind != PV_STR || strcmp(pid->items[0]->s, "storage") ||
        pid->items[1]->kind != PV_GLOBAL || pid->items[2]->kind != PV_STR || pid->items[4]->kind != PV_INT)
        return FAIL("%s: persistent id at byte %zu is not ('storage', type, key, location, numel)", vm->what, at);
    int d = tf_dtype_from_storage(pid->items[1]->s);
    if (d < 0) return FAIL("%s: storage type %s at byte %zu is not supported", vm->what, pid->items[1]->s, at);
    if (pid->items[4]->i < 0) return FAIL("%s: negative storage size at byte %zu", vm->what, at);
    PValue *v = new_value(vm, PV_STORAGE);
    if (v) {
        v->s = copy_str(vm->p, pid->items[2]->s, pid->items[2]->slen);
        v->i = pid->items[4]->i;
        v->dtype = d;
    }
    return push(vm, v);
}

static int build_tuple(Vm *vm, int n, size_t at) {
    PValue *t = new_value(vm, PV_TUPLE);
    if (!t) return push(vm, t);
    PValue *x[3] = {NULL, NULL, NULL};
    for (int i = n - 1; i >= 0; i--) {
        int rc = pop(vm, &x[i], at);
        if (rc) return rc;
    }
    for (int i = 0; i < n; i++) add_item(t, x[i]);
    return push(vm, t);
}

static int step(Vm *vm, int op, size_t at, int *stop) {
    const uint8_t *d = NULL;
    PValue *a = NULL, *b = NULL, *c = NULL;
    int rc = CN_OK;
    switch (op) {
    case 0x80: return take(vm, 1, &d);                                   // PROTO
    case 0x95: return take(vm, 8, &d);                                   // FRAME
    case '.': *stop = 1; return CN_OK;                                   // STOP
    case '(':                                                            // MARK
        if (vm->n_marks >= MAX_MARKS) return FAIL("%s: more than %d nested MARKs at byte %zu: refusing", vm->what,
                                                  MAX_MARKS, at);
        vm->marks[vm->n_marks++] = vm->sp;
        return CN_OK;
    case 'c': {                                                          // GLOBAL "module\nname\n"
        size_t start = vm->pos, nl = 0;
        for (size_t i = vm->pos; i < vm->size && nl < 2; i++) if (vm->buf[i] == '\n') nl++, vm->pos = i + 1;
        if (nl < 2) return FAIL("%s: GLOBAL at byte %zu is not terminated", vm->what, at);
        size_t len = vm->pos - start;
        if (memchr(vm->buf + start, '\0', len))
            return FAIL("%s: GLOBAL at byte %zu has a NUL byte in its name", vm->what, at);
        PValue *g = new_value(vm, PV_GLOBAL);
        if (g) {
            g->s = new_bytes(vm->p, len);
            memcpy(g->s, vm->buf + start, len - 1);
            g->s[len - 1] = '\0';
            *strchr(g->s, '\n') = '.';  // "module\nname" -> "module.name"
            g->slen = len - 1;
        }
        return push(vm, g);
    }
    case 0x93:                                                           // STACK_GLOBAL
        if ((rc = pop(vm, &b, at)) || (rc = pop(vm, &a, at))) return rc;
        if (a->kind != PV_STR || b->kind != PV_STR) return FAIL("%s: STACK_GLOBAL at byte %zu needs two strings",
                                                                 vm->what, at);
        c = new_value(vm, PV_GLOBAL);
        if (c) {
            c->slen = a->slen + 1 + b->slen;
            c->s = new_bytes(vm->p, c->slen + 1);
            snprintf(c->s, c->slen + 1, "%s.%s", a->s, b->s);
        }
        return push(vm, c);
    case 'R':                                                            // REDUCE
    case 0x81:                                                           // NEWOBJ
        if ((rc = pop(vm, &b, at)) || (rc = pop(vm, &a, at))) return rc;
        if (b->kind != PV_TUPLE) return FAIL("%s: %s at byte %zu: arguments are not a tuple", vm->what,
                                             op == 'R' ? "REDUCE" : "NEWOBJ", at);
        return reduce(vm, a, b, at);
    case 'b':                                                            // BUILD: state goes to placeholders only
        if ((rc = pop(vm, &b, at)) || (rc = pop(vm, &a, at))) return rc;
        if (a->kind == PV_OBJECT) a->state = b;
        return push(vm, a);
    case 'Q':                                                            // BINPERSID
        if ((rc = pop(vm, &a, at))) return rc;
        return persistent(vm, a, at);
    case '}': return push(vm, new_value(vm, PV_DICT));
    case ']': return push(vm, new_value(vm, PV_LIST));
    case ')': return push(vm, new_value(vm, PV_TUPLE));
    case 0x8f: return push(vm, new_value(vm, PV_SET));
    case 'd':                                                            // DICT
    case 'l':                                                            // LIST
    case 't':                                                            // TUPLE
        c = new_value(vm, op == 'd' ? PV_DICT : op == 'l' ? PV_LIST : PV_TUPLE);
        if (!c) return push(vm, c);
        if ((rc = pop_mark(vm, c, at))) return rc;
        if (op == 'd' && c->n % 2) return FAIL("%s: DICT at byte %zu has an odd number of items", vm->what, at);
        return push(vm, c);
    case 0x85: case 0x86: case 0x87: return build_tuple(vm, op - 0x84, at);  // TUPLE1/2/3
    case 's':                                                            // SETITEM
        if ((rc = pop(vm, &b, at)) || (rc = pop(vm, &a, at)) || (rc = pop(vm, &c, at))) return rc;
        if (c->kind != PV_DICT) return FAIL("%s: SETITEM at byte %zu on a non-dict", vm->what, at);
        add_item(c, a);
        add_item(c, b);
        return push(vm, c);
    case 'u':                                                            // SETITEMS
    case 'e':                                                            // APPENDS
    case 0x90: {                                                         // ADDITEMS
        if (!vm->n_marks || vm->marks[vm->n_marks - 1] < 1)
            return FAIL("%s: opcode 0x%02x at byte %zu needs a MARK above a container", vm->what, op, at);
        int m = vm->marks[vm->n_marks - 1];
        c = vm->stack[m - 1];
        PvKind want = op == 'u' ? PV_DICT : op == 'e' ? PV_LIST : PV_SET;
        if (c->kind != want && !(op == 'e' && c->kind == PV_OBJECT))
            return FAIL("%s: opcode 0x%02x at byte %zu on the wrong kind of container", vm->what, op, at);
        if (op == 'u' && (vm->sp - m) % 2) return FAIL("%s: SETITEMS at byte %zu has an odd number of items",
                                                       vm->what, at);
        return pop_mark(vm, c->kind == PV_OBJECT ? NULL : c, at);
    }
    case 'a':                                                            // APPEND
        if ((rc = pop(vm, &b, at)) || (rc = pop(vm, &a, at))) return rc;
        if (a->kind == PV_LIST) add_item(a, b);
        else if (a->kind != PV_OBJECT) return FAIL("%s: APPEND at byte %zu on a non-list", vm->what, at);
        return push(vm, a);
    case 'N': return push(vm, shared_value(vm, &vm->p->none, PV_NONE, 0));
    case 0x88: return push(vm, shared_value(vm, &vm->p->yes, PV_BOOL, 1)); // NEWTRUE
    case 0x89: return push(vm, shared_value(vm, &vm->p->no, PV_BOOL, 0));  // NEWFALSE
    case 'J': if ((rc = take(vm, 4, &d))) return rc; return push_int(vm, (int32_t)le(d, 4));
    case 'K': if ((rc = take(vm, 1, &d))) return rc; return push_int(vm, d[0]);
    case 'M': if ((rc = take(vm, 2, &d))) return rc; return push_int(vm, (int64_t)le(d, 2));
    case 0x8a: {                                                         // LONG1
        if ((rc = take(vm, 1, &d))) return rc;
        int n = d[0];
        if ((rc = take(vm, (size_t)n, &d))) return rc;
        if (n > 8) return push(vm, new_value(vm, PV_OBJECT));  // a big int: kept as an opaque value
        uint64_t v = n ? le(d, n) : 0;
        if (n && n < 8 && (d[n - 1] & 0x80)) v |= ~(uint64_t)0 << (8 * n);  // sign-extend
        return push_int(vm, (int64_t)v);
    }
    case 'G': {                                                          // BINFLOAT (big-endian)
        if ((rc = take(vm, 8, &d))) return rc;
        uint64_t bits = 0;
        for (int i = 0; i < 8; i++) bits = bits << 8 | d[i];
        c = new_value(vm, PV_FLOAT);
        if (c) memcpy(&c->f, &bits, 8);
        return push(vm, c);
    }
    case 'X': if ((rc = take(vm, 4, &d))) return rc; return push_str(vm, PV_STR, (size_t)le(d, 4));
    case 0x8c: if ((rc = take(vm, 1, &d))) return rc; return push_str(vm, PV_STR, d[0]);
    case 0x8d: if ((rc = take(vm, 8, &d))) return rc; return push_str(vm, PV_STR, (size_t)le(d, 8));
    case 'U': if ((rc = take(vm, 1, &d))) return rc; return push_str(vm, PV_STR, d[0]);
    case 'T': if ((rc = take(vm, 4, &d))) return rc; return push_str(vm, PV_STR, (size_t)le(d, 4));
    case 'C': if ((rc = take(vm, 1, &d))) return rc; return push_str(vm, PV_BYTES, d[0]);
    case 'B': if ((rc = take(vm, 4, &d))) return rc; return push_str(vm, PV_BYTES, (size_t)le(d, 4));
    case 0x8e: if ((rc = take(vm, 8, &d))) return rc; return push_str(vm, PV_BYTES, (size_t)le(d, 8));
    case 'q': if ((rc = take(vm, 1, &d))) return rc; return memo_put(vm, d[0], at);
    case 'r': if ((rc = take(vm, 4, &d))) return rc; return memo_put(vm, le(d, 4), at);
    case 'h': if ((rc = take(vm, 1, &d))) return rc; return memo_get(vm, d[0], at);
    case 'j': if ((rc = take(vm, 4, &d))) return rc; return memo_get(vm, le(d, 4), at);
    case '0': return pop(vm, &a, at);                                    // POP
    case '1': return pop_mark(vm, NULL, at);                             // POP_MARK
    case '2':                                                            // DUP
        if ((rc = pop(vm, &a, at)) || (rc = push(vm, a))) return rc;
        return push(vm, a);
    default:
        return FAIL("%s: unsupported pickle opcode 0x%02x at byte %zu", vm->what, op, at);
    }
}

// Hands back whole pages of a file mapping that lie before `end` (they are re-read if touched again).
static void release_pages(const uint8_t *buf, size_t end, size_t *released) {
    size_t page = 4096, from = ((uintptr_t)buf + *released + page - 1) / page * page,
           to = ((uintptr_t)buf + end) / page * page;
    if (to > from) madvise((void *)from, to - from, MADV_DONTNEED);
    *released = end;
}

static int run(TfPickle *p, const uint8_t *buf, size_t size, const char *what, int max_values, int release) {
    memset(p, 0, sizeof *p);
    size_t released = 0;
    Vm vm = {.p = p, .buf = buf, .size = size, .what = what, .max_values = max_values};
    int rc = CN_OK, stop = 0;
    int memoize_next = 0;
    while (rc == CN_OK && !stop) {
        if (vm.pos >= size) {
            rc = FAIL("%s: pickle ends without STOP (truncated)", what);
            break;
        }
        size_t at = vm.pos;
        if (release && at - released >= ((size_t)16 << 20)) release_pages(buf, at, &released);
        int op = buf[vm.pos++];
        if (op == 0x94) {  // MEMOIZE: the next free memo slot, counted by how many were stored
            rc = memo_put(&vm, (uint64_t)memoize_next++, at);
            continue;
        }
        rc = step(&vm, op, at, &stop);
    }
    if (rc == CN_OK) {
        if (vm.sp != 1 || vm.n_marks) rc = FAIL("%s: pickle leaves %d values on the stack at STOP", what, vm.sp);
        else p->root = vm.stack[0];
    }
    free(vm.stack);
    free(vm.memo);
    return rc;
}

int tf_pickle_run(TfPickle *p, const uint8_t *buf, size_t size, const char *what, int max_values) {
    return run(p, buf, size, what, max_values, 0);
}

int tf_pickle_run_mapped(TfPickle *p, const uint8_t *buf, size_t size, const char *what, int max_values) {
    return run(p, buf, size, what, max_values, 1);
}
