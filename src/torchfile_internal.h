// torchfile_internal.h — shared by the PyTorch checkpoint reader's files (not a public API):
//   torchfile_zip.c     the zip container (central directory, ZIP64, stored entries only)
//   torchfile_pickle.c  a pickle VM that only builds data: no import, no call, ever
//   torchfile.c         data.pkl -> tensors -> the weights dict -> a SafeTensors table
#ifndef CLIPNEG_TORCHFILE_INTERNAL_H
#define CLIPNEG_TORCHFILE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "clipneg/safetensors.h"

// ---- zip ----------------------------------------------------------------------------------------
typedef struct {
    char *name;
    size_t offset;  // of the entry's bytes in the file (after the local header)
    size_t size;    // bytes in the file (compressed size; equal to the unpacked size when stored)
    int method;     // 0: stored
    int encrypted;
} TfZipEntry;

typedef struct {
    const uint8_t *map;
    size_t size;
    const char *path;  // for messages
    TfZipEntry *e;     // sorted by name
    int n;
} TfZip;

// Read the central directory. Every entry must lie inside the file, and a stored entry's two sizes
// must agree; CN_OK or CN_E_MODEL naming the file, the entry and the problem.
int tf_zip_open(TfZip *z, const uint8_t *map, size_t size, const char *path);
// CN_OK when `e` can be read in place (stored, not encrypted), else CN_E_MODEL naming it.
int tf_zip_stored(const TfZip *z, const TfZipEntry *e);
// The archive's top folder (the one holding data.pkl) into top[n]; CN_E_MODEL when there is none.
int tf_zip_top(const TfZip *z, char *top, size_t n);
const TfZipEntry *tf_zip_find(const TfZip *z, const char *name);
void tf_zip_free(TfZip *z);

// ---- pickle values --------------------------------------------------------------------------------
typedef enum {
    PV_NONE, PV_BOOL, PV_INT, PV_FLOAT, PV_STR, PV_BYTES,
    PV_TUPLE, PV_LIST, PV_DICT, PV_SET,
    PV_GLOBAL,   // a class or function name ("module.name"); never resolved
    PV_OBJECT,   // an inert placeholder: what calling / instantiating `cls` would have built
    PV_STORAGE,  // BINPERSID ('storage', torch.<T>Storage, key, location, numel)
    PV_TENSOR,   // torch._utils._rebuild_tensor_v2/_v3 (and _rebuild_parameter around it)
    PV_MARK,     // internal: the MARK on the stack
} PvKind;

#define TF_MAX_DIMS ST_MAX_DIMS

typedef struct PValue PValue;
// Kept small (88 bytes): a dataset file has millions. The unions hold what one kind needs.
struct PValue {
    PvKind kind;
    int dtype;          // STORAGE/TENSOR: index into the torchfile dtype table
    int ndim;           // TENSOR
    int n, cap;         // items in use (DICT: 2 x entries)
    union {
        int64_t i;      // BOOL, INT; STORAGE: numel; TENSOR: storage offset (elements)
        double f;       // FLOAT
    };
    char *s;            // STR/BYTES (NUL-terminated copy), GLOBAL "module.name", STORAGE key
    size_t slen;
    PValue **items;     // TUPLE/LIST/SET items; DICT: key, value, key, value, ...
    union {
        struct { PValue *cls, *args, *state; };            // OBJECT
        struct { PValue *storage; int64_t *shape, *stride; }; // TENSOR: [ndim] each (one allocation)
    };
};

// Values are carved from slabs and strings from chunks, all freed together: a dataset file holds
// millions of small values (CC-Neg: ~20 per entry, 228k entries), and one malloc each would double
// what they cost. None, True and False are one value each per pickle (nothing mutates them).
typedef struct {
    PValue **slabs;     // [n_slabs] arrays of TF_SLAB values; the last one is filled up to slab_used
    int n_slabs, cap_slabs, slab_used;
    int n_all;          // values built (the max_values bound)
    char **chunks;      // string storage
    int n_chunks, cap_chunks;
    size_t chunk_used, chunk_cap;
    PValue *none, *yes, *no;
    PValue *root;
} TfPickle;

#define TF_MAX_VALUES_CHECKPOINT (1 << 22)  // a CLIP checkpoint's data.pkl: ~10 values per tensor
#define TF_MAX_VALUES_DATA (1 << 26)        // a dataset file (CC-Neg: ~40 values per entry, 228k entries)

// Run the pickle `buf` (named `what` in messages, e.g. "model.pt: archive/data.pkl").
// CN_OK with p->root set, or CN_E_MODEL. Limits: `max_values` values, 1M stack entries, 1000
// nested MARKs, memo indices < max_values. tf_pickle_free releases everything (also after a failure).
int tf_pickle_run(TfPickle *p, const uint8_t *buf, size_t size, const char *what, int max_values);
// The same on a read-only FILE mapping (never a heap buffer): the pages already run are handed back
// to the kernel as it goes (madvise), so a big data.pkl does not stay resident (strings are copies).
int tf_pickle_run_mapped(TfPickle *p, const uint8_t *buf, size_t size, const char *what, int max_values);
void tf_pickle_free(TfPickle *p);

// Storage type name ("FloatStorage", "HalfStorage", ...) or torch dtype name ("float16") -> the
// index into the dtype table, -1 when unknown. tf_dtype_st/tf_dtype_size describe an index.
int tf_dtype_from_storage(const char *global_name);
int tf_dtype_from_torch(const char *global_name);
const char *tf_dtype_st(int dtype);
size_t tf_dtype_size(int dtype);
StDtype tf_dtype_kind(int dtype);

// Dict lookup by string key (NULL when absent or not a dict).
PValue *tf_dict_get(const PValue *d, const char *key);

#endif
