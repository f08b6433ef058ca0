"""One name per idea: --order (token orders) and --kv-heads (key/value heads) in every subcommand that
takes them, with the older names (run --reorder, analyze --orders, bench --heads-kv) still accepted,
giving the same result, and kept out of --help.

Usage: test_option_names.py BSATTN_BINARY SCRATCH_DIR.
"""
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import CliTest  # noqa: E402

t = CliTest("option_names")


def run(*args, expect=0):
    p = subprocess.run([t.bin, *args], capture_output=True, text=True)
    t.check(p.returncode == expect, f"{' '.join(args)}: exit {p.returncode}, wanted {expect}; {p.stderr.strip()}")
    return p


# --help names: the new ones shown, the old ones hidden.
helps = {cmd: run(*cmd.split(), "--help").stdout for cmd in ("gen-mask", "visualize curve", "analyze", "run", "bench")}
for cmd in ("gen-mask", "visualize curve", "analyze", "run"):
    t.check("--order" in helps[cmd], f"{cmd} --help lists --order")
for cmd, old in (("run", "--reorder"), ("analyze", "--orders"), ("bench", "--heads-kv")):
    t.check(old not in helps[cmd], f"{cmd} --help no longer lists {old}")
for cmd in ("gen-mask", "analyze", "run", "bench"):
    t.check("--kv-heads" in helps[cmd], f"{cmd} --help lists --kv-heads")

# run: --order and --reorder give the same O (a token order on a 2x8x8 grid, GQA synthetic inputs).
common = ["run", "local:window=1", "--block", "16", "--causal", "--synthetic", "decay", "--seq", "128", "--heads", "2",
          "--kv-heads", "1", "--head-dim", "16", "--grid", "2x8x8", "--backend", "cpu", "-q"]
run(*common, "--order", "gilbert", "-o", t.path("new.npy"))
run(*common, "--reorder", "gilbert", "-o", t.path("old.npy"))
run(*common[:-5], "--backend", "cpu", "-q", "-o", t.path("plain.npy"))
if all(os.path.exists(t.path(n)) for n in ("new.npy", "old.npy", "plain.npy")):
    new, old, plain = (np.load(t.path(n)) for n in ("new.npy", "old.npy", "plain.npy"))
    t.check(np.array_equal(new, old), "run --order and --reorder give the same O")
    t.check(not np.array_equal(new, plain), "the order changes which tokens the local mask keeps")

# analyze --curves: --order and --orders give the same records.
cur = ["analyze", "--curves", "--grid", "4x8", "--block", "8", "--json", "-"]
a = json.loads(run(*cur, "--order", "raster,gilbert").stdout or "{}")
b = json.loads(run(*cur, "--orders", "raster,gilbert").stdout or "{}")


def untimed(doc):  # the records without their timings (order_ms differs from run to run)
    return [{k: v for k, v in r.items() if not k.endswith("_ms")} for r in doc.get("records", [])]


t.check(len(untimed(a)) == 2 and untimed(a) == untimed(b), "analyze --order and --orders give the same records")

# Errors name the option by its one name.
p = run("run", "dense", "--synthetic", "decay", "--seq", "64", "--head-dim", "16", "--block", "16", "--reorder",
        "gilbert", "--backend", "cpu", "-o", t.path("x.npy"), expect=2)
t.check("--order" in p.stderr and "--grid" in p.stderr, f"run without --grid names --order and --grid: {p.stderr!r}")

t.finish("ok: --order and --kv-heads everywhere, the old names hidden aliases")
