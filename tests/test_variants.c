// test_variants.c — variants files (loading and every refusal), template rendering rules,
// subject detection and the subject swap, including hand-checked swaps of coco-mini captions.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clipneg/common.h"
#include "clipneg/dataset.h"
#include "clipneg/variants.h"
#include "test_check.h"

static char g_dir[64];

static char *write_tmp(const char *name, const char *text) {
    static char path[4][256];
    static int k = 0;
    char *p = path[k++ % 4];
    snprintf(p, 256, "%s/%s", g_dir, name);
    FILE *fp = fopenCheck(p, "wb");
    fputs(text, fp);
    fcloseCheck(fp);
    return p;
}

// Render variant `name` of caption c; returns the status and compares the text when status is OK.
static void expect_render(const VariantSet *vs, const char *name, const Dataset *ds, int c, uint64_t seed,
                          int want_status, const char *want_text, int line) {
    int v = variants_find(vs, name);
    if (v < 0) {
        fprintf(stderr, "FAIL test_variants.c:%d: no variant %s\n", line, name);
        g_failures++;
        return;
    }
    char *out = NULL;
    int st = variant_render(&vs->items[v], ds, c, seed, &out);
    if (st != want_status || (want_status == TEXT_OK && (!out || strcmp(out, want_text))) ||
        (want_status != TEXT_OK && out)) {
        fprintf(stderr, "FAIL test_variants.c:%d: %s of caption %d (seed %llu): status %d '%s', expected %d '%s'\n",
                line, name, c, (unsigned long long)seed, st, out ? out : "(null)", want_status,
                want_text ? want_text : "(null)");
        g_failures++;
    }
    free(out);
}
#define EXPECT_RENDER(vs, name, ds, c, seed, st, text) expect_render(vs, name, ds, c, seed, st, text, __LINE__)

// ---- variants files -----------------------------------------------------------------------------

static void test_seed7(void) {
    VariantSet vs;
    int rc = variants_load(&vs, "jobs/variants/seed7.ini");
    CHECK_INT(rc, CN_OK);
    if (rc != CN_OK) {
        fprintf(stderr, "  %s\n", cn_last_error());
        return;
    }
    static const char *names[] = {"caption", "this_is", "not", "this_is_not", "absolutely_no", "swap", "this_is_not_extra"};
    static const char *templates[] = {"{caption}", "This is {caption_lc}", "Not {caption_lc}", "This is not {caption_lc}",
                                      "There is absolutely no {caption_lc}", "There is {swap_lc}",
                                      "This is not {caption_lc}; there is {a_other}"};
    static const int pol[] = {POLARITY_POSITIVE, POLARITY_POSITIVE, POLARITY_NEGATIVE, POLARITY_NEGATIVE,
                              POLARITY_NEGATIVE, POLARITY_NEGATIVE, POLARITY_NEGATIVE};
    CHECK_INT(vs.n, 7);
    for (int i = 0; i < 7 && i < vs.n; i++) {
        CHECK_STR(vs.items[i].name, names[i]);
        CHECK_STR(vs.items[i].template_text, templates[i]);
        CHECK_INT(vs.items[i].polarity, pol[i]);
        CHECK(vs.items[i].description && vs.items[i].description[0]);
    }
    CHECK_INT(vs.items[0].uses, VAR_USES_CAPTION);
    CHECK_INT(vs.items[5].uses, VAR_USES_SWAP_LC);
    CHECK_INT(vs.items[6].uses, VAR_USES_CAPTION_LC | VAR_USES_A_OTHER);
    CHECK(vs.text && strstr(vs.text, "[this_is_not_extra]"));
    CHECK_STR(polarity_name(POLARITY_OTHER), "other");
    CHECK_INT(variants_find(&vs, "nope"), -1);
    variants_free(&vs);
}

typedef struct {
    const char *text, *fragment;
} BadVariants;

