// eval_lock.c — one writer per output file. Rank 0 takes an exclusive fcntl lock on the sidecar
// `<out>.lock` before any slow setup step, and writes "host PID" into it so that a second run on
// the same path can say who holds it. fcntl locks belong to the process and vanish with it, so a
// crashed (or kill -9'd, or SLURM-requeued) holder leaves a lock that is free: the next run takes it
// over and notes whose it was. A clean exit removes the file.
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clipneg/common.h"
#include "eval_internal.h"

// "host PID" as written by the holder ("?" when the file is empty or unreadable).
static void read_holder(int fd, char *buf, size_t n) {
    ssize_t k = pread(fd, buf, n - 1, 0);
    buf[k > 0 ? k : 0] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if (!buf[0]) snprintf(buf, n, "?");
}

static void holder_words(const char *holder, char *out, size_t n) {
    char host[256] = "?";
    long pid = -1;
    if (sscanf(holder, "%255s %ld", host, &pid) == 2) snprintf(out, n, "host %s, PID %ld", host, pid);
    else snprintf(out, n, "holder '%s'", holder);
}

int eval_lock_take(const char *out_path, int *fd_out) {
    char lock_path[4200], holder[512], who[600];
    snprintf(lock_path, sizeof lock_path, "%s.lock", out_path);
    *fd_out = -1;
    // A run that ends cleanly unlinks the lock file while another process may already have it
    // open: after locking, check that the path still names the inode we locked, else retry.
    for (int attempt = 0; attempt < 10; attempt++) {
        int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) return cn_fail(CN_E_IO, "cannot create the lock file %s: %s", lock_path, strerror(errno));
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
        if (fcntl(fd, F_SETLK, &fl) != 0) {
            int err = errno;
            if (err == EACCES || err == EAGAIN) {
                read_holder(fd, holder, sizeof holder);
                close(fd);
                holder_words(holder, who, sizeof who);
                return cn_fail(CN_E_IO,
                               "%s is being written by another clipneg run (%s; lock file %s): wait for it to "
                               "finish, or choose another --output",
                               out_path, who, lock_path);
            }
            // e.g. a network filesystem without fcntl locks: go on, but say that nothing is checked
            close(fd);
            cn_warn("cannot lock %s (%s): running without the one-writer-per-output check", lock_path,
                    strerror(err));
            return CN_OK;
        }
        struct stat a, b;
        if (fstat(fd, &a) != 0 || stat(lock_path, &b) != 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
            close(fd);  // the file was removed (or replaced) between our open and our lock
            continue;
        }
        read_holder(fd, holder, sizeof holder);
        if (strcmp(holder, "?") != 0) {
            holder_words(holder, who, sizeof who);
            cn_log("note: taking over the stale lock %s (%s is gone, e.g. killed or requeued)", lock_path, who);
        }
        char host[256] = "?", line[320];
        if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "?");
        host[sizeof host - 1] = '\0';
        int len = snprintf(line, sizeof line, "%s %ld\n", host, (long)getpid());
        if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)len, 0) != len) {
            int err = errno;
            close(fd);
            return cn_fail(CN_E_IO, "cannot write the lock file %s: %s", lock_path, strerror(err));
        }
        *fd_out = fd;
        return CN_OK;
    }
    return cn_fail(CN_E_IO, "%s: the lock file %s keeps being replaced by other runs", out_path, lock_path);
}

void eval_lock_release(const char *out_path, int fd) {
    if (fd < 0) return;
    char lock_path[4200];
    snprintf(lock_path, sizeof lock_path, "%s.lock", out_path);
    unlink(lock_path);  // still locked by us: nobody can take the old inode in between
    close(fd);
}
