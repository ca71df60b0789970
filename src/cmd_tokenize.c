// cmd_tokenize.c — PLACEHOLDER until implemented (see include/clipneg/commands.h).
#include "clipneg/commands.h"
#include "clipneg/common.h"

int cmd_tokenize(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cn_warn("'tokenize' is not implemented yet");
    return CN_E_INTERNAL;
}
