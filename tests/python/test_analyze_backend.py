"""bsattn analyze --backend cuda: what it refuses (exit 2, one line naming what is allowed) is refused on
any machine, before the GPU check: --score silu, --sweep, --check, --kernel without --backend cuda,
head_dim 264 (the kernels take 1 to 256). Without a GPU, --backend cuda fails with one "no CUDA GPU" line (exit 1); a build without
CUDA with one "built without CUDA" line (exit 1). With a GPU, its
JSON report agrees with the CPU backend's on the same bf16-exact inputs (recall within 2e-3, output
error within 1.5e-2, densities equal).
Run by ctest as: /usr/bin/python3 THIS BSATTN_BINARY SCRATCH_DIR."""
import json
import os
import subprocess

import numpy as np

import clitest
from clitest import CliTest

T = CliTest("analyze_backend")
BIN, path, expect = T.bin, T.path, T.check


def analyze(*args):
    r = subprocess.run([BIN, "analyze", *args], capture_output=True, text=True)
    return r.returncode, [l for l in r.stderr.splitlines() if l.strip()]


rng = np.random.default_rng(11)
B, S, H, D = 1, 384, 2, 64
for n in ("q", "k", "v"):
    x = rng.standard_normal((B, S, H, D)).astype(np.float32)
    # Clear the low 16 bits: every value is exact in bf16, so both backends see the same numbers.
    x = (x.view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32)
    np.save(path(n + ".npy"), x)
inputs = ["--q", path("q.npy"), "--k", path("k.npy"), "--v", path("v.npy")]
common = ["random:density=0.4", "--block", "64", "--seed", "3", *inputs]

refused = [
    (["--score", "silu", "--backend", "cuda"], ["silu", "--backend cpu"]),
    (["--sweep", "--backend", "cuda"], ["--sweep", "--backend cuda"]),
    (["--check", path("q.npy"), "--backend", "cuda"], ["--check", "--backend cuda"]),
    (["--kernel", "wg-tma"], ["--kernel", "--backend cuda"]),
]
for extra, needles in refused:
    rc, err = analyze(*common, *extra)
    expect(rc == 2 and len(err) == 1 and all(s in err[0] for s in needles),
           "analyze %s: want exit 2 and one line with %r, got %d %r" % (" ".join(extra), needles, rc, err))
# A build without CUDA has no kernel to ask about head_dim 264: it says so (exit 1).
cuda_build = clitest.cuda_build(BIN)
rc, err = analyze("random:density=0.4", "--synthetic", "decay", "--seq", "256", "--heads", "2", "--head-dim", "264",
                  "--backend", "cuda")
if cuda_build:
    expect(rc == 2 and len(err) == 1 and "1 to 256" in err[0] and "264" in err[0],
           "head_dim 264 with --backend cuda: want exit 2 naming 1 to 256, got %d %r" % (rc, err))
else:
    expect(rc == 1 and len(err) == 1 and "built without CUDA; use --backend cpu" in err[0],
           "head_dim 264, build without CUDA: %d %r" % (rc, err))

rc_cpu, err_cpu = analyze(*common, "--backend", "cpu", "-q", "--json", path("cpu.json"))
expect(rc_cpu == 0, "analyze --backend cpu: %d %r" % (rc_cpu, err_cpu))
rc, err = analyze(*common, "--backend", "cuda", "-q", "--json", path("cuda.json"))
have_gpu = rc == 0
no_gpu_line = "no CUDA GPU" if cuda_build else "built without CUDA; use --backend cpu"
if not have_gpu:
    expect(rc == 1 and len(err) == 1 and no_gpu_line in err[0] and not os.path.exists(path("cuda.json")),
           "--backend cuda without a GPU: want exit 1, one %r line, no JSON; got %d %r" % (no_gpu_line, rc, err))
elif rc_cpu == 0:
    cpu, gpu = (json.load(open(path(n)))["quality"] for n in ("cpu.json", "cuda.json"))
    ctx = json.load(open(path("cuda.json")))["context"]["backend"]
    expect(ctx["name"] == "cuda" and ctx["dtype"] == "bf16", "cuda context: %r" % ctx)
    for hc, hg in zip(cpu["heads"], gpu["heads"]):
        expect(hc["density"] == hg["density"], "head %d density %r vs %r" % (hc["head"], hc["density"], hg["density"]))
        expect(abs(hc["recall_mean"] - hg["recall_mean"]) <= 2e-3,
               "head %d recall %r vs %r" % (hc["head"], hc["recall_mean"], hg["recall_mean"]))
        expect(abs(hc["error"]["rel_l2"] - hg["error"]["rel_l2"]) <= 1.5e-2,
               "head %d rel_l2 %r vs %r" % (hc["head"], hc["error"]["rel_l2"], hg["error"]["rel_l2"]))
    expect(cpu["summary"]["error"]["rel_l2"] > 0.05, "the mask should drop mass: rel_l2 %r" % cpu["summary"]["error"]["rel_l2"])

T.finish("ok: analyze backends (%s)" % ("GPU present: cuda compared with cpu" if have_gpu else "no GPU: refusals and the no-GPU line"))
