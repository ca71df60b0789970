#!/usr/bin/env python3
"""Generate src/unicode_tables.c: every Unicode/HTML/codec table the C tokenizer needs.

The tables are measured from the very libraries open_clip's tokenizer runs on (CPython's str
methods and unicodedata, the `regex` module that compiles the CLIP split pattern, the stdlib `re`
and `html` modules, ftfy 6.1.x's chardata/badness), by asking them about every code point, so the
C code agrees with the reference by construction instead of by re-reading the Unicode standard.

    .venv/bin/python tests/reference/make_unicode_tables.py            # rewrites src/unicode_tables.c
    .venv/bin/python tests/reference/make_unicode_tables.py --check    # exit 1 if it would change

Layouts are declared in src/unicode_tables.h (hand-written); keep both in sync.
"""
import argparse
import html
import html.entities
import os
import re
import sys
import unicodedata

import ftfy
import ftfy.badness
import ftfy.chardata
import ftfy.fixes
import regex

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "src", "unicode_tables.c")
MAXCP = 0x110000

# Property bits: must match UP_* in src/unicode_tables.h.
UP_RX_SPACE = 1 << 0    # regex module: \s (open_clip whitespace_clean, split pattern)
UP_RX_LETTER = 1 << 1   # regex module: (?i)[\p{L}]
UP_RX_NUMBER = 1 << 2   # regex module: (?i)[\p{N}]
UP_RX_OTHER = 1 << 3    # regex module: (?i)[^\s\p{L}\p{N}]  (not simply the complement: U+0345)
UP_PY_SPACE = 1 << 4    # str.isspace() == stdlib re \s (str.strip, ftfy badness \s)
UP_RE_DIGIT = 1 << 5    # stdlib re \d (ftfy ANSI escape regex)
UP_RE_WORD = 1 << 6     # stdlib re \w (ftfy badness regex)
UP_CASE_IGNORABLE = 1 << 7  # CPython's _PyUnicode_IsCaseIgnorable (final-sigma rule of str.lower)
UP_CASED = 1 << 8           # CPython's _PyUnicode_IsCased, recorded only where not case-ignorable

# ftfy categories (badness.MOJIBAKE_CATEGORIES + chardata.UTF8_CLUES): must match MB_* in the header.
MB_NAMES = ["common", "c1", "bad", "currency", "start_punctuation", "end_punctuation", "numeric",
            "kaomoji", "upper_accented", "lower_accented", "upper_common", "lower_common", "box"]
CLUE_NAMES = ["utf8_first_of_2", "utf8_first_of_3", "utf8_first_of_4", "utf8_continuation",
              "utf8_continuation_strict"]

CHARMAP_ENCODINGS = list(ftfy.chardata.CHARMAP_ENCODINGS)


def case_props(c):
    """Case_Ignorable / Cased as CPython's final-sigma code sees them, measured through str.lower."""
    ch = chr(c)
    t1 = (ch + "\u03a3").lower()[-1] == "\u03c2"        # cased and not ignorable
    t2 = ("A" + ch + "\u03a3").lower()[-1] == "\u03c2"  # ignorable or cased
    ign = t2 and not t1
    cased = t1
    # consistency check from the other side: "AΣ" + x is final iff x ignorable or not cased
    t3 = ("A\u03a3" + ch).lower()[1] == "\u03c2"
    if not ign:
        assert t3 == (not cased), hex(c)
    else:
        assert t3, hex(c)
    return ign, cased


def measure_props():
    rx_space = regex.compile(r"\s")
    rx_letter = regex.compile(r"[\p{L}]", regex.IGNORECASE)
    rx_number = regex.compile(r"[\p{N}]", regex.IGNORECASE)
    rx_other = regex.compile(r"[^\s\p{L}\p{N}]", regex.IGNORECASE)
    re_space = re.compile(r"\s")
    re_digit = re.compile(r"\d")
    re_word = re.compile(r"\w")
    props = [0] * MAXCP
    for c in range(MAXCP):
        if 0xD800 <= c <= 0xDFFF:
            continue  # never present: input is decoded UTF-8 and html.unescape maps surrogates to U+FFFD
        ch = chr(c)
        b = 0
        if rx_space.match(ch):
            b |= UP_RX_SPACE
        if rx_letter.match(ch):
            b |= UP_RX_LETTER
        if rx_number.match(ch):
            b |= UP_RX_NUMBER
        if rx_other.match(ch):
            b |= UP_RX_OTHER
        if ch.isspace():
            b |= UP_PY_SPACE
            assert re_space.match(ch)
        else:
            assert not re_space.match(ch)
        if re_digit.match(ch):
            b |= UP_RE_DIGIT
        if re_word.match(ch):
            b |= UP_RE_WORD
        ign, cased = case_props(c)
        if ign:
            b |= UP_CASE_IGNORABLE
        elif cased:
            b |= UP_CASED
        props[c] = b
    return props


