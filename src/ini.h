// ini.h — the INI reader shared by the job file (config.c) and the variants file (variants.c),
// inih underneath. Internal to src/.
#ifndef CLIPNEG_INI_H
#define CLIPNEG_INI_H

// Debian's inih 55 gives handlers no line number, so this wrapper feeds inih line by line and
// passes the line on. It also calls the handler once per section header with key == value ==
// NULL (so empty sections are seen), refuses lines longer than inih's 200-byte buffer (inih
// would silently split them) and does not do inih's indented continuation lines (an indented
// "key = value" is just a key). The handler returns CN_OK or a CN_E_* code with cn_fail() set;
// the first error (handler or syntax, whichever comes first in the file) is returned.
typedef int (*IniLineHandler)(void *user, const char *section, const char *key, const char *value,
                              int line);
int ini_parse_text(const char *path, const char *text, IniLineHandler handler, void *user);

#endif
