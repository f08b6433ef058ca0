"""Every shell command of README.md runs as written, on the CPU, in an empty folder (issue 25).

Usage: test_readme_commands.py BSATTN_BINARY SCRATCH_DIR. The commands are the lines of the README's
```sh blocks, in order, in one fresh folder (the README says they run in order), with the binary's folder
first on PATH as the README tells the reader to do (and the python3 running this test, which has
NumPy, before the rest of PATH). A command continues over lines ending in a backslash and over an open
double quote (python3 -c "..."). Left out, by the rule the README states: the commands of the Install
section, before "## A first session" (scripts/setup.sh, scripts/test.sh, the PATH / cmake --install
step: they build and install, which this test run has done or checks below), and commands that need a
GPU: those with `--backend cuda` or ending in `# needs a GPU`.

Independent checks beyond exit status 0: NumPy reads the masks the first commands write with the shapes
the README gives ([B,H,Mq,Mk]); `cmake --install BUILD --prefix DIR` puts a working bsattn in DIR/bin.
"""
import os
import re
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import CliTest  # noqa: E402

t = CliTest("readme_commands")
README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")


def shell_commands(text):
    """The commands of the ```sh blocks, continuation lines joined, in order."""
    cmds = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        cur = ""
        for line in block.splitlines():
            cur = cur + "\n" + line if cur else line
            # An odd number of double quotes: a quoted argument goes on (python3 -c "...").
            if cur.rstrip().endswith("\\") or cur.count('"') % 2 == 1:
                continue
            if cur.strip():
                cmds.append(cur)
            cur = ""
        if cur.strip():
            cmds.append(cur)
    return cmds


def skipped(cmd):
    """Why a command is left out, or None: the GPU-only ones."""
    if "--backend cuda" in cmd or cmd.rstrip().endswith("# needs a GPU"):
        return "needs a GPU"
    return None


bindir = os.path.dirname(os.path.abspath(t.bin))
work = t.path("session")
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
env = dict(os.environ, PATH=os.pathsep.join([bindir, os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
env.pop("BSATTN_PROGRESS", None)

text = open(README).read()
FIRST = "## A first session"
t.check(FIRST in text, f"the README has a section '{FIRST}'")
setup, session = text.split(FIRST, 1) if FIRST in text else ("", text)
for cmd in shell_commands(setup):
    print("skip (Install section):", " ".join(cmd.split())[:110])
cmds = shell_commands(session)
t.check(len(cmds) >= 8, f"the README has shell commands ({len(cmds)} found)")
ran = 0
for cmd in cmds:
    why = skipped(cmd)
    one_line = " ".join(cmd.split())[:110]
    if why:
        print(f"skip ({why}): {one_line}")
        continue
    p = subprocess.run(["bash", "-c", cmd], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    ran += 1
    print(f"exit {p.returncode}: {one_line}")
    t.check(p.returncode == 0, f"README command fails as written (exit {p.returncode}): {one_line}\n"
                               f"  stderr: {p.stderr.strip()[-400:]}")
t.check(ran >= 8, f"at least 8 README commands ran on the CPU ({ran})")

# The first mask: local:window=2 at S=8192, 8 heads, block 128 -> bool [1, 8, 64, 64].
if os.path.exists(os.path.join(work, "local.npy")):
    m = np.load(os.path.join(work, "local.npy"))
    t.check(m.dtype == np.bool_ and m.shape == (1, 8, 64, 64), f"local.npy: {m.dtype} {m.shape}")
    # A window of 2 blocks on each side under causal: block (i, j) kept for i-2 <= j <= i.
    i, j = np.indices((64, 64))
    t.check(np.array_equal(m[0, 0], (j <= i) & (j >= i - 2)), "local.npy head 0 is the causal window i-2..i")
else:
    t.check(False, "the README's first command wrote local.npy")

# cmake --install puts bsattn in PREFIX/bin (the README's install step).
build = bindir
cmake = shutil.which("cmake")
if cmake and os.path.exists(os.path.join(build, "cmake_install.cmake")):
    prefix = t.path("prefix")
    shutil.rmtree(prefix, ignore_errors=True)
    p = subprocess.run([cmake, "--install", build, "--prefix", prefix], capture_output=True, text=True)
    t.check(p.returncode == 0, f"cmake --install: {p.stderr.strip()}")
    installed = os.path.join(prefix, "bin", "bsattn")
    v = subprocess.run([installed, "--version"], capture_output=True, text=True) if os.path.exists(installed) else None
    t.check(v is not None and v.returncode == 0 and v.stdout.startswith("bsattn "),
            f"{installed} --version runs: {v.stdout if v else 'missing'}")
    comp = os.path.join(prefix, "share", "bash-completion", "completions", "bsattn")
    t.check(os.path.exists(comp), f"cmake --install puts the bash completion in {comp}")

t.finish(f"ok: {ran} README commands ran as written on the CPU")
