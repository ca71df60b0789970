// h5schema.c — the self-describing part of the output files: every dataset's description, units
// and named axes (HDF5 dimension scales, which xarray/h5netcdf read as dimensions with
// coordinates), chunked/deflated layouts and the coordinate datasets. Contract: docs/hdf5-schema.md.
#define _POSIX_C_SOURCE 200809L
#include <hdf5.h>
#include <hdf5_hl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/h5out.h"
#include "h5_internal.h"

// ---- the tables ----------------------------------------------------------------------------------
// One row per dataset: name in its group, axes (comma-separated coordinate names; the name itself
// for a coordinate, "" for a scalar), units, description. Units: "1" dimensionless numbers
// (cosines, unit-vector components, shares), "count", "index" (a row number), "id", "code" (an
// enumeration, meanings in the description), "flag" (0/1), "pixel", "utf-8 text" for strings.
typedef struct {
    const char *name, *dims, *units, *desc;
} H5Doc;

typedef struct {
    const char *group;
    const H5Doc *docs;
    size_t n;
} H5DocGroup;

#define GROUP(path, table) {path, table, sizeof table / sizeof table[0]}

static const H5Doc IMAGES[] = {
    {"image", "image", "id", "image id: coordinate of the image axis (the same values as id)"},
    {"id", "image", "id", "COCO image id (manifest: running index or given id)"},
    {"file_name", "image", "utf-8 text", "path relative to the dataset's image folder"},
    {"status", "image", "code", "0 pending, 1 ok, 2 missing file, 3 decode error, 4 refused (too large)"},
    {"error", "image", "utf-8 text", "the decoder's message for a failed image, else empty"},
    {"first_caption", "image", "index", "first row in /captions of this image's captions"},
    {"n_captions", "image", "count", "captions of this image (rows first_caption ...)"},
};
static const H5Doc CAPTIONS[] = {
    {"caption", "caption", "id", "caption id: coordinate of the caption axis (the same values as id)"},
    {"id", "caption", "id", "COCO annotation id of the caption"},
    {"image_index", "caption", "index", "row in /images of the caption's image"},
    {"text", "caption", "utf-8 text", "the caption as in the dataset"},
};
static const H5Doc VARIANTS[] = {
    {"variant", "variant", "utf-8 text", "variant name: coordinate of the variant axis (the same values as name)"},
    {"name", "variant", "utf-8 text", "variant name, in the variants file's order"},
    {"template", "variant", "utf-8 text", "the variant's template from the variants file"},
    {"polarity", "variant", "code", "0 positive, 1 negative, 2 other (attribute labels)"},
};
static const H5Doc TEXTS[] = {
    {"text", "text", "utf-8 text",
     "rendered text of row t = caption * V + variant (empty when not rendered); coordinate of the text axis"},
    {"status", "text", "code", "0 ok, 1 no subject found, 2 empty caption, 3 no negative, -1 pending"},
    {"n_tokens", "text", "count", "token ids SOT..EOT before padding, after truncation"},
    {"truncated", "text", "flag", "1 when the text was longer than the context (77) and cut"},
};
static const H5Doc EMBEDDINGS[] = {
    {"image_row", "image_row", "index", "row of /embeddings/image = row in /images"},
    {"text_row", "text_row", "index", "row of /embeddings/text = row in /texts (caption * V + variant)"},
    {"dim", "dim", "index", "embedding component"},
    {"image", "image_row,dim", "1", "L2-normalised image embeddings (NaN rows for failed images)"},
    {"text", "text_row,dim", "1", "L2-normalised text embeddings (NaN rows for texts not rendered)"},
};
static const H5Doc SIMILARITY[] = {
    {"paired", "caption,variant", "1", "cosine(image of caption c, text (c, v)); NaN when either side failed"},
    {"full", "image,text", "1", "cosine of every image with every text; NaN as paired"},
};
static const H5Doc PROGRESS[] = {
    {"text_shard", "text_shard", "index", "global text shard s: text rows [s*text_shard, (s+1)*text_shard)"},
    {"image_shard", "image_shard", "index", "global image shard s: image rows [s*image_shard, (s+1)*image_shard)"},
    {"item_shard", "item_shard", "index", "global item shard s: items [s*item_shard, (s+1)*item_shard)"},
    {"text_shards", "text_shard", "flag", "1 when the shard's texts are tokenised, encoded and written"},
    {"image_shards", "image_shard", "flag", "1 when the shard's images are encoded and written"},
    {"sim_shards", "image_shard", "flag", "1 when the similarities of the shard's images are written"},
    {"item_shards", "item_shard", "flag", "1 when the shard's items are scored and written"},
    {"class_shard", "class_shard", "index", "global class shard s: classes [s*class_shard, (s+1)*class_shard) (attribute of /classify)"},
    {"classify_shard", "classify_shard", "index", "global image shard s of the classify phase: image rows [s*image_shard, (s+1)*image_shard)"},
    {"class_shards", "class_shard", "flag", "1 when the shard's class vectors are written"},
    {"classify_shards", "classify_shard", "flag", "1 when the shard's images are classified and written"},
};
static const H5Doc CLASSIFY[] = {
    {"class", "class", "utf-8 text", "class name: coordinate of the class axis (the same values as classnames)"},
    {"template", "template", "utf-8 text", "prompt template: coordinate of the template axis (the same values as templates)"},
    {"negated_template", "negated_template", "utf-8 text",
     "negated prompt template: coordinate of the negated_template axis (the same values as negated_templates)"},
    {"image", "image", "index", "row in /images (the classified image)"},
    {"k", "k", "index", "rank of a prediction: 0 the best class"},
    {"dim", "dim", "index", "embedding component"},
    {"classnames", "class", "utf-8 text", "class names, in class-index order"},
    {"templates", "template", "utf-8 text", "prompt templates ({c} = the class name)"},
    {"negated_templates", "negated_template", "utf-8 text", "negated prompt templates (the negation probe)"},
    {"label", "image", "index", "true class of the image (row in classnames)"},
    {"classifier", "class,dim", "1", "class vectors: mean of the L2-normalised prompt embeddings, L2-normalised"},
    {"classifier_negated", "class,dim", "1", "class vectors built the same way from the negated templates"},
    {"status", "image", "code", "0 pending, 1 ok, 2 image failed"},
    {"topk", "image,k", "index", "classes with the highest cosines, best first; ties: lower class first (-1: none)"},
    {"topk_sim", "image,k", "1", "cosines of the topk classes (NaN: none)"},
    {"label_sim", "image", "1", "cosine with the true class's vector"},
    {"n_max", "image", "count", "classes sharing the top cosine (1 = no tie; -1 pending or failed)"},
    {"negated_top1", "image", "index", "first maximum of the cosines with classifier_negated (-1: none)"},
    {"negated_label_sim", "image", "1", "cosine with the true class's negated-template vector"},
};
static const H5Doc ITEMS[] = {
    {"item", "item", "index", "item index (manifest order)"},
    {"candidate", "candidate", "index", "candidate position within an item"},
    {"text_candidate", "text_candidate", "index", "text position within an item (choice items)"},
    {"image_candidate", "image_candidate", "index", "box position within an item (region items)"},
    {"item_type", "item_type", "utf-8 text", "item type name (coordinate; the same values as type_names)"},
    {"box_field", "box_field", "utf-8 text", "x, y, w, h"},
    {"crop_field", "crop_field", "utf-8 text", "x0, y0, x1, y1"},
    {"type_names", "item_type", "utf-8 text", "type names in order of first appearance"},
    {"type", "item", "index", "index into type_names"},
    {"kind", "item", "code", "0 choice (texts vs the whole image), 1 region (one text vs crops)"},
    {"image_index", "item", "index", "row in /images"},
    {"line", "item", "index", "manifest line (1-based)"},
    {"answer", "item", "index", "position of the correct candidate"},
    {"n_candidates", "item", "count", "candidates of the item"},
    {"text", "item,text_candidate", "utf-8 text", "candidate texts (choice) or the text in column 0 (region)"},
    {"truncated", "item,text_candidate", "flag", "1: the candidate text was cut at the 77-token context, 0 whole, -1 none"},
    {"box", "item,image_candidate,box_field", "pixel", "region boxes as given (NaN padding)"},
    {"ann_id", "item,image_candidate", "id", "COCO annotation id of a box (-1: explicit box or padding)"},
    {"crop", "item,image_candidate,crop_field", "pixel", "crop window actually used (-1: none)"},
    {"status", "item", "code", "0 pending, 1 ok, 2 image failed, 3 a box lies outside the image"},
    {"sim", "item,candidate", "1", "cosine of the item's text/image with each candidate, NaN padding"},
};
static const H5Doc ITEM_EMBEDDINGS[] = {
    {"text_row", "text_row", "index", "row i*k_text + k: text k of item i"},
    {"image_row", "image_row", "index", "row i*k_image + k: image (crop) k of item i"},
    {"dim", "dim", "index", "embedding component"},
    {"text", "text_row,dim", "1", "L2-normalised candidate text embeddings"},
    {"image", "image_row,dim", "1", "L2-normalised crop / whole-image embeddings"},
};
static const H5Doc STATS_VARIANTS[] = {
    {"variant", "variant", "utf-8 text", "variant name"},
    {"bin", "bin", "1", "centre of a histogram bin over [-1, 1] (edges: attribute edges of hist)"},
    {"count", "variant", "count", "valid (non-NaN) similarities"},
    {"mean", "variant", "1", "mean cosine"},
    {"std", "variant", "1", "sample standard deviation (ddof = 1)"},
    {"min", "variant", "1", "smallest cosine"},
    {"max", "variant", "1", "largest cosine"},
    {"q05", "variant", "1", "5% quantile (histogram, error <= 5e-5)"},
    {"q25", "variant", "1", "25% quantile"},
    {"median", "variant", "1", "median"},
    {"q75", "variant", "1", "75% quantile"},
    {"q95", "variant", "1", "95% quantile"},
    {"hist", "variant,bin", "count", "similarities per bin"},
};
static const H5Doc STATS_CONTRAST[] = {
    {"variant", "variant", "utf-8 text", "variant name (each negative variant against the base)"},
    {"n_pairs", "variant", "count", "captions where sim(base) and sim(variant) are valid; -1 if not negative"},
    {"n_flips", "variant", "count", "sim(variant) > sim(base)"},
    {"n_wins", "variant", "count", "sim(base) > sim(variant)"},
    {"n_ties", "variant", "count", "sim(base) == sim(variant)"},
    {"flip_share", "variant", "1", "n_flips / n_pairs"},
    {"neg_accuracy", "variant", "1", "n_wins / n_pairs"},
    {"mean_diff", "variant", "1", "mean of sim(variant) - sim(base)"},
    {"std_diff", "variant", "1", "sample sd (ddof = 1) of sim(variant) - sim(base)"},
    {"cohens_d", "variant", "1", "paired d_z = mean_diff / std_diff"},
    {"ci_low", "variant", "1", "bootstrap 95% CI of mean_diff, lower end"},
    {"ci_high", "variant", "1", "bootstrap 95% CI of mean_diff, upper end"},
};
static const H5Doc STATS_RETRIEVAL[] = {
    {"variant", "variant", "utf-8 text", "variant name (text queries of this variant)"},
    {"t2i_n", "variant", "count", "text queries"},
    {"t2i_r1", "variant", "1", "text-to-image recall at 1"},
    {"t2i_r5", "variant", "1", "text-to-image recall at 5"},
    {"t2i_r10", "variant", "1", "text-to-image recall at 10"},
    {"i2t_n", "", "count", "image queries"},
    {"i2t_r1", "", "1", "image-to-text recall at 1 (base variant's texts)"},
    {"i2t_r5", "", "1", "image-to-text recall at 5"},
    {"i2t_r10", "", "1", "image-to-text recall at 10"},
};
static const H5Doc STATS_ITEMS[] = {
    {"item_type", "item_type", "utf-8 text", "item type, last row 'all'"},
    {"n", "item_type", "count", "items"},
    {"n_valid", "item_type", "count", "items whose every candidate similarity is a number"},
    {"n_correct", "item_type", "count", "valid items whose answer scores strictly above every other candidate"},
    {"n_ties", "item_type", "count", "valid items whose answer ties the best other candidate (counted wrong)"},
    {"pair_n", "item_type", "count", "two-candidate items"},
    {"pair_correct", "item_type", "count", "correct two-candidate items"},
    {"accuracy", "item_type", "1", "n_correct / n_valid"},
    {"mean_margin", "item_type", "1", "mean of sim[answer] - max(other candidates)"},
    {"chance", "item_type", "1", "mean of 1 / n_candidates (what guessing scores)"},
    {"pair_accuracy", "item_type", "1", "pair_correct / pair_n"},
};
static const H5Doc STATS_CLASSIFY[] = {
    {"n", "", "count", "images"},
    {"n_valid", "", "count", "images with status ok"},
    {"n_classes", "", "count", "classes"},
    {"top1", "", "count", "valid images whose first maximum is the true class"},
    {"top5", "", "count", "valid images whose true class is among the topk"},
    {"ties", "", "count", "valid images whose top cosine is shared by several classes"},
    {"negated_top1", "", "count", "valid images whose negated classifier's first maximum is the true class"},
    {"accuracy_top1", "", "1", "top1 / n_valid"},
    {"accuracy_top5", "", "1", "top5 / n_valid"},
    {"accuracy_negated_top1", "", "1", "negated_top1 / n_valid"},
    {"chance", "", "1", "1 / n_classes"},
};
static const H5Doc TSNE[] = {
    {"point", "point", "index", "sampled point"},
    {"component", "component", "index", "principal component"},
    {"dim", "dim", "index", "embedding component"},
    {"kind_name", "kind_name", "utf-8 text", "image, positive, negative, other"},
    {"X", "point,component", "1", "PCA coordinates (x - mean) . components^T"},
    {"kind", "point", "code", "0 image, 1 positive text, 2 negative text, 3 text of an other variant"},
    {"variant", "point", "index", "variant of a text, -1 for images"},
    {"image_index", "point", "index", "row in /images"},
    {"caption_index", "point", "index", "row in /captions, -1 for images"},
    {"explained_variance", "component", "1", "eigenvalues of the sample covariance (ddof = 1)"},
    {"explained_variance_ratio", "component", "1", "explained_variance / total variance"},
    {"components", "component,dim", "1", "unit eigenvectors"},
    {"mean", "dim", "1", "mean of the sampled rows"},
    {"n_available", "kind_name", "count", "valid rows per kind before sampling"},
};

