#!/usr/bin/env python3
"""Golden token ids for the C tokenizer, from open_clip 2.24.0 (the independent reference).

    .venv/bin/python tests/reference/make_tokenizer_golden.py [--shared ../shared] [--out FILE]

Writes tests/fixtures/tokenizer/golden.jsonl.gz, one JSON object per line:
    {"id": "...", "x": "<input bytes as hex>", "ids": [SOT ... EOT], "trunc": 0|1, "n_raw": N,
     "raw": [...] (only when truncated: the full untruncated BPE ids),
     "ids16": [...], "trunc16": 0|1 (for some strings: open_clip with context_length=16)}
Inputs:
  * every caption of coco-mini's captions_val2017.json, and each wrapped in the seed prompts
    "This is {c}", "Not {c}", "This is not {c}", "There is absolutely no {c}";
  * seeded stress strings (make_stress_strings): accents (NFC and decomposed), CJK, emoji with ZWJ,
    HTML entities, punctuation, digits, contractions, curly quotes, control characters, invalid
    UTF-8, mojibake that ftfy repairs, 500-word strings that truncate, very long words, ...
Invalid UTF-8 is given to open_clip the way clipneg defines it: bytes.decode('utf-8', 'replace').
The script also checks transformers' CLIPTokenizer (built from an HF-format copy of the same
vocabulary) on the captions, and reports the agreement (HF skips html.unescape, so only captions).
"""
import argparse
import gzip
import json
import os
import random
import sys
import tempfile
import unicodedata

import open_clip
from open_clip.tokenizer import SimpleTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PROMPTS = [("this_is", "This is {}"), ("not", "Not {}"), ("this_is_not", "This is not {}"),
           ("absolutely_no", "There is absolutely no {}")]
SEED = 20240611
N_RANDOM_MIX = 700  # plus the hand-made families below: > 1000 stress strings in total

WORDS = ("a cat dog man woman sits on the sofa table with two three red blue small large next to "
         "of in under near holding riding bike street pizza plate kitchen train bus sky water "
         "beach surf board giraffe zebra elephant clock tower people group young old standing "
         "walking food bowl banana orange broccoli cake tennis racket ball field grass").split()
ACCENTED = "àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿœßÀÉÎÕÜÇÑŒĀăĄćČďđĘěğİıĹľŁńŇőŕŘśŞšŤůűŹżŽ"
COMBINING = "\u0300\u0301\u0302\u0303\u0308\u030a\u0327\u0328\u0323\u0331\u0345\u05b0\u0651\u093c\u20dd"
CJK = "猫狗人在沙发上的一个两三红蓝小大火车公共汽车天空水海滩吃披萨东京日本語中文한국어고양이ひらがなカタカナｶﾀｶﾅ"
EMOJI = ["😀", "🐱", "🐈‍⬛", "👩‍👩‍👧‍👦", "👍🏽", "🏳️‍🌈", "🇫🇷", "🇯🇵", "1️⃣", "❤️", "🧑🏿‍🚀", "🍕", "☕", "🚲",
         "👨‍💻", "🤷‍♀️", "\U0001F9D1\u200D\U0001F91D\u200D\U0001F9D1", "🏴\U000E0067\U000E0062\U000E0077\U000E006C\U000E0073\U000E007F"]
ENTITIES = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&nbsp;", "&eacute;", "&EACUTE;", "&Eacute;", "&hellip;",
            "&mdash;", "&rsquo;", "&ldquo;", "&copy", "&amp", "&ampx", "&notit;", "&notin;", "&not", "&szlig;",
            "&SZLIG;", "&NTILDE;", "&nTILDE;", "&Jscr;", "&HilbertSpace;", "&checkmark;", "&fjlig;", "&bogus;",
            "&CounterClockwiseContourIntegral;", "&#39;", "&#x27;", "&#X41;", "&#65;", "&#0;", "&#128;", "&#x80;",
            "&#150;", "&#13;", "&#x0D;", "&#1;", "&#x7f;", "&#xD800;", "&#xDFFF;", "&#1114111;", "&#1114112;",
            "&#99999999999999999999;", "&#x110000;", "&#xFFFE;", "&#65abc;", "&#59;", "&#x3b;", "&#xfb01;", "&#8217;",
            "&#x1F600;", "&amp;amp;", "&amp;lt;", "&amp;#39;", "&;", "&#;", "&#x;", "&# 65;", "&lt", "&LT;", "&Lt;",
            "&frac12;", "&sup2;", "&deg;", "&euro;", "&pound;", "&yen;", "&times;", "&divide;", "&micro;"]
