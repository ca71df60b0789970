// commands.h — the subcommands of the `clipneg` executable, one src/cmd_<name>.c each.
// Each returns a process exit code (see common.h). MPI is initialised by main() for the
// commands flagged `mpi` in main.c's table and only for those.
#ifndef CLIPNEG_COMMANDS_H
#define CLIPNEG_COMMANDS_H

int cmd_tokenize(int argc, char **argv);      // clipneg tokenize [--vocab PATH] [--context N] "text"...
int cmd_inspect_model(int argc, char **argv); // clipneg inspect-model DIR|FILE
int cmd_convert_model(int argc, char **argv); // clipneg convert-model IN OUT.safetensors
int cmd_preprocess(int argc, char **argv);    // clipneg preprocess --size R IMG [-o out.f32]
int cmd_encode_image(int argc, char **argv);  // clipneg encode-image --model DIR [--format json|csv] IMG...
int cmd_encode_text(int argc, char **argv);   // clipneg encode-text --model DIR [--format json|csv] TEXT...
int cmd_eval(int argc, char **argv);          // clipneg eval JOB.ini [--output PATH] [--set s.k=v]...
int cmd_reduce(int argc, char **argv);        // clipneg reduce OUT.h5 [...]
int cmd_export_tsne(int argc, char **argv);   // clipneg export-tsne OUT.h5 [--max-points N] [--pca 50]
int cmd_info(int argc, char **argv);          // clipneg info OUT.h5

#endif
