"""The block options every subcommand shares (--block, --block-q, --block-kv) and --head-dim: a bad
value exits 2 with one line naming the option, on every subcommand; --block-q / --block-kv give a
mask's two block sizes, and a mask drawn or analyzed with them is read with those sizes.
Run by ctest as: /usr/bin/python3 THIS BSATTN_BINARY SCRATCH_DIR."""
import json
import subprocess

import numpy as np

import clitest

t = clitest.CliTest("block_options")


def run(*args):
    return subprocess.run([t.bin, *args], capture_output=True, text=True)


# A 256-token mask with 32-row query blocks and 64-column key blocks: [1, 2, 8, 4].
mask = t.path("m.npy")
r = run("gen-mask", "--pattern", "local:window=1", "--seq", "256", "--heads", "2", "--block-q", "32", "--block-kv",
        "64", "-o", mask, "--json", "-", "-q")
t.check(r.returncode == 0, "gen-mask --block-q/--block-kv: exit %d (%s)" % (r.returncode, r.stderr))
if r.returncode == 0:
    shape = json.loads(r.stdout)["shape"]
    t.check((shape["block_q"], shape["block_kv"], shape["mq"], shape["mk"]) == (32, 64, 8, 4),
            "gen-mask block sizes: %s" % shape)
    t.check(np.load(mask).shape == (1, 2, 8, 4), "gen-mask .npy shape: %s" % (np.load(mask).shape,))

# Q/K/V files for run: batch 1, 256 tokens, 2 heads, D = 16.
rng = np.random.default_rng(3)
files = {}
for name in ("q", "k", "v"):
    files[name] = t.path(name + ".npy")
    np.save(files[name], rng.standard_normal((1, 256, 2, 16)).astype(np.float32))
run_inputs = ["--q", files["q"], "--k", files["k"], "--v", files["v"], "--backend", "cpu"]

# The same .npy mask read back with its block sizes: visualize and run accept it, and analyze
# generates a pattern with the same two block sizes.
r = run("visualize", "mask", mask, "--block-q", "32", "--block-kv", "64", "--ascii", "-q")
t.check(r.returncode == 0, "visualize mask --block-q/--block-kv: exit %d (%s)" % (r.returncode, r.stderr))
r = run("run", mask, *run_inputs, "--block-q", "32", "--block-kv", "64", "-o", t.path("o.npy"), "-q")
t.check(r.returncode == 0, "run with the mask's block sizes: exit %d (%s)" % (r.returncode, r.stderr))
r = run("run", mask, *run_inputs, "--block", "64", "-o", t.path("o.npy"), "-q")
t.check(r.returncode == 2, "run with block sizes the mask was not made for: exit %d, want 2" % r.returncode)

BAD = [  # (command line, option the message must name)
    (["gen-mask", "--pattern", "local", "--seq", "256", "--block-kv", "0", "-o", t.path("x.npy")], "--block-kv"),
    (["visualize", "mask", mask, "--block-q", "x", "-o", t.path("x.png")], "--block-q"),
    (["visualize", "attention", mask, "--synthetic", "decay", "--block", "0", "-o", t.path("x.png")], "--block"),
    (["visualize", "attention", mask, "--synthetic", "decay", "--head-dim", "0", "-o", t.path("x.png")], "--head-dim"),
    (["visualize", "curve", "--grid", "8x8", "--block", "-3", "-o", t.path("x.png")], "--block"),
    (["analyze", "local", "--synthetic", "decay", "--seq", "256", "--heads", "2", "--block-q", "0"], "--block-q"),
    (["analyze", "local", "--synthetic", "decay", "--seq", "256", "--heads", "2", "--head-dim", "0"], "--head-dim"),
    (["run", "local", *run_inputs, "--block-kv", "2000000000", "-o", t.path("o.npy")], "--block-kv"),
    (["bench", "--backend", "cpu", "--block", "0", "-q"], "--block"),
]
for args, option in BAD:
    r = run(*args)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    t.check(r.returncode == 2 and len(lines) == 1 and option in r.stderr,
            "%s: exit %d, stderr %r (want exit 2 and one line naming %s)" % (" ".join(args), r.returncode, r.stderr,
                                                                             option))

t.finish("ok: block options and --head-dim checked on every subcommand")