def ranges_of(values, skip=0):
    """Run-length encode a per-code-point list into (lo, hi, value) for value != skip."""
    out = []
    start = None
    for c in range(MAXCP + 1):
        v = values[c] if c < MAXCP else None
        if start is not None and v != values[start]:
            if values[start] != skip:
                out.append((start, c - 1, values[start]))
            start = None
        if start is None and c < MAXCP:
            start = c
    return out


def measure_lower():
    single = []
    special = {}
    for c in range(MAXCP):
        if 0xD800 <= c <= 0xDFFF:
            continue
        lo = chr(c).lower()
        if lo == chr(c):
            continue
        if len(lo) == 1:
            single.append((c, ord(lo)))
        else:
            special[c] = [ord(x) for x in lo]
    # The C code hard-codes the only multi-character lowercase mapping (and final sigma).
    assert special == {0x130: [0x69, 0x307]}, special
    assert chr(0x3A3).lower() == "\u03c3"
    return single


def measure_nfc():
    ccc = [unicodedata.combining(chr(c)) for c in range(MAXCP)]
    decomp = {}
    for c in range(MAXCP):
        d = unicodedata.decomposition(chr(c))
        if d and not d.startswith("<"):
            full = unicodedata.normalize("NFD", chr(c))
            decomp[c] = [ord(x) for x in full]
            # Hangul syllables have no decomposition() string: the C code decomposes them algorithmically.
            assert not (0xAC00 <= c <= 0xD7A3)
    compose = []
    for c in range(MAXCP):
        d = unicodedata.decomposition(chr(c))
        if not d or d.startswith("<"):
            continue
        parts = [int(x, 16) for x in d.split()]
        if len(parts) != 2:
            continue  # singletons never compose
        if unicodedata.normalize("NFC", chr(parts[0]) + chr(parts[1])) == chr(c) and ccc[parts[0]] == 0:
            compose.append((parts[0], parts[1], c))
    compose.sort()
    return ranges_of(ccc), decomp, compose


def measure_ci_ascii():
    """Code points the regex module matches case-insensitively for each printable ASCII char."""
    out = {}
    for a in range(0x21, 0x7F):
        pat = regex.compile(regex.escape(chr(a)), regex.IGNORECASE)
        eq = [c for c in range(MAXCP) if c != a and not (0xD800 <= c <= 0xDFFF) and pat.fullmatch(chr(c))]
        assert len(eq) <= 3, (chr(a), eq)
        out[a] = eq
    return out


def class_members(cls_text):
    pat = re.compile("[" + cls_text + "]")
    return {c for c in range(0x10000) if pat.match(chr(c))}


def measure_mojibake():
    cats = {}
    for i, name in enumerate(MB_NAMES):
        for c in class_members(ftfy.badness.MOJIBAKE_CATEGORIES[name]):
            cats[c] = cats.get(c, 0) | (1 << i)
    for j, name in enumerate(CLUE_NAMES):
        for c in class_members(ftfy.chardata.UTF8_CLUES[name]):
            cats[c] = cats.get(c, 0) | (1 << (len(MB_NAMES) + j))
    assert set(MB_NAMES) == set(ftfy.badness.MOJIBAKE_CATEGORIES), "ftfy categories changed"
    assert set(CLUE_NAMES) == set(ftfy.chardata.UTF8_CLUES), "ftfy clues changed"
    return sorted(cats.items())


def measure_charmaps():
    tables = []
    for enc in CHARMAP_ENCODINGS:
        dec = [ord(bytes([b]).decode(enc)) for b in range(256)]
        allowed_re = ftfy.chardata.ENCODING_REGEXES[enc]
        allowed = {c for c in range(0x10000) if allowed_re.match(chr(c))}
        expect = set(range(0x00, 0x1A)) | set(range(0x1B, 0x80)) | {dec[b] for b in range(0x80, 0x100)} | {dec[0x1A]}
        assert allowed == expect, enc
        for c in allowed:  # encoding is the exact inverse of this table
            e = chr(c).encode(enc)
            assert len(e) == 1 and dec[e[0]] == c, (enc, hex(c))
            if c < 0x80 and c != 0x1A:
                assert e[0] == c, (enc, hex(c))  # ASCII encodes as itself
        high = [dec[b] for b in list(range(0x80, 0x100)) + [0x1A]]
        # the C encoder searches bytes 0x80..0xFF and 0x1A: their characters must be distinct
        assert len(set(high)) == len(high), enc
        tables.append(dec)
    return tables


