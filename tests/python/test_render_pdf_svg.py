"""bsattn visualize -o FILE.pdf / FILE.svg: the extension picks the format, text stays text, --no-title.

Usage: test_render_pdf_svg.py BSATTN_BINARY SCRATCH_DIR. A PDF is recognised by its magic bytes and read
back with poppler's pdftotext (Debian's poppler-utils, installed by scripts/setup.sh); an SVG is parsed
with xml.etree and its <text> elements collected. Every figure kind is drawn with a title of the test's
own, with its default title, and with --no-title, which must leave out both title and subtitle.
"""
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import CliTest  # noqa: E402

t = CliTest("render_pdf_svg")
shutil.rmtree(t.scratch)
os.makedirs(t.scratch)
PDFTOTEXT = shutil.which("pdftotext")


def run(*args, expect=0):
    p = subprocess.run([t.bin, *args], capture_output=True, text=True)
    if p.returncode == 1 and "no Cairo" in p.stderr:
        print("SKIP: this build has no Cairo:", p.stderr.strip())
        sys.exit(0)
    t.check(p.returncode == expect, f"{args}: exit {p.returncode}, wanted {expect}; stderr: {p.stderr.strip()}")
    return p


def pdf_text(path):
    data = open(path, "rb").read()
    t.check(data.startswith(b"%PDF-1."), f"{path}: starts with {data[:8]!r}, not the PDF magic")
    t.check(data.rstrip().endswith(b"%%EOF"), f"{path}: no %%EOF trailer")
    p = subprocess.run([PDFTOTEXT, "-q", path, "-"], capture_output=True, text=True)
    t.check(p.returncode == 0, f"pdftotext {path}: exit {p.returncode}")
    return " ".join(p.stdout.split())  # pdftotext breaks lines where the layout does


def svg_text(path):
    root = ET.parse(path).getroot()
    t.check(root.tag.endswith("svg"), f"{path}: root {root.tag}")
    return " ".join(" ".join("".join(e.itertext()).split()) for e in root.iter() if e.tag.endswith("text"))


if PDFTOTEXT is None:
    t.check(False, "pdftotext is missing: install poppler-utils (scripts/setup.sh does)")
    t.finish("")

# Inputs of every kind: a mask .npy, a frontier and a bench JSON (documented schemas).
rng = np.random.default_rng(25)
np.save(t.path("m.npy"), rng.random((1, 2, 8, 8)) < 0.4)
frontier = {"schema": "bsattn.frontier/v1", "context": {"seed": 3}, "records": [
    {"pattern": p, "density": d, "recall_mean": r, "rel_l2": 0.5 - r / 2}
    for p, off in (("local", 0.0), ("energy", 0.1)) for d, r in ((0.1, 0.5), (0.3, 0.7), (0.6, 0.85))
    for r in [r + off]]}
json.dump(frontier, open(t.path("frontier.json"), "w"))
bench = {"schema": "bsattn.bench/v1", "context": {"gpu": "testgpu"}, "records": [
    {"impl": impl, "pass": "fwd", "seq": 8192, "density": d, "tflops_effective": tf * d, "speedup_vs_dense": 1 / d}
    for impl, tf in (("bsattn", 400.0), ("flex", 300.0)) for d in (0.1, 0.5, 1.0)]}
json.dump(bench, open(t.path("bench.json"), "w"))
run("gen-mask", "--pattern", "local:window=1", "--seq", "256", "--block", "32", "--heads", "1", "-o", t.path("loc.json"))

# kind: (arguments, default title, a subtitle fragment)
KINDS = {
    "mask": (["mask", t.path("m.npy"), "--block", "16"], "m.npy", "visible blocks"),
    "attention": (["attention", t.path("loc.json"), "--synthetic", "decay", "--head-dim", "16"], "recall",
                  "white: zero mass"),
    "curve": (["curve", "--grid", "8x8", "--order", "raster"], "token orders on the grid", "grid 8x8 (64 tokens)"),
    "frontier": (["frontier", t.path("frontier.json")], "quality frontier", "seed 3"),
    "bench": (["bench", t.path("bench.json")], "block-sparse attention benchmark", "testgpu"),
}
OWN = "Figure Seven of the Paper"
for kind, (args, default_title, subtitle) in KINDS.items():
    for ext, read in (("pdf", pdf_text), ("svg", svg_text)):
        own, default, bare = (t.path(f"{kind}_{v}.{ext}") for v in ("own", "default", "bare"))
        run("visualize", *args, "-o", own, "--title", OWN, "-q")
        run("visualize", *args, "-o", default, "-q")
        run("visualize", *args, "-o", bare, "--no-title", "-q")
        text_own, text_default, text_bare = read(own), read(default), read(bare)
        t.check(OWN in text_own, f"{kind} .{ext}: the --title text is not in the file's text: {text_own[:300]!r}")
        t.check(default_title in text_default and subtitle in text_default,
                f"{kind} .{ext}: default title {default_title!r} / subtitle {subtitle!r} missing: {text_default[:300]!r}")
        t.check(default_title not in text_bare and subtitle not in text_bare,
                f"{kind} .{ext}: --no-title still shows {default_title!r} or {subtitle!r}: {text_bare[:300]!r}")
        t.check(len(text_bare) > 0, f"{kind} .{ext}: --no-title keeps the axis and legend text")

# The extension picks the format whatever its case; PNG stays PNG.
run("visualize", "curve", "--grid", "8x8", "-o", t.path("upper.PDF"), "-q")
t.check(open(t.path("upper.PDF"), "rb").read(5) == b"%PDF-", ".PDF writes a PDF")
run("visualize", "curve", "--grid", "8x8", "-o", t.path("c.png"), "-q")
t.check(open(t.path("c.png"), "rb").read(8) == b"\x89PNG\r\n\x1a\n", ".png writes a PNG")

# Refusals: exit 2, one line naming the path and the allowed extensions, nothing written.
for name in ("f.jpg", "f.pdf.bak", "noext", "dir.svg/f"):
    target = t.path(name)
    if name == "dir.svg/f":
        os.makedirs(t.path("dir.svg"), exist_ok=True)
    p = run("visualize", "curve", "--grid", "8x8", "-o", target, expect=2)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    t.check(len(lines) == 1 and "(allowed: .png, .svg, .pdf)" in p.stderr and name.split("/")[-1] in p.stderr,
            f"-o {name}: one line naming it and the allowed extensions, got {p.stderr!r}")
    t.check(not os.path.exists(target), f"-o {name}: nothing written")
p = run("visualize", "curve", "--grid", "8x8", "-o", t.path("x.svg"), "--title", "T", "--no-title", expect=2)
t.check("--no-title" in p.stderr or "--title" in p.stderr, f"--title with --no-title names them: {p.stderr!r}")
t.check(not os.path.exists(t.path("x.svg")), "--title with --no-title writes nothing")

t.finish("ok: PDF and SVG of 5 figure kinds carry their titles as text; --no-title removes them; unknown "
         "extensions refused")
