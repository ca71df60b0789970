// cmd_eval.c — `clipneg eval JOB.ini [--output PATH] [--set section.key=value]... [--fresh]`
// (docs/eval.md). Parses the command line identically on every rank and runs eval_run().
#define _POSIX_C_SOURCE 200809L // _exit
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clipneg/commands.h"
#include "clipneg/common.h"
#include "clipneg/eval.h"
#include "clipneg/h5out.h"

static void usage(FILE *fp) {
    fprintf(fp, "usage: clipneg eval JOB.ini [--output PATH] [--set section.key=value]... [--fresh]\n"
                "  --output PATH   write here instead of the job's [output] path\n"
                "  --set s.k=v     override a job key (recorded in the file's job_text, part of job_sha256)\n"
                "  --fresh         overwrite an existing output instead of resuming it\n"
                "Re-running the same command resumes a partial output; exit 75 means preempted (re-run to resume).\n");
}

int cmd_eval(int argc, char **argv) {
    EvalOptions opt = {0};
    const char **sets = callocCheck((size_t)argc + 1, sizeof(char *));
    char **owned = callocCheck((size_t)argc + 1, sizeof(char *));
    int n_owned = 0;
    int n_sets = 0, rc = CN_OK;
    for (int i = 1; i < argc && rc == CN_OK; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            if (cn_rank() == 0) usage(stdout);
            for (int k = 0; k < n_owned; k++) free(owned[k]);
            free(owned);
            free(sets);
            return CN_OK;
        } else if (!strcmp(a, "--output") || !strcmp(a, "-o")) {
            if (i + 1 >= argc)
                rc = cn_fail(CN_E_USAGE, "%s needs a path", a);
            else {
                opt.output = argv[++i];
                // Also as an override, so the job file's own [output] path (whose folder may not exist
                // where this runs, e.g. a fresh clone under SLURM) is replaced before it is validated.
                size_t n = strlen(opt.output) + sizeof "output.path=";
                char *kv = mallocCheck(n);
                snprintf(kv, n, "output.path=%s", opt.output);
                sets[n_sets++] = kv;
                owned[n_owned++] = kv;
            }
        } else if (!strcmp(a, "--set")) {
            if (i + 1 >= argc || !strchr(argv[i + 1], '='))
                rc = cn_fail(CN_E_USAGE, "--set needs section.key=value");
            else
                sets[n_sets++] = argv[++i];
        } else if (!strcmp(a, "--fresh")) {
            opt.fresh = 1;
        } else if (a[0] == '-') {
            rc = cn_fail(CN_E_USAGE, "unknown option '%s'", a);
        } else if (!opt.job_path) {
            opt.job_path = a;
        } else {
            rc = cn_fail(CN_E_USAGE, "more than one job file ('%s', '%s')", opt.job_path, a);
        }
    }
    if (rc == CN_OK && !opt.job_path) rc = cn_fail(CN_E_USAGE, "no job file given");
    if (rc != CN_OK) {
        if (cn_rank() == 0) {
            fprintf(stderr, "clipneg eval: %s\n", cn_last_error());
            usage(stderr);
        }
        for (int k = 0; k < n_owned; k++) free(owned[k]);
        free(owned);
        free(sets);
        return rc;
    }
    opt.overrides = n_sets ? sets : NULL;
    rc = eval_run(&opt);
    if (rc == CN_E_PREEMPTED) {
        cn_log("preempted: %s", cn_last_error());
    } else if (rc != CN_OK && cn_rank() == (eval_failed_rank() >= 0 ? eval_failed_rank() : cn_rank())) {
        fprintf(stderr, "[clipneg r%d] error: %s\n", cn_rank(), cn_last_error());
    }
    for (int k = 0; k < n_owned; k++) free(owned[k]);
    free(owned);
    free(sets);
    // After a failed HDF5 write (disk full, file size limit) HDF5 1.10 crashes when it closes that
    // file, which it would do in its MPI_Finalize hook: every rank leaves here, with the status all
    // ranks agreed on, without finalizing (mpirun still reports the exit code).
    int broken = h5out_broken(), any = 0;
    MPI_Allreduce(&broken, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (any) {
        fflush(stdout);
        fflush(stderr);
        _exit(rc != CN_OK ? rc : CN_E_IO);
    }
    return rc;
}
