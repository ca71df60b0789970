// variants_subject.c — finds a caption's main subject among the 80 COCO categories (names, synonyms,
// plurals) and swaps it for a category of the same supercategory that is absent from the image.
// The rules (docs/variants.md):
//  * words are runs of letters (ASCII letters and any UTF-8 byte), so "cat" never matches inside
//    "catch" or "bedding"; matching is case-insensitive; the words of a multi-word entry may be
//    separated by blanks or one hyphen ("hot-dog", "lap  top");
//  * at each word the longest entry wins ("teddy bear" over "bear", "toilet bowl" over "toilet");
//  * the main subject is the first match, except that a match directly followed by another
//    match is a modifier of it ("pit bull dog", "baby elephant", "dog bed", "hot dog cake"):
//    the last one of such a run gives the category and the whole run is replaced;
//  * singular/plural comes from the entry; invariant nouns (sheep, aircraft, luggage) count as
//    singular when "a", "an" or "one" is one or two words before them.
// A caption with no match, or whose image has no absent category left in the subject's
// supercategory, gets TEXT_NO_SUBJECT: nothing is invented.
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clipneg/common.h"
#include "clipneg/variants.h"

enum { SINGULAR = 0, PLURAL = 1, INVARIANT = 2 };

typedef struct {
    const char *phrase;    // lowercase words separated by one space
    const char *category;  // COCO category name
    int number;            // SINGULAR, PLURAL or INVARIANT
} Synonym;