static const H5DocGroup SET_EVAL[] = {
    GROUP("/images", IMAGES),         GROUP("/captions", CAPTIONS),     GROUP("/variants", VARIANTS),
    GROUP("/texts", TEXTS),           GROUP("/embeddings", EMBEDDINGS), GROUP("/similarity", SIMILARITY),
    GROUP("/progress", PROGRESS),
};
static const H5DocGroup SET_ITEMS[] = {GROUP("/items", ITEMS), GROUP("/items/embeddings", ITEM_EMBEDDINGS)};
static const H5DocGroup SET_STATS[] = {GROUP("/stats/variants", STATS_VARIANTS),
                                       GROUP("/stats/contrast", STATS_CONTRAST),
                                       GROUP("/stats/retrieval", STATS_RETRIEVAL)};
static const H5DocGroup SET_STATS_ITEMS[] = {GROUP("/stats/items", STATS_ITEMS)};
static const H5DocGroup SET_TSNE[] = {GROUP("/tsne", TSNE)};
static const H5DocGroup SET_CLASSIFY[] = {GROUP("/classify", CLASSIFY)};
static const H5DocGroup SET_STATS_CLASSIFY[] = {GROUP("/stats/classify", STATS_CLASSIFY)};

// ---- layout ----------------------------------------------------------------------------------------
int h5_compression_check(int level) {
    if (level == 0) return CN_OK;
    unsigned maj = 0, min = 0, rel = 0;
    H5get_libversion(&maj, &min, &rel);
    unsigned have = maj * 10000u + min * 100u + rel;
    unsigned need = CN_H5_FILTER_MAJOR * 10000u + CN_H5_FILTER_MINOR * 100u + CN_H5_FILTER_RELEASE;
    if (have < need)
        return cn_fail(CN_E_CONFIG,
                       "[output] compression = %d needs HDF5 >= %d.%d.%d (collective writes of deflated datasets "
                       "through MPI-IO); this HDF5 is %u.%u.%u: set compression = 0",
                       level, CN_H5_FILTER_MAJOR, CN_H5_FILTER_MINOR, CN_H5_FILTER_RELEASE, maj, min, rel);
    if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) <= 0)
        return cn_fail(CN_E_CONFIG, "[output] compression = %d: this HDF5 has no deflate filter: set compression = 0",
                       level);
    return CN_OK;
}