static const BadVariants BAD[] = {
    {"[a]\ntemplate = This is {captoin}\n", "bad.ini:2: [a] template: unknown placeholder {captoin}"},
    {"[a]\ntemplate = ok\n[b]\ntemplate = {caption\n", "bad.ini:4: [b] template: unmatched '{'"},
    {"[a]\ntemplate = {caption} }\n", "bad.ini:2: [a] template: unmatched '}'"},
    {"[a]\ntemplate = { {caption}\n", "bad.ini:2: [a] template: unmatched '{'"},
    {"; c\n[a]\npolarity = negative\n[b]\ntemplate = x\n", "bad.ini:2: [a] template: required key missing"},
    {"[a]\ntemplate = x\n[b]\n", "bad.ini:3: [b] template: required key missing"},
    {"[a]\ntemplate = x\npolarity = neg\n", "bad.ini:3: [a] polarity: expected positive, negative or other, got 'neg'"},
    {"[a]\ntemplate = x\ntemplat = y\n", "bad.ini:3: [a] templat: unknown key (known: template, polarity, description)"},
    {"[a]\ntemplate = x\ntemplate = y\n", "bad.ini:3: [a] template: duplicate key (first at line 2)"},
    {"[a]\ntemplate = x\n\n[a]\ntemplate = y\n", "bad.ini:4: [a]: duplicate variant (first at line 1)"},
    {"[not ok]\ntemplate = x\n", "bad.ini:1: [not ok]: variant names may use letters, digits"},
    {"template = x\n[a]\ntemplate = y\n", "bad.ini:1: template: key outside any [variant] section"},
    {"; only a comment\n", "bad.ini: no variants"},
    {"[a]\ntemplate =\n", "bad.ini:2: [a] template: empty"},
    {"[a]\ntemplate x\n", "bad.ini:2: syntax error"},
    {"[a]\ntemplate = ok\n[b]\ntemplate = This is not a cat ; it is a dog\n",
     "bad.ini:4: [b] template: ' ;' starts a comment in INI files, so the template would end as 'This is not a cat'"},
};

static void test_bad_variants(void) {
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        VariantSet vs;
        int rc = variants_load(&vs, write_tmp("bad.ini", BAD[i].text));
        if (rc != CN_E_CONFIG || !strstr(cn_last_error(), BAD[i].fragment)) {
            fprintf(stderr, "FAIL bad variants case %zu: rc %d, message '%s' lacks '%s'\n", i, rc, cn_last_error(),
                    BAD[i].fragment);
            g_failures++;
        }
        CHECK(vs.n == 0 && vs.items == NULL);
    }
    VariantSet vs;
    CHECK_INT(variants_load(&vs, "no/such/variants.ini"), CN_E_CONFIG);
    CHECK(strstr(cn_last_error(), "no/such/variants.ini: cannot open") != NULL);
}

// ---- rendering rules on an in-memory dataset ------------------------------------------------------

typedef struct {
    int id;
    const char *name, *super;
} Cat;

// One image per caption; every image shows `shown` (n_shown ids); known = 0 leaves them unknown.
static void make_ds(Dataset *ds, const Cat *cats, int n_cats, const char *const *captions, int n, const int *shown,
                    int n_shown, int known) {
    memset(ds, 0, sizeof *ds);
    ds->n_images = ds->n_captions = n;
    ds->images = callocCheck((size_t)n, sizeof *ds->images);
    ds->captions = callocCheck((size_t)n, sizeof *ds->captions);
    for (int i = 0; i < n; i++) {
        ds->images[i].id = 1000 + i;
        ds->images[i].file_name = strdupCheck("x.jpg");
        ds->images[i].first_caption = i;
        ds->images[i].n_captions = 1;
        if (known) {
            ds->images[i].categories = mallocCheck(sizeof(int) * (size_t)(n_shown + 1));
            if (n_shown) memcpy(ds->images[i].categories, shown, sizeof(int) * (size_t)n_shown);
            ds->images[i].n_categories = n_shown;
        }
        ds->captions[i].id = 1 + i;
        ds->captions[i].image_index = i;
        ds->captions[i].text = strdupCheck(captions[i]);
    }
    ds->n_categories = n_cats;
    ds->categories = callocCheck((size_t)(n_cats + 1), sizeof *ds->categories);
    for (int i = 0; i < n_cats; i++) {
        ds->categories[i].id = cats[i].id;
        ds->categories[i].name = strdupCheck(cats[i].name);
        ds->categories[i].supercategory = strdupCheck(cats[i].super);
    }
    ds->has_instances = known;
}