def measure_cp1252_strict():
    """Python's real windows-1252 codec (ftfy tries it for Latin-1 text with C1 controls)."""
    out = []
    for b in range(256):
        try:
            out.append(ord(bytes([b]).decode("windows-1252")))
        except UnicodeDecodeError:
            out.append(0xFFFFFFFF)
    return out


def measure_ftfy_translations():
    """ftfy's per-character fixers: ligatures, character width, curly quotes, control characters."""
    lig = sorted((k, [ord(x) for x in v]) for k, v in ftfy.chardata.LIGATURES.items())
    width = sorted((k, [ord(x) for x in v]) for k, v in ftfy.chardata.WIDTH_MAP.items())
    quotes = []
    for c in range(MAXCP):
        if 0xD800 <= c <= 0xDFFF:
            continue
        q = ftfy.fixes.uncurl_quotes(chr(c))
        if q != chr(c):
            quotes.append((c, [ord(x) for x in q]))
    control = sorted(ftfy.chardata.CONTROL_CHARS)
    for table in (lig, width, quotes):
        assert all(1 <= len(v) <= 3 for _, v in table)
    return lig, width, quotes, control


def multi_rows(table):
    rows = []
    for c, v in table:
        v = v + [0] * (3 - len(v))
        rows.append(f"{{0x{c:X}, {{0x{v[0]:X}, 0x{v[1]:X}, 0x{v[2]:X}}}}},")
    return rows


def c_array(name, ctype, rows, per_line=1):
    lines = [f"const {ctype} {name}[] = {{"]
    buf = []
    for r in rows:
        buf.append(r)
        if len(buf) == per_line:
            lines.append("    " + " ".join(buf))
            buf = []
    if buf:
        lines.append("    " + " ".join(buf))
    lines.append("};")
    lines.append(f"const int {name}_count = {len(rows)};")
    return "\n".join(lines) + "\n\n"


def cstr(s):
    assert all(0x20 < ord(ch) < 0x7F and ch not in '"\\' for ch in s), s
    return '"' + s + '"'


