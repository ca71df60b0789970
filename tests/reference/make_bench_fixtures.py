"""Writes tests/data/bench/: small files in the EXACT published layouts of the negation benchmarks
(docs/benchmarks.md; FORMATS.md "Benchmarks"), over coco-mini images, for tests/python/test_bench.py
and tests/test_bench.c. Rows are hand-written here byte for byte (the awkward CSV quoting, CRLF
line ends, Python list literals with both quote styles and escapes are the point), so the files
are committed and this script only documents how they were made:

    .venv/bin/python tests/reference/make_bench_fixtures.py

Ties on purpose: an MCQ row whose four captions are the same text (answer 0: correct under
NegBench's first-maximum rule; a second such row with answer 2: wrong), a NegRefCOCOg item whose
bbox_list repeats ref_bbox, a SugarCrepe/VALSE item whose caption equals its foil (strict: wrong).
NegRefCOCOg/VALSE name images as published (COCO train2014 / Visual7W names): the test points
`images` at a folder of symlinks with those names to coco-mini val2017 images (NAME_MAP below).

CC-Neg (ccneg_preprocessed.pt) is a torch.save file, so it is WRITTEN by torch here (torch 1.13,
the .venv): the published dict layout, absolute /workspace/datasets/cc3m/... image paths (CC3M
keys, mapped by NAME_MAP to coco-mini images), 12 entries of which a job's last_n = 9 are the split
(the first 3 must not count), negations with commas (upstream removes them), one entry whose
caption equals its negation once the commas are gone (a tie: correct under CC-Neg's first-maximum
rule), one image used by two entries, and one image that does not exist (recorded, the run goes on).
"""
import json
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "bench")

# published name -> coco-mini val2017 file (for the symlink folder the tests build)
NAME_MAP = {
    "COCO_train2014_000000374391.jpg": "000000214753.jpg",
    "COCO_train2014_000000580957.jpg": "000000018575.jpg",
    "COCO_train2014_000000004765.jpg": "000000155341.jpg",
    "COCO_train2014_000000123020.jpg": "000000244592.jpg",
    "COCO_train2014_000000261712.jpg": "000000261712.jpg",
    "v7w_2371044.jpg": "000000000139.jpg",
    "v7w_2365555.jpg": "000000022192.jpg",
    "v7w_107948.jpg": "000000229997.jpg",
    "v7w_2396122.jpg": "000000117645.jpg",
    "v7w_2400012.jpg": "000000092660.jpg",
    "000010001.jpg": "000000397133.jpg",
    "000010002.jpg": "000000000139.jpg",
    "000010003.jpg": "000000022192.jpg",
    "000010004.jpg": "000000229997.jpg",
    "000010005.jpg": "000000117645.jpg",
    "000010006.jpg": "000000092660.jpg",
    "000010007.jpg": "000000244592.jpg",
    "000010008.jpg": "000000261712.jpg",
    "000010009.jpg": "000000214753.jpg",
    "000010010.jpg": "000000018575.jpg",
}