#define CHUNK_BYTES (1u << 20)
#define CHUNK_MAX_BYTES (16u << 20)

hid_t h5_dcpl(int rank, const hsize_t *dims, size_t elem_size, int level, const hsize_t *hint) {
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (dcpl < 0) return -1;
    int empty = 0;
    for (int i = 0; i < rank; i++) empty |= dims[i] == 0;
    if (elem_size < 1) elem_size = 1;
    if (rank == 0 || empty || level < 0) {
        if (H5Pset_layout(dcpl, H5D_CONTIGUOUS) < 0) goto fail;
    } else {
        hsize_t chunk[3];
        if (hint) {
            // The writers' blocks (a shard's rows, a tile's columns): each chunk is written once.
            size_t bytes = elem_size;
            for (int i = 0; i < rank; i++) {
                chunk[i] = hint[i] && hint[i] < dims[i] ? hint[i] : dims[i];
                bytes *= chunk[i];
            }
            while (bytes > CHUNK_MAX_BYTES && chunk[0] > 1) { // a divisor of the rows still tiles the shard
                hsize_t p = 2;
                while (chunk[0] % p != 0 && p * p <= chunk[0]) p++;
                if (chunk[0] % p != 0) p = chunk[0]; // prime
                bytes /= p;
                chunk[0] /= p;
            }
        } else {
            // Fill the chunk from the last axis inward: whole rows where they fit in CHUNK_BYTES.
            size_t budget = CHUNK_BYTES / elem_size;
            if (budget < 1) budget = 1;
            for (int i = rank - 1; i >= 0; i--) {
                chunk[i] = dims[i] < budget ? dims[i] : budget;
                budget /= chunk[i];
                if (budget < 1) budget = 1;
            }
        }
        if (H5Pset_chunk(dcpl, rank, chunk) < 0) goto fail;
        if (level > 0 && (H5Pset_shuffle(dcpl) < 0 || H5Pset_deflate(dcpl, (unsigned)level) < 0)) goto fail;
    }
    if (H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY) < 0) goto fail;
    return dcpl;
