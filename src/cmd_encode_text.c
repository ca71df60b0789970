// cmd_encode_text.c — PLACEHOLDER until implemented (see include/clipneg/commands.h).
#include "clipneg/commands.h"
#include "clipneg/common.h"

int cmd_encode_text(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cn_warn("'encode_text' is not implemented yet");
    return CN_E_INTERNAL;
}
