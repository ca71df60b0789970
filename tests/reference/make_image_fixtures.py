#!/usr/bin/env python3
"""Write tests/fixtures/images/: small odd, bad and hostile image files, and for each one that should
decode, what PIL 9.4 + open_clip make of it (the independent reference; clipneg never writes these).

    .venv/bin/python tests/reference/make_image_fixtures.py [--out tests/fixtures/images]

Pictures are synthetic (gradients, edges, noise; fixed seed), never copied from a data set.
Files that PIL cannot write (16-bit, sub-byte grayscale, interlaced, zlib bombs, bombs by header)
come from the tiny PNG writer below, which only packs bytes; the expected pixels are still PIL's
reading of those files. Outputs:
    NAME.png / NAME.jpg       the input
    NAME.ppm                  PIL: Image.open(NAME).convert("RGB") (binary P6), for decodable inputs
    NAME.rNN.f32              open_clip preprocess(convert("RGB")) at size NN: float32 [3,NN,NN] LE
    MANIFEST.txt              one line per input: name, expected outcome, the reason, PIL's mode
test_image.c holds its own table of expected outcomes and message substrings; MANIFEST.txt is
documentation (and what this script checks PIL against).
"""
import argparse
import io
import os
import struct
import zlib

import numpy as np
from PIL import Image


def synthetic_rgb(w, h, seed):
    """Smooth gradients + a hard-edged disc + mild noise: exercises both the filter's smooth
    response and its overshoot/clipping at edges."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * x / max(w - 1, 1)
    g = 255 * y / max(h - 1, 1)
    b = 128 + 100 * np.sin(x / 3.0) * np.cos(y / 4.0)
    img = np.stack([r, g, b], -1)
    disc = (x - w * 0.6) ** 2 + (y - h * 0.4) ** 2 < (min(w, h) * 0.25) ** 2
    img[disc] = [250, 20, 5]
    img += rng.normal(0, 6, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def png_bytes(w, h, color_type, depth, rows, interlace=0, extra_chunks=(), iend=True, idat=None):
    """Pack filtered-with-type-0 scanlines into a PNG. rows: list of per-row byte strings
    (already packed at `depth`); for interlace=1 a list of the 7 passes' row lists."""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    if idat is None:
        if interlace:
            raw = b"".join(b"".join(b"\x00" + r for r in p) for p in rows)
        else:
            raw = b"".join(b"\x00" + r for r in rows)
        idat = zlib.compress(raw, 9)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, interlace))
    for t, d in extra_chunks:
        out += chunk(t, d)
    out += chunk(b"IDAT", idat)
    if iend:
        out += chunk(b"IEND", b"")
    return out


def pack_bits(vals, depth):
    """Pack a row of small ints MSB-first at `depth` bits each (PNG sub-byte samples)."""
    per = 8 // depth
    out = bytearray()
    for i in range(0, len(vals), per):
        byte = 0
        for j in range(per):
            v = vals[i + j] if i + j < len(vals) else 0
            byte |= (int(v) & ((1 << depth) - 1)) << (8 - depth * (j + 1))
        out.append(byte)
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def adam7_passes(a):
    """a: [h, w, c] uint8 -> the 7 Adam7 passes as lists of row bytes."""
    passes = []
    for x0, y0, dx, dy in ADAM7:
        sub = a[y0::dy, x0::dx]
        passes.append([sub[r].tobytes() for r in range(sub.shape[0])] if sub.shape[1] else [])
    return passes


def jpeg_segments(data):
    """Split a JPEG into (marker, payload) up to SOS; returns (list, rest-from-SOS)."""
    pos, segs = 2, []
    while True:
        assert data[pos] == 0xFF
        m = data[pos + 1]
        ln = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if m == 0xDA:
            return segs, data[pos:]
        segs.append((m, data[pos + 4:pos + 2 + ln]))
        pos += 2 + ln


def jpeg_join(segs, rest):
    out = b"\xff\xd8"
    for m, p in segs:
        out += bytes([0xFF, m]) + struct.pack(">H", len(p) + 2) + p
    return out + rest


