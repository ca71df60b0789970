// main.c — `clipneg <command> ...`: dispatch to src/cmd_<command>.c.
// MPI is initialised only for the commands that run distributed, so the debug commands
// (tokenize, inspect-model, encode-*) start instantly and need no launcher.
#include <mpi.h>
#include <stdio.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>

#include "clipneg/commands.h"
#include "clipneg/common.h"

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    int mpi;
    const char *help;
} Command;

static const Command COMMANDS[] = {
    {"eval", cmd_eval, 1, "JOB.ini [--output PATH] [--set section.key=value]...  run the evaluation"},
    {"reduce", cmd_reduce, 1, "OUT.h5 [--base VARIANT] [--bootstrap N]  global statistics into /stats"},
    {"export-tsne", cmd_export_tsne, 1, "OUT.h5 [--max-points N] [--pca K]  PCA export into /tsne"},
    {"info", cmd_info, 0, "OUT.h5  completeness, shards done, failures, provenance"},
    {"tokenize", cmd_tokenize, 0, "[--vocab PATH] [--context N] TEXT...  print CLIP token ids"},
    {"inspect-model", cmd_inspect_model, 0, "DIR|FILE  print the inferred architecture"},
    {"convert-model", cmd_convert_model, 0, "IN OUT.safetensors  write open_clip safetensors + config"},
    {"preprocess", cmd_preprocess, 0, "--size R IMG [-o OUT.f32]  print/save preprocessed pixels"},
    {"encode-image", cmd_encode_image, 0, "--model DIR [--format json|csv] IMG...  image embeddings"},
    {"encode-text", cmd_encode_text, 0, "--model DIR [--format json|csv] TEXT...  text embeddings"},
};
#define N_COMMANDS ((int)(sizeof COMMANDS / sizeof COMMANDS[0]))

static void usage(FILE *fp) {
    fprintf(fp, "clipneg %s (%s) — how CLIP scores negated captions\n\nusage: clipneg <command> ...\n\n",
            CLIPNEG_VERSION, CLIPNEG_GIT_COMMIT);
    for (int i = 0; i < N_COMMANDS; i++) fprintf(fp, "  %-14s %s\n", COMMANDS[i].name, COMMANDS[i].help);
    fprintf(fp, "\nExit codes: 0 ok, 2 usage, 3 job file, 4 model, 5 dataset, 6 output I/O, "
                "7 resume refused, 9 internal, 75 preempted (re-run to resume). See docs/cli.md.\n");
}

static void mpi_abort_hook(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

int main(int argc, char **argv) {
#ifdef __GLIBC__
    // One malloc arena, set before MPI starts its threads: glibc gives threads (MPI's, the image
    // decoders) arenas of their own, and in `eval` those were measured to grow with the caption
    // count (+4.9 MB at 100x coco-mini vs +1.2 MB with one arena, docs/performance.md). The
    // decoders allocate a few large buffers per image: no contention worth measuring.
    mallopt(M_ARENA_MAX, 1);
#endif
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CN_E_USAGE : CN_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("clipneg %s (%s)\n", CLIPNEG_VERSION, CLIPNEG_GIT_COMMIT);
        return CN_OK;
    }
    for (int i = 0; i < N_COMMANDS; i++) {
        if (strcmp(argv[1], COMMANDS[i].name) != 0) continue;
        if (!COMMANDS[i].mpi) return COMMANDS[i].fn(argc - 1, argv + 1);
        int provided = 0;
        MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
        int rank = 0, size = 1;
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &size);
        cn_set_rank(rank, size);
        cn_set_abort_hook(mpi_abort_hook);
        int rc = COMMANDS[i].fn(argc - 1, argv + 1);
        // A failing rank must not leave the others waiting in a collective.
        int worst = rc;
        MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        MPI_Finalize();
        return worst;
    }
    fprintf(stderr, "clipneg: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return CN_E_USAGE;
}
