// h5util.c — the schema table (docs/hdf5-schema.md) and small HDF5 helpers shared by h5out.c
// (creation, parallel writer), h5read.c (resume check, info) and the commands.
#define _POSIX_C_SOURCE 200809L // gmtime_r
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clipneg/common.h"
#include "clipneg/h5out.h"

// ---- the schema: one row per dataset -------------------------------------------------------------
static const char *const DS_PATHS[DS_COUNT] = {
    [DS_IMG_ID] = "/images/id",
    [DS_IMG_FILE] = "/images/file_name",
    [DS_IMG_STATUS] = "/images/status",
    [DS_IMG_ERROR] = "/images/error",
    [DS_IMG_FIRST_CAP] = "/images/first_caption",
    [DS_IMG_N_CAP] = "/images/n_captions",
    [DS_CAP_ID] = "/captions/id",
    [DS_CAP_IMAGE] = "/captions/image_index",
    [DS_CAP_TEXT] = "/captions/text",
    [DS_VAR_NAME] = "/variants/name",
    [DS_VAR_TEMPLATE] = "/variants/template",
    [DS_VAR_POLARITY] = "/variants/polarity",
    [DS_TXT_TEXT] = "/texts/text",
    [DS_TXT_STATUS] = "/texts/status",
    [DS_TXT_N_TOKENS] = "/texts/n_tokens",
    [DS_TXT_TRUNCATED] = "/texts/truncated",
    [DS_EMB_IMAGE] = "/embeddings/image",
    [DS_EMB_TEXT] = "/embeddings/text",
    [DS_SIM_PAIRED] = "/similarity/paired",
    [DS_SIM_FULL] = "/similarity/full",
    [DS_PROG_TEXT] = "/progress/text_shards",
    [DS_PROG_IMAGE] = "/progress/image_shards",
    [DS_PROG_SIM] = "/progress/sim_shards",
};

const char *h5ds_path(H5DsId id) { return (id >= 0 && id < DS_COUNT) ? DS_PATHS[id] : "?"; }

H5Kind h5ds_kind(H5DsId id, const H5Shape *sh) {
    switch (id) {
    case DS_IMG_ID:
    case DS_CAP_ID: return H5K_I64;
    case DS_IMG_FILE:
    case DS_IMG_ERROR:
    case DS_CAP_TEXT:
    case DS_VAR_NAME:
    case DS_VAR_TEMPLATE:
    case DS_TXT_TEXT: return H5K_STR;
    case DS_IMG_STATUS:
    case DS_VAR_POLARITY:
    case DS_TXT_STATUS:
    case DS_TXT_TRUNCATED: return H5K_I8;
    case DS_IMG_FIRST_CAP:
    case DS_IMG_N_CAP:
    case DS_CAP_IMAGE:
    case DS_TXT_N_TOKENS: return H5K_I32;
    case DS_EMB_IMAGE:
    case DS_EMB_TEXT:
    case DS_SIM_PAIRED: return H5K_F32;
    case DS_SIM_FULL: return sh && sh->full_f16 ? H5K_F16 : H5K_F32;
    case DS_PROG_TEXT:
    case DS_PROG_IMAGE:
    case DS_PROG_SIM: return H5K_U8;
    default: return H5K_U8;
    }
}

int h5ds_dims(H5DsId id, const H5Shape *sh, hsize_t dims[2]) {
    dims[0] = dims[1] = 0;
    switch (id) {
    case DS_IMG_ID:
    case DS_IMG_FILE:
    case DS_IMG_STATUS:
    case DS_IMG_ERROR:
    case DS_IMG_FIRST_CAP:
    case DS_IMG_N_CAP: dims[0] = (hsize_t)sh->n_img; return 1;
    case DS_CAP_ID:
    case DS_CAP_IMAGE:
    case DS_CAP_TEXT: dims[0] = (hsize_t)sh->n_cap; return 1;
    case DS_VAR_NAME:
    case DS_VAR_TEMPLATE:
    case DS_VAR_POLARITY: dims[0] = (hsize_t)sh->n_var; return 1;
    case DS_TXT_TEXT:
    case DS_TXT_STATUS:
    case DS_TXT_N_TOKENS:
    case DS_TXT_TRUNCATED: dims[0] = (hsize_t)sh->n_text; return 1;
    case DS_EMB_IMAGE:
        dims[0] = (hsize_t)sh->n_img;
        dims[1] = (hsize_t)sh->dim;
        return 2;
    case DS_EMB_TEXT:
        dims[0] = (hsize_t)sh->n_text;
        dims[1] = (hsize_t)sh->dim;
        return 2;
    case DS_SIM_PAIRED:
        dims[0] = (hsize_t)sh->n_cap;
        dims[1] = (hsize_t)sh->n_var;
        return 2;
    case DS_SIM_FULL:
        if (!sh->full_similarity) return 0;
        dims[0] = (hsize_t)sh->n_img;
        dims[1] = (hsize_t)sh->n_text;
        return 2;
    case DS_PROG_TEXT: dims[0] = (hsize_t)CN_CEIL_DIV(sh->n_text, sh->text_shard); return 1;
    case DS_PROG_IMAGE:
    case DS_PROG_SIM: dims[0] = (hsize_t)CN_CEIL_DIV(sh->n_img, sh->image_shard); return 1;
    default: return 0;
    }
}