#define SP(sing, plur, cat) {sing, cat, SINGULAR}, {plur, cat, PLURAL}
static const Synonym SYNONYMS[] = {
    // person (its supercategory has no other category, so person subjects are never swapped)
    SP("person", "persons", "person"), {"people", "person", PLURAL}, SP("man", "men", "person"),
    SP("woman", "women", "person"), SP("boy", "boys", "person"), SP("girl", "girls", "person"),
    SP("child", "children", "person"), SP("kid", "kids", "person"), SP("guy", "guys", "person"),
    SP("lady", "ladies", "person"), SP("gentleman", "gentlemen", "person"), SP("player", "players", "person"),
    SP("skier", "skiers", "person"), SP("surfer", "surfers", "person"),
    SP("skateboarder", "skateboarders", "person"), SP("snowboarder", "snowboarders", "person"),
    SP("baby", "babies", "person"), SP("toddler", "toddlers", "person"), SP("teenager", "teenagers", "person"),
    SP("teen", "teens", "person"), SP("adult", "adults", "person"), SP("rider", "riders", "person"),
    SP("biker", "bikers", "person"), SP("cyclist", "cyclists", "person"), SP("batter", "batters", "person"),
    SP("pitcher", "pitchers", "person"), SP("catcher", "catchers", "person"), SP("umpire", "umpires", "person"),
    SP("baker", "bakers", "person"), SP("chef", "chefs", "person"), SP("bride", "brides", "person"),
    SP("groom", "grooms", "person"), SP("equestrian", "equestrians", "person"),
    SP("student", "students", "person"), SP("worker", "workers", "person"), SP("officer", "officers", "person"),
    SP("policeman", "policemen", "person"), SP("soldier", "soldiers", "person"),
    SP("tourist", "tourists", "person"), SP("spectator", "spectators", "person"),
    SP("pedestrian", "pedestrians", "person"), SP("mother", "mothers", "person"),
    SP("father", "fathers", "person"), {"someone", "person", SINGULAR}, {"somebody", "person", SINGULAR},
    // vehicle
    SP("bicycle", "bicycles", "bicycle"), SP("bike", "bikes", "bicycle"),
    SP("car", "cars", "car"), SP("taxi", "taxis", "car"), SP("sedan", "sedans", "car"), SP("suv", "suvs", "car"),
    SP("motorcycle", "motorcycles", "motorcycle"), SP("motorbike", "motorbikes", "motorcycle"),
    SP("motor bike", "motor bikes", "motorcycle"), SP("dirt bike", "dirt bikes", "motorcycle"),
    SP("moped", "mopeds", "motorcycle"),
    SP("airplane", "airplanes", "airplane"), SP("plane", "planes", "airplane"), SP("jet", "jets", "airplane"),
    SP("jetliner", "jetliners", "airplane"), SP("airliner", "airliners", "airplane"),
    SP("seaplane", "seaplanes", "airplane"), SP("biplane", "biplanes", "airplane"),
    SP("aeroplane", "aeroplanes", "airplane"), {"aircraft", "airplane", INVARIANT},
    SP("bus", "buses", "bus"), {"busses", "bus", PLURAL},
    SP("train", "trains", "train"), SP("locomotive", "locomotives", "train"), SP("tram", "trams", "train"),
    SP("streetcar", "streetcars", "train"),
    SP("truck", "trucks", "truck"), SP("pickup", "pickups", "truck"), SP("lorry", "lorries", "truck"),
    SP("boat", "boats", "boat"), SP("ship", "ships", "boat"), SP("sailboat", "sailboats", "boat"),
    SP("canoe", "canoes", "boat"), SP("kayak", "kayaks", "boat"), SP("yacht", "yachts", "boat"),
    SP("ferry", "ferries", "boat"),
    // outdoor
    SP("traffic light", "traffic lights", "traffic light"), SP("stop light", "stop lights", "traffic light"),
    SP("stoplight", "stoplights", "traffic light"), SP("traffic signal", "traffic signals", "traffic light"),
    SP("fire hydrant", "fire hydrants", "fire hydrant"), SP("hydrant", "hydrants", "fire hydrant"),
    SP("stop sign", "stop signs", "stop sign"), SP("parking meter", "parking meters", "parking meter"),
    SP("bench", "benches", "bench"),
    // animal
    SP("bird", "birds", "bird"), SP("seagull", "seagulls", "bird"), SP("gull", "gulls", "bird"),
    SP("pigeon", "pigeons", "bird"), SP("duck", "ducks", "bird"), SP("goose", "geese", "bird"),
    SP("swan", "swans", "bird"), SP("parrot", "parrots", "bird"), SP("owl", "owls", "bird"),
    SP("eagle", "eagles", "bird"), SP("hawk", "hawks", "bird"), SP("crow", "crows", "bird"),
    SP("vulture", "vultures", "bird"), SP("turkey", "turkeys", "bird"), SP("rooster", "roosters", "bird"),
    SP("sparrow", "sparrows", "bird"), SP("penguin", "penguins", "bird"),
    SP("cat", "cats", "cat"), SP("kitten", "kittens", "cat"), SP("kitty", "kitties", "cat"),
    SP("dog", "dogs", "dog"), SP("puppy", "puppies", "dog"), SP("pup", "pups", "dog"),
    SP("poodle", "poodles", "dog"), SP("pit bull", "pit bulls", "dog"), SP("terrier", "terriers", "dog"),
    SP("retriever", "retrievers", "dog"), SP("labrador", "labradors", "dog"),
    SP("sheepdog", "sheepdogs", "dog"), SP("sheep dog", "sheep dogs", "dog"),
    SP("horse", "horses", "horse"), SP("pony", "ponies", "horse"), SP("foal", "foals", "horse"),
    {"sheep", "sheep", INVARIANT}, SP("lamb", "lambs", "sheep"),
    SP("cow", "cows", "cow"), {"cattle", "cow", PLURAL}, SP("bull", "bulls", "cow"), SP("calf", "calves", "cow"),
    SP("ox", "oxen", "cow"),
    SP("elephant", "elephants", "elephant"),
    SP("bear", "bears", "bear"), SP("polar bear", "polar bears", "bear"),
    SP("grizzly bear", "grizzly bears", "bear"), SP("grizzly", "grizzlies", "bear"),
    SP("zebra", "zebras", "zebra"), SP("giraffe", "giraffes", "giraffe"),
    // accessory
    SP("backpack", "backpacks", "backpack"), SP("back pack", "back packs", "backpack"),
    SP("rucksack", "rucksacks", "backpack"),
    SP("umbrella", "umbrellas", "umbrella"), SP("parasol", "parasols", "umbrella"),
    SP("handbag", "handbags", "handbag"), SP("hand bag", "hand bags", "handbag"), SP("purse", "purses", "handbag"),
    SP("tie", "ties", "tie"), SP("necktie", "neckties", "tie"), SP("bow tie", "bow ties", "tie"),
    SP("suitcase", "suitcases", "suitcase"), SP("suit case", "suit cases", "suitcase"),
    {"luggage", "suitcase", INVARIANT},
    // sports
    SP("frisbee", "frisbees", "frisbee"),
    {"skis", "skis", PLURAL}, {"ski", "skis", SINGULAR},
    SP("snowboard", "snowboards", "snowboard"), SP("snow board", "snow boards", "snowboard"),
    SP("ball", "balls", "sports ball"), SP("soccer ball", "soccer balls", "sports ball"),
    SP("tennis ball", "tennis balls", "sports ball"),
    SP("kite", "kites", "kite"),
    SP("baseball bat", "baseball bats", "baseball bat"), SP("bat", "bats", "baseball bat"),
    SP("baseball glove", "baseball gloves", "baseball glove"), SP("glove", "gloves", "baseball glove"),
    SP("mitt", "mitts", "baseball glove"),
    SP("skateboard", "skateboards", "skateboard"), SP("skate board", "skate boards", "skateboard"),
    SP("surfboard", "surfboards", "surfboard"), SP("surf board", "surf boards", "surfboard"),
    SP("tennis racket", "tennis rackets", "tennis racket"), SP("tennis racquet", "tennis racquets", "tennis racket"),
    SP("racket", "rackets", "tennis racket"), SP("racquet", "racquets", "tennis racket"),
    // kitchen
    SP("bottle", "bottles", "bottle"), SP("wine glass", "wine glasses", "wine glass"),
    SP("wineglass", "wineglasses", "wine glass"),
    SP("cup", "cups", "cup"), SP("mug", "mugs", "cup"), SP("teacup", "teacups", "cup"),
    SP("fork", "forks", "fork"), SP("knife", "knives", "knife"), SP("spoon", "spoons", "spoon"),
    SP("bowl", "bowls", "bowl"),
    // food ("orange" alone is usually a colour: only "oranges" counts)
    SP("banana", "bananas", "banana"), SP("apple", "apples", "apple"),
    SP("sandwich", "sandwiches", "sandwich"), SP("burger", "burgers", "sandwich"),
    SP("hamburger", "hamburgers", "sandwich"), SP("cheeseburger", "cheeseburgers", "sandwich"),
    {"oranges", "orange", PLURAL}, {"broccoli", "broccoli", SINGULAR}, SP("carrot", "carrots", "carrot"),
    SP("hot dog", "hot dogs", "hot dog"), SP("hotdog", "hotdogs", "hot dog"),
    SP("pizza", "pizzas", "pizza"), SP("pizza pie", "pizza pies", "pizza"),
    SP("donut", "donuts", "donut"), SP("doughnut", "doughnuts", "donut"),
    SP("cake", "cakes", "cake"), SP("cupcake", "cupcakes", "cake"),
    // furniture
    SP("chair", "chairs", "chair"), SP("armchair", "armchairs", "chair"),
    SP("couch", "couches", "couch"), SP("sofa", "sofas", "couch"), SP("loveseat", "loveseats", "couch"),
    SP("potted plant", "potted plants", "potted plant"), SP("plant", "plants", "potted plant"),
    SP("houseplant", "houseplants", "potted plant"), SP("house plant", "house plants", "potted plant"),
    SP("bed", "beds", "bed"),
    SP("table", "tables", "dining table"), SP("dining table", "dining tables", "dining table"),
    SP("toilet", "toilets", "toilet"), SP("toilet bowl", "toilet bowls", "toilet"),
    // electronic
    SP("tv", "tvs", "tv"), SP("television", "televisions", "tv"), SP("monitor", "monitors", "tv"),
    SP("laptop", "laptops", "laptop"), SP("lap top", "lap tops", "laptop"),
    SP("laptop computer", "laptop computers", "laptop"),
    SP("mouse", "mice", "mouse"),
    SP("remote", "remotes", "remote"), SP("remote control", "remote controls", "remote"),
    SP("controller", "controllers", "remote"),
    SP("keyboard", "keyboards", "keyboard"),
    SP("cell phone", "cell phones", "cell phone"), SP("cellphone", "cellphones", "cell phone"),
    SP("phone", "phones", "cell phone"), SP("smartphone", "smartphones", "cell phone"),
    SP("smart phone", "smart phones", "cell phone"), SP("mobile phone", "mobile phones", "cell phone"),
    // appliance
    SP("microwave", "microwaves", "microwave"), SP("microwave oven", "microwave ovens", "microwave"),
    SP("oven", "ovens", "oven"), SP("stove", "stoves", "oven"),
    SP("toaster", "toasters", "toaster"), SP("sink", "sinks", "sink"),
    SP("refrigerator", "refrigerators", "refrigerator"), SP("fridge", "fridges", "refrigerator"),
    // indoor
    SP("book", "books", "book"), SP("clock", "clocks", "clock"), SP("vase", "vases", "vase"),
    {"scissors", "scissors", PLURAL},
    SP("teddy bear", "teddy bears", "teddy bear"), SP("teddy", "teddies", "teddy bear"),
    SP("stuffed animal", "stuffed animals", "teddy bear"),
    SP("hair drier", "hair driers", "hair drier"), SP("hair dryer", "hair dryers", "hair drier"),
    SP("hairdryer", "hairdryers", "hair drier"), SP("blow dryer", "blow dryers", "hair drier"),
    SP("blow drier", "blow driers", "hair drier"),
    SP("toothbrush", "toothbrushes", "toothbrush"), SP("tooth brush", "tooth brushes", "toothbrush"),
};
#undef SP
#define N_SYNONYMS ((int)(sizeof SYNONYMS / sizeof SYNONYMS[0]))

