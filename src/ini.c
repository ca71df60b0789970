// ini.c — the INI reader shared by the job file (config.c) and the variants file (variants.c):
// inih underneath, fed line by line so that every handler call and every error knows its line
// (see ini.h for why inih needs this wrapper).
#include "ini.h"

#include <ctype.h>
// Angle brackets: Debian's inih (src/ is not on the include path, so "ini.h" above is ours).
#include <ini.h>
#include <stdio.h>
#include <string.h>

#include "clipneg/common.h"

typedef struct {
    const char *path;
    const char *pos;        // next unread byte of the text
    int line;               // line number of the line handed to inih last
    IniLineHandler handler;
    void *user;
    int err;                // first error (CN_E_*), 0 = none
    int err_line;
    char err_msg[1024];
} IniReader;

static void ini_record_error(IniReader *r, int code, int line) {
    if (r->err) return;
    r->err = code;
    r->err_line = line;
    snprintf(r->err_msg, sizeof r->err_msg, "%s", cn_last_error());
}

// inih's fgets-like reader: hand out one line per call, so r->line is the line inih is parsing.
static char *ini_read_line(char *str, int num, void *stream) {
    IniReader *r = stream;
    if (*r->pos == '\0') return NULL;
    const char *end = strchr(r->pos, '\n');
    size_t len = end ? (size_t)(end - r->pos) : strlen(r->pos);
    const char *line = r->pos;
    r->pos += len + (end ? 1 : 0);
    r->line++;
    if (r->line == 1 && len >= 3 && !memcmp(line, "\xEF\xBB\xBF", 3)) line += 3, len -= 3;  // UTF-8 BOM
    // Leading blanks are dropped so that inih never treats an indented line as a continuation.
    while (len > 0 && (*line == ' ' || *line == '\t')) line++, len--;
    if (len + 2 > (size_t)num) {  // room for '\n' and NUL: inih would split the line silently
        cn_fail(CN_E_CONFIG, "%s:%d: line too long (%zu bytes, at most %d); use ${VAR} for long paths",
                r->path, r->line, len, num - 2);
        ini_record_error(r, CN_E_CONFIG, r->line);
        str[0] = '\n', str[1] = '\0';
        return str;
    }
    memcpy(str, line, len);
    str[len] = '\n';
    str[len + 1] = '\0';
    // Announce section headers ourselves: inih only reports keys, so an empty section is invisible.
    if (line[0] == '[' && !r->err) {
        const char *close = memchr(line, ']', len);
        // inih ignores whatever follows "]": a key written there would be lost without a word.
        const char *rest = close ? close + 1 : NULL;
        while (rest && rest < line + len && isspace((unsigned char)*rest)) rest++;
        if (rest && rest < line + len && *rest != ';' && *rest != '#') {
            cn_fail(CN_E_CONFIG, "%s:%d: text after the [section] header (put keys on their own lines)", r->path,
                    r->line);
            ini_record_error(r, CN_E_CONFIG, r->line);
        } else if (close) {
            const char *a = line + 1, *b = close;
            while (a < b && isspace((unsigned char)*a)) a++;
            while (b > a && isspace((unsigned char)b[-1])) b--;
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)(b - a), a);
            int rc = r->handler(r->user, name, NULL, NULL, r->line);
            if (rc != CN_OK) ini_record_error(r, rc, r->line);
        }
    }
    return str;
}

static int ini_on_key(void *user, const char *section, const char *name, const char *value) {
    IniReader *r = user;
    if (r->err) return 1;
    // inih passes the section text between the brackets untrimmed.
    char sec[256];
    const char *a = section;
    while (isspace((unsigned char)*a)) a++;
    snprintf(sec, sizeof sec, "%s", a);
    for (size_t n = strlen(sec); n > 0 && isspace((unsigned char)sec[n - 1]); n--) sec[n - 1] = '\0';
    int rc = r->handler(r->user, sec, name, value, r->line);
    if (rc != CN_OK) ini_record_error(r, rc, r->line);
    return 1;  // keep inih going: its syntax errors are reported by line, ours are recorded above
}

int ini_parse_text(const char *path, const char *text, IniLineHandler handler, void *user) {
    IniReader r = {.path = path, .pos = text, .handler = handler, .user = user};
    int syntax_line = ini_parse_stream(ini_read_line, &r, ini_on_key, &r);
    if (syntax_line > 0 && (!r.err || syntax_line < r.err_line))
        return cn_fail(CN_E_CONFIG, "%s:%d: syntax error (expected [section], key = value or a ; comment)",
                       path, syntax_line);
    if (syntax_line < 0) return cn_fail(CN_E_INTERNAL, "%s: inih failed (%d)", path, syntax_line);
    if (r.err) return cn_fail(r.err, "%s", r.err_msg);
    return CN_OK;
}
