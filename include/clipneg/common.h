// common.h — errors, exit codes, logging and the *Check wrappers every file uses.
//
// Two ways to fail, on purpose:
//  * Library functions that can meet bad input (a job file, a JSON, a checkpoint, an image)
//    return an int status (0 = ok, else one of the CN_E* codes below) and leave a message in a
//    thread-local buffer via cn_fail(); the caller decides whether that stops the run (config,
//    model) or is recorded and skipped (one broken image). Tests assert on cn_last_error().
//  * Programming errors and resources that must not fail (malloc, a write we just opened) go
//    through the llm.c-style *Check wrappers, which print "[rank R] file:line" and abort all ranks.
#ifndef CLIPNEG_COMMON_H
#define CLIPNEG_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CLIPNEG_VERSION "0.1.0"

// Process exit codes (documented in docs/cli.md). Also used as the status codes of library calls.
enum {
    CN_OK = 0,
    CN_E_GENERIC = 1,    // anything not covered below
    CN_E_USAGE = 2,      // bad command line
    CN_E_CONFIG = 3,     // job/variants file: unknown key, bad value, missing file
    CN_E_MODEL = 4,      // checkpoint/tokenizer: unreadable, wrong shapes, missing tensors
    CN_E_DATA = 5,       // dataset JSON/JSONL malformed (per-item image failures are NOT errors)
    CN_E_IO = 6,         // output file cannot be created/written (disk full, permissions)
    CN_E_RESUME = 7,     // existing output belongs to another job/model: refusing to resume
    CN_E_IMAGE = 8,      // one image could not be decoded (recorded per item, run goes on)
    CN_E_INTERNAL = 9,   // a bug: please report
    CN_E_PREEMPTED = 75, // stopped by SIGTERM/SIGUSR1 after flushing: re-run the same job to resume
};

// ---- status + message (thread-local) ---------------------------------------------------------
// cn_fail sets the message and returns `code`, so callers write: return cn_fail(CN_E_DATA, "...").
int cn_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *cn_last_error(void);
void cn_clear_error(void);

// ---- ranks and logging -----------------------------------------------------------------------
// Set once by main after MPI_Init (defaults: rank 0 of 1). Tests without MPI never call it.
void cn_set_rank(int rank, int nranks);
int cn_rank(void);
int cn_nranks(void);
// Everything human-readable goes to stderr; stdout is reserved for command output (ids, JSON, tables).
void cn_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));  // "[clipneg] ..." rank 0 only
void cn_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2))); // "[clipneg r3] warning: ..." any rank
// Print "[clipneg rN] error: <msg>" and end the whole job with `code` (MPI_Abort when >1 rank).
void cn_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
// Hook used by cn_die to abort all ranks; main installs an MPI_Abort-based one.
void cn_set_abort_hook(void (*hook)(int code));

// ---- *Check wrappers (llm.c style): abort with file:line on failure ---------------------------
void *malloc_check(size_t size, const char *file, int line);
void *calloc_check(size_t n, size_t size, const char *file, int line);
void *realloc_check(void *p, size_t size, const char *file, int line);
char *strdup_check(const char *s, const char *file, int line);
FILE *fopen_check(const char *path, const char *mode, const char *file, int line);
void fread_check(void *ptr, size_t size, size_t n, FILE *fp, const char *file, int line);
void fwrite_check(const void *ptr, size_t size, size_t n, FILE *fp, const char *file, int line);
void fclose_check(FILE *fp, const char *file, int line);
#define mallocCheck(size) malloc_check((size), __FILE__, __LINE__)
#define callocCheck(n, size) calloc_check((n), (size), __FILE__, __LINE__)
#define reallocCheck(p, size) realloc_check((p), (size), __FILE__, __LINE__)
#define strdupCheck(s) strdup_check((s), __FILE__, __LINE__)
#define fopenCheck(path, mode) fopen_check((path), (mode), __FILE__, __LINE__)
#define freadCheck(ptr, size, n, fp) fread_check((ptr), (size), (n), (fp), __FILE__, __LINE__)
#define fwriteCheck(ptr, size, n, fp) fwrite_check((ptr), (size), (n), (fp), __FILE__, __LINE__)
#define fcloseCheck(fp) fclose_check((fp), __FILE__, __LINE__)

// ---- small utilities --------------------------------------------------------------------------
// Read a whole file into a NUL-terminated heap buffer. Returns CN_OK or CN_E_IO (message set).
int cn_read_file(const char *path, char **data, size_t *len);

// A command-line integer: the whole of s, base 10, within [lo, hi]. CN_OK, or CN_E_USAGE with
// "OPT: 'S' is not an integer in [LO, HI]".
int cn_parse_int(const char *opt, const char *s, long long lo, long long hi, long long *out);
// A command-line seed: the whole of s, base 10, 0 .. 2^64-1. CN_OK, or CN_E_USAGE with
// "OPT: 'S' is not a non-negative integer".
int cn_parse_u64(const char *opt, const char *s, uint64_t *out);
// mmap a whole regular file read-only (*map = NULL for an empty file; munmap(*map, *size) to release).
// CN_OK or CN_E_MODEL naming the file.
int cn_map_file(const char *path, uint8_t **map, size_t *size);
double cn_now(void);  // monotonic seconds
// Number of threads this rank may use (OMP_NUM_THREADS or cores / ranks on this node, >= 1).
int cn_threads(void);

#define CN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CN_MAX(a, b) ((a) > (b) ? (a) : (b))
#define CN_CEIL_DIV(a, b) (((a) + (b) - 1) / (b))

#endif