fail:
    H5Pclose(dcpl);
    return -1;
}

// ---- coordinates -----------------------------------------------------------------------------------
// Write rows [r0, r0+n) of a 1-D dataset; a non-writer joins with nothing selected.
static herr_t write_rows(hid_t d, hid_t type, int64_t r0, int64_t n, const void *buf, hid_t dxpl, int writer) {
    hid_t fs = H5Dget_space(d);
    hsize_t start = (hsize_t)r0, count = (hsize_t)(n > 0 ? n : 1);
    hid_t ms = H5Screate_simple(1, &count, NULL);
    if (writer && n > 0)
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL);
    else {
        H5Sselect_none(fs);
        H5Sselect_none(ms);
    }
    herr_t e = H5Dwrite(d, type, ms, fs, dxpl, buf);
    H5Sclose(ms);
    H5Sclose(fs);
    return e;
}

static hid_t create_1d(hid_t loc, const char *name, hid_t type, int64_t n, int level) {
    hsize_t dim = (hsize_t)n;
    hid_t sp = H5Screate_simple(1, &dim, NULL);
    size_t es = H5Tis_variable_str(type) > 0 ? 16 : H5Tget_size(type);
    hid_t dcpl = h5_dcpl(1, &dim, es, level, NULL);
    hid_t d = (sp < 0 || dcpl < 0) ? -1 : H5Dcreate2(loc, name, type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (sp >= 0) H5Sclose(sp);
    return d;
}

static int make_scale(hid_t d, const char *name) {
    if (H5DSis_scale(d) > 0) return CN_OK;
    return H5DSset_scale(d, name) < 0 ? cn_fail(CN_E_IO, "cannot make %s a dimension scale", name) : CN_OK;
}

int h5_coord(hid_t loc, const char *name, hid_t type, int64_t n, const void *values, hid_t dxpl, int writer,
             int level) {
    hid_t d = create_1d(loc, name, type, n, level);
    if (d < 0) return cn_fail(CN_E_IO, "cannot create the coordinate dataset %s", name);
    herr_t e = n > 0 ? write_rows(d, type, 0, n, values, dxpl, writer) : 0;
    int rc = e < 0 ? cn_fail(CN_E_IO, "cannot write the coordinate dataset %s", name) : make_scale(d, name);
    H5Dclose(d);
    return rc;
}

int h5_coord_range(hid_t loc, const char *name, int64_t n, hid_t dxpl, int writer, int level) {
    hid_t d = create_1d(loc, name, H5T_STD_I64LE, n, level);
    if (d < 0) return cn_fail(CN_E_IO, "cannot create the coordinate dataset %s", name);
    const int64_t B = 1 << 16;
    int64_t *buf = mallocCheck(sizeof(int64_t) * (size_t)B);
    herr_t e = 0;
    for (int64_t r0 = 0; r0 < n && e >= 0; r0 += B) { // the same block count on every rank
        int64_t m = CN_MIN(B, n - r0);
        for (int64_t i = 0; i < m; i++) buf[i] = r0 + i;
        e = write_rows(d, H5T_NATIVE_INT64, r0, m, buf, dxpl, writer);
    }
    free(buf);
    int rc = e < 0 ? cn_fail(CN_E_IO, "cannot write the coordinate dataset %s", name) : make_scale(d, name);
    H5Dclose(d);
    return rc;
}

int h5_coord_strings(hid_t loc, const char *name, const char *const *strs, int64_t n, hid_t dxpl, int writer) {
    size_t len = 1;
    for (int64_t i = 0; i < n; i++) len = CN_MAX(len, strlen(strs[i]) + 1);
    char *buf = callocCheck((size_t)(n > 0 ? n : 1), len);
    for (int64_t i = 0; i < n; i++) memcpy(buf + (size_t)i * len, strs[i], strlen(strs[i]));
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, len);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    H5Tset_cset(t, H5T_CSET_UTF8);
    int rc = h5_coord(loc, name, t, n, buf, dxpl, writer, -1);
    if (rc == CN_OK) {
        hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
        rc = h5_attr_write_str(d, "_Encoding", "utf-8");
        H5Dclose(d);
    }
    H5Tclose(t);
    free(buf);
    return rc;
}

