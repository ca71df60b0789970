#!/usr/bin/env python3
"""Golden numbers for tests/test_dataset.c and tests/test_variants.c, computed with Python's json
module (an implementation independent of clipneg's cJSON code). Run:

    .venv/bin/python tests/reference/dataset_golden.py [SHARED_DIR]

and compare with the constants in the C tests (they were pasted from this output).

 * coco-mini counts and the deterministic order: images by id, captions by (image id, ann id);
   the order checksum is sum over rows r of (r + 1) * caption_id mod 2**61 - 1.
 * per-image category ids from instances_val2017.json.
 * swap candidates: categories of the subject's supercategory absent from the image, in id order,
   and the index picked by splitmix64(seed ^ splitmix64(caption_id)) % n (docs/variants.md).
 * utf8_sanitize vectors: bytes.decode("utf-8", errors="replace").
"""
import json
import os
import sys

M61 = (1 << 61) - 1
MASK = (1 << 64) - 1


def splitmix64(x):
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def main():
    shared = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../../../shared")
    ann = os.path.join(shared, "data/coco-mini/annotations")
    caps = json.load(open(os.path.join(ann, "captions_val2017.json")))
    inst = json.load(open(os.path.join(ann, "instances_val2017.json")))

    image_ids = sorted({im["id"] for im in caps["images"]})
    with_caps = {a["image_id"] for a in caps["annotations"]}
    rows = sorted(caps["annotations"], key=lambda a: (a["image_id"], a["id"]))
    chk = sum((r + 1) * a["id"] for r, a in enumerate(rows)) % M61
    print(f"images={len(image_ids)} captions={len(rows)} without_captions={len(set(image_ids) - with_caps)}")
    print(f"first_image={image_ids[0]} last_image={image_ids[-1]}")
    print(f"first_caption id={rows[0]['id']} text={rows[0]['caption']!r}")
    print(f"last_caption id={rows[-1]['id']} text={rows[-1]['caption']!r}")
    print(f"order_checksum={chk}")
    first10 = set(image_ids[:10])
    rows10 = [a for a in rows if a["image_id"] in first10]
    chk10 = sum((r + 1) * a["id"] for r, a in enumerate(rows10)) % M61
    print(f"max_images=10: captions={len(rows10)} checksum={chk10} last_image={image_ids[9]}")

    cats = {c["id"]: c for c in inst["categories"]}
    present = {}
    for a in inst["annotations"]:
        present.setdefault(a["image_id"], set()).add(a["category_id"])
    print(f"categories={len(cats)} ids {min(cats)}..{max(cats)}")
    for im in (139, 22192, 357501, 553664):
        print(f"image {im} categories {sorted(present.get(im, ()))}")
    total_pairs = sum(len(present.get(i, ())) for i in image_ids)
    print(f"sum of per-image category counts={total_pairs}")

    # swap candidates for hand-checked captions: caption id -> subject category (decided by hand)
    by_id = {a["id"]: a for a in caps["annotations"]}
    name_to_id = {c["name"]: i for i, c in cats.items()}
    hand = {
        # caption id: subject category the rules must find (checked by reading the caption)
        384831: "tv", 623893: "refrigerator", 624271: "oven", 651742: "laptop", 805379: "sandwich",
        374829: "dog", 382731: "dog", 150585: "cat", 225675: "donut", 788784: "bowl",
        477090: "airplane", 479085: "airplane", 248886: "airplane", 482335: "couch",
        779114: "bird", 114326: "orange", 703353: "pizza", 507241: "cake", 303: "scissors",
        315089: "suitcase", 762813: "sheep", 764016: "sheep", 154855: "giraffe", 527671: "cat",
        88654: "zebra", 148807: "giraffe", 155362: "giraffe", 536557: "truck", 731512: "bicycle",
        546685: "clock", 478054: "dining table", 159363: "dog", 770545: "tv", 2619: "scissors",
    }
    for seed in (0, 1):
        for cid, subj in hand.items():
            a = by_id[cid]
            sid = name_to_id[subj]
            sup = cats[sid]["supercategory"]
            cand = [i for i in sorted(cats) if cats[i]["supercategory"] == sup and i != sid
                    and i not in present.get(a["image_id"], set())]
            pick = splitmix64(seed ^ splitmix64(cid)) % len(cand) if cand else None
            print(f"seed {seed} caption {cid} {a['caption']!r} subject={subj} "
                  f"candidates={[cats[i]['name'] for i in cand]} pick={cats[cand[pick]]['name'] if cand else None}")

    for raw in (b"ok \xe2\x82\xac", b"a\xffb", b"\xe0\x80x", b"\xe2\x82", b"\xed\xa0\x80z", b"\xf0\x9f\x98\x80!",
                b"\xc0\xaf", b"\xf4\x90\x80\x80"):
        out = raw.decode("utf-8", errors="replace").encode("utf-8")
        n_bad = out.count("\ufffd".encode("utf-8"))
        print(f"utf8 {raw!r} -> {out!r} replacements={n_bad}")


if __name__ == "__main__":
    main()
