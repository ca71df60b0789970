// image_decode.c — file bytes -> 8-bit RGB (HWC), with stb_image doing the pixel work.
//
// The reference is PIL 9.4's Image.open(path).convert("RGB"). stb_image decodes JPEG and PNG
// well, but it is lenient where PIL refuses and it interprets a few rare files differently,
// so before handing bytes to stb we walk the container ourselves (JPEG markers, PNG chunks):
//  * truncation: a JPEG without an end-of-image marker, a PNG whose zlib stream stops early
//    (PIL: "image file is truncated"); a PNG that only lacks IEND loads in PIL, so we add one;
//  * decompression bombs: the header size (stbi_info_from_memory) is checked against
//    IMAGE_MAX_PIXELS before stb allocates anything, and a PNG whose zlib stream inflates to
//    more than its header needs is refused (stb would grow its buffer up to 2 GiB);
//  * colour interpretation: a 3/4-component JPEG is YCbCr/RGB/CMYK/YCCK by a guess from JFIF,
//    Adobe APP14 and component ids; where stb's guess differs from libjpeg's (which PIL uses)
//    we refuse instead of returning different colours;
//  * 16-bit grayscale PNG: PIL 9.4 opens it as mode "I" and convert("RGB") clips every value
//    above 255 to white, stb takes the high byte: neither is the picture CLIP saw in training,
//    and the two disagree, so we refuse it with a message saying so.
// Everything else (grayscale -> RGB, alpha dropped without premultiplying, palettes,
// 16-bit RGB/RGBA -> high byte, sub-byte grayscale scaled x255/x85/x17) matches PIL exactly;
// see docs/images.md for the measured differences of the JPEG pixel decode itself.
//
// Thread safety: stb_image 2.27 as built by Debian keeps its failure reason and flip flags in
// thread-local storage; we never call the global setters (stbi_set_flip_vertically_on_load,
// stbi_set_unpremultiply_on_load, stbi_convert_iphone_png_to_rgb). The one remaining shared
// write in stb (the static "XXXX PNG chunk not known" string) is unreachable because unknown
// critical PNG chunks are refused here first. So decoding on several threads at once is safe.
#define _POSIX_C_SOURCE 200809L // fileno, fstat
#include "clipneg/image.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include <stb_image.h>

#include "clipneg/common.h"

static uint32_t be16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

// ---- format sniffing ---------------------------------------------------------------------------

static const uint8_t PNG_SIGNATURE[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static int is_jpeg(const uint8_t *b, size_t n) { return n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF; }
static int is_png(const uint8_t *b, size_t n) { return n >= 8 && memcmp(b, PNG_SIGNATURE, 8) == 0; }

// Names the formats people are likely to feed us by mistake, so the message says what it is.
static const char *other_format(const uint8_t *b, size_t n) {
    if (n >= 6 && (!memcmp(b, "GIF87a", 6) || !memcmp(b, "GIF89a", 6))) return "GIF";
    if (n >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4)) return "WebP";
    if (n >= 4 && (!memcmp(b, "II*\0", 4) || !memcmp(b, "MM\0*", 4))) return "TIFF";
    if (n >= 2 && b[0] == 'B' && b[1] == 'M') return "BMP";
    if (n >= 12 && !memcmp(b + 4, "ftyp", 4)) return "HEIF/AVIF/MP4";
    if (n >= 4 && !memcmp(b, "8BPS", 4)) return "PSD";
    if (n >= 12 && !memcmp(b, "\0\0\0\x0cjP  ", 8)) return "JPEG 2000";
    if (n >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '7') return "PNM";
    return NULL;
}

// ---- JPEG: marker walk -------------------------------------------------------------------------

typedef struct {
    int width, height, ncomp, precision, progressive;
    int comp_id[4], comp_tq[4];
    int jfif, adobe, adobe_transform;
    int huff_defined[2][4]; // [DC/AC][table id]: a DHT defined it
    int quant_defined[4];
    int comp_started[4];    // a scan initialised this component (progressive: its first DC scan)
} JpegInfo;