int h5_coord_copy(hid_t fid, const char *src, const char *dst, int level) {
    hid_t s = H5Dopen2(fid, src, H5P_DEFAULT);
    if (s < 0) return cn_fail(CN_E_IO, "cannot open %s", src);
    hid_t sp = H5Dget_space(s), ft = H5Dget_type(s);
    hsize_t n = 0;
    H5Sget_simple_extent_dims(sp, &n, NULL);
    int is_str = H5Tis_variable_str(ft) > 0;
    hid_t t = is_str ? h5_str_type() : H5Tcopy(ft);
    const char *slash = strrchr(dst, '/');
    char parent[256];
    snprintf(parent, sizeof parent, "%.*s", slash && slash != dst ? (int)(slash - dst) : 1, dst);
    hid_t g = H5Gopen2(fid, parent, H5P_DEFAULT);
    hid_t d = g < 0 ? -1 : create_1d(g, slash + 1, t, (int64_t)n, level);
    int rc = d < 0 ? cn_fail(CN_E_IO, "cannot create the coordinate dataset %s", dst) : CN_OK;
    const hsize_t B = 1 << 16;
    size_t es = H5Tget_size(t);
    char *buf = mallocCheck(es * (size_t)B);
    for (hsize_t r0 = 0; r0 < n && rc == CN_OK; r0 += B) {
        hsize_t m = n - r0 < B ? n - r0 : B;
        hid_t ms = H5Screate_simple(1, &m, NULL);
        H5Sselect_hyperslab(sp, H5S_SELECT_SET, &r0, NULL, &m, NULL);
        if (H5Dread(s, t, ms, sp, H5P_DEFAULT, buf) < 0) {
            rc = cn_fail(CN_E_IO, "cannot read %s", src);
        } else {
            if (write_rows(d, t, (int64_t)r0, (int64_t)m, buf, H5P_DEFAULT, 1) < 0)
                rc = cn_fail(CN_E_IO, "cannot write %s", dst);
            if (is_str) H5Dvlen_reclaim(t, ms, H5P_DEFAULT, buf); // the strings HDF5 allocated
        }
        H5Sclose(ms);
    }
    free(buf);
    if (rc == CN_OK) rc = make_scale(d, slash + 1);
    if (d >= 0) H5Dclose(d);
    if (g >= 0) H5Gclose(g);
    H5Tclose(t);
    H5Tclose(ft);
    H5Sclose(sp);
    H5Dclose(s);
    return rc;
}