MCQ_HEADER = "image_path,correct_answer,caption_0,caption_1,caption_2,caption_3,correct_answer_template"
MCQ_ROWS = [
    # the example row of FORMATS.md, as published
    'data/coco/images/val2017/000000397133.jpg,0,"This image features a knife, but no car is present.","A car is present in this image, but there is no knife.",This image features a car,This image does not feature a knife.,hybrid',
    # doubled quotes and a comma inside a quoted field
    'data/coco/images/val2017/000000000139.jpg,2,"A ""cozy"" room with no dog, only people.",This image shows a dog.,"A woman stands near a table, and there is no dog.",There is a dog in the room.,negative',
    # a line break inside a quoted field
    'data/coco/images/val2017/000000022192.jpg,1,"A cat sleeps on the bed.\nNo dog is visible.",A dog is sitting on a bed.,This image does not feature a dog.,There is no bed in this image.,positive',
    # stray text after a closing quote (pandas appends it) and a '"' inside an unquoted field
    'data/coco/images/val2017/000000229997.jpg,3,"A bear" without vultures,No bear is in the grass.,A 5" tall bird and no bear.,A bear sits in the grass with birds around it.,positive',
    # four identical captions: a tie at the top; answer 0 is argmax's first maximum (correct) ...
    'data/coco/images/val2017/000000117645.jpg,0,A man is snowboarding.,A man is snowboarding.,A man is snowboarding.,A man is snowboarding.,positive',
    # ... and answer 2 is not (wrong under the first-maximum rule)
    'data/coco/images/val2017/000000117645.jpg,2,A man is snowboarding.,A man is snowboarding.,A man is snowboarding.,A man is snowboarding.,negative',
    'data/coco/images/val2017/000000092660.jpg,1,A pizza with no broccoli on it.,"A pizza with cheese, tomato sauce and broccoli.",There is no pizza here.,A salad without any vegetables.,hybrid',
    # unicode and an empty-looking quoted field that is not empty
    'data/coco/images/val2017/000000244592.jpg,0,Three zebras — no giraffes.,"Giraffes, not zebras.",No animals at all.," ",negative',
    'data/coco/images/val2017/000000261712.jpg,2,No giraffe is here.,A zebra stands alone.,Two giraffes at the zoo.,"A giraffe, but no fence",positive',
    # an image that does not exist: recorded, the run goes on
    'data/coco/images/val2017/000000999999.jpg,1,A missing picture.,Nothing to see.,An empty frame.,No image here.,hybrid',
]

RET_HEADER = "positive_objects,negative_objects,filepath,image_id,captions"
RET_ROWS = [
    # FORMATS.md's example layout; captions mix quote styles (Python's repr does)
    '"[\'person\', \'bottle\']","[\'chair\', \'fork\', \'car\']",data/coco/images/val2017/000000397133.jpg,397133,"[\'A man in a kitchen is making pizzas, but there is no chair in sight.\', ""A man\'s hands shape dough; no fork is here.""]"',
    '"[\'dining table\']","[\'dog\']",data/coco/images/val2017/000000000139.jpg,139,"[\'A woman stands in the dining area at the table, with no dog around.\', \'A room with a table\\, chairs and no dog.\']"',
    '"[\'dog\', \'bed\']","[\'cat\']",data/coco/images/val2017/000000022192.jpg,22192,"[\'A dog is sitting on an unmade bed, but there is no cat.\', \'A dog on a bed \\x2d no cat\', \'Caf\\xe9 dog \\u2014 no cat.\']"',
    '"[\'bear\', \'bird\']","[]",data/coco/images/val2017/000000229997.jpg,229997,"[ \'A bear sitting in the grass surrounded by five vultures.\' ,\n  ""Birds around a bear, and no \\""people\\""."" , ]"',
    '"[\'person\']","[\'car\']",data/coco/images/val2017/000000117645.jpg,117645,"[\'A man riding a snowboard down a slope without any car.\']"',
    '"[\'pizza\']","[\'fork\']",data/coco/images/val2017/000000092660.jpg,92660,"[\'A pizza is prepared with cheese and broccoli, no fork in view.\', \'A pizza \' \'with broccoli.\']"',
    '"[\'zebra\']","[\'giraffe\']",data/coco/images/val2017/000000244592.jpg,244592,"[\'Three zebras outside, and not a single giraffe.\']"',
    '"[\'giraffe\']","[\'zebra\']",data/coco/images/val2017/000000261712.jpg,261712,"[\'Two giraffes at the zoo during the day with no zebra.\', \'Giraffes\\tin a zoo.\']"',
]