// DHT and DQT segments may each hold several tables; record which ones exist.
static int jpeg_tables(int m, const uint8_t *s, size_t slen, JpegInfo *info, const char *name) {
    size_t p = 0;
    while (p < slen) {
        int cls = s[p] >> 4, id = s[p] & 15;
        if (m == 0xC4) {
            if (cls > 1 || id > 3 || p + 17 > slen) return cn_fail(CN_E_IMAGE, "%s: corrupt JPEG: bad Huffman table header", name);
            size_t nvals = 0;
            for (int i = 1; i <= 16; i++) nvals += s[p + i];
            p += 17 + nvals;
            if (p > slen) return cn_fail(CN_E_IMAGE, "%s: corrupt JPEG: Huffman table longer than its segment", name);
            info->huff_defined[cls][id] = 1;
        } else {
            if (cls > 1 || id > 3) return cn_fail(CN_E_IMAGE, "%s: corrupt JPEG: bad quantization table header", name);
            p += 1 + (cls ? 128 : 64);
            if (p > slen) return cn_fail(CN_E_IMAGE, "%s: corrupt JPEG: quantization table longer than its segment", name);
            info->quant_defined[id] = 1;
        }
    }
    return CN_OK;
}

// Every table a scan uses must have been defined: stb_image would read the uninitialised
// table (output then depends on heap garbage), while libjpeg-turbo substitutes the standard
// Huffman tables (Motion-JPEG style files) or fails on a missing quantization table.
static int jpeg_check_scan(const uint8_t *s, size_t slen, JpegInfo *info, const char *name) {
    if (slen < 1 || slen < 1 + 2 * (size_t)s[0] + 3) return cn_fail(CN_E_IMAGE, "%s: corrupt JPEG: scan header too short", name);
    int ns = s[0];
    int ss = s[1 + 2 * ns], ah = s[3 + 2 * ns] >> 4;
    for (int i = 0; i < ns; i++) {
        int cid = s[1 + 2 * i], td = s[2 + 2 * i] >> 4, ta = s[2 + 2 * i] & 15;
        int c = 0;
        while (c < info->ncomp && info->comp_id[c] != cid) c++;
        if (c == info->ncomp) return cn_fail(CN_E_IMAGE, "%s: corrupt JPEG: scan uses component %d not in the frame", name, cid);
        if (info->comp_tq[c] > 3 || !info->quant_defined[info->comp_tq[c]])
            return cn_fail(CN_E_IMAGE, "%s: corrupt JPEG: quantization table %d is not defined", name, info->comp_tq[c]);
        int need_dc = info->progressive ? (ss == 0 && ah == 0) : 1;
        int need_ac = info->progressive ? (ss > 0) : 1;
        if ((need_dc && (td > 3 || !info->huff_defined[0][td])) || (need_ac && (ta > 3 || !info->huff_defined[1][ta])))
            return cn_fail(CN_E_IMAGE, "%s: unsupported JPEG: scan uses Huffman table %s%d that the file does not define "
                                       "(Motion-JPEG style default tables are not supported)", name,
                           need_dc && (td > 3 || !info->huff_defined[0][td]) ? "DC" : "AC",
                           need_dc && (td > 3 || !info->huff_defined[0][td]) ? td : ta);
        // stb does not zero its coefficient (progressive) or pixel (sequential) buffers: only a
        // first DC scan does. A scan that refines a component before that, or a component no scan
        // covers, would leave heap garbage in the picture (libjpeg zero-fills; we refuse).
        if (info->progressive && !(ss == 0 && ah == 0) && !info->comp_started[c])
            return cn_fail(CN_E_IMAGE, "%s: corrupt progressive JPEG: component %d is refined before its first DC scan", name, cid);
        if (!info->progressive || (ss == 0 && ah == 0)) info->comp_started[c] = 1;
    }
    return CN_OK;
}

