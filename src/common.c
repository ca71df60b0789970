// common.c — see include/clipneg/common.h for why errors come in two kinds.
#define _GNU_SOURCE
#include "clipneg/common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char g_err[1024];
static int g_rank = 0, g_nranks = 1;
static void (*g_abort_hook)(int) = NULL;

int cn_fail(int code, const char *fmt, ...) {
    // Format into a local buffer first: callers often pass cn_last_error() itself as an argument
    // (cn_fail(code, "%s: %s", path, cn_last_error())) to add context to a lower-level message.
    char buf[sizeof g_err];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    memcpy(g_err, buf, sizeof g_err);
    return code;
}
const char *cn_last_error(void) { return g_err; }
void cn_clear_error(void) { g_err[0] = '\0'; }

void cn_set_rank(int rank, int nranks) { g_rank = rank; g_nranks = nranks; }
int cn_rank(void) { return g_rank; }
int cn_nranks(void) { return g_nranks; }
void cn_set_abort_hook(void (*hook)(int)) { g_abort_hook = hook; }

void cn_log(const char *fmt, ...) {
    if (g_rank != 0) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("[clipneg] ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void cn_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[clipneg r%d] warning: ", g_rank);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void cn_die(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[clipneg r%d] error: ", g_rank);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    if (g_abort_hook && g_nranks > 1) g_abort_hook(code);
    exit(code);
}

void *malloc_check(size_t size, const char *file, int line) {
    void *p = malloc(size ? size : 1);
    if (!p) cn_die(CN_E_INTERNAL, "%s:%d: out of memory allocating %zu bytes", file, line, size);
    return p;
}
void *calloc_check(size_t n, size_t size, const char *file, int line) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) cn_die(CN_E_INTERNAL, "%s:%d: out of memory allocating %zu x %zu bytes", file, line, n, size);
    return p;
}
void *realloc_check(void *q, size_t size, const char *file, int line) {
    void *p = realloc(q, size ? size : 1);
    if (!p) cn_die(CN_E_INTERNAL, "%s:%d: out of memory reallocating %zu bytes", file, line, size);
    return p;
}
char *strdup_check(const char *s, const char *file, int line) {
    size_t n = strlen(s) + 1;
    char *p = malloc_check(n, file, line);
    memcpy(p, s, n);
    return p;
}
FILE *fopen_check(const char *path, const char *mode, const char *file, int line) {
    FILE *fp = fopen(path, mode);
    if (!fp) cn_die(CN_E_IO, "%s:%d: cannot open '%s' (mode %s): %s", file, line, path, mode, strerror(errno));
    return fp;
}
void fread_check(void *ptr, size_t size, size_t n, FILE *fp, const char *file, int line) {
    if (fread(ptr, size, n, fp) != n)
        cn_die(CN_E_IO, "%s:%d: short read (%s)", file, line, feof(fp) ? "end of file" : strerror(errno));
}
void fwrite_check(const void *ptr, size_t size, size_t n, FILE *fp, const char *file, int line) {
    if (fwrite(ptr, size, n, fp) != n) cn_die(CN_E_IO, "%s:%d: short write: %s", file, line, strerror(errno));
}
void fclose_check(FILE *fp, const char *file, int line) {
    if (fclose(fp) != 0) cn_die(CN_E_IO, "%s:%d: close failed: %s", file, line, strerror(errno));
}

int cn_read_file(const char *path, char **data, size_t *len) {
    *data = NULL;
    if (len) *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return cn_fail(CN_E_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = mallocCheck(cap);
    for (;;) {
        if (n + 1 >= cap) buf = reallocCheck(buf, cap *= 2);
        size_t got = fread(buf + n, 1, cap - n - 1, fp);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) {
        free(buf);
        return cn_fail(CN_E_IO, "%s: read error", path);
    }
    buf[n] = '\0';
    *data = buf;
    if (len) *len = n;
    return CN_OK;
}

int cn_map_file(const char *path, uint8_t **map, size_t *size) {
    *map = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cn_fail(CN_E_MODEL, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return cn_fail(CN_E_MODEL, "%s: not a regular file", path);
    }
    size_t n = (size_t)sb.st_size;
    if (n > 0) {
        void *m = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int err = errno;
            close(fd);
            return cn_fail(CN_E_MODEL, "%s: mmap of %zu bytes failed: %s", path, n, strerror(err));
        }
        *map = m;
    }
    close(fd);  // the mapping stays valid
    *size = n;
    return CN_OK;
}

double cn_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int cn_threads(void) {
    const char *env = getenv("OMP_NUM_THREADS");
    if (env && atoi(env) > 0) return atoi(env);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    // Ranks sharing a node split its cores; the launcher tells us how many share it.
    const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    if (!local) local = getenv("SLURM_NTASKS_PER_NODE");
    long share = local ? atol(local) : 1;
    if (share < 1) share = 1;
    long t = cores / share;
    return t < 1 ? 1 : (int)t;
}

int cn_parse_int(const char *opt, const char *s, long long lo, long long hi, long long *out) {
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi)
        return cn_fail(CN_E_USAGE, "%s: '%s' is not an integer in [%lld, %lld]", opt, s, lo, hi);
    *out = v;
    return CN_OK;
}

int cn_parse_u64(const char *opt, const char *s, uint64_t *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    // strtoull accepts "-1" (as 2^64-1): a sign is refused here.
    if (errno || end == s || *end != '\0' || s[0] == '-')
        return cn_fail(CN_E_USAGE, "%s: '%s' is not a non-negative integer", opt, s);
    *out = v;
    return CN_OK;
}