def generate():
    props = measure_props()
    prop_ranges = ranges_of(props)
    lower = measure_lower()
    ccc_ranges, decomp, compose = measure_nfc()
    ci = measure_ci_ascii()
    mojibake = measure_mojibake()
    charmaps = measure_charmaps()

    out = []
    out.append("// unicode_tables.c — GENERATED by tests/reference/make_unicode_tables.py. DO NOT EDIT.\n")
    out.append(f"// Python {sys.version.split()[0]}, unicodedata {unicodedata.unidata_version}, "
               f"regex {regex.__version__}, ftfy {ftfy.__version__} (package 6.1.x).\n")
    out.append("// Layouts: src/unicode_tables.h.\n")
    out.append('#include "unicode_tables.h"\n\n')

    out.append("// Property bits of U+0000..U+00FF (fast path; the same values as uni_prop_ranges).\n")
    out.append(c_array("uni_prop_latin1", "uint16_t", [f"0x{props[c]:X}," for c in range(256)], 16))
    out.append("// Property ranges (UP_* bits), sorted, non-overlapping.\n")
    out.append(c_array("uni_prop_ranges", "UniRange",
                       [f"{{0x{lo:X}, 0x{hi:X}, 0x{v:X}}}," for lo, hi, v in prop_ranges], 4))
    out.append("// Simple lowercase mappings of str.lower() (U+0130 and final sigma are handled in code).\n")
    out.append(c_array("uni_lower_map", "UniPair", [f"{{0x{a:X}, 0x{b:X}}}," for a, b in lower], 6))
    out.append("// Canonical combining class ranges (non-zero only).\n")
    out.append(c_array("uni_ccc_ranges", "UniRange",
                       [f"{{0x{lo:X}, 0x{hi:X}, {v}}}," for lo, hi, v in ccc_ranges], 4))

    pool = []
    rows = []
    for c in sorted(decomp):
        d = decomp[c]
        assert len(d) <= 4
        rows.append(f"{{0x{c:X}, {len(pool)}, {len(d)}}},")
        pool.extend(d)
    out.append("// Full canonical decompositions (NFD of one code point), Hangul excluded.\n")
    out.append(c_array("uni_decomp", "UniDecomp", rows, 4))
    out.append(c_array("uni_decomp_pool", "uint32_t", [f"0x{x:X}," for x in pool], 10))
    out.append("// Primary composites: (first << 21 | second) -> composite, sorted by key.\n")
    out.append(c_array("uni_compose", "UniCompose",
                       [f"{{0x{(a << 21) | b:X}ull, 0x{c:X}}}," for a, b, c in compose], 3))

    rows = []
    for a in range(0x21, 0x7F):
        eq = ci[a] + [0] * (3 - len(ci[a]))
        rows.append("{" + ", ".join(f"0x{x:X}" for x in eq) + "},")
    out.append("// regex (?i) equivalents of printable ASCII 0x21..0x7E (0-terminated, self excluded).\n")
    out.append(c_array("uni_ci_ascii", "uint32_t", rows, 6).replace("const uint32_t uni_ci_ascii[]",
                                                                   "const uint32_t uni_ci_ascii[][3]"))

    # HTML: Python's html.entities.html5 (sorted by name, bytewise), html's invalid charrefs/code points.
    h5 = sorted(html.entities.html5.items())
    rows = []
    for name, val in h5:
        assert 1 <= len(val) <= 2
        v = [ord(x) for x in val] + [0] * (2 - len(val))
        rows.append(f"{{{cstr(name)}, {{0x{v[0]:X}, 0x{v[1]:X}}}}},")
    out.append("// html.entities.html5: name (with ';' where the standard has it) -> 1..2 code points.\n")
    out.append(c_array("html5_entities", "HtmlEntity", rows, 2))
    rows = [f"{{{k}, 0x{ord(v):X}}}," for k, v in sorted(html._invalid_charrefs.items())]
    out.append("// html._invalid_charrefs: numeric reference -> replacement.\n")
    out.append(c_array("html_invalid_charrefs", "UniPair", rows, 6))
    out.append("// html._invalid_codepoints: numeric references that unescape to nothing.\n")
    out.append(c_array("html_invalid_codepoints", "uint32_t",
                       [f"0x{x:X}," for x in sorted(html._invalid_codepoints)], 10))

    ent_re = re.compile(r"&[0-9A-Za-z]{1,24};")
    rows = []
    for key, val in sorted(ftfy.chardata.HTML_ENTITIES.items()):
        if not ent_re.fullmatch(key):
            continue  # ftfy's HTML_ENTITY_RE can never match it
        assert 1 <= len(val) <= 3
        v = [ord(x) for x in val] + [0] * (3 - len(val))
        rows.append(f"{{{cstr(key[1:-1])}, {{0x{v[0]:X}, 0x{v[1]:X}, 0x{v[2]:X}}}}},")
    out.append("// ftfy.chardata.HTML_ENTITIES reachable by its HTML_ENTITY_RE: name (no & ;) -> value.\n")
    out.append(c_array("ftfy_entities", "FtfyEntity", rows, 2))

    rows = [f"{{0x{c:X}, 0x{m:X}}}," for c, m in mojibake]
    out.append("// ftfy mojibake character categories (MB_* bits), sorted by code point.\n")
    out.append(c_array("ftfy_char_cats", "UniPair", rows, 6))

    out.append("// ftfy.chardata.CHARMAP_ENCODINGS decode tables, in ftfy's order (byte -> code point).\n")
    out.append(f"const char *const ftfy_charmap_names[{len(CHARMAP_ENCODINGS)}] = {{"
               + ", ".join(f'"{e}"' for e in CHARMAP_ENCODINGS) + "};\n")
    out.append(f"const uint32_t ftfy_charmaps[{len(CHARMAP_ENCODINGS)}][256] = {{\n")
    for dec in charmaps:
        out.append("    {")
        for i in range(0, 256, 16):
            out.append(("\n     " if i else "") + " ".join(f"0x{x:X}," for x in dec[i:i + 16]))
        out.append("},\n")
    out.append("};\n\n")
    rows = [f"0x{x:X}," for x in measure_cp1252_strict()]
    out.append("// Python's strict windows-1252 decoder (0xFFFFFFFF: undefined byte -> UnicodeDecodeError).\n")
    out.append(c_array("ftfy_cp1252_strict", "uint32_t", rows, 8))
    lig, width, quotes, control = measure_ftfy_translations()
    out.append("// ftfy.chardata.LIGATURES, WIDTH_MAP, uncurl_quotes, CONTROL_CHARS (translate tables).\n")
    out.append(c_array("ftfy_ligatures", "UniMulti", multi_rows(lig), 2))
    out.append(c_array("ftfy_width_map", "UniMulti", multi_rows(width), 2))
    out.append(c_array("ftfy_quotes", "UniMulti", multi_rows(quotes), 2))
    out.append(c_array("ftfy_control_chars", "uint32_t", [f"0x{x:X}," for x in control], 10))
    return "".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="compare with the committed file instead of writing")
    args = ap.parse_args()
    text = generate()
    if args.check:
        with open(OUT) as f:
            same = f.read() == text
        print("up to date" if same else "src/unicode_tables.c differs from the generator output")
        sys.exit(0 if same else 1)
    with open(OUT, "w") as f:
        f.write(text)
    print(f"wrote {OUT} ({len(text)} bytes)")


if __name__ == "__main__":
    main()