PUNCT = "!?.,;:-_()[]{}<>/\\|@#$%^&*+=~`'\"…–—•·¡¿«»‹›“”‘’„‚′″°±×÷§¶©®™"
DIGITS = "0123456789٠١٢٣٤٥٦٧٨٩०१२३४५६७८९０１２３²³¹½¼¾ⅠⅡⅫ①②⑳𝟘𝟙"
SPACES = [" ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u2002", "\u3000", "\u2028", "\u2029", "\u0085",
          "\x0b", "\x0c", "\x1c", "\x1f", "\u200b", "\ufeff"]
CONTROL = ["\x02x", "\x01", "\x08", "\x7f", "\x1b[31m", "\x1b[0m", "\x1b[1;4;٣m", "\x1b[", "\u206a", "\ufff9", "\ufffc",
           "\u200e", "\u202e", "\u0080", "\u0081", "\u0085", "\u0093", "\u009d", "\u009f"]
QUOTES = ["\u2018", "\u2019", "\u201a", "\u201b", "\u201c", "\u201d", "\u201e", "\u201f", "\u02bc", "\u2032", "`", "´"]
CONTRACTIONS = ["it's", "IT'S", "It'S", "don't", "DON'T", "we're", "WE'RE", "I've", "I'M", "you'll", "YOU'LL", "he'd",
                "HE'D", "cat's", "'s", "'S", "''s", "'s'", "s's", "'ll'", "'LL", "'Ll", "'sss", "o'clock", "rock'n'roll",
                "it\u2019s", "IT\u2019S", "it\u02bcs", "\u017f", "'\u017f", "it'\u017f", "'\u212a", "don\u2019t",
                "'re'", "'ve've", "'m'm", "'d'd", "'t't"]
SPECIAL = ["<start_of_text>", "<end_of_text>", "<START_OF_TEXT>", "<End_Of_Text>", "<\u017ftart_of_text>",
           "<<start_of_text>>", "<start_of_text", "start_of_text>", "<|startoftext|>", "<|endoftext|>",
           "x<end_of_text>y", "<start_of_text><end_of_text>"]
SCRIPTS = ["Ελληνικά ΣΊΣΥΦΟΣ ΟΔΟΣ Σ σ ς ΣΑ.Σ", "Русский текст ВЕЛОСИПЕД", "العربية قطة على أريكة", "עברית חתול",
           "हिन्दी बिल्ली सोफ़े पर", "ภาษาไทย แมว", "Tiếng Việt con mèo", "İstanbul ILIK ıi İi", "Ǆǅǆ ǈ ǋ",
           "ﬁﬂﬀﬃﬄﬅﬆ Ĳĳ ŉ", "ＬＯＵＤ　ＮＯＩＳＥＳ １２３", "ｈａｌｆ ﾊﾝｶｸ ｶﾞ", "ᄒᆞᆫ 한 ᄀ ᅡ ᆨ 가 각", "ℌ ℍ ℎ ℏ Ω K Å ℮",
           "𝐁𝐨𝐥𝐝 𝔉𝔯𝔞𝔨𝔱𝔲𝔯", "Ⓐⓑⓒ ㊀ ㍿", "ΐ ΰ ᾳ ᾼ ῳ", "ǰ ẖ ẗ ẘ ẙ ẚ", "Ⅻ ⅻ ↂ", "\u0345 a\u0345b \u0345\u0345"]
MOJIBAKE_SOURCES = ["café", "naïve résumé", "Pérez", "São Paulo", "“quoted”", "it’s", "Ölçek", "żółć",
                    "Ελληνικά", "Русский", "日本語", "✔ done", "😀 smile", "voilà le travail", "à la mode",
                    "10 €", "½ cup", "Straße", "Größe", "señor", "naïve café — “wow”…", "ñandú", "Ångström"]