static const char *ALL_TEMPLATES =
    "[cap]\ntemplate = <{caption}>\n"
    "[lc]\ntemplate = {caption_lc}\n"
    "[swap]\ntemplate = {swap}\n"
    "[swap_lc]\ntemplate = {swap_lc}\n"
    "[subject]\ntemplate = {subject}\n"
    "[other]\ntemplate = {other}\n"
    "[a_other]\ntemplate = {a_other}\n"
    "[neg]\ntemplate = {negative}\npolarity = other\n"
    "[braces]\ntemplate = {{literal}} {caption_lc} }}x{{\n"
    "[plain]\ntemplate = a photo\n";

static void test_caption_rules(const VariantSet *vs) {
    const char *caps[] = {"  A cat on a mat.  ", "TV on a stand.", "Dog running. . ", "\xc3\x89t\xc3\xa9 scene.", "   ",
                          "a"};
    Dataset ds;
    make_ds(&ds, NULL, 0, caps, 6, NULL, 0, 0);
    EXPECT_RENDER(vs, "cap", &ds, 0, 0, TEXT_OK, "<A cat on a mat.>");
    EXPECT_RENDER(vs, "lc", &ds, 0, 0, TEXT_OK, "a cat on a mat");
    EXPECT_RENDER(vs, "lc", &ds, 1, 0, TEXT_OK, "TV on a stand");  // an acronym keeps its case
    EXPECT_RENDER(vs, "lc", &ds, 2, 0, TEXT_OK, "dog running");
    EXPECT_RENDER(vs, "lc", &ds, 3, 0, TEXT_OK, "\xc3\x89t\xc3\xa9 scene");  // non-ASCII first letter: unchanged
    EXPECT_RENDER(vs, "lc", &ds, 5, 0, TEXT_OK, "a");
    EXPECT_RENDER(vs, "braces", &ds, 0, 0, TEXT_OK, "{literal} a cat on a mat }x{");
    // An empty caption: templates that use it are not rendered, constant ones are.
    EXPECT_RENDER(vs, "cap", &ds, 4, 0, TEXT_EMPTY, NULL);
    EXPECT_RENDER(vs, "swap", &ds, 4, 0, TEXT_EMPTY, NULL);
    EXPECT_RENDER(vs, "plain", &ds, 4, 0, TEXT_OK, "a photo");
    // {negative}: JSONL negatives[0], trimmed.
    EXPECT_RENDER(vs, "neg", &ds, 0, 0, TEXT_NO_NEGATIVE, NULL);
    ds.captions[0].negatives = mallocCheck(2 * sizeof(char *));
    ds.captions[0].negatives[0] = strdupCheck("  No cat on a mat. ");
    ds.captions[0].negatives[1] = strdupCheck("second");
    ds.captions[0].n_negatives = 2;
    EXPECT_RENDER(vs, "neg", &ds, 0, 0, TEXT_OK, "No cat on a mat.");
    // Without instances: {subject} works (built-in COCO names), swaps are never guessed.
    EXPECT_RENDER(vs, "subject", &ds, 0, 0, TEXT_OK, "cat");
    EXPECT_RENDER(vs, "swap", &ds, 0, 0, TEXT_NO_SUBJECT, NULL);
    EXPECT_RENDER(vs, "other", &ds, 0, 0, TEXT_NO_SUBJECT, NULL);
    EXPECT_RENDER(vs, "subject", &ds, 1, 0, TEXT_OK, "TV");
    EXPECT_RENDER(vs, "subject", &ds, 5, 0, TEXT_NO_SUBJECT, NULL);
    dataset_free(&ds);
}

