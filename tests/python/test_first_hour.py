"""A newcomer's first hour (issue 25): what the README's path runs into, each checked from outside.

Usage: test_first_hour.py BSATTN_BINARY SCRATCH_DIR. Checks:
- gen-mask --q/--k takes the lengths and heads from the tensors (NumPy writes them; bshd and bhsd), no
  --seq needed; --heads that disagrees with Q is refused (exit 2, one line);
- an argument copied with usage brackets ("[--json") is refused with one line that says so;
- visualize mask on a .npy without block sizes says on stderr which block it assumed (not with --block,
  not with -q);
- visualize bench filters (--pattern, --impl, --head-dim, --seq, --no-causal, --pass): the SVG's text
  (xml.etree) names only the implementations and sizes left, a filter that leaves nothing exits 2 naming
  what the file has; CPU-sized records are drawn in GFLOP/s; a legend entry per implementation plus one
  per sequence length (not one per pair);
- run --time writes nothing and needs no -o; --time with --f64 is refused, and so is run without -o or --time;
- bash completion (scripts/bsattn-completion.bash, sourced in bash) completes subcommands, options from
  --help, and pattern names.
"""
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import CliTest  # noqa: E402

t = CliTest("first_hour")
SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def run(*args, expect=0):
    p = subprocess.run([t.bin, *args], capture_output=True, text=True)
    t.check(p.returncode == expect, f"{' '.join(args)}: exit {p.returncode}, wanted {expect}; {p.stderr.strip()}")
    return p


def one_line(p, needle, what):
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    t.check(len(lines) == 1 and needle in p.stderr, f"{what}: one stderr line naming {needle!r}: {p.stderr!r}")


# gen-mask --q/--k without --seq: [B,S,H,D] = [1,300,3,16], K with 200 tokens; block 64 -> Mq 5, Mk 4.
rng = np.random.default_rng(25)
q, k = t.path("q.npy"), t.path("k.npy")
np.save(q, rng.standard_normal((1, 300, 3, 16), dtype=np.float32))
np.save(k, rng.standard_normal((1, 200, 3, 16), dtype=np.float32))
out = t.path("e.npy")
run("gen-mask", "--pattern", "energy", "--q", q, "--k", k, "--block", "64", "-o", out, "-q")
if os.path.exists(out):
    m = np.load(out)
    t.check(m.shape == (1, 3, 5, 4), f"gen-mask --q/--k: mask shape {m.shape}, wanted (1, 3, 5, 4) from the tensors")
qb, kb = t.path("qb.npy"), t.path("kb.npy")
np.save(qb, rng.standard_normal((1, 2, 256, 16), dtype=np.float32))  # BHSD
np.save(kb, rng.standard_normal((1, 2, 256, 16), dtype=np.float32))
run("gen-mask", "--pattern", "energy", "--q", qb, "--k", kb, "--layout", "bhsd", "--block", "128", "-o", out, "-q")
t.check(np.load(out).shape == (1, 2, 2, 2), f"gen-mask --layout bhsd: shape {np.load(out).shape}")
p = run("gen-mask", "--pattern", "energy", "--q", q, "--k", k, "--heads", "4", "-o", t.path("bad.npy"), expect=2)
one_line(p, "heads", "--heads 4 against Q's 3 heads")
t.check(not os.path.exists(t.path("bad.npy")), "nothing written on bad usage")

# Usage brackets typed literally.
p = run("analyze", "--curves", "--grid", "4x8x8", "[--json", "-]", expect=2)
one_line(p, "brackets", "[--json -]")

# A .npy mask has no block size: the assumption is said on stderr.
mask = t.path("m.npy")
np.save(mask, rng.random((1, 1, 8, 8)) < 0.5)
img = t.path("m.png")
p = run("visualize", "mask", mask, "-o", img)
t.check("block 128x128" in p.stderr and "--block" in p.stderr, f"stderr names the assumed block: {p.stderr!r}")
p = run("visualize", "mask", mask, "--block", "64", "-o", img)
t.check(p.stderr == "", f"--block given: no note ({p.stderr!r})")
p = run("visualize", "mask", mask, "-o", img, "-q")
t.check(p.stderr == "", f"-q: no note ({p.stderr!r})")

# visualize bench filters, legend and units.
recs = []
for impl, kern, scale in (("bsattn", "sm90-ws", 1.0), ("flex_attention", "", 0.6)):
    for pattern, causal in (("random", False), ("causal", True)):
        for seq in (8192, 32768):
            for hd in (64, 128):
                for d in (0.1, 0.5, 1.0):
                    recs.append({"impl": impl, "kernel": kern, "pattern": pattern, "causal": causal, "seq": seq,
                                 "head_dim": hd, "pass": "fwd", "dtype": "bf16", "density": d,
                                 "tflops_effective": 500 * scale * (0.8 + d / 5), "speedup_vs_dense": 1 / d})
