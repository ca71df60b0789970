#!/usr/bin/env python3
"""Write an HF-format copy (vocab.json + merges.txt) of open_clip's CLIP BPE vocabulary.

    python3 tests/reference/make_hf_vocab.py BPE_GZ OUT_DIR

Standard library only (runs as a ctest fixture). The ids follow open_clip's SimpleTokenizer.__init__
(the same as HF's openai/clip-vit-* vocab.json): 256 byte symbols in bytes_to_unicode() order, the
same with '</w>', one entry per merge, then <|startoftext|> 49406 and <|endoftext|> 49407.
If BPE_GZ does not exist it prints why and exits 0 without writing (the C test then skips).
"""
import gzip
import json
import os
import sys


def bytes_to_unicode():  # copied from open_clip/tokenizer.py (MIT, OpenAI)
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    bpe, out = sys.argv[1], sys.argv[2]
    if not os.path.exists(bpe):
        print(f"make_hf_vocab: {bpe} not found; nothing written")
        return 0
    merges = gzip.open(bpe).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in merges[1:49152 - 256 - 2 + 1]]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(dict(zip(vocab, range(len(vocab)))), f, ensure_ascii=False)
    with open(os.path.join(out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        f.writelines(f"{a} {b}\n" for a, b in merges)
    print(f"make_hf_vocab: wrote {out}/vocab.json ({len(vocab)} ids) and merges.txt ({len(merges)} merges)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
