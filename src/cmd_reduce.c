// cmd_reduce.c — PLACEHOLDER until implemented (see include/clipneg/commands.h).
#include "clipneg/commands.h"
#include "clipneg/common.h"

int cmd_reduce(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cn_warn("'reduce' is not implemented yet");
    return CN_E_INTERNAL;
}