// Articles, case and number, with one candidate so that the replacement is known.
static void test_swap_grammar(const VariantSet *vs) {
    const Cat animals[] = {{18, "dog", "animal"}, {22, "elephant", "animal"}};
    const char *caps[] = {"A dog runs.", "a dog", "AN OLD DOG", "A DOG SLEEPS", "Dogs play", "Three puppies",
                          "An   dog", "a sheep dog", "An elephant and a dog", "The dog's bone", "dog", "A hot dog"};
    Dataset ds;
    make_ds(&ds, animals, 2, caps, 12, NULL, 0, 1);
    EXPECT_RENDER(vs, "swap", &ds, 0, 0, TEXT_OK, "An elephant runs.");
    EXPECT_RENDER(vs, "swap_lc", &ds, 0, 0, TEXT_OK, "an elephant runs");
    EXPECT_RENDER(vs, "a_other", &ds, 0, 0, TEXT_OK, "an elephant");
    EXPECT_RENDER(vs, "other", &ds, 0, 0, TEXT_OK, "elephant");
    EXPECT_RENDER(vs, "subject", &ds, 0, 0, TEXT_OK, "dog");
    EXPECT_RENDER(vs, "swap", &ds, 1, 0, TEXT_OK, "an elephant");
    EXPECT_RENDER(vs, "swap", &ds, 2, 0, TEXT_OK, "AN OLD ELEPHANT");
    EXPECT_RENDER(vs, "swap", &ds, 3, 0, TEXT_OK, "AN ELEPHANT SLEEPS");
    EXPECT_RENDER(vs, "swap", &ds, 4, 0, TEXT_OK, "Elephants play");
    EXPECT_RENDER(vs, "swap_lc", &ds, 4, 0, TEXT_OK, "elephants play");
    EXPECT_RENDER(vs, "swap", &ds, 5, 0, TEXT_OK, "Three elephants");
    EXPECT_RENDER(vs, "swap", &ds, 6, 0, TEXT_OK, "An   elephant");
    EXPECT_RENDER(vs, "swap", &ds, 7, 0, TEXT_OK, "an elephant");  // "sheep dog" is one entry (a dog)
    EXPECT_RENDER(vs, "subject", &ds, 7, 0, TEXT_OK, "sheep dog");
    EXPECT_RENDER(vs, "swap", &ds, 8, 0, TEXT_OK, "A dog and a dog");  // the first subject is the elephant
    EXPECT_RENDER(vs, "swap", &ds, 9, 0, TEXT_OK, "The elephant's bone");
    EXPECT_RENDER(vs, "swap", &ds, 10, 0, TEXT_OK, "elephant");
    EXPECT_RENDER(vs, "swap", &ds, 11, 0, TEXT_NO_SUBJECT, NULL);  // hot dog is food: not among these categories
    dataset_free(&ds);

    // The image shows the only other animal: no absent category, so nothing is invented.
    const int shown[] = {22};
    make_ds(&ds, animals, 2, caps, 1, shown, 1, 1);
    EXPECT_RENDER(vs, "swap", &ds, 0, 0, TEXT_NO_SUBJECT, NULL);
    EXPECT_RENDER(vs, "subject", &ds, 0, 0, TEXT_OK, "dog");
    dataset_free(&ds);

    // Invariant nouns: "a (white) sheep" is singular, "a herd of sheep" plural.
    const Cat farm[] = {{20, "sheep", "animal"}, {21, "cow", "animal"}};
    const char *sheep[] = {"A sheep grazing", "A white sheep", "A herd of sheep", "Sheep in a field"};
    make_ds(&ds, farm, 2, sheep, 4, NULL, 0, 1);
    EXPECT_RENDER(vs, "swap", &ds, 0, 0, TEXT_OK, "A cow grazing");
    EXPECT_RENDER(vs, "swap", &ds, 1, 0, TEXT_OK, "A white cow");
    EXPECT_RENDER(vs, "swap", &ds, 2, 0, TEXT_OK, "A herd of cows");
    EXPECT_RENDER(vs, "swap", &ds, 3, 0, TEXT_OK, "Cows in a field");
    dataset_free(&ds);

    // Plural-only replacement and a category name outside the COCO table.
    const Cat sports[] = {{35, "skis", "sports"}, {36, "snowboard", "sports"}};
    const char *boards[] = {"A snowboard on snow", "Two snowboards"};
    make_ds(&ds, sports, 2, boards, 2, NULL, 0, 1);
    EXPECT_RENDER(vs, "swap", &ds, 0, 0, TEXT_OK, "A pair of skis on snow");
    EXPECT_RENDER(vs, "a_other", &ds, 0, 0, TEXT_OK, "a pair of skis");
    EXPECT_RENDER(vs, "swap", &ds, 1, 0, TEXT_OK, "Two skis");
    dataset_free(&ds);
    const Cat custom[] = {{18, "dog", "animal"}, {500, "wombat", "animal"}, {501, "box", "animal"}};
    const int shown_box[] = {501};
    const char *two_dogs[] = {"Two dogs"};
    make_ds(&ds, custom, 3, two_dogs, 1, shown_box, 1, 1);
    EXPECT_RENDER(vs, "swap", &ds, 0, 0, TEXT_OK, "Two wombats");
    dataset_free(&ds);
}

