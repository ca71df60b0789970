// torchfile_zip.c — the zip container of torch.save (>= 1.6) and torch.jit.save files.
//
// PyTorch writes every entry stored (no compression), 64-byte aligned, with ZIP64 records when the
// archive or an entry passes 4 GiB. We read only the central directory and each entry's local
// header, from the mmap'ed file, and check every number against the file size before use: an entry
// that claims more bytes than the file has (a "zip bomb" size), a compressed or encrypted entry, a
// central directory that runs past the end, all stop with a message naming the file and entry.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "torchfile_internal.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOC64 0x07064b50u
#define EOCD_LEN 22
#define CENTRAL_LEN 46
#define LOCAL_LEN 30

static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | rd16(p + 2) << 16; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

// [off, off + len) inside the file, without overflow.
static int in_file(const TfZip *z, uint64_t off, uint64_t len) { return off <= z->size && len <= z->size - off; }

static int find_eocd(const TfZip *z, size_t *at) {
    if (z->size < EOCD_LEN) return 0;
    size_t lo = z->size > EOCD_LEN + 65535 ? z->size - EOCD_LEN - 65535 : 0;
    for (size_t i = z->size - EOCD_LEN + 1; i-- > lo;)
        if (rd32(z->map + i) == SIG_EOCD) {
            *at = i;
            return 1;
        }
    return 0;
}

// The ZIP64 extended-information extra field replaces the 32-bit fields that are all ones.
static int zip64_extra(const TfZip *z, const uint8_t *ex, uint32_t len, uint64_t *usize, uint64_t *csize,
                       uint64_t *local, const char *name) {
    for (uint32_t k = 0; k + 4 <= len;) {
        uint32_t id = rd16(ex + k), n = rd16(ex + k + 2);
        if (k + 4 + n > len) break;
        if (id == 1) {
            const uint8_t *f = ex + k + 4;
            uint32_t used = 0;
            uint64_t *fields[3] = {usize, csize, local};
            for (int j = 0; j < 3; j++) {
                if (*fields[j] != 0xffffffffu) continue;
                if (used + 8 > n)
                    return cn_fail(CN_E_MODEL, "%s: zip entry '%s': ZIP64 extra field too short", z->path, name);
                *fields[j] = rd64(f + used);
                used += 8;
            }
            return CN_OK;
        }
        k += 4 + n;
    }
    return CN_OK;
}

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const TfZipEntry *)a)->name, ((const TfZipEntry *)b)->name);
}

static int read_entry(TfZip *z, const uint8_t *c, size_t avail, size_t *used) {
    if (avail < CENTRAL_LEN || rd32(c) != SIG_CENTRAL)
        return cn_fail(CN_E_MODEL, "%s: zip central directory entry %d is truncated or corrupt", z->path, z->n);
    uint32_t flags = rd16(c + 8), method = rd16(c + 10), nlen = rd16(c + 28), xlen = rd16(c + 30),
             clen = rd16(c + 32);
    if ((size_t)CENTRAL_LEN + nlen + xlen + clen > avail)
        return cn_fail(CN_E_MODEL, "%s: zip central directory entry %d runs past the directory", z->path, z->n);
    char *name = mallocCheck((size_t)nlen + 1);
    memcpy(name, c + CENTRAL_LEN, nlen);
    name[nlen] = '\0';
    TfZipEntry *e = &z->e[z->n++];
    e->name = name;
    if (strlen(name) != nlen) return cn_fail(CN_E_MODEL, "%s: zip entry %d has a NUL in its name", z->path, z->n - 1);
    uint64_t csize = rd32(c + 20), usize = rd32(c + 24), local = rd32(c + 42);
    int rc = zip64_extra(z, c + CENTRAL_LEN + nlen, xlen, &usize, &csize, &local, name);
    if (rc) return rc;
    // Compressed / encrypted entries are recorded and refused only if read (tf_zip_stored): TorchScript
    // archives deflate their code/ entries, which we never need.
    e->method = (int)method;
    e->encrypted = (int)(flags & 1);
    if (method == 0 && csize != usize)
        return cn_fail(CN_E_MODEL, "%s: zip entry '%s' is stored but claims %llu bytes unpacked from %llu", z->path,
                       name, (unsigned long long)usize, (unsigned long long)csize);
    if (!in_file(z, local, LOCAL_LEN) || rd32(z->map + local) != SIG_LOCAL)
        return cn_fail(CN_E_MODEL, "%s: zip entry '%s': local header at %llu is outside the file or corrupt",
                       z->path, name, (unsigned long long)local);
    uint64_t data = local + LOCAL_LEN + rd16(z->map + local + 26) + rd16(z->map + local + 28);
    if (!in_file(z, data, csize))
        return cn_fail(CN_E_MODEL, "%s: zip entry '%s' claims %llu bytes at offset %llu but the file has %zu bytes",
                       z->path, name, (unsigned long long)csize, (unsigned long long)data, z->size);
    e->offset = (size_t)data;
    e->size = (size_t)csize;
    *used = (size_t)CENTRAL_LEN + nlen + xlen + clen;
    return CN_OK;
}

