// cmd_eval.c — PLACEHOLDER until implemented (see include/clipneg/commands.h).
#include "clipneg/commands.h"
#include "clipneg/common.h"

int cmd_eval(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cn_warn("'eval' is not implemented yet");
    return CN_E_INTERNAL;
}