static void test_find_subject(void) {
    static const struct {
        const char *caption;
        int id, start, end;
    } F[] = {
        {"A cat catching a frisbee", 17, 2, 5},       // "catching" is not "cat"
        {"Bedding and a catalog", -1, 0, 0},          // no match inside longer words
        {"A teddy bear on a bed", 88, 2, 12},         // longest entry wins over "bear"
        {"A toilet bowl in a bathroom", 70, 2, 13},   // not "bowl"
        {"A baby elephant walking", 22, 2, 15},       // "baby" modifies "elephant"
        {"A pit bull dog on a bed", 18, 2, 14},
        {"A dog bed by the door", 65, 2, 9},          // noun-noun: the last noun is the head
        {"A man in an orange shirt", 1, 2, 5},
        {"An orange shirt and two oranges", 55, 24, 31},  // singular "orange" is a colour
        {"A hot-dog stand", 58, 2, 9},
        {"a lap  top on a desk", 73, 2, 10},
        {"A hot, dog", 18, 7, 10},                    // punctuation separates phrases
        {"TWO DOGS", 18, 4, 8},
        {"A caf\xc3\xa9 with a cat", 17, 15, 18},
        {"", -1, 0, 0},
        {"A microwave oven and a stove", 78, 2, 16},
    };
    for (size_t i = 0; i < sizeof F / sizeof F[0]; i++) {
        int start = -7, end = -7;
        int id = find_subject(NULL, F[i].caption, &start, &end);
        if (id != F[i].id || (id >= 0 && (start != F[i].start || end != F[i].end))) {
            fprintf(stderr, "FAIL find_subject('%s') = %d [%d, %d), expected %d [%d, %d)\n", F[i].caption, id, start,
                    end, F[i].id, F[i].start, F[i].end);
            g_failures++;
        }
    }
    int problems = subject_tables_check();
    CHECK_INT(problems, 0);
    if (problems) fprintf(stderr, "  %s\n", cn_last_error());
    // splitmix64 reference outputs (Python, tests/reference/dataset_golden.py's splitmix64).
    CHECK(splitmix64(0) == 0xe220a8397b1dcdafULL);
    CHECK(splitmix64(1) == 0x910a2dec89025cc1ULL);
    CHECK(splitmix64(0xdeadbeefULL) == 0x4adfb90f68c9eb9bULL);
}

// tests/data/coco_small.json + instances_small.json; picks from dataset_golden-style Python:
// caption 105 among [cat, zebra]: seed 0 zebra, seed 3 cat; caption 301 among [cat, dog]:
// seed 0 cat, seed 1 dog.
static void test_swap_small(const VariantSet *vs) {
    Dataset ds;
    int rc = dataset_load_coco(&ds, "tests/data/coco_small.json", ".", "tests/data/instances_small.json", 0);
    CHECK_INT(rc, CN_OK);
    if (rc != CN_OK) return;
    EXPECT_RENDER(vs, "swap", &ds, 0, 0, TEXT_OK, "A zebra sitting on a table.");  // the only absent animal
    EXPECT_RENDER(vs, "swap", &ds, 0, 12345, TEXT_OK, "A zebra sitting on a table.");
    EXPECT_RENDER(vs, "swap", &ds, 1, 0, TEXT_OK, "A zebra on a couch.");
    EXPECT_RENDER(vs, "swap", &ds, 1, 3, TEXT_OK, "A cat on a couch.");
    EXPECT_RENDER(vs, "swap", &ds, 2, 0, TEXT_EMPTY, NULL);
    EXPECT_RENDER(vs, "swap", &ds, 3, 0, TEXT_NO_SUBJECT, NULL);     // "bowl" is not a loaded category
    EXPECT_RENDER(vs, "subject", &ds, 3, 0, TEXT_NO_SUBJECT, NULL);
    EXPECT_RENDER(vs, "swap", &ds, 4, 0, TEXT_OK, "Two cats in a field.");
    EXPECT_RENDER(vs, "swap", &ds, 4, 1, TEXT_OK, "Two dogs in a field.");
    dataset_free(&ds);
}