for seq in (8192, 32768):
    recs.append({"impl": "sdpa_cudnn", "kernel": "", "pattern": "dense", "causal": False, "seq": seq, "head_dim": 128,
                 "pass": "fwd", "dtype": "bf16", "density": 1.0, "tflops_effective": 610, "speedup_vs_dense": 1.0})
bench = t.path("bench.json")
json.dump({"schema": "bsattn.bench/v1", "context": {"gpu": "testgpu"}, "records": recs}, open(bench, "w"))


def svg_text(path):
    root = ET.parse(path).getroot()
    return [" ".join("".join(e.itertext()).split()) for e in root.iter() if e.tag.endswith("text")]


svg = t.path("b.svg")
p = run("visualize", "bench", bench, "--pattern", "random,dense", "--head-dim", "128", "--no-causal", "--pass", "fwd",
        "--metric", "tflops", "-o", svg, "-q")
if os.path.exists(svg):
    texts = svg_text(svg)
    joined = " | ".join(texts)
    # 6 bsattn + 6 flex records (2 S x 3 densities) + 2 SDPA records at D=128, random/dense, not causal.
    t.check(any("14 records" in x for x in texts), f"subtitle counts the 14 records left: {joined[:300]}")
    for name in ("bsattn sm90-ws", "FlexAttention", "SDPA cuDNN", "S=8192", "S=32768"):
        t.check(texts.count(name) == 1, f"legend entry {name!r} once: {texts.count(name)}")
    t.check(not any(x.startswith("bsattn sm90-ws S=") for x in texts), "no legend entry per (implementation, S)")
    t.check(any("TFLOP/s" in x for x in texts), "GPU records in TFLOP/s")
p = run("visualize", "bench", bench, "--impl", "flex_attention", "--seq", "8192", "-o", svg, "-q")
texts = svg_text(svg)
t.check("FlexAttention" in texts and "bsattn sm90-ws" not in texts and "SDPA cuDNN" not in texts,
        f"--impl flex_attention draws only FlexAttention: {texts}")
p = run("visualize", "bench", bench, "--pattern", "nosuch", "-o", t.path("none.svg"), expect=2)
one_line(p, "random", "a filter that leaves nothing names the patterns the file has")
t.check(not os.path.exists(t.path("none.svg")), "nothing written when the filters leave no record")
cpu = t.path("cpu.json")
json.dump({"schema": "bsattn.bench/v1", "records": [
    {"impl": "bsattn", "pass": "fwd", "seq": 1024, "density": d, "tflops_effective": 0.004 * d,
     "speedup_vs_dense": 1 / d} for d in (0.1, 0.5, 1.0)]}, open(cpu, "w"))
run("visualize", "bench", cpu, "--metric", "tflops", "-o", svg, "-q")
texts = svg_text(svg)
t.check(any("GFLOP/s" in x for x in texts) and not any("TFLOP/s" in x for x in texts),
        f"CPU records in GFLOP/s: {texts}")
t.check(any(x in texts for x in ("1", "2", "3", "4")), f"the axis ticks are in GFLOP/s (0.4 to 4): {texts}")

# run --time needs no -o (the issue: "run --time requires -o"); it times the CPU float32 forward only.
before = set(os.listdir(t.scratch))
p = run("run", "dense", "--synthetic", "decay", "--seq", "512", "--heads", "2", "--head-dim", "16", "--backend", "cpu",
        "--time", "--threads", "1")
t.check("time: cpu float32 forward" in p.stdout and "no O (--time)" in p.stdout, f"run --time alone: {p.stdout!r}")
t.check(set(os.listdir(t.scratch)) == before, "run --time alone writes no file")
p = run("run", "dense", "--synthetic", "decay", "--seq", "512", "--heads", "2", "--head-dim", "16", "--backend", "cpu",
        "--time", "--f64", expect=2)
one_line(p, "--time", "run --time --f64")
p = run("run", "dense", "--synthetic", "decay", "--seq", "512", "--heads", "2", "--head-dim", "16", "--backend", "cpu",
        expect=2)
one_line(p, "--out", "run without -o or --time")

# Bash completion: source the script, complete a few words.
comp = os.path.join(SRC, "scripts", "bsattn-completion.bash")


def complete(*words):
    script = (f"source {comp}; COMP_WORDS=({t.bin} {' '.join(words)}); COMP_CWORD={len(words)}; _bsattn; "
              "printf '%s\\n' \"${COMPREPLY[@]}\"")
    p = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    return p.stdout.split()


t.check(complete("gen") == ["gen-mask"], f"subcommand completion: {complete('gen')}")
t.check("--pattern" in complete("gen-mask", "--pat"), f"option completion: {complete('gen-mask', '--pat')}")
t.check("--no-causal" in complete("visualize", "bench", "--no"), f"visualize bench options: {complete('visualize', 'bench', '--no')}")
t.check("bigbird" in complete("gen-mask", "--pattern", "big"), f"pattern names: {complete('gen-mask', '--pattern', 'big')}")

t.finish("ok: gen-mask sizes from tensors, bracket refusal, .npy block note, bench filters/legend/units, completion")
