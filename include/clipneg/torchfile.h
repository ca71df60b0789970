// torchfile.h — a safe reader for PyTorch checkpoints: torch.save (>= 1.6) zip files and
// torch.jit.save (TorchScript, e.g. OpenAI's ViT-B-32.pt) archives.
//
// The file is mmap'ed; data.pkl runs through a pickle interpreter that only builds data (nothing
// is imported or called, unknown classes become inert placeholders); the weights dict is found
// (a bare state dict, a `state_dict` / `model` entry, TorchScript module attributes), a shared
// `module.` / `clip_model.` / `model.` prefix is stripped, and the result is the same table the
// safetensors reader gives: StTensor entries pointing into the mapping, sorted by name, so the
// model loader runs unchanged. Docs: docs/models.md.
#ifndef CLIPNEG_TORCHFILE_H
#define CLIPNEG_TORCHFILE_H

#include <stddef.h>
#include <stdint.h>

#include "clipneg/safetensors.h"

typedef struct {
    const char *state_key;     // the entry of the top-level dict holding the weights (NULL: detect)
    const char *strip_prefix;  // keep only names starting with this, stripped (NULL: detect)
} TorchFileOptions;

typedef struct {
    char kind[32];        // "torch.save" or "TorchScript"
    char wrapper[256];    // "bare state dict", "key 'state_dict'", "TorchScript module attributes", ...
    char prefix[128];     // the prefix(es) stripped ("" when none)
    int n_dropped;        // tensors outside strip_prefix, left out
} TorchFileInfo;

// Open and resolve `path`. CN_OK, or CN_E_MODEL with a message naming the file and the problem.
// On success close with safetensors_close (it unmaps the file). `opt` and `info` may be NULL.
int torchfile_open(SafeTensors *st, TorchFileInfo *info, const char *path, const TorchFileOptions *opt);
// The same from memory (fuzz target, tests): `buf` must outlive `st`.
int torchfile_parse(SafeTensors *st, TorchFileInfo *info, const uint8_t *buf, size_t size, const char *name,
                    const TorchFileOptions *opt);
// 1 when the first bytes are a zip ("PK\3\4") or a raw pickle (0x80): a PyTorch file, not safetensors.
int torchfile_sniff(const char *path);

// ---- non-tensor values (dataset files saved with torch.save, e.g. CC-Neg's ccneg_preprocessed.pt) ----
// The same data-only reader, giving the whole object graph: dicts, lists, tuples, strings, numbers.
// Values live as long as their TorchData; every accessor is NULL/-1-safe, so chains like
// torchvalue_str(torchvalue_get(torchvalue_index(list, i), "caption")) need one check at the end.
typedef struct TorchData TorchData;
typedef struct PValue TorchValue;

int torchdata_open(TorchData **td, const char *path);  // CN_OK or CN_E_DATA naming the file
const TorchValue *torchdata_root(const TorchData *td);
void torchdata_close(TorchData *td);
const TorchValue *torchvalue_get(const TorchValue *dict, const char *key);  // NULL: not a dict / no key
int torchvalue_len(const TorchValue *v);                                   // list/tuple items, else -1
const TorchValue *torchvalue_index(const TorchValue *v, int i);            // NULL when out of range
const char *torchvalue_str(const TorchValue *v);                           // NULL unless a str
// "str", "int", "dict", "list", ... (for messages)
const char *torchvalue_kind(const TorchValue *v);

#endif