// ---- coco-mini, checked by hand ----------------------------------------------------------------------
// Each expected string below was written by hand: reading the caption, finding the subject with
// the rules of docs/variants.md, listing the categories of its supercategory that the image's
// instances do not show, and fixing the article/number/case. The pick among those candidates
// (seed 0) was taken from tests/reference/dataset_golden.py, an independent Python splitmix64;
// its printed candidate lists were compared with the instances by eye.
static const struct {
    long long caption_id;
    const char *swap;  // NULL: no subject (person subjects have no other category; no match)
} MINI[] = {
    {384831, "A living area with a computer mouse and a table"},  // television -> tv -> mouse
    {623893, "A kitchen with a microwave, stove and oven with cabinets."},
    {624271, "A white microwave and a white refrigerator are in the kitchen."},
    {651742, "A camera sits on a tripod connected to a keyboard."},
    {805379, "An apple sitting on a table, with another next to it."},  // burger -> sandwich
    {374829, "A horse is sitting on an unmade bed with pillows."},
    {382731, "A sheep on a messy bed."},                       // "pit bull dog" replaced as a whole
    {150585, "A giraffes sits on the table with a dog outside."},  // plural kept, as written
    {225675, "View through window of hot dog being made in kitchen assembly line."},
    {788784, "A wine glass of broccoli, noodles and other various foods."},
    {477090, "A bus flies high above in the sky with telephone lines in the picture as well."},
    {479085, "A large boat flying through a cloudy blue sky."},  // jetliner -> airplane
    {248886, "A MOTORCYCLE AND A SMALL BOAT OUT ON THE WATER"},   // biplane, all capitals
    {482335, "A den with toilets, a chair, tables and lamps."},
    {779114, "A cow that is flying over the sand."},
    {114326, "Pears and donuts have dirt and brown spots."},
    {703353, "A close up of a piece of broccoli sitting on a table."},  // "pizza pie"
    {507241, "A newly married couple cutting up a  giant hot dog."},    // "hot dog cake" -> cake
    {303, "A gold colored pair of vases cutting into a piece of bejeweled fabric with other bejeweled items in the "
          "background."},
    {315089, "Many pieces of ties gathers together, all with tags attached."},  // luggage: plural after "of"
    {762813, "A bunch of bears in the snow behind a barbed wire fence."},
    {764016, "A group of elephants at a fence in winter."},
    {154855, "Two sheep standing next to each other on a dirt road next to a grass field."},
    {527671, "A cow is laying inside of a half open lap top."},
    {88654, "Three cows outside with two grazing next to each other."},
    {148807, "Two elephants at the zoo during the day."},
    {155362, "Two bear standing on dirt near flowering trees."},  // "Two giraffe": singular kept
    {536557, "a blue train stopped at a stop sign"},              // "pickup truck"
    {731512, "An airplane parked in front of a parking meter."},
    {546685, "A large teddy bear mounted to the side of a building."},
    {478054, "THERE IS AN IMAGE OF A LIVING WITH A RUG AND AN END BED"},
    {159363, "Zebra looking in a window at a cat next to plants."},
    {770545, "A desk with two computer remote control and a keyboard sitting on it."},
    {2619, "A pair of gold books laying on a bag of decorations."},
    {372891, NULL},  // "A woman stands ...": person
    {349967, NULL},  // "A man riding a snowboard ...": the man comes first
    {634123, NULL},  // "Stark white appliances ...": no category word
    {98846, NULL},   // "... yellow and orange fruit ...": "orange" alone is a colour
    {598076, NULL},  // "A picture of a screen ...": "screen" is not a synonym
    {31587, NULL},   // "A tog is leashed ...": a typo is no dog
};

