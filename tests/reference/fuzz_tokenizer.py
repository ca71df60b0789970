#!/usr/bin/env python3
"""Differential fuzzing of the C tokenizer against open_clip (developer tool, not run by ctest).

    .venv/bin/python tests/reference/fuzz_tokenizer.py [--seeds 1 2 3] [--clean 20000]

Compiles src/tokenizer*.c, src/unicode_*.c and src/common.c into a temporary shared library (cc,
zlib, cJSON) and compares, through ctypes:
  * token ids (tokenizer_encode_raw) with SimpleTokenizer.encode for the stress strings of
    make_tokenizer_golden.make_stress_strings(random.Random(seed)) for each --seeds value;
  * the cleaned text (clip_clean_text) with open_clip's _clean_lower, and ftfy_is_bad with
    ftfy.badness.is_bad, for --clean random strings dense in mojibake characters, C1 controls,
    charmap re-decodings of UTF-8 and lossy/altered sequences (the ftfy repair paths).
Exit status 1 on any mismatch; the first few are printed.
"""
import argparse
import ctypes
import os
import random
import re
import subprocess
import sys
import tempfile

import ftfy.badness
import ftfy.chardata
from open_clip.tokenizer import SimpleTokenizer, _clean_lower

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import make_tokenizer_golden as golden  # noqa: E402


class CpBuf(ctypes.Structure):
    _fields_ = [("cp", ctypes.POINTER(ctypes.c_uint32)), ("len", ctypes.c_size_t), ("cap", ctypes.c_size_t)]


def build_library(tmp):
    srcs = [os.path.join(ROOT, "src", f) for f in sorted(os.listdir(os.path.join(ROOT, "src")))
            if (f.startswith("tokenizer") or f.startswith("unicode_")) and f.endswith(".c")]
    srcs.append(os.path.join(ROOT, "src", "common.c"))
    lib = os.path.join(tmp, "libtok.so")
    subprocess.run(["cc", "-std=c11", "-O2", "-fPIC", "-shared", "-I" + os.path.join(ROOT, "include"),
                    "-I/usr/include/cjson", *srcs, "-o", lib, "-lz", "-lcjson", "-lm"], check=True)
    return ctypes.CDLL(lib)


class CTokenizer:
    def __init__(self, lib, bpe):
        self.lib = lib
        lib.tokenizer_load_bpe.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p]
        lib.tokenizer_encode_raw.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                             ctypes.POINTER(ctypes.POINTER(ctypes.c_int32))]
        lib.clip_clean_text.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(CpBuf)]
        lib.cpbuf_free.argtypes = [ctypes.POINTER(CpBuf)]
        lib.ftfy_is_bad.argtypes = [ctypes.POINTER(ctypes.c_uint32), ctypes.c_size_t]
        lib.cn_last_error.restype = ctypes.c_char_p
        self.libc = ctypes.CDLL(None)
        self.tok = ctypes.c_void_p()
        if lib.tokenizer_load_bpe(ctypes.byref(self.tok), bpe.encode()) != 0:
            raise RuntimeError(lib.cn_last_error().decode())

    def encode(self, b):
        p = ctypes.POINTER(ctypes.c_int32)()
        n = self.lib.tokenizer_encode_raw(self.tok, b, ctypes.byref(p))
        out = [p[i] for i in range(n)]
        self.libc.free(p)
        return out

    def clean(self, b):
        out = CpBuf()
        self.lib.clip_clean_text(b, len(b), ctypes.byref(out))
        s = "".join(chr(out.cp[i]) for i in range(out.len))
        self.lib.cpbuf_free(ctypes.byref(out))
        return s

    def is_bad(self, s):
        arr = (ctypes.c_uint32 * max(1, len(s)))(*[ord(c) for c in s])
        return bool(self.lib.ftfy_is_bad(arr, len(s)))


def mojibake_pool():
    chars = set()
    for group in (ftfy.badness.MOJIBAKE_CATEGORIES, ftfy.chardata.UTF8_CLUES):
        for v in group.values():
            p = re.compile("[" + v + "]")
            chars |= {chr(c) for c in range(0x10000) if p.match(chr(c))}
    return sorted(chars)


def mojibake_string(rng, pool):
    extra = list("aAzZ .,?!\n\t'\"<>&;#x0123ÃÂÎÐØÙàâóВГРСвЂβ€ΒΓΞΟ√≈‚Äў×²³Œœ") + ["\x1a", "\ufffd", "\xa0", "\xad"]
    srcs = ["café", "naïve", "“x”", "✔", "😀", "Ölçek", "żółć", "Ελλ", "Рус", "日本", "à la", "½", "€", "ß", "—", "…"]
    encs = ["latin-1", "windows-1252", "windows-1251", "windows-1250", "windows-1253", "windows-1254", "macroman",
            "cp437", "iso-8859-2", "utf-8"]
    parts = []
    for _ in range(rng.randint(1, 10)):
        r = rng.random()
        if r < 0.35:
            parts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 4))))
        elif r < 0.55:
            parts.append("".join(rng.choice(extra) for _ in range(rng.randint(1, 3))))
        elif r < 0.9:
            b = rng.choice(srcs).encode("utf-8")
            if rng.random() < 0.2:
                b = b.replace(b"\xa0", b" ")
            if rng.random() < 0.2 and len(b) > 1:
                i = rng.randrange(len(b))
                b = b[:i] + bytes([rng.choice([0x81, 0x8D, 0x8F, 0x90, 0x9D, 0x1A, 0x3F, 0xA0, 0x20])]) + b[i + 1:]
            parts.append(b.decode(rng.choice(encs), errors="replace"))
        else:
            parts.append(rng.choice(["cat", " ", "dog", "\n", "s", "Ã ", "â€"]))
    return "".join(parts).replace("\x00", "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3])
    ap.add_argument("--clean", type=int, default=20000, help="number of mojibake-heavy strings")
    ap.add_argument("--shared", default=os.environ.get("CLIPNEG_SHARED", os.path.join(ROOT, "..", "shared")))
    args = ap.parse_args()
    bpe = os.path.join(args.shared, "data", "clip-bpe", "bpe_simple_vocab_16e6.txt.gz")
    st = SimpleTokenizer(bpe_path=bpe)
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        ct = CTokenizer(build_library(tmp), bpe)
        n = 0
        for seed in args.seeds:
            for name, b in golden.make_stress_strings(random.Random(seed)):
                n += 1
                want = st.encode(b.decode("utf-8", errors="replace"))
                got = ct.encode(b)
                if got != want:
                    bad += 1
                    if bad <= 10:
                        print(f"IDS seed {seed} {name}: {b!r}\n  open_clip {want[:30]}\n  clipneg   {got[:30]}")
        print(f"ids: {n} stress strings, {bad} mismatches")
        rng = random.Random(12345)
        pool = mojibake_pool()
        nb = nc = 0
        for _ in range(args.clean):
            s = mojibake_string(rng, pool)
            if ftfy.badness.is_bad(s) != ct.is_bad(s):
                nb += 1
                if nb <= 5:
                    print(f"IS_BAD {s!r}: ftfy {ftfy.badness.is_bad(s)}")
            want = _clean_lower(s)
            got = ct.clean(s.encode("utf-8"))
            if want != got:
                nc += 1
                if nc <= 10:
                    print(f"CLEAN {s!r}\n  open_clip {want!r}\n  clipneg   {got!r}")
        print(f"clean: {args.clean} mojibake-heavy strings, {nc} cleaned-text mismatches, {nb} is_bad mismatches")
    return 1 if bad or nb or nc else 0


if __name__ == "__main__":
    sys.exit(main())