def preprocess_ref(path, size):
    import open_clip
    from open_clip.transform import image_transform
    pre = image_transform(size, is_train=False, mean=open_clip.OPENAI_DATASET_MEAN, std=open_clip.OPENAI_DATASET_STD)
    return pre(Image.open(path).convert("RGB")).numpy().astype("<f4")


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "fixtures", "images"))
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    manifest = []

    def write(name, data, expect, why):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        mode = "-"
        if expect == "ok":
            im = Image.open(os.path.join(out, name))
            mode = im.mode
            im.convert("RGB").save(os.path.join(out, name + ".ppm"))
        else:  # check that PIL also fails, or say why we differ
            try:
                im = Image.open(io.BytesIO(data))
                mode = im.mode
                im.load()
                mode += " (PIL loads it)"
            except Exception as e:  # noqa: BLE001 - any PIL failure is the point here
                mode = "PIL error: " + type(e).__name__
        manifest.append(f"{name}\t{expect}\t{why}\t{mode}")

    W, H = 61, 47
    rgb = synthetic_rgb(W, H, 0)
    alpha = np.clip(np.linspace(0, 255, W)[None, :].repeat(H, 0) + np.random.RandomState(1).normal(0, 20, (H, W)), 0, 255)
    alpha = alpha.astype(np.uint8)
    gray = np.asarray(Image.fromarray(rgb).convert("L"))

    def pil_bytes(im, fmt, **kw):
        b = io.BytesIO()
        im.save(b, fmt, **kw)
        return b.getvalue()

    # ---- valid PNGs: decode must equal PIL exactly ----
    write("rgb.png", pil_bytes(Image.fromarray(rgb), "PNG"), "ok", "RGB 8-bit")
    write("rgba.png", pil_bytes(Image.fromarray(np.dstack([rgb, alpha]), "RGBA"), "PNG"), "ok",
          "RGBA: alpha dropped, colour not premultiplied")
    write("la.png", pil_bytes(Image.fromarray(np.dstack([gray, alpha]), "LA"), "PNG"), "ok", "gray+alpha")
    write("gray.png", pil_bytes(Image.fromarray(gray), "PNG"), "ok", "L 8-bit -> R=G=B")
    pal = Image.fromarray(rgb).quantize(colors=200, method=Image.Quantize.MEDIANCUT)
    write("pal8_trns.png", pil_bytes(pal, "PNG", transparency=3), "ok", "palette + tRNS: transparency ignored")
    pal16 = Image.fromarray(rgb).quantize(colors=16, method=Image.Quantize.MEDIANCUT)
    write("pal4.png", pil_bytes(pal16, "PNG", bits=4), "ok", "4-bit palette")
    g4 = (gray >> 4).astype(np.uint8)
    write("gray4.png", png_bytes(W, H, 0, 4, [pack_bits(r, 4) for r in g4]), "ok", "4-bit gray, scaled x17")
    g1 = (gray > 127).astype(np.uint8)
    write("gray1.png", png_bytes(W, H, 0, 1, [pack_bits(r, 1) for r in g1]), "ok", "1-bit gray")
    rng = np.random.RandomState(2)
    rgb16 = (rgb.astype(np.uint16) * 257 + rng.randint(0, 256, rgb.shape)).astype(">u2")
    write("rgb16.png", png_bytes(W, H, 2, 16, [r.tobytes() for r in rgb16]), "ok", "16-bit RGB -> high byte")
    a16 = (alpha.astype(np.uint16) * 257).astype(">u2")
    rgba16 = np.dstack([rgb16, a16]).astype(">u2")
    write("rgba16.png", png_bytes(W, H, 6, 16, [r.tobytes() for r in rgba16]), "ok", "16-bit RGBA -> high byte, alpha dropped")
    write("interlaced.png", png_bytes(W, H, 2, 8, adam7_passes(rgb), interlace=1), "ok", "Adam7 interlaced RGB")
    full = pil_bytes(Image.fromarray(rgb), "PNG")
    write("no_iend.png", full[:-12], "ok", "IEND missing (PIL loads it; clipneg appends one)")

    # ---- valid JPEGs: decode within the stb-vs-libjpeg tolerance ----
    write("gray.jpg", pil_bytes(Image.fromarray(gray), "JPEG", quality=90), "ok", "grayscale JPEG")
    # PIL's RGB->CMYK gives K = 0, which would leave the K multiplication untested: use real ink.
    ink = 255 - rgb.astype(np.int32)
    k = np.clip(ink.min(axis=2) - 20 + np.random.RandomState(5).randint(0, 40, (H, W)), 0, 255)
    cmyk = Image.fromarray(np.dstack([np.clip(ink - k[..., None], 0, 255), k]).astype(np.uint8), "CMYK")
    cmyk_jpg = pil_bytes(cmyk, "JPEG", quality=95)
    write("cmyk.jpg", cmyk_jpg, "ok", "Adobe CMYK JPEG (inverted), PIL cmyk->rgb")
    write("progressive420.jpg", pil_bytes(Image.fromarray(rgb), "JPEG", quality=85, progressive=True, subsampling=2),
          "ok", "progressive, 4:2:0 chroma")
    base444 = pil_bytes(Image.fromarray(rgb), "JPEG", quality=92, subsampling=0)
    write("rgb444.jpg", base444, "ok", "baseline 4:4:4 like coco-mini")

    # ---- refused (CN_E_IMAGE) ----
    segs, rest = jpeg_segments(cmyk_jpg)
    write("cmyk_noadobe.jpg", jpeg_join([s for s in segs if s[0] != 0xEE], rest), "refuse",
          "4 components without Adobe APP14: PIL CMYK vs stb YCbCr")
    segs, rest = jpeg_segments(base444)
    fixed = []
    for m, p in segs:  # component ids 1,2,3 -> 'R','G','B' in SOF (and in SOS below)
        if m == 0xC0:
            p = bytearray(p)
            for c in range(3):
                p[6 + 3 * c] = b"RGB"[c]
            p = bytes(p)
        fixed.append((m, p))
    sos = bytearray(rest)
    for c in range(3):
        sos[5 + 2 * c] = b"RGB"[c]
    write("jfif_rgb_ids.jpg", jpeg_join(fixed, bytes(sos)), "refuse", "JFIF + ids R,G,B: libjpeg YCbCr vs stb RGB")
    segs, rest = jpeg_segments(base444)
    write("no_dht.jpg", jpeg_join([s for s in segs if s[0] != 0xC4], rest), "refuse",
          "no Huffman tables (Motion-JPEG style): libjpeg uses the standard ones, stb reads garbage")
    write("truncated.jpg", base444[: len(base444) // 2], "refuse", "half a JPEG")
    write("no_eoi.jpg", base444[:-2], "refuse",
          "JPEG without EOI (PIL loads or says 'image file is truncated' depending on its read buffering)")
    write("truncated.png", full[: len(full) // 2], "refuse", "half a PNG")
    write("empty.jpg", b"", "refuse", "zero bytes")
    write("not_an_image.jpg", b"caption,url\na cat on a sofa,http://example.com/cat.jpg\n", "refuse", "a CSV named .jpg")
    write("anim.gif", pil_bytes(Image.fromarray(rgb), "GIF"), "refuse", "GIF: not JPEG/PNG")
    g16 = (gray.astype(np.uint16) * 257).astype(">u2")
    write("gray16.png", png_bytes(W, H, 0, 16, [r.tobytes() for r in g16]), "refuse",
          "16-bit gray: PIL clips to 255 in convert(RGB)")
    # Bomb by header: 30000 x 30000 claimed (900 Mpx, 2.7 GB as RGB) with a tiny, valid zlib start.
    write("bomb_30000.png", png_bytes(30000, 30000, 2, 8, None, idat=zlib.compress(b"\x00" * 1000)), "refuse",
          "IHDR 30000x30000 > IMAGE_MAX_PIXELS")
    segs, rest = jpeg_segments(base444)
    big = [(m, (p[:1] + struct.pack(">HH", 30000, 30000) + p[5:]) if m == 0xC0 else p) for m, p in segs]
    write("bomb_30000.jpg", jpeg_join(big, rest), "refuse", "SOF 30000x30000 > IMAGE_MAX_PIXELS")
    # zlib bomb: 64x64 gray needs 64*65 bytes; the stream inflates to 16 MiB of zeros.
    write("zbomb.png", png_bytes(64, 64, 0, 8, None, idat=zlib.compress(b"\x00" * (16 << 20), 9)), "refuse",
          "IDAT inflates far beyond 64x64")

    # ---- open_clip preprocess references (size 32 keeps them small) ----
    tall = synthetic_rgb(23, 71, 3)
    tiny = synthetic_rgb(5, 3, 4)
    write("tall.png", pil_bytes(Image.fromarray(tall), "PNG"), "ok", "23x71: vertical crop offset 33")
    write("tiny.png", pil_bytes(Image.fromarray(tiny), "PNG"), "ok", "5x3: upsampling, crop offset round(10.5)=10")
    write("down.png", pil_bytes(Image.fromarray(synthetic_rgb(150, 110, 6)), "PNG"), "ok",
          "150x110 -> 43x32: downscale x3.4, long negative filter lobes")
    for name in ["rgb.png", "tall.png", "tiny.png", "rgba.png", "down.png"]:
        t = preprocess_ref(os.path.join(out, name), 32)
        t.tofile(os.path.join(out, f"{name}.r32.f32"))

    with open(os.path.join(out, "MANIFEST.txt"), "w") as f:
        f.write("# name\texpected\twhy\tPIL 9.4 (mode, or its error)\n" + "\n".join(manifest) + "\n")
    total = sum(os.path.getsize(os.path.join(out, n)) for n in os.listdir(out))
    print(f"wrote {len(manifest)} inputs to {out} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