// The 80 COCO categories (ids as in instances_*.json) and how a swap writes them.
typedef struct {
    int id;
    const char *name, *supercategory;
    const char *singular;  // noun phrase after "a"/"an" ("pair of skis")
    const char *plural;
} CocoCategory;

static const CocoCategory COCO[] = {
    {1, "person", "person", "person", "people"}, {2, "bicycle", "vehicle", "bicycle", "bicycles"},
    {3, "car", "vehicle", "car", "cars"}, {4, "motorcycle", "vehicle", "motorcycle", "motorcycles"},
    {5, "airplane", "vehicle", "airplane", "airplanes"}, {6, "bus", "vehicle", "bus", "buses"},
    {7, "train", "vehicle", "train", "trains"}, {8, "truck", "vehicle", "truck", "trucks"},
    {9, "boat", "vehicle", "boat", "boats"},
    {10, "traffic light", "outdoor", "traffic light", "traffic lights"},
    {11, "fire hydrant", "outdoor", "fire hydrant", "fire hydrants"},
    {13, "stop sign", "outdoor", "stop sign", "stop signs"},
    {14, "parking meter", "outdoor", "parking meter", "parking meters"},
    {15, "bench", "outdoor", "bench", "benches"}, {16, "bird", "animal", "bird", "birds"},
    {17, "cat", "animal", "cat", "cats"}, {18, "dog", "animal", "dog", "dogs"},
    {19, "horse", "animal", "horse", "horses"}, {20, "sheep", "animal", "sheep", "sheep"},
    {21, "cow", "animal", "cow", "cows"}, {22, "elephant", "animal", "elephant", "elephants"},
    {23, "bear", "animal", "bear", "bears"}, {24, "zebra", "animal", "zebra", "zebras"},
    {25, "giraffe", "animal", "giraffe", "giraffes"}, {27, "backpack", "accessory", "backpack", "backpacks"},
    {28, "umbrella", "accessory", "umbrella", "umbrellas"}, {31, "handbag", "accessory", "handbag", "handbags"},
    {32, "tie", "accessory", "tie", "ties"}, {33, "suitcase", "accessory", "suitcase", "suitcases"},
    {34, "frisbee", "sports", "frisbee", "frisbees"}, {35, "skis", "sports", "pair of skis", "skis"},
    {36, "snowboard", "sports", "snowboard", "snowboards"}, {37, "sports ball", "sports", "ball", "balls"},
    {38, "kite", "sports", "kite", "kites"}, {39, "baseball bat", "sports", "baseball bat", "baseball bats"},
    {40, "baseball glove", "sports", "baseball glove", "baseball gloves"},
    {41, "skateboard", "sports", "skateboard", "skateboards"},
    {42, "surfboard", "sports", "surfboard", "surfboards"},
    {43, "tennis racket", "sports", "tennis racket", "tennis rackets"},
    {44, "bottle", "kitchen", "bottle", "bottles"}, {46, "wine glass", "kitchen", "wine glass", "wine glasses"},
    {47, "cup", "kitchen", "cup", "cups"}, {48, "fork", "kitchen", "fork", "forks"},
    {49, "knife", "kitchen", "knife", "knives"}, {50, "spoon", "kitchen", "spoon", "spoons"},
    {51, "bowl", "kitchen", "bowl", "bowls"}, {52, "banana", "food", "banana", "bananas"},
    {53, "apple", "food", "apple", "apples"}, {54, "sandwich", "food", "sandwich", "sandwiches"},
    {55, "orange", "food", "orange", "oranges"},
    {56, "broccoli", "food", "piece of broccoli", "pieces of broccoli"},
    {57, "carrot", "food", "carrot", "carrots"}, {58, "hot dog", "food", "hot dog", "hot dogs"},
    {59, "pizza", "food", "pizza", "pizzas"}, {60, "donut", "food", "donut", "donuts"},
    {61, "cake", "food", "cake", "cakes"}, {62, "chair", "furniture", "chair", "chairs"},
    {63, "couch", "furniture", "couch", "couches"},
    {64, "potted plant", "furniture", "potted plant", "potted plants"},
    {65, "bed", "furniture", "bed", "beds"}, {67, "dining table", "furniture", "table", "tables"},
    {70, "toilet", "furniture", "toilet", "toilets"}, {72, "tv", "electronic", "television", "televisions"},
    {73, "laptop", "electronic", "laptop", "laptops"},
    {74, "mouse", "electronic", "computer mouse", "computer mice"},
    {75, "remote", "electronic", "remote control", "remote controls"},
    {76, "keyboard", "electronic", "keyboard", "keyboards"},
    {77, "cell phone", "electronic", "cell phone", "cell phones"},
    {78, "microwave", "appliance", "microwave", "microwaves"}, {79, "oven", "appliance", "oven", "ovens"},
    {80, "toaster", "appliance", "toaster", "toasters"}, {81, "sink", "appliance", "sink", "sinks"},
    {82, "refrigerator", "appliance", "refrigerator", "refrigerators"},
    {84, "book", "indoor", "book", "books"}, {85, "clock", "indoor", "clock", "clocks"},
    {86, "vase", "indoor", "vase", "vases"}, {87, "scissors", "indoor", "pair of scissors", "scissors"},
    {88, "teddy bear", "indoor", "teddy bear", "teddy bears"},
    {89, "hair drier", "indoor", "hair dryer", "hair dryers"},
    {90, "toothbrush", "indoor", "toothbrush", "toothbrushes"},
};
#define N_COCO ((int)(sizeof COCO / sizeof COCO[0]))

