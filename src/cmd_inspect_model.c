// cmd_inspect_model.c — PLACEHOLDER until implemented (see include/clipneg/commands.h).
#include "clipneg/commands.h"
#include "clipneg/common.h"

int cmd_inspect_model(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cn_warn("'inspect_model' is not implemented yet");
    return CN_E_INTERNAL;
}