// Walks every marker segment and skips entropy-coded data up to EOI, collecting what decides
// the colour space. Fails on truncation, on frame types stb cannot decode and on a missing frame.
static int jpeg_scan(const uint8_t *b, size_t n, const char *name, JpegInfo *info) {
    memset(info, 0, sizeof *info);
    int seen_sof = 0, seen_sos = 0;
    size_t pos = 2; // after SOI
    for (;;) {
        // A marker is 0xFF (any number of fill 0xFFs) then a non-0xFF, non-0x00 byte.
        if (pos >= n) break;
        if (b[pos] != 0xFF)
            return cn_fail(CN_E_IMAGE, "%s: corrupt JPEG: expected a marker at byte %zu, found 0x%02x", name, pos, b[pos]);
        while (pos < n && b[pos] == 0xFF) pos++;
        if (pos >= n) break;
        int m = b[pos++];
        if (m == 0xD9) { // EOI
            if (!seen_sof) return cn_fail(CN_E_IMAGE, "%s: corrupt JPEG: end-of-image marker before any frame header", name);
            for (int c = 0; c < info->ncomp; c++)
                if (!info->comp_started[c])
                    return cn_fail(CN_E_IMAGE, "%s: corrupt JPEG: component %d is in no scan%s", name, info->comp_id[c],
                                   info->progressive ? " (no first DC scan)" : "");
            return CN_OK;
        }
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue; // stand-alone markers
        if (m == 0xD8) return cn_fail(CN_E_IMAGE, "%s: corrupt JPEG: second start-of-image marker at byte %zu", name, pos - 2);
        if (pos + 2 > n) break;
        size_t seglen = be16(b + pos);
        if (seglen < 2) return cn_fail(CN_E_IMAGE, "%s: corrupt JPEG: marker 0x%02x at byte %zu has length %zu", name, m, pos - 2, seglen);
        if (pos + seglen > n) break;
        const uint8_t *s = b + pos + 2; // segment payload
        size_t slen = seglen - 2;
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) { // SOFn
            if (m != 0xC0 && m != 0xC1 && m != 0xC2) {
                const char *kind = (m == 0xC3 || m == 0xC7 || m == 0xCB || m == 0xCF) ? "lossless"
                                   : (m >= 0xC9) ? "arithmetic-coded" : "hierarchical";
                return cn_fail(CN_E_IMAGE, "%s: unsupported JPEG: %s (SOF%d) frames are not decoded by stb_image", name, kind, m - 0xC0);
            }
            if (seen_sof) return cn_fail(CN_E_IMAGE, "%s: corrupt JPEG: more than one frame header", name);
            if (slen < 6) return cn_fail(CN_E_IMAGE, "%s: corrupt JPEG: frame header too short (%zu bytes)", name, slen);
            info->precision = s[0];
            info->height = (int)be16(s + 1);
            info->width = (int)be16(s + 3);
            info->ncomp = s[5];
            if (info->precision != 8)
                return cn_fail(CN_E_IMAGE, "%s: unsupported JPEG: %d-bit samples (only 8-bit JPEG is decoded)", name, info->precision);
            if (info->ncomp != 1 && info->ncomp != 3 && info->ncomp != 4)
                return cn_fail(CN_E_IMAGE, "%s: unsupported JPEG: %d colour components", name, info->ncomp);
            if (slen < 6 + 3 * (size_t)info->ncomp) return cn_fail(CN_E_IMAGE, "%s: corrupt JPEG: frame header too short", name);
            for (int c = 0; c < info->ncomp; c++) {
                info->comp_id[c] = s[6 + 3 * c];
                info->comp_tq[c] = s[8 + 3 * c];
            }
            info->progressive = m == 0xC2;
            if (info->width == 0 || info->height == 0)
                return cn_fail(CN_E_IMAGE, "%s: unsupported JPEG: frame header says %dx%d (DNL-defined height is not supported)",
                               name, info->width, info->height);
            seen_sof = 1;
        } else if (m == 0xC4 || m == 0xDB) {
            int rc = jpeg_tables(m, s, slen, info, name);
            if (rc != CN_OK) return rc;
        } else if (m == 0xE0 && !seen_sos && slen >= 5 && !memcmp(s, "JFIF\0", 5)) {
            info->jfif = 1;
        } else if (m == 0xEE && !seen_sos && slen >= 12 && !memcmp(s, "Adobe", 5)) {
            info->adobe = 1;
            info->adobe_transform = s[11];
        }
        pos += seglen;
        if (m == 0xDA) { // SOS: skip entropy-coded data to the next real marker (not a stuffed 0xFF00 or RSTn)
            if (!seen_sof) return cn_fail(CN_E_IMAGE, "%s: corrupt JPEG: scan before frame header", name);
            int rc = jpeg_check_scan(s, slen, info, name);
            if (rc != CN_OK) return rc;
            seen_sos = 1;
            for (;;) {
                const uint8_t *ff = memchr(b + pos, 0xFF, n - pos);
                if (!ff) { pos = n; break; }
                pos = (size_t)(ff - b);
                if (pos + 1 >= n) { pos = n; break; }
                int next = b[pos + 1];
                if (next == 0x00 || (next >= 0xD0 && next <= 0xD7)) { pos += 2; continue; }
                if (next == 0xFF) { pos += 1; continue; }
                break; // a marker: back to the segment loop
            }
        }
    }
    return cn_fail(CN_E_IMAGE, "%s: truncated JPEG: no end-of-image marker in %zu bytes (PIL: \"image file is truncated\")", name, n);
}

