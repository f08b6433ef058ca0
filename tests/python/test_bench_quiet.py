"""bsattn bench -q prints nothing but errors, and bench checks every option before any notice.

Usage: test_bench_quiet.py BSATTN_BINARY SCRATCH_DIR. A tiny CPU sweep (one configuration) is run with
--backend auto: without a GPU it falls back to the CPU reference and says so on stderr, unless -q.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import CliTest, cuda_build  # noqa: E402

t = CliTest("bench_quiet")
SWEEP = ["bench", "--seq", "256", "--head-dim", "16", "--heads", "1", "--block", "64", "--density", "0.5",
         "--warmup", "0", "--min-samples", "1", "--max-samples", "2"]


def run(*args):
    if "--pattern" not in args:
        args = args + ("--pattern", "random")
    return subprocess.run([t.bin, *args], capture_output=True, text=True)


p = run(*SWEEP, "-q")
t.check(p.returncode == 0, f"bench -q: exit {p.returncode}, stderr {p.stderr!r}")
t.check(p.stdout == "" and p.stderr == "", f"bench -q printed: stdout {p.stdout!r}, stderr {p.stderr!r}")

p = run(*SWEEP, "-q", "--json", t.path("b.json"))
t.check(p.returncode == 0 and p.stdout == "" and p.stderr == "", f"bench -q --json FILE printed {p.stdout!r} {p.stderr!r}")
t.check(os.path.getsize(t.path("b.json")) > 0, "bench -q still writes --json")

p = run(*SWEEP)
t.check(p.returncode == 0, f"bench: exit {p.returncode}, stderr {p.stderr!r}")
t.check(p.stdout.strip() != "", "bench without -q prints its table")
if not cuda_build(t.bin):  # a build without CUDA always falls back, and says so without -q
    t.check("CPU reference" in p.stderr, f"bench without CUDA and without -q names the CPU fallback: {p.stderr!r}")

# Bad options: the one error line only, no notice before it, whatever -q says.
for extra, needle in ((["--synthetic", "nosuch", "--pattern", "energy"], "nosuch"),
                      (["--synthetic", "decay:strength=abc", "--pattern", "energy"], "strength"),
                      (["--seq", "0"], "--seq"),
                      (["--kernel", "x", "--backend", "cpu"], "--kernel")):
    for quiet in ([], ["-q"]):
        p = run(*SWEEP, *extra, *quiet)
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        t.check(p.returncode == 2 and len(lines) == 1 and needle in p.stderr and p.stdout == "",
                f"bench {' '.join(extra + quiet)}: exit {p.returncode}, wanted 2 and one line naming {needle!r}; "
                f"stdout {p.stdout!r}, stderr {p.stderr!r}")

t.finish("ok: bench -q prints nothing; option errors come alone")