int h5ds_in_emb_file(H5DsId id) { return id == DS_EMB_IMAGE || id == DS_EMB_TEXT; }

// ---- types ----------------------------------------------------------------------------------------
hid_t h5_half_type(void) {
    // IEEE binary16 little-endian: sign bit 15, exponent bits 10..14 (bias 15), mantissa bits 0..9.
    // Built from a float32 copy so HDF5 treats it as a float class (h5py maps it to numpy float16).
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    if (t < 0) return t;
    if (H5Tset_fields(t, 15, 10, 5, 0, 10) < 0 || H5Tset_precision(t, 16) < 0 || H5Tset_offset(t, 0) < 0 ||
        H5Tset_size(t, 2) < 0 || H5Tset_ebias(t, 15) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

hid_t h5_str_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return t;
    if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

hid_t h5_type(H5Kind k) {
    switch (k) {
    case H5K_I8: return H5Tcopy(H5T_STD_I8LE);
    case H5K_U8: return H5Tcopy(H5T_STD_U8LE);
    case H5K_I32: return H5Tcopy(H5T_STD_I32LE);
    case H5K_I64: return H5Tcopy(H5T_STD_I64LE);
    case H5K_F32: return H5Tcopy(H5T_IEEE_F32LE);
    case H5K_F16: return h5_half_type();
    case H5K_STR: return h5_str_type();
    }
    return -1;
}

void h5_limit_free_lists(void) {
    H5set_free_list_limits(256 << 10, 64 << 10, 256 << 10, 64 << 10, 1 << 20, 256 << 10);
}

void utc_now_iso(char buf[32]) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

// ---- attributes -----------------------------------------------------------------------------------
// Create or overwrite a scalar attribute.
static int attr_write(hid_t obj, const char *name, hid_t type, const void *value) {
    hid_t a = -1, sp = -1;
    htri_t exists = H5Aexists(obj, name);
    if (exists < 0) return cn_fail(CN_E_IO, "HDF5: cannot query attribute '%s'", name);
    if (exists)
        a = H5Aopen(obj, name, H5P_DEFAULT);
    else {
        sp = H5Screate(H5S_SCALAR);
        a = H5Acreate2(obj, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    }
    herr_t e = a >= 0 ? H5Awrite(a, type, value) : -1;
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    return e < 0 ? cn_fail(CN_E_IO, "HDF5: cannot write attribute '%s'", name) : CN_OK;
}

int h5_attr_write_str(hid_t obj, const char *name, const char *value) {
    hid_t t = h5_str_type();
    const char *v = value ? value : "";
    int rc = attr_write(obj, name, t, &v);
    H5Tclose(t);
    return rc;
}

int h5_attr_write_int(hid_t obj, const char *name, int64_t value) {
    return attr_write(obj, name, H5T_NATIVE_INT64, &value);
}

int h5_attr_read_str(hid_t obj, const char *name, char **out) {
    *out = NULL;
    if (H5Aexists(obj, name) <= 0) return cn_fail(CN_E_IO, "attribute '%s' is missing", name);
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return cn_fail(CN_E_IO, "attribute '%s' cannot be opened", name);
    hid_t ft = H5Aget_type(a);
    int rc = CN_OK;
    if (H5Tget_class(ft) != H5T_STRING)
        rc = cn_fail(CN_E_IO, "attribute '%s' is not a string", name);
    else if (H5Tis_variable_str(ft) > 0) {
        hid_t t = h5_str_type();
        char *v = NULL;
        if (H5Aread(a, t, &v) < 0)
            rc = cn_fail(CN_E_IO, "attribute '%s' cannot be read", name);
        else {
            *out = strdupCheck(v ? v : "");
            hid_t sp = H5Aget_space(a);
            H5Dvlen_reclaim(t, sp, H5P_DEFAULT, &v);
            H5Sclose(sp);
        }
        H5Tclose(t);
    } else { // fixed-length (written by other tools): read as is
        size_t n = H5Tget_size(ft);
        char *v = callocCheck(n + 1, 1);
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, n + 1);
        if (H5Aread(a, t, v) < 0) rc = cn_fail(CN_E_IO, "attribute '%s' cannot be read", name);
        H5Tclose(t);
        if (rc == CN_OK)
            *out = v;
        else
            free(v);
    }
    H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

int h5_attr_read_int(hid_t obj, const char *name, int64_t *out) {
    *out = 0;
    if (H5Aexists(obj, name) <= 0) return cn_fail(CN_E_IO, "attribute '%s' is missing", name);
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return cn_fail(CN_E_IO, "attribute '%s' cannot be opened", name);
    hid_t ft = H5Aget_type(a);
    int rc = CN_OK;
    if (H5Tget_class(ft) != H5T_INTEGER)
        rc = cn_fail(CN_E_IO, "attribute '%s' is not an integer", name);
    else if (H5Aread(a, H5T_NATIVE_INT64, out) < 0)
        rc = cn_fail(CN_E_IO, "attribute '%s' cannot be read", name);
    H5Tclose(ft);
    H5Aclose(a);
    return rc;
}
