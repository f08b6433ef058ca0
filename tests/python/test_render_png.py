"""bsattn visualize, checked with independent decoders: PIL reads our PNGs, xml.etree our SVGs.

Usage: test_render_png.py BSATTN_BINARY SCRATCH_DIR. Colours at known kept / partial / empty /
outside-causal blocks are computed here from the mask with NumPy (token-level pair counts), and
sampled at block centres from the panel rectangles the tool reports with --json.
"""
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
from PIL import Image

BIN, SCRATCH = sys.argv[1], sys.argv[2]
D = os.path.join(SCRATCH, "render_py")
os.makedirs(D, exist_ok=True)
COLORS = {"kept": (0x1F, 0x4E, 0x79), "partial": (0xF2, 0x8E, 0x2B), "empty": (0xE4, 0xE4, 0xE4), "hidden": (255, 255, 255)}
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)


def run(*args, expect=0):
    p = subprocess.run([BIN, *args], capture_output=True, text=True)
    if p.returncode == 1 and "no Cairo" in p.stderr:
        print("SKIP: this build has no Cairo:", p.stderr.strip())
        sys.exit(0)
    check(p.returncode == expect, f"{args}: exit {p.returncode}, wanted {expect}; stderr: {p.stderr.strip()}")
    return p


def block_class(bits, q_len, kv_len, bq, bk, causal, i, j):
    qs = np.arange(i * bq, min(q_len, (i + 1) * bq))[:, None]
    ks = np.arange(j * bk, min(kv_len, (j + 1) * bk))[None, :]
    vis = np.ones((qs.size, ks.size), bool) if not causal else (ks <= qs + kv_len - q_len)
    pairs = int(vis.sum())
    if causal and pairs == 0:  # loading a causal mask clears blocks with no visible pair
        return "hidden"
    if bits[i, j]:
        return "kept" if pairs == bq * bk else "partial"
    return "empty"


# 1. A causal mask with tails, 2 heads, from an .npy NumPy wrote; colours at every block centre.
rng = np.random.default_rng(1234)
q_len = kv_len = 120  # 8 blocks of 16, the last one 8 tokens long
bits = rng.random((1, 2, 8, 8)) < 0.5
np.save(os.path.join(D, "m.npy"), bits)
png, lay = os.path.join(D, "m.png"), os.path.join(D, "m.json")
run("visualize", "mask", os.path.join(D, "m.npy"), "--q-len", "120", "--kv-len", "120", "--block", "16", "--causal",
    "-o", png, "--json", lay, "-q")
layout = json.load(open(lay))
img = Image.open(png).convert("RGB")
check(img.size == (layout["width"], layout["height"]), f"PNG size {img.size} vs layout {layout['width']}x{layout['height']}")
check(len(layout["panels"]) == 2, "two head panels")
seen = set()
for h, panel in enumerate(layout["panels"]):
    for i in range(8):
        for j in range(8):
            want = block_class(bits[0, h], q_len, kv_len, 16, 16, True, i, j)
            x = int(panel["x"] + (j + 0.5) * panel["w"] / 8)
            y = int(panel["y"] + (i + 0.5) * panel["h"] / 8)
            got = img.getpixel((x, y))
            seen.add(want)
            check(got == COLORS[want], f"head {h} block ({i},{j}): pixel {got} at ({x},{y}), wanted {want} {COLORS[want]}")
check(seen == set(COLORS), f"the test mask covers every class (saw {seen})")

