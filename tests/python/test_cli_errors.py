"""Bad input to bsattn gen-mask: exit status 2, one line on stderr naming what is wrong, and no output
file left behind. Run by ctest as: /usr/bin/python3 THIS BSATTN_BINARY SCRATCH_DIR."""
import os
import subprocess
import sys

BIN, SCRATCH = sys.argv[1], os.path.join(sys.argv[2], "cli_errors")
os.makedirs(SCRATCH, exist_ok=True)
out = os.path.join(SCRATCH, "out.npy")
bad_npy = os.path.join(SCRATCH, "bad.npy")
with open(bad_npy, "wb") as f:
    f.write(b"\x93NUMPY\x01\x00")  # truncated

CASES = [  # (arguments, text the message must contain)
    (["--pattern", "nosuch", "--seq", "1024"], "unknown pattern"),
    (["--pattern", "local:window=-1", "--seq", "1024"], "window"),
    (["--pattern", "random:density=1.5", "--seq", "1024"], "density"),
    (["--pattern", "random:density=nan", "--seq", "1024"], "density"),
    (["--pattern", "local:radius=2", "--seq", "1024"], "radius"),
    (["--pattern", "local", "--seq", "0"], "--seq"),
    (["--pattern", "local"], "--seq"),
    (["--pattern", "local", "--seq", "1024", "--block", "0"], "--block"),
    (["--head-map", "0-3=dense;3-7=local", "--seq", "1024", "--heads", "8"], "assigned twice"),
    (["--head-map", "0-3=dense;5-7=local", "--seq", "1024", "--heads", "8"], "head 4"),
    (["--head-map", "0-9=dense", "--seq", "1024", "--heads", "8"], "0-9"),
    (["--pattern", "vit-spatial:img=224,patch=16", "--seq", "1000"], "197"),
    (["--pattern", "document:lengths=10,20", "--seq", "1024"], "lengths"),
    (["--pattern", "custom:file=" + bad_npy, "--seq", "1024"], "bad.npy"),
    (["--pattern", "custom:file=" + os.path.join(SCRATCH, "missing.npy"), "--seq", "1024"], "missing.npy"),
    (["--pattern", "local", "--seq", "1024", "--nosuch-option"], "nosuch"),
]

failures = []
for args, needle in CASES:
    if os.path.exists(out):
        os.remove(out)
    r = subprocess.run([BIN, "gen-mask", *args, "-o", out], capture_output=True, text=True)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    problems = []
    if r.returncode != 2:
        problems.append("exit status %d" % r.returncode)
    if len(lines) != 1:
        problems.append("%d stderr lines" % len(lines))
    if needle not in r.stderr:
        problems.append("message lacks %r" % needle)
    if os.path.exists(out):
        problems.append("output file left behind")
    leftovers = [f for f in os.listdir(SCRATCH) if f.startswith(".out.npy")]
    if leftovers:
        problems.append("temporary files left: %s" % leftovers)
    if problems:
        failures.append("%s: %s (stderr: %r)" % (" ".join(args), ", ".join(problems), r.stderr))
if failures:
    print("\n".join(failures))
    sys.exit(1)
print("ok: %d bad inputs rejected" % len(CASES))