# ftfy corner cases: CESU-8 / Java NUL via "utf-8-variants" (incl. the regex '$'-before-final-newline
# quirk), restore_byte_a0, replace_lossy_sequences, windows-1252 vs C1 controls, double mojibake.
MOJIBAKE_SPECIAL = ["\u00ed\u00a0\u00bd\u00ed\u00b8\u0080 smile", "Ã©í\xa0½í¸\x80", "Ã©À\x80x", "Ã©À\n", "Ã©À",
                    "Ã©í\xa0½", "Ã©í\xa0½í¸\n", "x Ã©í\xa0\x80 y", "Ã©í\x9f\xbf", "Ã©\x80", "â€œHelloâ€\x9d",
                    "â€œHelloâ€\ufffd", "voilÃ  le travail", "Ã  la mode", "fÃ cil", "Ã quele", "Ã s ", "Ã\xa0",
                    "schÃ¶n", "Ã¶ Ã¤", "ÃƒÂ©", "Ã\x83Â©", "\x81\x8d\x8f", "caf\x82 \x93hi\x94", "Ã¢â‚¬â„¢"]
MOJIBAKE_ENCODINGS = ["latin-1", "windows-1252", "windows-1251", "windows-1250", "windows-1253", "macroman",
                      "cp437", "iso-8859-2"]


def rand_word(rng):
    return rng.choice(WORDS)


def caption_like(rng, n):
    return " ".join(rand_word(rng) for _ in range(n))


def mojibake(rng, text):
    enc = rng.choice(MOJIBAKE_ENCODINGS)
    raw = text.encode("utf-8")
    try:
        return raw.decode(enc)
    except UnicodeDecodeError:
        return raw.decode(enc, errors="replace")


def invalid_utf8(rng):
    """Bytes with invalid UTF-8 spliced into text: the reference sees bytes.decode(errors='replace')."""
    pieces = [b"\x80", b"\xbf", b"\xc0\x80", b"\xc1\xbf", b"\xc2", b"\xc2A", b"\xe0\x80\x80", b"\xe0\xa0",
              b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xed\x9f\xbf", b"\xf0\x8f\xbf\xbf", b"\xf0\x90\x80", b"\xf4\x90\x80\x80",
              b"\xf5\x80\x80\x80", b"\xf8\x88\x80\x80\x80", b"\xfe", b"\xff", b"\xe2\x82", b"\xe2\x82\xac",
              b"\xf0\x9f\x98", b"\xf0\x9f\x98\x80", b"\xc3\xa9", b"\xc3", b"\xce\xa3\xce", b"\xed\xa0\xbd\xed\xb8\x80"]
    out = b""
    for _ in range(rng.randint(1, 6)):
        out += rng.choice([rand_word(rng).encode(), b" ", rng.choice(pieces), rng.choice(pieces)])
    return out


def random_mix(rng):
    pools = [lambda: rand_word(rng), lambda: " ", lambda: rng.choice(ACCENTED), lambda: rng.choice(COMBINING),
             lambda: rng.choice(CJK), lambda: rng.choice(EMOJI), lambda: rng.choice(ENTITIES),
             lambda: rng.choice(PUNCT) * rng.randint(1, 4), lambda: rng.choice(DIGITS) * rng.randint(1, 3),
             lambda: rng.choice(SPACES), lambda: rng.choice(CONTROL), lambda: rng.choice(QUOTES),
             lambda: rng.choice(CONTRACTIONS), lambda: rng.choice(SPECIAL), lambda: rng.choice(SCRIPTS),
             lambda: mojibake(rng, rng.choice(MOJIBAKE_SOURCES)), lambda: chr(rng.randint(0xA0, 0x2FFF)),
             lambda: chr(rng.randint(0x10000, 0x1FAFF)), lambda: rand_word(rng).upper()]
    s = "".join(rng.choice(pools)() for _ in range(rng.randint(1, 14)))
    if rng.random() < 0.3:
        s = unicodedata.normalize(rng.choice(["NFD", "NFKD", "NFC"]), s)
    return s.replace("\x00", "")


