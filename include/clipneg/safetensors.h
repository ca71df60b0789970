// safetensors.h — a bounds-checked, mmap-based reader for the safetensors format.
// Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}},
// then the data. Every offset and shape is validated against the file size before use.
#ifndef CLIPNEG_SAFETENSORS_H
#define CLIPNEG_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { ST_F32 = 0, ST_F16 = 1, ST_BF16 = 2, ST_OTHER = 3 } StDtype;

#define ST_MAX_DIMS 8

typedef struct {
    char *name;
    StDtype dtype;
    char dtype_str[16];      // as written in the header ("F32", "I64", ...)
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    size_t begin, end;       // byte offsets relative to the data section
    const uint8_t *data;     // points into the mapping
    int used;                // set by the model loader: every tensor must be used exactly once
} StTensor;

typedef struct {
    char path[4096];
    uint8_t *map;
    size_t size;
    StTensor *tensors;       // sorted by name (safetensors_find is a binary search)
    int n;
    // "__metadata__" string map, in header order (n_meta == 0 when absent)
    char **meta_keys, **meta_values;
    int n_meta;
    int owns_map;            // 1 when safetensors_open mmap'ed the file (close unmaps it)
} SafeTensors;

// Open and validate. CN_OK or CN_E_MODEL with a message naming the file and the field.
// On failure `st` holds nothing (no close needed, closing is harmless).
int safetensors_open(SafeTensors *st, const char *path);
// Parse from memory (the fuzz target and tests use this); `st->map` is not owned then and `buf`
// must outlive `st`. Same failure contract as safetensors_open.
int safetensors_parse(SafeTensors *st, const uint8_t *buf, size_t size, const char *name);
void safetensors_close(SafeTensors *st);
StTensor *safetensors_find(const SafeTensors *st, const char *name);
// The __metadata__ value for `key`, or NULL.
const char *safetensors_metadata(const SafeTensors *st, const char *key);
// Convert a F32/F16/BF16 tensor to fp32 (dst has numel floats). CN_E_MODEL for other dtypes.
int safetensors_to_f32(const StTensor *t, float *dst);
// Convert an I64/I32 tensor to int32 (dst has numel ints); CN_E_MODEL on other dtypes or a value
// outside int32 (used for token-id fixtures).
int safetensors_to_i32(const StTensor *t, int32_t *dst);
// Bytes per element of a safetensors dtype string ("F32" -> 4), 0 when unknown.
size_t safetensors_itemsize(const char *dtype);

#endif