uint64_t splitmix64(uint64_t x) {
    uint64_t z = x + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// ---- synonym index: entries sorted by their first word, built once ------------------------------

static int g_order[N_SYNONYMS];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static size_t first_word_len(const char *phrase) {
    const char *sp = strchr(phrase, ' ');
    return sp ? (size_t)(sp - phrase) : strlen(phrase);
}

// Compare a (not NUL-terminated) word with the first word of a phrase, like strcmp.
static int cmp_first_word(const char *w, size_t wn, const char *phrase) {
    size_t pn = first_word_len(phrase);
    int c = strncmp(w, phrase, wn < pn ? wn : pn);
    if (c) return c;
    return (wn > pn) - (wn < pn);
}

static int cmp_order(const void *a, const void *b) {
    const char *pa = SYNONYMS[*(const int *)a].phrase, *pb = SYNONYMS[*(const int *)b].phrase;
    return cmp_first_word(pa, first_word_len(pa), pb);
}

static void build_index(void) {
    for (int i = 0; i < N_SYNONYMS; i++) g_order[i] = i;
    qsort(g_order, N_SYNONYMS, sizeof g_order[0], cmp_order);
}

// ---- words of a caption -------------------------------------------------------------------------

static int is_letter(unsigned char c) { return isalpha(c) || c >= 0x80; }

typedef struct {
    int start, end;  // byte span
    char lower[32];  // ASCII-lowercased (longer words never match an entry)
} Word;

static int split_words(const char *s, Word **out) {
    int n = 0, cap = 16;
    Word *w = mallocCheck(cap * sizeof *w);
    for (int i = 0; s[i];) {
        if (!is_letter((unsigned char)s[i])) { i++; continue; }
        int j = i;
        while (s[j] && is_letter((unsigned char)s[j])) j++;
        if (n == cap) w = reallocCheck(w, (cap *= 2) * sizeof *w);
        w[n].start = i, w[n].end = j;
        int len = j - i < 31 ? j - i : 31;
        for (int k = 0; k < len; k++) w[n].lower[k] = (char)tolower((unsigned char)s[i + k]);
        w[n].lower[len] = '\0';
        n++;
        i = j;
    }
    *out = w;
    return n;
}

// Words a and a+1 belong to one phrase only when blanks or a single hyphen separate them.
static int joined(const char *s, const Word *w, int a) {
    int hyphens = 0;
    for (int i = w[a].end; i < w[a + 1].start; i++) {
        if (s[i] == '-') hyphens++;
        else if (s[i] != ' ' && s[i] != '\t') return 0;
    }
    return hyphens <= 1;
}

// Longest synonym matching at word i: returns its index (or -1) and its length in words.
static int match_at(const char *s, const Word *w, int n, int i, int *n_words) {
    size_t wn = strlen(w[i].lower);
    int lo = 0, hi = N_SYNONYMS;  // first entry whose first word >= w[i]
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cmp_first_word(w[i].lower, wn, SYNONYMS[g_order[mid]].phrase) > 0) lo = mid + 1;
        else hi = mid;
    }
    int best = -1, best_len = 0;
    for (int k = lo; k < N_SYNONYMS && cmp_first_word(w[i].lower, wn, SYNONYMS[g_order[k]].phrase) == 0; k++) {
        const char *p = SYNONYMS[g_order[k]].phrase;
        int len = 0, ok = 1;
        while (ok && *p) {
            size_t pn = first_word_len(p);
            int at = i + len;
            if (at >= n || (len > 0 && !joined(s, w, at - 1)) || strlen(w[at].lower) != pn ||
                strncmp(w[at].lower, p, pn) != 0)
                ok = 0;
            len++;
            p += pn;
            if (*p == ' ') p++;
        }
        if (ok && len > best_len) best = g_order[k], best_len = len;
    }
    *n_words = best_len;
    return best;
}

