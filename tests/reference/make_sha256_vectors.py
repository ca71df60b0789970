#!/usr/bin/env python3
"""Golden SHA-256 digests from Python's hashlib for tests/test_sha256.c.

Writes tests/fixtures/sha256_vectors.txt, one line per input: "<length> <pattern> <hex digest>".
The pattern describes the bytes so the C test regenerates them without storing them:
  a       -> b"a" * length
  abc     -> the first `length` bytes of b"abc" repeated
  ramp    -> bytes((i * 7 + 3) % 256 for i in range(length))
Lengths straddle the 55/56/64-byte padding boundaries and a multi-block / 1 MiB-chunk case.
Run: python3 tests/reference/make_sha256_vectors.py
"""
import hashlib
import os

def make(pattern, n):
    if pattern == "a":
        return b"a" * n
    if pattern == "abc":
        return (b"abc" * (n // 3 + 1))[:n]
    if pattern == "ramp":
        return bytes((i * 7 + 3) % 256 for i in range(n))
    raise ValueError(pattern)

CASES = [("a", 0), ("abc", 3), ("a", 55), ("a", 56), ("a", 63), ("a", 64), ("a", 65),
         ("ramp", 119), ("ramp", 120), ("ramp", 1000), ("ramp", (1 << 20) + 17), ("a", 1000000)]

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "..", "fixtures", "sha256_vectors.txt")
with open(out, "w") as f:
    for pattern, n in CASES:
        f.write(f"{n} {pattern} {hashlib.sha256(make(pattern, n)).hexdigest()}\n")
print("wrote", os.path.normpath(out))