// The colour space of a 3/4-component JPEG as libjpeg-turbo guesses it (jdapimin.c,
// default_decompress_parms) versus stb_image (load_jpeg_image); refuse where they differ.
static int jpeg_check_colorspace(const JpegInfo *j, const char *name) {
    if (j->ncomp == 3) {
        int ids_rgb = j->comp_id[0] == 'R' && j->comp_id[1] == 'G' && j->comp_id[2] == 'B';
        int ids_123 = j->comp_id[0] == 1 && j->comp_id[1] == 2 && j->comp_id[2] == 3;
        int libjpeg_rgb = j->jfif ? 0 : j->adobe ? (j->adobe_transform == 0) : (!ids_123 && ids_rgb);
        int stb_rgb = ids_rgb || (j->adobe && j->adobe_transform == 0 && !j->jfif);
        if (libjpeg_rgb != stb_rgb)
            return cn_fail(CN_E_IMAGE,
                           "%s: unsupported JPEG: ambiguous colour space (JFIF %d, Adobe transform %d, component ids %d,%d,%d): "
                           "libjpeg/PIL would read it as %s, stb_image as %s",
                           name, j->jfif, j->adobe ? j->adobe_transform : -1, j->comp_id[0], j->comp_id[1], j->comp_id[2],
                           libjpeg_rgb ? "RGB" : "YCbCr", stb_rgb ? "RGB" : "YCbCr");
    } else if (j->ncomp == 4) {
        // stb converts CMYK (Adobe transform 0) and YCCK (2) exactly as libjpeg + PIL's CMYK->RGB do
        // (R = C'*K'/255 on the stored, Adobe-inverted values); without the Adobe marker libjpeg
        // assumes CMYK and stb assumes YCbCr + ignored 4th channel, so those are refused.
        if (!j->adobe)
            return cn_fail(CN_E_IMAGE, "%s: unsupported JPEG: 4-component (CMYK) JPEG without an Adobe APP14 marker "
                                       "(PIL reads it as CMYK, stb_image as YCbCr)", name);
        if (j->adobe_transform != 0 && j->adobe_transform != 2)
            return cn_fail(CN_E_IMAGE, "%s: unsupported JPEG: 4-component JPEG with Adobe transform %d (PIL assumes YCCK, stb_image YCbCr)",
                           name, j->adobe_transform);
    }
    return CN_OK;
}

// ---- PNG: chunk walk + zlib bound ----------------------------------------------------------------

typedef struct {
    int width, height, depth, color_type, interlace;
    int has_iend;
} PngInfo;

static int png_channels(int color_type) {
    switch (color_type) {
    case 0: return 1; // gray
    case 2: return 3; // RGB
    case 3: return 1; // palette index
    case 4: return 2; // gray + alpha
    case 6: return 4; // RGBA
    default: return 0;
    }
}

