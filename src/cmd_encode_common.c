// cmd_encode_common.c — what `clipneg encode-image` and `clipneg encode-text` share: their command
// line and printing the embeddings (JSON or CSV on stdout, so anyone can compare against open_clip
// by hand). Declarations: cmd_internal.h.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "cmd_internal.h"

int embed_format_parse(const char *s, EmbedFormat *fmt) {
    if (!strcmp(s, "json")) *fmt = EMBED_FORMAT_JSON;
    else if (!strcmp(s, "csv")) *fmt = EMBED_FORMAT_CSV;
    else return cn_fail(CN_E_USAGE, "--format: '%s' is not one of json, csv", s);
    return CN_OK;
}

// A JSON string literal: quotes, backslashes and control characters escaped; UTF-8 passes through.
static void print_json_string(FILE *fp, const char *s) {
    fputc('"', fp);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(fp, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", fp);
        else if (*p == '\t') fputs("\\t", fp);
        else if (*p < 0x20) fprintf(fp, "\\u%04x", *p);
        else fputc(*p, fp);
    }
    fputc('"', fp);
}

// A CSV field (RFC 4180): always quoted, inner quotes doubled.
static void print_csv_string(FILE *fp, const char *s) {
    fputc('"', fp);
    for (const char *p = s; *p; p++) {
        if (*p == '"') fputc('"', fp);
        fputc(*p, fp);
    }
    fputc('"', fp);
}

void embed_print(EmbedFormat fmt, const char *model_name, int normalized, const char *const *inputs,
                 const float *emb, int n, int D) {
    FILE *fp = stdout;
    if (fmt == EMBED_FORMAT_CSV) {
        fputs("input", fp);
        for (int d = 0; d < D; d++) fprintf(fp, ",e%d", d);
        fputc('\n', fp);
        for (int i = 0; i < n; i++) {
            print_csv_string(fp, inputs[i]);
            for (int d = 0; d < D; d++) fprintf(fp, ",%.9g", emb[(size_t)i * D + d]);
            fputc('\n', fp);
        }
        return;
    }
    fputs("{\"model\": ", fp);
    print_json_string(fp, model_name);
    fprintf(fp, ", \"dim\": %d, \"normalized\": %s, \"embeddings\": [\n", D, normalized ? "true" : "false");
    for (int i = 0; i < n; i++) {
        fputs("  {\"input\": ", fp);
        print_json_string(fp, inputs[i]);
        fputs(", \"embedding\": [", fp);
        for (int d = 0; d < D; d++) fprintf(fp, d ? ", %.9g" : "%.9g", emb[(size_t)i * D + d]);
        fprintf(fp, "]}%s\n", i + 1 < n ? "," : "");
    }
    fputs("]}\n", fp);
}

int model_option_arg(ClipLoadOptions *o, int argc, char **argv, int *i) {
    const char *a = argv[*i], *next = *i + 1 < argc ? argv[*i + 1] : NULL;
    long long v;
    if (!strcmp(a, "--gelu")) {
        o->force_quick_gelu = 0;
        return 1;
    }
    if (!strcmp(a, "--quick-gelu")) {  // an optional 0|1 after it (older scripts pass one)
        o->force_quick_gelu = 1;
        if (next && (!strcmp(next, "0") || !strcmp(next, "1"))) o->force_quick_gelu = argv[++*i][0] == '1';
        return 1;
    }
    int heads = !strcmp(a, "--vision-heads") || !strcmp(a, "--text-heads");
    if (!heads && strcmp(a, "--state-key") != 0 && strcmp(a, "--strip-prefix") != 0) return 0;
    if (!next) return -1;
    if (heads && cn_parse_int(a, next, 1, 1 << 16, &v) != CN_OK) return -1;  // *i stays on the option
    ++*i;
    if (!strcmp(a, "--state-key")) o->state_key = next;
    else if (!strcmp(a, "--strip-prefix")) o->strip_prefix = next;
    else if (a[2] == 'v') o->vision_heads = (int)v;
    else o->text_heads = (int)v;
    return 1;
}

int encode_args_parse(EncodeArgs *a, int argc, char **argv, const char *cmd, int with_vocab, void (*usage)(void)) {
    memset(a, 0, sizeof *a);
    a->load = (ClipLoadOptions)CLIP_LOAD_OPTIONS_DEFAULT;
    a->fmt = EMBED_FORMAT_JSON;
    a->inputs = mallocCheck((size_t)(argc > 0 ? argc : 1) * sizeof(char *));
    for (int i = 1; i < argc; i++) {
        int mo = model_option_arg(&a->load, argc, argv, &i);
        if (mo < 0) {
            fprintf(stderr, "clipneg %s: bad or missing value for '%s'\n", cmd, argv[i]);
            usage();
            return CN_E_USAGE;
        }
        if (mo) continue;
        if (!strcmp(argv[i], "--model") && i + 1 < argc) a->model = argv[++i];
        else if (with_vocab && !strcmp(argv[i], "--vocab") && i + 1 < argc) a->vocab = argv[++i];
        else if (!strcmp(argv[i], "--format") && i + 1 < argc) {
            if (embed_format_parse(argv[++i], &a->fmt) != CN_OK) {
                fprintf(stderr, "clipneg %s: %s\n", cmd, cn_last_error());
                return CN_E_USAGE;
            }
        } else if (!strcmp(argv[i], "--raw")) a->raw = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage();
            a->help_only = 1;
            return CN_OK;
        } else if (!strcmp(argv[i], "--")) {
            while (++i < argc) a->inputs[a->n_in++] = argv[i];
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "clipneg %s: unknown or incomplete option '%s'\n", cmd, argv[i]);
            usage();
            return CN_E_USAGE;
        } else a->inputs[a->n_in++] = argv[i];
    }
    if (a->model == NULL || a->n_in == 0) {
        usage();
        return CN_E_USAGE;
    }
    return CN_OK;
}

void encode_args_free(EncodeArgs *a) {
    free(a->inputs);
    a->inputs = NULL;
}