# 2. Max-pooling: one kept block among 2048 x 2048 stays visible at 400 px.
big = np.zeros((2048, 2048), bool)
big[1234, 567] = True
np.save(os.path.join(D, "iso.npy"), big)
png = os.path.join(D, "iso.png")
run("visualize", "mask", os.path.join(D, "iso.npy"), "--width", "400", "-o", png, "--json", lay, "-q")
panel = json.load(open(lay))["panels"][0]
a = np.asarray(Image.open(png).convert("RGB"))
x0, y0 = int(panel["x"]), int(panel["y"])
sub = a[y0 + 2:y0 + int(panel["h"]) - 2, x0 + 2:x0 + int(panel["w"]) - 2]  # inside the frame
# Coverage shading: a pixel over ~26 blocks, one kept, is tinted at least a third of the way from the
# empty colour toward the kept one (issue 25: a sparse mask must not look full, a lone block must show).
empty, kept = np.array(COLORS["empty"], float), np.array(COLORS["kept"], float)
share = ((empty - sub.astype(float)) @ (empty - kept)) / ((empty - kept) @ (empty - kept))
hits = np.argwhere(share >= 0.3)
check(len(hits) >= 1, "the isolated kept block is visible after downsampling")
check(len(hits) <= 4, f"only the pixel(s) of the kept block are tinted ({len(hits)})")
if len(hits):
    yy, xx = hits[0] + 2
    check(abs(yy - 1234 * panel["h"] / 2048) <= 2 and abs(xx - 567 * panel["w"] / 2048) <= 2,
          f"kept pixel at ({xx},{yy}) is where block (1234,567) falls")

# 3. SVG is well-formed XML with an <svg> root of the requested size.
svg = os.path.join(D, "m.svg")
run("visualize", "mask", os.path.join(D, "m.npy"), "--block", "16", "--width", "500", "-o", svg, "-q")
root = ET.parse(svg).getroot()
check(root.tag.endswith("svg"), f"SVG root is {root.tag}")
check(root.get("width", "").startswith("500"), f"SVG width {root.get('width')}")

# 4. Curves: raster order on 8x8 with blocks of 16 tokens: two grid rows per block colour.
png = os.path.join(D, "curve.png")
run("visualize", "curve", "--grid", "8x8", "--order", "raster", "--view", "blocks", "--block", "16", "-o", png,
    "--json", lay, "-q")
panel = json.load(open(lay))["panels"][0]
img = Image.open(png).convert("RGB")
cell = [[img.getpixel((int(panel["x"] + (c + 0.5) * panel["w"] / 8), int(panel["y"] + (r + 0.5) * panel["h"] / 8)))
         for c in range(8)] for r in range(8)]
for r in range(8):
    check(len(set(cell[r])) == 1, f"raster row {r} lies in one block")
for r in range(0, 8, 2):
    check(cell[r][0] == cell[r + 1][0], f"rows {r},{r+1} share block {r // 2}")
check(len({cell[r][0] for r in range(0, 8, 2)}) == 4, "four blocks, four colours")

# 5. Frontier and bench plots from JSON written here (documented schemas); line colours present.
frontier = {"schema": "bsattn.frontier/v1", "context": {"seed": 3}, "records": [
    {"pattern": p, "density": d, "recall_mean": r, "rel_l2": e}
    for p, off in (("local", 0.0), ("energy", 0.1)) for d, r, e in ((0.1, 0.5, 0.3), (0.3, 0.7, 0.1), (0.6, 0.9, 0.02))
    for r, e in [(min(1.0, r + off), e / (1 + 10 * off))]]}
fj, png = os.path.join(D, "frontier.json"), os.path.join(D, "frontier.png")
json.dump(frontier, open(fj, "w"))
run("visualize", "frontier", fj, "-o", png, "-q")
a = np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3)
for col in ((0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)):
    check(((a == col).all(axis=1)).sum() > 50, f"frontier line colour {col} drawn")
bench = {"schema": "bsattn.bench/v1", "context": {"gpu": "test"}, "records": [
    {"impl": impl, "pass": "fwd", "seq": 8192, "density": d, "tflops_effective": t * d ** -0.1, "speedup_vs_dense": s / d}
    for impl, t, s in (("bsattn", 400.0, 0.9), ("flex", 300.0, 0.7)) for d in (0.1, 0.25, 0.5, 1.0)]}
bj, png = os.path.join(D, "bench.json"), os.path.join(D, "bench.png")
json.dump(bench, open(bj, "w"))
run("visualize", "bench", bj, "-o", png, "--width", "900", "--height", "400", "-q")
check(Image.open(png).size == (900, 400), "bench plot has the requested size")
# The legend never hides a marker when a corner is free: a third series' single point at the top-right
# corner of the data (where the legend used to sit) shows as many pixels of its colour as the same
# point in the middle of the plot.
def third_series_pixels(x, y):
    doc = json.loads(json.dumps(bench))
    doc["records"].append({"impl": "sdpa", "pass": "fwd", "seq": 8192, "density": x, "tflops_effective": y,
                           "speedup_vs_dense": 1.0})
    json.dump(doc, open(bj, "w"))
    run("visualize", "bench", bj, "-o", png, "--width", "900", "--height", "400", "--metric", "tflops", "-q")
    a = np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3)
    return int(((a == (0x2C, 0xA0, 0x2C)).all(axis=1)).sum())