// ---- documentation -----------------------------------------------------------------------------------
static int exists_path(hid_t fid, const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) { // H5Lexists fails on a missing intermediate group: walk down
        char c = *p;
        if (c != '/' && c != '\0') continue;
        *p = '\0';
        if (H5Lexists(fid, buf, H5P_DEFAULT) <= 0) return 0;
        *p = c;
        if (c == '\0') return 1;
    }
}

// Attach the coordinates named in `dims` ("a,b") to the axes of d, in group g.
static int attach_axes(hid_t g, hid_t d, const char *dims, const char *where) {
    char list[128];
    snprintf(list, sizeof list, "%s", dims);
    int axis = 0;
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save), axis++) {
        hid_t s = H5Dopen2(g, tok, H5P_DEFAULT);
        if (s < 0) return cn_fail(CN_E_INTERNAL, "%s: the coordinate dataset %s is missing", where, tok);
        herr_t e = H5DSis_attached(d, s, (unsigned)axis) > 0 ? 0 : H5DSattach_scale(d, s, (unsigned)axis);
        H5Dclose(s);
        if (e < 0) return cn_fail(CN_E_IO, "%s: cannot attach %s to axis %d", where, tok, axis);
    }
    hid_t sp = H5Dget_space(d);
    int rank = H5Sget_simple_extent_ndims(sp);
    H5Sclose(sp);
    if (rank != axis) return cn_fail(CN_E_INTERNAL, "%s has %d axes, the schema names %d", where, rank, axis);
    return CN_OK;
}