// Bytes of filtered scanlines the header implies (what inflate must produce), Adam7 included.
static uint64_t png_raw_size(const PngInfo *p) {
    uint64_t bits_per_px = (uint64_t)png_channels(p->color_type) * (uint64_t)p->depth;
    if (!p->interlace) return (uint64_t)p->height * (1 + ((uint64_t)p->width * bits_per_px + 7) / 8);
    static const int x0[7] = {0, 4, 0, 2, 0, 1, 0}, y0[7] = {0, 0, 4, 0, 2, 0, 1};
    static const int dx[7] = {8, 8, 4, 4, 2, 2, 1}, dy[7] = {8, 8, 8, 4, 4, 2, 2};
    uint64_t total = 0;
    for (int i = 0; i < 7; i++) {
        uint64_t pw = p->width > x0[i] ? (uint64_t)(p->width - x0[i] + dx[i] - 1) / dx[i] : 0;
        uint64_t ph = p->height > y0[i] ? (uint64_t)(p->height - y0[i] + dy[i] - 1) / dy[i] : 0;
        if (pw && ph) total += ph * (1 + (pw * bits_per_px + 7) / 8);
    }
    return total;
}

// Walks the chunks: IHDR first and valid, no unknown critical chunk, and the IDAT zlib stream
// inflates to at least the header's size and not far beyond (the excess check bounds memory).
static int png_scan(const uint8_t *b, size_t n, const char *name, PngInfo *info) {
    memset(info, 0, sizeof *info);
    size_t pos = 8;
    if (n < pos + 8 + 13 || be32(b + pos) != 13 || memcmp(b + pos + 4, "IHDR", 4))
        return cn_fail(CN_E_IMAGE, "%s: corrupt PNG: %s", name, n < pos + 8 + 13 ? "truncated before the IHDR header" : "first chunk is not a 13-byte IHDR");
    const uint8_t *h = b + pos + 8;
    uint32_t w = be32(h), ht = be32(h + 4);
    info->depth = h[8];
    info->color_type = h[9];
    info->interlace = h[12];
    int ok_depth = (info->depth == 8 || info->depth == 16) ||
                   ((info->color_type == 0 || info->color_type == 3) && (info->depth == 1 || info->depth == 2 || info->depth == 4));
    if (!png_channels(info->color_type) || !ok_depth || (info->color_type == 3 && info->depth == 16) || h[10] != 0 || h[11] != 0 || h[12] > 1)
        return cn_fail(CN_E_IMAGE, "%s: corrupt PNG: invalid IHDR (bit depth %d, colour type %d, compression %d, filter %d, interlace %d)",
                       name, info->depth, info->color_type, h[10], h[11], h[12]);
    if (w == 0 || ht == 0 || w > INT_MAX || ht > INT_MAX)
        return cn_fail(CN_E_IMAGE, "%s: corrupt PNG: IHDR says %ux%u", name, w, ht);
    info->width = (int)w;
    info->height = (int)ht;
    if (info->color_type == 0 && info->depth == 16)
        return cn_fail(CN_E_IMAGE, "%s: unsupported PNG: 16-bit grayscale (PIL 9.4 clips it to white in convert(\"RGB\"), "
                                   "stb_image keeps the high byte; refusing rather than picking one)", name);
    if ((uint64_t)w * ht > (uint64_t)IMAGE_MAX_PIXELS) return CN_OK; // the caller refuses it with the standard message

    uint64_t need = png_raw_size(info);
    uint64_t limit = need + need / 8 + 4096; // stb accepts trailing zeros after the pixels (its issue #276)
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit(&zs) != Z_OK) return cn_fail(CN_E_INTERNAL, "%s: zlib inflateInit failed", name);
    uint8_t scratch[16384];
    uint64_t produced = 0;
    int zend = 0, zerr = 0, seen_idat = 0;
    pos += 8 + 13 + 4;
    size_t cut_at = 0;          // offset of a chunk cut off by the end of the file (0: none)
    char cut_type[5] = "????";
    while (pos < n) {
        if (pos + 8 > n) { cut_at = pos; break; }
        uint32_t len = be32(b + pos);
        const uint8_t *type = b + pos + 4;
        if (len > INT_MAX || pos + 12 + (size_t)len > n) {
            cut_at = pos;
            for (int i = 0; i < 4; i++) cut_type[i] = (type[i] >= 0x20 && type[i] < 0x7f) ? (char)type[i] : '?';
            break;
        }
        const uint8_t *data = b + pos + 8;
        if (!memcmp(type, "IEND", 4)) { info->has_iend = 1; break; }
        if (!memcmp(type, "IDAT", 4)) {
            seen_idat = 1;
            zs.next_in = (Bytef *)data;
            zs.avail_in = len;
            while (zs.avail_in > 0 && !zend && !zerr) {
                zs.next_out = scratch;
                zs.avail_out = sizeof scratch;
                int rc = inflate(&zs, Z_NO_FLUSH);
                produced += sizeof scratch - zs.avail_out;
                if (rc == Z_STREAM_END) zend = 1;
                else if (rc != Z_OK && rc != Z_BUF_ERROR) zerr = 1;
                else if (rc == Z_BUF_ERROR && zs.avail_out == sizeof scratch) break;
                if (produced > limit) break;
            }
            if (zerr) {
                inflateEnd(&zs);
                return cn_fail(CN_E_IMAGE, "%s: corrupt PNG: image data is not a valid zlib stream (%s)", name, zs.msg ? zs.msg : "inflate error");
            }
            if (produced > limit) {
                inflateEnd(&zs);
                return cn_fail(CN_E_IMAGE, "%s: refusing PNG: its image data inflates to more than the %llu bytes a %dx%d image needs "
                                           "(zlib decompression bomb?)", name, (unsigned long long)need, info->width, info->height);
            }
        } else if (!(type[0] & 0x20) && memcmp(type, "PLTE", 4) != 0) {
            // Upper-case first letter = critical chunk we do not know: stb fails on it (and writes a
            // non-thread-safe static string doing so); Apple's CgBI PNGs are the usual case.
            inflateEnd(&zs);
            return cn_fail(CN_E_IMAGE, "%s: unsupported PNG: unknown critical chunk '%c%c%c%c'%s", name, type[0], type[1], type[2],
                           type[3], !memcmp(type, "CgBI", 4) ? " (Apple-optimised PNG)" : "");
        }
        pos += 12 + (size_t)len;
    }
    inflateEnd(&zs);
    // A cut-off chunk is harmless once the image data is complete (PIL loads such files too).
    if ((!seen_idat || !zend) && cut_at)
        return cn_fail(CN_E_IMAGE, "%s: truncated PNG: chunk '%s' at byte %zu is cut off by the end of the file (%zu bytes; "
                                   "PIL: \"image file is truncated\")", name, cut_type, cut_at, n);
    if (!seen_idat) return cn_fail(CN_E_IMAGE, "%s: corrupt PNG: no image data (IDAT) chunk", name);
    if (!zend || produced < need)
        return cn_fail(CN_E_IMAGE, "%s: truncated PNG: image data %s after %llu of the %llu bytes a %dx%d image needs", name,
                       zend ? "ends" : "stops", (unsigned long long)produced, (unsigned long long)need, info->width, info->height);
    return CN_OK;
}

