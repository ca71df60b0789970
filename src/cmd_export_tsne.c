// cmd_export_tsne.c — PLACEHOLDER until implemented (see include/clipneg/commands.h).
#include "clipneg/commands.h"
#include "clipneg/common.h"

int cmd_export_tsne(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cn_warn("'export_tsne' is not implemented yet");
    return CN_E_INTERNAL;
}