top = third_series_pixels(1.0, 900.0)  # the highest value at the largest density: the top-right corner
mid = third_series_pixels(0.5, 400.0)  # the middle of the axes, away from every corner
check(top >= 0.8 * mid and mid > 0, f"marker at the top-right corner visible ({top} vs {mid} pixels)")
# With a marker in every corner, the legend moves outside the axes: four single-point series, one per
# corner of the data, show as many pixels of their colours as the same points inside the plot.
def corner_series_pixels(points):
    doc = json.loads(json.dumps(bench))
    for k, (x, y) in enumerate(points):
        doc["records"].append({"impl": f"peer{k}", "pass": "fwd", "seq": 8192, "density": x, "tflops_effective": y,
                               "speedup_vs_dense": 1.0})
    json.dump(doc, open(bj, "w"))
    run("visualize", "bench", bj, "-o", png, "--width", "900", "--height", "400", "--metric", "tflops", "-q")
    a = np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3)
    cols = ((0x2C, 0xA0, 0x2C), (0xD6, 0x27, 0x28), (0x94, 0x67, 0xBD), (0x8C, 0x56, 0x4B))
    return [int(((a == c).all(axis=1)).sum()) for c in cols]
corners = corner_series_pixels([(0.05, 900.0), (1.0, 900.0), (0.05, 100.0), (1.0, 100.0)])
inside = corner_series_pixels([(0.3, 700.0), (0.5, 300.0), (0.7, 650.0), (0.85, 250.0)])
for k in range(4):
    check(corners[k] >= 0.8 * inside[k] and inside[k] > 0,
          f"corner marker {k} visible with every corner taken ({corners[k]} vs {inside[k]} pixels)")

# 6. Attention map from synthetic inputs.
run("gen-mask", "--pattern", "local:window=1", "--seq", "512", "--block", "64", "--heads", "2", "--causal", "-o",
    os.path.join(D, "loc.json"), "-q")
png = os.path.join(D, "attn.png")
run("visualize", "attention", os.path.join(D, "loc.json"), "--synthetic", "decay", "--head", "1", "-o", png, "--json",
    lay, "-q")
check(Image.open(png).size == (json.load(open(lay))["width"], json.load(open(lay))["height"]), "attention PNG size")

# 7. --ascii prints the classes of a small mask.
p = run("visualize", "mask", os.path.join(D, "m.npy"), "--block", "16", "--q-len", "120", "--kv-len", "120",
        "--causal", "--heads", "0", "--ascii", "--ascii-width", "8")
check("legend:" in p.stdout and "head 0" in p.stdout, "ascii output has a head header and legend")

# 8. Bad input: exit 2 and one clear line.
for args, needle in (
        (("visualize", "frontier", bj, "-o", os.path.join(D, "x.png")), "bsattn.bench/v1"),
        (("visualize", "bench", fj, "-o", os.path.join(D, "x.png")), "bsattn.frontier/v1"),
        (("visualize", "mask", os.path.join(D, "m.npy"), "--block", "16", "--heads", "2", "-o", os.path.join(D, "x.png")), "out of range"),
        (("visualize", "attention", os.path.join(D, "loc.json"), "--synthetic", "decay", "--head", "5", "-o", os.path.join(D, "x.png")), "out of range"),
        (("visualize", "mask", os.path.join(D, "m.npy"), "--block", "16", "-o", "/nonexistent-dir/x.png"), "cannot write"),
        (("visualize", "mask", os.path.join(D, "m.npy"), "--block", "16"), "-o"),
):
    p = run(*args, expect=2)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    check(len(lines) == 1 and needle in p.stderr, f"{args[1]}: one clear line mentioning {needle!r}, got {p.stderr!r}")
check(not os.path.exists(os.path.join(D, "x.png")), "failed runs leave no output")

if failures:
    print(f"{len(failures)} failure(s)")
    sys.exit(1)
print("ok")