typedef struct {
    const Synonym *syn;
    int start, end;   // byte span in the caption
    int plural;       // 0/1 after resolving INVARIANT
} SubjectMatch;

static int is_article(const Word *w) {
    return !strcmp(w->lower, "a") || !strcmp(w->lower, "an") || !strcmp(w->lower, "one");
}

static int match_subject(const char *caption, SubjectMatch *m) {
    pthread_once(&g_once, build_index);
    Word *w = NULL;
    int n = split_words(caption, &w), found = 0;
    for (int i = 0; i < n && !found; i++) {
        int len = 0, syn = match_at(caption, w, n, i, &len);
        if (syn < 0) continue;
        // A match directly followed by another one is its modifier ("baby elephant", "dog bed"):
        // the last match is the subject and the whole run is what a swap replaces.
        int first = i;
        for (;;) {
            int next = i + len, len2 = 0, syn2 = -1;
            if (next < n && joined(caption, w, next - 1)) syn2 = match_at(caption, w, n, next, &len2);
            if (syn2 < 0) break;
            i = next, len = len2, syn = syn2;
        }
        m->syn = &SYNONYMS[syn];
        m->start = w[first].start;
        m->end = w[i + len - 1].end;
        m->plural = m->syn->number == PLURAL;
        if (m->syn->number == INVARIANT)  // "a sheep", "a white sheep" vs "a herd of sheep"
            m->plural = !((i >= 1 && is_article(&w[i - 1])) || (i >= 2 && is_article(&w[i - 2])));
        found = 1;
    }
    free(w);
    return found;
}

