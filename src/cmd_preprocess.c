// cmd_preprocess.c — PLACEHOLDER until implemented (see include/clipneg/commands.h).
#include "clipneg/commands.h"
#include "clipneg/common.h"

int cmd_preprocess(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cn_warn("'preprocess' is not implemented yet");
    return CN_E_INTERNAL;
}
