// sha256.h — a small self-contained SHA-256 (FIPS 180-4) for provenance hashes.
// Why our own: the job and model hashes in the HDF5 provenance are the only crypto-ish need of the
// project, and ~150 lines beat adding OpenSSL/libgcrypt as a build and runtime dependency.
// Tested against Python's hashlib (tests/test_sha256.c, vectors in tests/reference/make_sha256_vectors.py).
#ifndef CLIPNEG_SHA256_H
#define CLIPNEG_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t state[8];
    uint64_t n_bytes;  // total message length so far
    uint8_t block[64]; // pending partial block
    size_t n_block;    // bytes in `block`
} Sha256;

void sha256_init(Sha256 *s);
void sha256_update(Sha256 *s, const void *data, size_t n);
void sha256_final(Sha256 *s, uint8_t digest[32]);
// digest -> 64 lowercase hex characters + NUL
void sha256_hex(const uint8_t digest[32], char hex[65]);
// One call: hex digest of a buffer.
void sha256_buffer_hex(const void *data, size_t n, char hex[65]);
// Hex digest of a whole file, streamed in 1 MiB blocks. CN_OK or CN_E_IO (message names the file).
int sha256_file_hex(const char *path, char hex[65]);

#endif