NEGREF = [
    {"image": "COCO_train2014_000000374391.jpg", "phrase": "the horse without a rider in a blue jacket",
     "ref_bbox": [252.98, 193.38, 61.18, 113.49], "bbox_list": [[252.98, 193.38, 61.18, 113.49], [323.33, 166.95, 151.44, 155.04]]},
    {"image": "COCO_train2014_000000374391.jpg", "phrase": "a horse that is not the smaller one",
     "ref_bbox": [323.33, 166.95, 151.44, 155.04], "bbox_list": [[323.33, 166.95, 151.44, 155.04], [252.98, 193.38, 61.18, 113.49]]},
    {"image": "COCO_train2014_000000580957.jpg", "phrase": "a bottle without a label on the right",
     "ref_bbox": [527.54, 52.29, 78.84, 91.19], "bbox_list": [[527.54, 52.29, 78.84, 91.19], [459.66, 71.99, 77.85, 93.18], [468.78, 2.49, 84.78, 88.52]]},
    # half-pixel coordinates: PIL rounds half to even (2.5 -> 2, 0.5 -> 0, 120.5 -> 120, 213.5 -> 214)
    {"image": "COCO_train2014_000000004765.jpg", "phrase": "the truck that is not white",
     "ref_bbox": [50.5, 213.5, 218, 94.5], "bbox_list": [[50.5, 213.5, 218, 94.5], [263.11, 220.44, 338.96, 110.23]]},
    {"image": "COCO_train2014_000000123020.jpg", "phrase": "a zebra that is not grazing",
     "ref_bbox": [215.87, 58.65, 284.13, 311.25], "bbox_list": [[215.87, 58.65, 284.13, 311.25], [55.47, 126.07, 122.71, 140.35], [143.1, 120.4, 121.99, 136.96]]},
    # bbox_list repeats ref_bbox: identical crops tie; the first maximum is ref (correct)
    {"image": "COCO_train2014_000000261712.jpg", "phrase": "a giraffe with no spots",
     "ref_bbox": [203.08, 175.99, 64.15, 146.43], "bbox_list": [[203.08, 175.99, 64.15, 146.43], [203.08, 175.99, 64.15, 146.43]]},
]

VALSE = {
    "2371044_0": {"dataset": "visual7w", "dataset_idx": "v7w_2371044", "image_file": "v7w_2371044.jpg",
                  "caption": "There are people.", "foil": "There are no people.", "classes": "people",
                  "classes_foil": "people", "mturk": {"foil": 0, "caption": 3, "other": 0}},
    "2365555_1": {"dataset": "visual7w", "dataset_idx": "v7w_2365555", "image_file": "v7w_2365555.jpg",
                  "caption": "There are no cats.", "foil": "There are cats.", "classes": "cats",
                  "classes_foil": "cats", "mturk": {"foil": 1, "caption": 2, "other": 0}},
    # filtered out by upstream's mturk.caption >= 2
    "107948_2": {"dataset": "visual7w", "dataset_idx": "v7w_107948", "image_file": "v7w_107948.jpg",
                 "caption": "There are birds.", "foil": "There are no birds.", "classes": "birds",
                 "classes_foil": "birds", "mturk": {"foil": 2, "caption": 1, "other": 0}},
    "2396122_3": {"dataset": "visual7w", "dataset_idx": "v7w_2396122", "image_file": "v7w_2396122.jpg",
                  "caption": "There is a snowboard.", "foil": "There is no snowboard.", "classes": "snowboard",
                  "classes_foil": "snowboard", "mturk": {"foil": 0, "caption": 3, "other": 0}},
    # caption == foil: a tie, wrong under VALSE's strict rule
    "2400012_4": {"dataset": "visual7w", "dataset_idx": "v7w_2400012", "image_file": "v7w_2400012.jpg",
                  "caption": "There is a pizza.", "foil": "There is a pizza.", "classes": "pizza",
                  "classes_foil": "pizza", "mturk": {"foil": 0, "caption": 2, "other": 1}},
}

SUGARCREPE = {
    "add_att": [("000000000139.jpg", "A woman stands in the dining area at the table.", "A tall woman stands in the dining area at the wooden table.")],
    "add_obj": [("000000022192.jpg", "A dog is sitting on an unmade bed with pillows.", "A dog and a cat are sitting on an unmade bed with pillows."),
                ("000000229997.jpg", "A bear sitting in the grass surrounded by five vultures.", "A bear and a lion sitting in the grass surrounded by five vultures.")],
    "replace_att": [("000000244592.jpg", "Three zebras outside with two grazing next to each other.", "Three zebras inside with two grazing next to each other.")],
    "replace_obj": [("000000261712.jpg", "Two giraffes at the zoo during the day.", "Two elephants at the zoo during the day."),
                    ("000000117645.jpg", "A man riding a snowboard down a snow covered slope.", "A man riding a surfboard down a snow covered slope.")],
    "replace_rel": [("000000092660.jpg", "A pizza is prepared with cheese, tomato sauce, and broccoli.", "A pizza is thrown with cheese, tomato sauce, and broccoli.")],
    "swap_att": [("000000155341.jpg", "The street is blocked by a truck and a crane.", "The street is blocked by a truck and a crane.")],  # tie: wrong
    "swap_obj": [("000000214753.jpg", "Two equestrians riding their horses on the beach together.", "Two horses riding their equestrians on the beach together.")],
}