def make_stress_strings(rng):
    """Yield (name, bytes). Deterministic for a given rng seed."""
    out = []
    add = lambda name, s: out.append((name, s if isinstance(s, bytes) else s.encode("utf-8", "surrogatepass")))
    for i, w in enumerate(ACCENTED):
        add(f"accent:{i}", f"a {w}l{w} {rand_word(rng)}")
        add(f"accent_nfd:{i}", unicodedata.normalize("NFD", f"{rand_word(rng)} {w}{w.upper()} x"))
    for i in range(40):  # stacked combining marks in random order: canonical reordering + composition
        base = rng.choice("aeiouAEOUnNcCsSzZ가각ᄀ")
        marks = "".join(rng.choice(COMBINING) for _ in range(rng.randint(1, 4)))
        add(f"combining:{i}", f"{rand_word(rng)} {base}{marks} {base}{marks}{rng.choice(WORDS)}")
    for i in range(30):
        add(f"cjk:{i}", "".join(rng.choice(CJK) for _ in range(rng.randint(1, 20))) + " " + caption_like(rng, 3))
    for i, e in enumerate(EMOJI):
        add(f"emoji:{i}", f"a {rand_word(rng)} {e}{e} {rand_word(rng)}{e}")
    for i, e in enumerate(ENTITIES):
        add(f"entity:{i}", f"{rand_word(rng)} {e} {rand_word(rng)}{e}x")
        add(f"entity_html:{i}", f"<b>{rand_word(rng)}</b> {e}\nnext line {e}")  # '<' turns ftfy's unescape off
    for i in range(40):
        add(f"entity_mix:{i}", " ".join(rng.choice(ENTITIES) for _ in range(rng.randint(1, 6))))
    for i in range(30):
        add(f"punct:{i}", "".join(rng.choice(PUNCT) for _ in range(rng.randint(1, 12))) + rand_word(rng) +
            rng.choice(PUNCT) * rng.randint(1, 5))
    for i in range(30):
        add(f"digits:{i}", "".join(rng.choice(DIGITS + " .,-") for _ in range(rng.randint(1, 16))) + " " + rand_word(rng))
    for i, c in enumerate(CONTRACTIONS):
        add(f"contraction:{i}", f"{rand_word(rng)} {c} {c.upper()}{rand_word(rng)}")
    for i, s in enumerate(SPECIAL):
        add(f"special:{i}", f"{rand_word(rng)} {s} {rand_word(rng)}")
    for i in range(20):
        q1, q2 = rng.choice(QUOTES), rng.choice(QUOTES)
        add(f"quotes:{i}", f"{q1}{rand_word(rng)}{q2} said {q1}it{q2}s")
    for i in range(30):
        sp = "".join(rng.choice(SPACES) for _ in range(rng.randint(1, 4)))
        add(f"space:{i}", f"{sp}{rand_word(rng)}{sp}{rand_word(rng)}{rng.choice(SPACES)}")
    for i, c in enumerate(CONTROL):
        add(f"control:{i}", f"{rand_word(rng)}{c}{rand_word(rng)} {c}")
    for i, s in enumerate(SCRIPTS):
        add(f"script:{i}", s)
        add(f"script_nfd:{i}", unicodedata.normalize("NFD", s))
    for i in range(60):
        add(f"mojibake:{i}", f"{rand_word(rng)} {mojibake(rng, rng.choice(MOJIBAKE_SOURCES))} {rand_word(rng)}")
    for i in range(20):  # mojibake next to clean text in other lines / C1 controls / lossy forms
        src = rng.choice(MOJIBAKE_SOURCES)
        extra = rng.choice(["", "Ã ", "Ã©", "â€", "â€œ", "\x81", "\x9d", "Â"])
        add(f"mojibake_mix:{i}", f"{src}\n{mojibake(rng, src)} {extra}")
    for i, m in enumerate(MOJIBAKE_SPECIAL):
        add(f"mojibake_special:{i}", m)
        add(f"mojibake_special_ctx:{i}", f"{rand_word(rng)} {m} {rand_word(rng)}")
    for i in range(60):
        add(f"invalid_utf8:{i}", invalid_utf8(rng))
    for i in range(12):  # long captions that truncate
        add(f"long_words:{i}", caption_like(rng, 500))
    for i in range(8):  # single long words: exercise the heap BPE path (> 64 bytes)
        add(f"long_token:{i}", "".join(rng.choice("abcdefghijklmnopqrstuvwxyzéü") for _ in range(rng.randint(65, 400))))
    add("long_token:aaaa", "a" * 300 + " " + "ab" * 150 + " " + "é" * 100)
    add("empty", "")
    add("only_spaces", " \t\n \u3000 ")
    add("only_entity_space", "&nbsp;&#32;")
    for i in range(N_RANDOM_MIX):
        add(f"mix:{i}", random_mix(rng))
    return out