// ---- decode ------------------------------------------------------------------------------------

static int refuse_too_big(const char *name, int w, int h) {
    return cn_fail(CN_E_IMAGE, "%s: refusing %dx%d image: %lld pixels exceeds IMAGE_MAX_PIXELS (%lld; decompression bomb?)", name, w, h,
                   (long long)w * h, (long long)IMAGE_MAX_PIXELS);
}

int image_decode_rgb(const uint8_t *buf, size_t len, const char *name, uint8_t **rgb, int *w, int *h) {
    *rgb = NULL;
    *w = *h = 0;
    if (!name) name = "<memory>";
    if (len == 0) return cn_fail(CN_E_IMAGE, "%s: empty file (0 bytes)", name);
    if (len > INT_MAX) return cn_fail(CN_E_IMAGE, "%s: file too large for stb_image (%zu bytes, limit 2 GiB)", name, len);

    int rc;
    const uint8_t *data = buf;
    uint8_t *patched = NULL; // PNG with an IEND appended (PIL loads PNGs that lack it; stb decodes at IEND)
    size_t data_len = len;
    int hdr_w = 0, hdr_h = 0;
    if (is_jpeg(buf, len)) {
        JpegInfo j;
        if ((rc = jpeg_scan(buf, len, name, &j)) != CN_OK) return rc;
        if ((rc = jpeg_check_colorspace(&j, name)) != CN_OK) return rc;
        hdr_w = j.width;
        hdr_h = j.height;
    } else if (is_png(buf, len)) {
        PngInfo p;
        if ((rc = png_scan(buf, len, name, &p)) != CN_OK) return rc;
        hdr_w = p.width;
        hdr_h = p.height;
        if (!p.has_iend && (uint64_t)p.width * p.height <= (uint64_t)IMAGE_MAX_PIXELS) {
            static const uint8_t IEND[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
            // Append after the last complete chunk: drop any partial trailing chunk first.
            size_t pos = 8, end = 8;
            while (pos + 12 <= len && pos + 12 + (size_t)be32(buf + pos) <= len) end = pos = pos + 12 + be32(buf + pos);
            if (end + 12 > (size_t)INT_MAX) return cn_fail(CN_E_IMAGE, "%s: file too large for stb_image", name);
            patched = mallocCheck(end + 12);
            memcpy(patched, buf, end);
            memcpy(patched + end, IEND, 12);
            data = patched;
            data_len = end + 12;
        }
    } else {
        const char *fmt = other_format(buf, len);
        if (fmt) return cn_fail(CN_E_IMAGE, "%s: unsupported image format %s (clipneg decodes JPEG and PNG)", name, fmt);
        return cn_fail(CN_E_IMAGE, "%s: not a JPEG or PNG file (first bytes %02x %02x %02x %02x)", name, buf[0],
                       len > 1 ? buf[1] : 0, len > 2 ? buf[2] : 0, len > 3 ? buf[3] : 0);
    }

    // Decompression bombs: refuse on the header's size, before stb allocates the pixels.
    int iw = 0, ih = 0, icomp = 0;
    if (!stbi_info_from_memory(data, (int)data_len, &iw, &ih, &icomp)) {
        const char *why = stbi_failure_reason();
        free(patched);
        if ((uint64_t)hdr_w * (uint64_t)hdr_h > (uint64_t)IMAGE_MAX_PIXELS) return refuse_too_big(name, hdr_w, hdr_h); // stb's 2^24 side limit
        return cn_fail(CN_E_IMAGE, "%s: cannot read image header: %s", name, why ? why : "unknown reason");
    }
    if ((int64_t)iw * ih > IMAGE_MAX_PIXELS) {
        free(patched);
        return refuse_too_big(name, iw, ih);
    }

    int n_in = 0;
    uint8_t *pixels = stbi_load_from_memory(data, (int)data_len, w, h, &n_in, 3);
    free(patched);
    if (!pixels) {
        const char *why = stbi_failure_reason();
        return cn_fail(CN_E_IMAGE, "%s: cannot decode %s: %s", name, is_jpeg(buf, len) ? "JPEG" : "PNG", why ? why : "unknown reason");
    }
    if (*w != hdr_w || *h != hdr_h) { // cannot happen unless our header parse and stb disagree: a bug
        stbi_image_free(pixels);
        return cn_fail(CN_E_INTERNAL, "%s: stb_image decoded %dx%d but the header says %dx%d", name, *w, *h, hdr_w, hdr_h);
    }
    // stb allocates with malloc (STBI_MALLOC default), so callers may free() the result.
    *rgb = pixels;
    return CN_OK;
}

int image_load_rgb(const char *path, uint8_t **rgb, int *w, int *h) {
    *rgb = NULL;
    *w = *h = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return cn_fail(CN_E_IMAGE, "%s: cannot open image: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return cn_fail(CN_E_IMAGE, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > (uint64_t)INT_MAX) {
        fclose(fp);
        return cn_fail(CN_E_IMAGE, "%s: file too large for stb_image (%lld bytes, limit 2 GiB)", path, (long long)st.st_size);
    }
    size_t len = (size_t)st.st_size;
    uint8_t *buf = mallocCheck(len);
    size_t got = fread(buf, 1, len, fp);
    int bad = ferror(fp);
    fclose(fp);
    if (bad || got != len) {
        free(buf);
        return cn_fail(CN_E_IMAGE, "%s: read error (%zu of %zu bytes)", path, got, len);
    }
    int rc = image_decode_rgb(buf, len, path, rgb, w, h);
    free(buf);
    return rc;
}