CCNEG_PREFIX = "/workspace/datasets/cc3m/cc3m_subset_images_extracted_final/"
CCNEG_LAST_N = 9
CCNEG = [  # (CC3M key, caption, negative-prompt); the first 3 lie outside the last-9 split
    ("000010009", "two people riding horses on a beach", "two people riding horses, but not on a beach"),
    ("000010010", "bottles lined up on a shelf", "no bottles on a shelf"),
    ("000010001", "a man making pizza in a kitchen", "a man in a kitchen, without any pizza"),
    ("000010002", "a woman standing in a dining room", "a dining room, with no woman, standing in it"),
    ("000010003", "a dog sitting on an unmade bed", "a dog, not on a bed"),
    ("000010004", "a bear in the grass with birds", "a bear in the grass, with no birds"),
    # after the commas are removed the negation IS the caption: a tie, correct (first maximum)
    ("000010005", "a man snowboarding down a slope", "a man snowboarding, down a slope"),
    ("000010006", "a pizza with broccoli on it", "a pizza, but no broccoli, on it"),
    ("000010007", "zebras grazing in a field", "no zebras, only grass"),
    ("000010003", "a bed with a dog on it", "a bed, with no dog on it"),  # same image as above
    ("000010008", "two giraffes at the zoo", "no giraffes at the zoo"),
    ("000099999", "a picture that was never downloaded", "no picture, at all"),  # missing image
]


def write_ccneg(out):
    import numpy as np
    import torch
    paths = [CCNEG_PREFIX + k + ".jpg" for k, _, _ in CCNEG]
    anns = [{"json": {"caption": c, "url": f"http://example.com/{k}.jpg", "key": k, "status": "success",
                      "error_message": None, "width": 640, "height": np.int64(480), "sha256": k * 7},
             "sop_data": {"subject": c.split()[1], "negative-prompt": n, "num_ops": 1}}
            for k, c, n in CCNEG]
    torch.save({"image_paths": paths, "annotations": anns}, os.path.join(out, "ccneg_preprocessed.pt"))


def main():
    os.makedirs(os.path.join(OUT, "sugarcrepe"), exist_ok=True)
    # MCQ: CRLF line ends after the header and on two rows, \n elsewhere (files get edited on both systems)
    with open(os.path.join(OUT, "COCO_val_mcq_llama3.1_rephrased.csv"), "w", newline="") as f:
        f.write(MCQ_HEADER + "\r\n")
        for i, r in enumerate(MCQ_ROWS):
            f.write(r + ("\r\n" if i in (0, 6) else "\n"))
    with open(os.path.join(OUT, "COCO_val_negated_retrieval_llama3.1_rephrased_affneg_true.csv"), "w", newline="") as f:
        f.write(RET_HEADER + "\n")
        for r in RET_ROWS:
            f.write(r + "\n")
    with open(os.path.join(OUT, "NegRefCOCOg.json"), "w") as f:
        json.dump(NEGREF, f, indent=2)
    with open(os.path.join(OUT, "existence.json"), "w") as f:
        json.dump(VALSE, f, indent=4)
    for split, rows in SUGARCREPE.items():
        d = {str(i): {"filename": fn, "caption": c, "negative_caption": n} for i, (fn, c, n) in enumerate(rows)}
        with open(os.path.join(OUT, "sugarcrepe", split + ".json"), "w") as f:
            json.dump(d, f, indent=4)
    write_ccneg(OUT)
    with open(os.path.join(OUT, "name_map.json"), "w") as f:
        json.dump(NAME_MAP, f, indent=1)


if __name__ == "__main__":
    main()