int tf_zip_open(TfZip *z, const uint8_t *map, size_t size, const char *path) {
    memset(z, 0, sizeof *z);
    z->map = map;
    z->size = size;
    z->path = path;
    size_t eocd;
    if (!find_eocd(z, &eocd))
        return cn_fail(CN_E_MODEL, "%s: no zip end-of-central-directory record: truncated or not a zip archive",
                       path);
    uint64_t count = rd16(map + eocd + 10), cd_size = rd32(map + eocd + 12), cd_off = rd32(map + eocd + 16);
    if (eocd >= 20 && rd32(map + eocd - 20) == SIG_LOC64) {
        uint64_t at = rd64(map + eocd - 20 + 8);
        if (!in_file(z, at, 56) || rd32(map + at) != SIG_EOCD64)
            return cn_fail(CN_E_MODEL, "%s: ZIP64 end-of-central-directory record missing or outside the file", path);
        count = rd64(map + at + 32);
        cd_size = rd64(map + at + 40);
        cd_off = rd64(map + at + 48);
    }
    if (!in_file(z, cd_off, cd_size))
        return cn_fail(CN_E_MODEL, "%s: zip central directory (%llu bytes at %llu) lies outside the file (%zu bytes): "
                       "truncated", path, (unsigned long long)cd_size, (unsigned long long)cd_off, size);
    if (count > cd_size / CENTRAL_LEN)
        return cn_fail(CN_E_MODEL, "%s: zip directory claims %llu entries in %llu bytes: truncated or corrupt", path,
                       (unsigned long long)count, (unsigned long long)cd_size);
    z->e = callocCheck((size_t)count + 1, sizeof(TfZipEntry));
    const uint8_t *c = map + cd_off;
    size_t left = (size_t)cd_size;
    for (uint64_t i = 0; i < count; i++) {
        size_t used = 0;
        int rc = read_entry(z, c, left, &used);
        if (rc) {
            tf_zip_free(z);
            return rc;
        }
        c += used;
        left -= used;
    }
    qsort(z->e, (size_t)z->n, sizeof(TfZipEntry), cmp_entry);
    for (int i = 1; i < z->n; i++)
        if (!strcmp(z->e[i - 1].name, z->e[i].name)) {
            int rc = cn_fail(CN_E_MODEL, "%s: zip entry '%s' appears twice", path, z->e[i].name);
            tf_zip_free(z);
            return rc;
        }
    return CN_OK;
}

const TfZipEntry *tf_zip_find(const TfZip *z, const char *name) {
    TfZipEntry key = {.name = (char *)name};
    return z->n ? bsearch(&key, z->e, (size_t)z->n, sizeof(TfZipEntry), cmp_entry) : NULL;
}

int tf_zip_stored(const TfZip *z, const TfZipEntry *e) {
    if (e->encrypted) return cn_fail(CN_E_MODEL, "%s: zip entry '%s' is encrypted", z->path, e->name);
    if (e->method != 0)
        return cn_fail(CN_E_MODEL, "%s: zip entry '%s' is compressed (method %d); PyTorch stores data.pkl and the "
                       "tensor data uncompressed: re-save the file with torch.save", z->path, e->name, e->method);
    return CN_OK;
}

int tf_zip_top(const TfZip *z, char *top, size_t n) {
    for (int i = 0; i < z->n; i++) {
        const char *nm = z->e[i].name, *sl = strchr(nm, '/');
        if (sl && !strcmp(sl, "/data.pkl") && (size_t)(sl - nm) < n) {
            snprintf(top, n, "%.*s", (int)(sl - nm), nm);
            return CN_OK;
        }
    }
    return cn_fail(CN_E_MODEL, "%s: a zip archive without <folder>/data.pkl: not a PyTorch file", z->path);
}

void tf_zip_free(TfZip *z) {
    for (int i = 0; i < z->n; i++) free(z->e[i].name);
    free(z->e);
    z->e = NULL;
    z->n = 0;
}