static int document_group(hid_t fid, const H5DocGroup *dg, const char *file) {
    if (!exists_path(fid, dg->group)) return CN_OK;
    hid_t g = H5Gopen2(fid, dg->group, H5P_DEFAULT);
    if (g < 0) return cn_fail(CN_E_IO, "%s: cannot open %s", file, dg->group);
    int rc = CN_OK;
    for (int pass = 0; pass < 2 && rc == CN_OK; pass++) { // coordinates first, then what uses them
        for (size_t i = 0; i < dg->n && rc == CN_OK; i++) {
            const H5Doc *doc = &dg->docs[i];
            int is_coord = strcmp(doc->name, doc->dims) == 0;
            if (is_coord != (pass == 0) || H5Lexists(g, doc->name, H5P_DEFAULT) <= 0) continue;
            char where[512];
            snprintf(where, sizeof where, "%s: %s/%s", file, dg->group, doc->name);
            hid_t d = H5Dopen2(g, doc->name, H5P_DEFAULT);
            if (d < 0) {
                rc = cn_fail(CN_E_IO, "%s: cannot open", where);
                break;
            }
            rc = h5_attr_write_str(d, "description", doc->desc);
            if (rc == CN_OK) rc = h5_attr_write_str(d, "units", doc->units);
            if (rc == CN_OK && is_coord) rc = make_scale(d, doc->name);
            if (rc == CN_OK && !is_coord && doc->dims[0]) rc = attach_axes(g, d, doc->dims, where);
            H5Dclose(d);
        }
    }
    H5Gclose(g);
    return rc;
}

int h5_document(hid_t fid, H5DocSet set, const char *file) {
    const H5DocGroup *groups = NULL;
    size_t n = 0;
    switch (set) {
    case H5DOC_EVAL: groups = SET_EVAL, n = sizeof SET_EVAL / sizeof SET_EVAL[0]; break;
    case H5DOC_ITEMS: groups = SET_ITEMS, n = sizeof SET_ITEMS / sizeof SET_ITEMS[0]; break;
    case H5DOC_STATS: groups = SET_STATS, n = sizeof SET_STATS / sizeof SET_STATS[0]; break;
    case H5DOC_STATS_ITEMS: groups = SET_STATS_ITEMS, n = 1; break;
    case H5DOC_TSNE: groups = SET_TSNE, n = 1; break;
    case H5DOC_CLASSIFY: groups = SET_CLASSIFY, n = 1; break;
    case H5DOC_STATS_CLASSIFY: groups = SET_STATS_CLASSIFY, n = 1; break;
    }
    int rc = CN_OK;
    for (size_t i = 0; i < n && rc == CN_OK; i++) rc = document_group(fid, &groups[i], file);
    return rc;
}