// ---- categories ----------------------------------------------------------------------------------

static const CocoCategory *coco_by_name(const char *name) {
    for (int i = 0; i < N_COCO; i++)
        if (!strcmp(COCO[i].name, name)) return &COCO[i];
    return NULL;
}

static const DsCategory *ds_category_by_name(const Dataset *ds, const char *name) {
    for (int i = 0; i < ds->n_categories; i++)
        if (!strcmp(ds->categories[i].name, name)) return &ds->categories[i];
    return NULL;
}

int find_subject(const Dataset *ds, const char *caption, int *start, int *end) {
    SubjectMatch m;
    *start = *end = 0;
    if (!match_subject(caption, &m)) return -1;
    int id = -1;
    if (ds && ds->n_categories > 0) {
        const DsCategory *cat = ds_category_by_name(ds, m.syn->category);
        if (cat) id = cat->id;
    } else {
        id = coco_by_name(m.syn->category)->id;  // no instances JSON: the standard COCO ids
    }
    if (id < 0) return -1;
    *start = m.start, *end = m.end;
    return id;
}

static int has_category(const DsImage *img, int id) {
    int lo = 0, hi = img->n_categories;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (img->categories[mid] < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < img->n_categories && img->categories[lo] == id;
}

// Singular/plural noun phrase for a category; names outside the COCO table get an English "-s".
static char *category_phrase(const char *name, int plural) {
    const CocoCategory *cc = coco_by_name(name);
    if (cc) return strdupCheck(plural ? cc->plural : cc->singular);
    if (!plural) return strdupCheck(name);
    size_t n = strlen(name);
    int es = n > 0 && (strchr("sxz", name[n - 1]) || (n > 1 && name[n - 1] == 'h' && strchr("cs", name[n - 2])));
    char *p = mallocCheck(n + 3);
    snprintf(p, n + 3, "%s%s", name, es ? "es" : "s");
    return p;
}

static const char *article_for(const char *phrase) {
    return strchr("aeiouAEIOU", phrase[0]) && phrase[0] ? "an" : "a";
}

static int all_caps(const char *s, int start, int end) {
    int letters = 0;
    for (int i = start; i < end; i++) {
        if (islower((unsigned char)s[i])) return 0;
        letters += isupper((unsigned char)s[i]) != 0;
    }
    return letters >= 2;
}

static void set_case(char *s, int upper_all, int upper_first) {
    if (upper_all)
        for (char *p = s; *p; p++) *p = (char)toupper((unsigned char)*p);
    else if (upper_first)
        s[0] = (char)toupper((unsigned char)s[0]);
}

void subject_swap_free(SubjectSwap *s) {
    free(s->swapped);
    free(s->other);
    free(s->a_other);
    memset(s, 0, sizeof *s);
}

int subject_swap(const Dataset *ds, int c, const char *caption, uint64_t seed, SubjectSwap *out) {
    memset(out, 0, sizeof *out);
    out->status = TEXT_NO_SUBJECT;
    out->subject_category = out->other_category = -1;
    SubjectMatch m;
    if (!match_subject(caption, &m)) return out->status;
    const DsCategory *subject = ds_category_by_name(ds, m.syn->category);
    if (!subject) return out->status;  // no categories loaded, or this one is not among them
    out->subject_category = subject->id;
    out->start = m.start, out->end = m.end;
    const DsImage *img = &ds->images[dataset_caption_image(ds, c)];
    if (!ds->has_instances || !img->categories) return out->status;  // absence unknown: never guess

    // Candidates: same supercategory, not the subject, not annotated in this image (id order).
    int n_cand = 0;
    for (int i = 0; i < ds->n_categories; i++) {
        const DsCategory *k = &ds->categories[i];
        if (k->id != subject->id && !strcmp(k->supercategory, subject->supercategory) && !has_category(img, k->id))
            n_cand++;
    }
    if (n_cand == 0) return out->status;
    uint64_t h = splitmix64(seed ^ splitmix64((uint64_t)dataset_caption_id(ds, c)));
    int pick = (int)(h % (uint64_t)n_cand);
    const DsCategory *other = NULL;
    for (int i = 0; i < ds->n_categories && !other; i++) {
        const DsCategory *k = &ds->categories[i];
        if (k->id != subject->id && !strcmp(k->supercategory, subject->supercategory) &&
            !has_category(img, k->id) && pick-- == 0)
            other = k;
    }
    out->other_category = other->id;
    out->other = strdupCheck(other->name);
    char *singular = category_phrase(other->name, 0);
    size_t an = strlen(singular) + 4;
    out->a_other = mallocCheck(an);
    snprintf(out->a_other, an, "%s %s", article_for(singular), singular);

    // The replacement keeps the subject's number and case (Dog -> Cat, DOGS -> CATS).
    char *repl = m.plural ? category_phrase(other->name, 1) : strdupCheck(singular);
    free(singular);
    int caps = all_caps(caption, m.start, m.end);
    set_case(repl, caps, isupper((unsigned char)caption[m.start]));

    // An article right before the subject follows the replacement: "a dog" -> "an elephant".
    int cut = m.start;           // caption[0..cut) is kept, then the article (if any), then repl
    const char *article = NULL;
    int gap_start = m.start;     // blanks between the article and the subject
    while (gap_start > 0 && (caption[gap_start - 1] == ' ' || caption[gap_start - 1] == '\t')) gap_start--;
    int a_end = gap_start, a_start = a_end;
    while (a_start > 0 && is_letter((unsigned char)caption[a_start - 1])) a_start--;
    int a_len = a_end - a_start;
    if (gap_start < m.start && (a_len == 1 || a_len == 2) &&
        (!strncasecmp(caption + a_start, "a", (size_t)a_len) || !strncasecmp(caption + a_start, "an", (size_t)a_len))) {
        article = article_for(repl);
        cut = a_start;
    }
    char art[3] = "";
    if (article) {
        snprintf(art, sizeof art, "%s", article);
        set_case(art, caps && isupper((unsigned char)caption[a_start]), isupper((unsigned char)caption[a_start]));
    }
    size_t n = strlen(caption) + strlen(repl) + 8;
    out->swapped = mallocCheck(n);
    snprintf(out->swapped, n, "%.*s%s%.*s%s%s", cut, caption, art, article ? m.start - a_end : 0,
             caption + a_end, repl, caption + m.end);
    free(repl);
    out->status = TEXT_OK;
    return out->status;
}

int subject_tables_check(void) {
    int problems = 0;
    for (int i = 0; i < N_SYNONYMS; i++) {
        const Synonym *s = &SYNONYMS[i];
        const CocoCategory *cc = coco_by_name(s->category);
        if (!cc && problems++ == 0) cn_fail(CN_E_INTERNAL, "synonym '%s': unknown category '%s'", s->phrase, s->category);
        for (int j = i + 1; j < N_SYNONYMS; j++)
            if (!strcmp(s->phrase, SYNONYMS[j].phrase) && problems++ == 0)
                cn_fail(CN_E_INTERNAL, "synonym '%s' listed twice", s->phrase);
        // Each entry, alone, must be found whole and give its own category.
        int start, end;
        int id = find_subject(NULL, s->phrase, &start, &end);
        if (cc && (id != cc->id || start != 0 || end != (int)strlen(s->phrase)) && problems++ == 0)
            cn_fail(CN_E_INTERNAL, "synonym '%s' is found as category %d [%d, %d)", s->phrase, id, start, end);
    }
    for (int i = 0; i < N_COCO; i++)
        for (int j = i + 1; j < N_COCO; j++)
            if (COCO[i].id == COCO[j].id && problems++ == 0) cn_fail(CN_E_INTERNAL, "category id %d twice", COCO[i].id);
    return problems;
}