def write_hf_vocab(st, folder):
    """An HF-format copy (vocab.json + merges.txt) of open_clip's vocabulary, same ids."""
    vocab = dict(st.encoder)
    vocab["<|startoftext|>"] = vocab.pop("<start_of_text>")
    vocab["<|endoftext|>"] = vocab.pop("<end_of_text>")
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    merges = sorted(st.bpe_ranks.items(), key=lambda kv: kv[1])
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for (a, b), _ in merges:
            f.write(f"{a} {b}\n")


def check_transformers(st, captions):
    try:
        from transformers import CLIPTokenizer
    except Exception as e:  # optional
        print(f"transformers not available ({e}); skipping the CLIPTokenizer cross-check")
        return
    with tempfile.TemporaryDirectory() as d:
        write_hf_vocab(st, d)
        hf = CLIPTokenizer(os.path.join(d, "vocab.json"), os.path.join(d, "merges.txt"))
        same = sum(hf(c)["input_ids"] == [49406] + st.encode(c) + [49407] for c in captions)
    print(f"transformers CLIPTokenizer agrees with open_clip on {same}/{len(captions)} caption texts")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.environ.get("CLIPNEG_SHARED", os.path.join(ROOT, "..", "shared")))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "tokenizer", "golden.jsonl.gz"))
    args = ap.parse_args()
    bpe = os.path.join(args.shared, "data", "clip-bpe", "bpe_simple_vocab_16e6.txt.gz")
    st = SimpleTokenizer(bpe_path=bpe)
    assert st.encoder == SimpleTokenizer().encoder, "shared BPE file differs from the one in the open_clip wheel"
    tok = open_clip.get_tokenizer("ViT-B-32")
    assert isinstance(tok, SimpleTokenizer), type(tok)

    with open(os.path.join(args.shared, "data", "coco-mini", "annotations", "captions_val2017.json")) as f:
        anns = json.load(f)["annotations"]
    inputs = []
    for a in anns:
        inputs.append((f"caption:{a['id']}", a["caption"].encode("utf-8")))
        for name, fmt in PROMPTS:
            inputs.append((f"caption:{a['id']}:{name}", fmt.format(a["caption"]).encode("utf-8")))
    rng = random.Random(SEED)
    stress = make_stress_strings(rng)
    inputs += [(f"stress:{n}", b) for n, b in stress]

    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    n_trunc = 0
    # no file name and mtime 0 in the gzip header: the output is byte-for-byte reproducible
    with open(args.out, "wb") as raw_file, gzip.GzipFile(filename="", mode="wb", fileobj=raw_file, mtime=0) as gz:
        for k, (name, b) in enumerate(inputs):
            text = b.decode("utf-8", errors="replace")
            raw = tok.encode(text)
            row = tok([text])[0].tolist()  # the real truncating __call__, context 77
            n = min(len(raw) + 2, 77)
            assert not any(row[n:]), name
            rec = {"id": name, "x": b.hex(), "ids": row[:n], "trunc": int(len(raw) + 2 > 77), "n_raw": len(raw)}
            if rec["trunc"]:
                rec["raw"] = raw
                n_trunc += 1
            if name.startswith("stress:") and k % 5 == 0:
                rec["ids16"] = tok([text], context_length=16)[0].tolist()
                rec["trunc16"] = int(len(raw) + 2 > 16)
            gz.write((json.dumps(rec, separators=(",", ":")) + "\n").encode())
    n_caps = sum(1 for n, _ in inputs if n.startswith("caption:"))
    print(f"wrote {args.out}: {len(inputs)} strings ({n_caps} caption texts, {len(stress)} stress), {n_trunc} truncated")
    check_transformers(st, [a["caption"] for a in anns])


if __name__ == "__main__":
    sys.exit(main())
