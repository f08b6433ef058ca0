"""Progress with ETA on stderr for long commands (issue 25): run on the CPU, analyze --sweep, bench.

Usage: test_progress.py BSATTN_BINARY SCRATCH_DIR. stderr is a pipe here, so progress appears only with
--progress; without it (and with -q) stderr stays empty. With it, the last progress line says 100% of
the work the command had, counted independently: run's CPU forward (and the sweep's dense reference) has
one task per (batch, head, query block), and the backward adds one per (batch, head, query block) for dQ and one per (batch, kv head, key
block) for dK/dV; the sweep one per (pattern, density); bench one per configuration, and bench prints
one "[i/n] label" line per configuration.
"""
import os
import re
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import CliTest  # noqa: E402

t = CliTest("progress")


def run(*args):
    p = subprocess.run([t.bin, *args], capture_output=True, text=True)
    t.check(p.returncode == 0, f"{' '.join(args)}: exit {p.returncode}: {p.stderr.strip()}")
    return p


def last_progress(stderr, label):
    lines = [ln for ln in stderr.splitlines() if ln.startswith(label)]
    return lines[-1] if lines else ""


SIZES = ["--seq", "1000", "--heads", "3", "--kv-heads", "1", "--head-dim", "16", "--block", "128"]
o = t.path("o.npy")
p = run("run", "random:density=0.5", "--synthetic", "decay", *SIZES, "--backend", "cpu", "-o", o, "-q")
t.check(p.stderr == "", f"run -q, stderr a pipe: no progress ({p.stderr!r})")
p = run("run", "random:density=0.5", "--synthetic", "decay", *SIZES, "--backend", "cpu", "-o", o)
t.check(p.stderr == "", f"run, stderr a pipe: no progress ({p.stderr!r})")
p = run("run", "random:density=0.5", "--synthetic", "decay", *SIZES, "--backend", "cpu", "-o", o, "-q", "--progress")
mq = -(-1000 // 128)
line = last_progress(p.stderr, "bsattn run: cpu attention")
t.check(f"100% ({3 * mq}/{3 * mq})" in line and "elapsed" in line, f"run forward: {3 * mq} tasks, got {line!r}")
# With the backward: dQ per (head, query block), dK/dV per (kv head, key block).
rng = np.random.default_rng(1)
do = t.path("do.npy")
np.save(do, rng.standard_normal((1, 1000, 3, 16), dtype=np.float32))
p = run("run", "random:density=0.5", "--synthetic", "decay", *SIZES, "--backend", "cpu", "-o", o, "--do", do,
        "--dq", t.path("dq.npy"), "--dk", t.path("dk.npy"), "--dv", t.path("dv.npy"), "-q", "--progress")
total = 3 * mq + 3 * mq + 1 * mq
line = last_progress(p.stderr, "bsattn run: cpu attention")
t.check(f"100% ({total}/{total})" in line, f"run forward + backward: {total} tasks, got {line!r}")

p = run("analyze", "--sweep", "--synthetic", "decay", "--seq", "512", "--heads", "2", "--head-dim", "16", "--block", "64",
        "--patterns", "local;random", "--densities", "0.2,0.5,1", "-q", "--progress")
line = last_progress(p.stderr, "bsattn analyze --sweep: dense reference")
t.check("100% (16/16)" in line, f"sweep's dense reference: 2 heads x 8 query blocks, got {line!r}")
records = [ln for ln in p.stderr.splitlines() if ln.startswith("bsattn analyze --sweep:") and "dense reference" not in ln]
line = records[-1] if records else ""
t.check("100% (6/6)" in line, f"sweep: 2 patterns x 3 densities, got {line!r}")
p = run("analyze", "--sweep", "--synthetic", "decay", "--seq", "512", "--heads", "2", "--head-dim", "16", "--block", "64",
        "--patterns", "local", "--densities", "0.5", "-q")
t.check(p.stderr == "", f"sweep -q: nothing on stderr ({p.stderr!r})")

p = run("bench", "--backend", "cpu", "--seq", "256", "--head-dim", "16", "--heads", "1", "--block", "64", "--density",
        "0.5,1", "--pattern", "random", "--min-samples", "2", "--max-time", "0.05", "-q", "--progress")
starts = re.findall(r"^\[(\d+)/(\d+)\]", p.stderr, flags=re.M)
t.check(len(starts) >= 2 and all(n == starts[0][1] for _, n in starts), f"bench: one [i/n] line per configuration: {starts}")
n = int(starts[0][1]) if starts else -1
line = last_progress(p.stderr, "bsattn bench:")
t.check(f"100% ({n}/{n})" in line, f"bench: {n} configurations, got {line!r}")

t.finish("ok: progress lines count the work of run, analyze --sweep and bench; silent by default on a pipe and with -q")