static void test_coco_mini(const VariantSet *vs, const VariantSet *seed7) {
    const char *shared = getenv("CLIPNEG_SHARED");
    char caps[1024], inst[1024];
    snprintf(caps, sizeof caps, "%s/data/coco-mini/annotations/captions_val2017.json", shared ? shared : "../shared");
    snprintf(inst, sizeof inst, "%s/data/coco-mini/annotations/instances_val2017.json", shared ? shared : "../shared");
    if (access(caps, R_OK) != 0) {
        printf("SKIP coco-mini part: %s not found (set CLIPNEG_SHARED)\n", caps);
        return;
    }
    Dataset ds;
    int rc = dataset_load_coco(&ds, caps, ".", inst, 0);
    CHECK_INT(rc, CN_OK);
    if (rc != CN_OK) return;
    for (size_t i = 0; i < sizeof MINI / sizeof MINI[0]; i++) {
        int c = -1;
        for (int k = 0; k < ds.n_captions; k++)
            if (ds.captions[k].id == MINI[i].caption_id) c = k;
        if (c < 0) {
            fprintf(stderr, "FAIL caption %lld not in coco-mini\n", MINI[i].caption_id);
            g_failures++;
            continue;
        }
        expect_render(vs, "swap", &ds, c, 0, MINI[i].swap ? TEXT_OK : TEXT_NO_SUBJECT, MINI[i].swap, __LINE__);
    }
    // All seven seed prompts of one caption (374829, seed 0), written by hand.
    int c = -1;
    for (int k = 0; k < ds.n_captions; k++)
        if (ds.captions[k].id == 374829) c = k;
    static const char *seven[] = {
        "A dog is sitting on an unmade bed with pillows.",
        "This is a dog is sitting on an unmade bed with pillows",
        "Not a dog is sitting on an unmade bed with pillows",
        "This is not a dog is sitting on an unmade bed with pillows",
        "There is absolutely no a dog is sitting on an unmade bed with pillows",
        "There is a horse is sitting on an unmade bed with pillows",
        "This is not a dog is sitting on an unmade bed with pillows; there is a horse",
    };
    for (int v = 0; v < seed7->n && v < 7 && c >= 0; v++)
        expect_render(seed7, seed7->items[v].name, &ds, c, 0, TEXT_OK, seven[v], __LINE__);
    // Another seed picks differently for some captions (Python: 384831 -> remote with seed 1),
    // and the same call is reproducible.
    for (int k = 0; k < ds.n_captions; k++)
        if (ds.captions[k].id == 384831) {
            expect_render(vs, "swap", &ds, k, 1, TEXT_OK, "A living area with a remote control and a table", __LINE__);
            char *a = NULL, *b = NULL;
            variant_render(&vs->items[variants_find(vs, "swap")], &ds, k, 77, &a);
            variant_render(&vs->items[variants_find(vs, "swap")], &ds, k, 77, &b);
            CHECK(a && b && !strcmp(a, b));
            free(a);
            free(b);
        }
    dataset_free(&ds);
}

int main(void) {
    const char *src = getenv("CLIPNEG_SOURCE_DIR");
    if (src && chdir(src) != 0) {
        fprintf(stderr, "cannot chdir to %s\n", src);
        return 1;
    }
    snprintf(g_dir, sizeof g_dir, "/tmp/clipneg_test_variants_XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_seed7();
    test_bad_variants();
    VariantSet vs, seed7;
    int rc = variants_load(&vs, write_tmp("all.ini", ALL_TEMPLATES));
    CHECK_INT(rc, CN_OK);
    if (rc != CN_OK) {
        fprintf(stderr, "  %s\n", cn_last_error());
        return 1;
    }
    CHECK_INT(variants_load(&seed7, "jobs/variants/seed7.ini"), CN_OK);
    test_caption_rules(&vs);
    test_swap_grammar(&vs);
    test_find_subject();
    test_swap_small(&vs);
    test_coco_mini(&vs, &seed7);
    variants_free(&vs);
    variants_free(&seed7);
    char path[256];
    snprintf(path, sizeof path, "%s/all.ini", g_dir);
    remove(path);
    snprintf(path, sizeof path, "%s/bad.ini", g_dir);
    remove(path);
    rmdir(g_dir);
    if (g_failures) {
        fprintf(stderr, "%d check(s) failed\n", g_failures);
        return 1;
    }
    printf("test_variants: all checks passed\n");
    return 0;
}
