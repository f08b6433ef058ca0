"""bsattn run's element types: bf16 .npy files (uint16 bits, --dtype bf16) and float32 files with
--dtype bf16/f16 are accepted by --backend cuda (on a machine without a GPU the one-line "no CUDA GPU"
failure, in a build without CUDA the "built without CUDA" one, exit 1, comes after the inputs were read and typed: never a dtype error); f32 with --backend
cuda is a usage error (exit 2) naming the allowed dtypes; float32 files with --dtype bf16 are rounded
to nearest even (checked against a rounding written here with float64 arithmetic, not bit tricks);
--kernel needs --backend cuda.
With a GPU present, the cuda output is compared with the CPU reference on the same bf16 inputs.
Run by ctest as: /usr/bin/python3 THIS BSATTN_BINARY SCRATCH_DIR."""
import json
import os
import subprocess
import sys

import numpy as np

import clitest

BIN, SCRATCH = sys.argv[1], os.path.join(sys.argv[2], "run_dtype")
os.makedirs(SCRATCH, exist_ok=True)


def path(name):
    return os.path.join(SCRATCH, name)


def bsattn(*args):
    r = subprocess.run([BIN, "run", *args], capture_output=True, text=True)
    return r.returncode, [l for l in r.stderr.splitlines() if l.strip()], r.stdout


def bf16_round(x):
    """float32 -> nearest bf16 value (ties to the even 7-bit mantissa), as float64, by plain arithmetic."""
    out = np.empty(x.shape, np.float64)
    for i, v in np.ndenumerate(x.astype(np.float64)):
        if v == 0:
            out[i] = v
            continue
        e = np.floor(np.log2(abs(v)))
        ulp = 2.0 ** (e - 7)  # bf16: 8 significant bits
        lo = np.floor(abs(v) / ulp) * ulp
        hi = lo + ulp
        dlo, dhi = abs(v) - lo, hi - abs(v)
        if dlo < dhi or (dlo == dhi and int(round(lo / ulp)) % 2 == 0):
            r = lo
        else:
            r = hi
        out[i] = np.copysign(r, v)
    return out


def bf16_bits(values64):
    """The uint16 bits of values that are exact in bf16."""
    return (values64.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)


failures = []


def expect(cond, what):
    if not cond:
        failures.append(what)


rng = np.random.default_rng(5)
B, S, H, D = 1, 200, 2, 64  # partial last block at block 64
q32 = rng.standard_normal((B, S, H, D)).astype(np.float32)
k32 = rng.standard_normal((B, S, H, D)).astype(np.float32)
v32 = rng.standard_normal((B, S, H, D)).astype(np.float32)
# Exact ties and near-ties of the bf16 rounding in Q (1 + 2^-8: even, stays; 1 + 3*2^-8: odd, up).
q32.flat[:4] = np.array([1 + 2.0 ** -8, 1 + 3 * 2.0 ** -8, -(1 + 3 * 2.0 ** -8), 1 + 2.0 ** -8 + 2.0 ** -20], np.float32)
for n, t in (("q", q32), ("k", k32), ("v", v32)):
    np.save(path(n + "32.npy"), t)
    np.save(path(n + "16.npy"), bf16_bits(bf16_round(t)))
    np.save(path(n + "h.npy"), t.astype(np.float16))
f32 = ["--q", path("q32.npy"), "--k", path("k32.npy"), "--v", path("v32.npy")]
b16 = ["--q", path("q16.npy"), "--k", path("k16.npy"), "--v", path("v16.npy"), "--dtype", "bf16"]
common = ["local:window=1", "--block", "64", "--causal"]

# 1. The hand rounding itself on the tie cases (guards the reference used below).
expect(list(bf16_round(q32.flat[:4])) == [1.0, 1 + 2.0 ** -6, -(1 + 2.0 ** -6), 1 + 2.0 ** -7],
       "bf16_round reference: %r" % list(bf16_round(q32.flat[:4])))

# 2. --backend cuda with bf16 files, and with float32 files + --dtype bf16/f16: inputs accepted.
cuda_build = clitest.cuda_build(BIN)
no_gpu_line = "no CUDA GPU" if cuda_build else "built without CUDA; use --backend cpu"
rc, err, _ = bsattn(*common, *b16, "--backend", "cuda", "-o", path("o_cuda.npy"))
have_gpu = rc == 0
cuda_cases = [("bf16 files", b16), ("float32 files --dtype bf16", f32 + ["--dtype", "bf16"]),
              ("float32 files --dtype f16", f32 + ["--dtype", "f16"]),
              ("float16 files", ["--q", path("qh.npy"), "--k", path("kh.npy"), "--v", path("vh.npy")])]
for what, inputs in cuda_cases:
    rc, err, _ = bsattn(*common, *inputs, "--backend", "cuda", "-o", path("o_cuda.npy"))
    if have_gpu:
        expect(rc == 0, "%s, --backend cuda on a GPU: exit %d %r" % (what, rc, err))
    else:
        expect(rc == 1 and len(err) == 1 and no_gpu_line in err[0] and "dtype" not in err[0],
               "%s, --backend cuda without a GPU: want exit 1 and one %r line, got %d %r" % (what, no_gpu_line, rc, err))
        expect(not os.path.exists(path("o_cuda.npy")), "%s: output written without a GPU" % what)

# 3. Usage errors come before the GPU check (exit 2, one line, naming the allowed dtypes).
usage = [
    ("--dtype f32", f32 + ["--dtype", "f32"], ["bf16", "f16", "--backend cpu"]),
    ("float32 files, --dtype auto", f32, ["float32", "--dtype bf16", "--dtype f16"]),
    ("f16 Q with float32 K/V", ["--q", path("qh.npy"), "--k", path("k32.npy"), "--v", path("v32.npy")],
     ["one element type"]),
    ("uint16 files without --dtype bf16", b16[:-2], ["--dtype bf16"]),
    ("float16 files with --dtype bf16", ["--q", path("qh.npy"), "--k", path("kh.npy"), "--v", path("vh.npy"),
                                         "--dtype", "bf16"], ["float16", "--dtype is bf16"]),
]
for what, inputs, needles in usage:
    rc, err, _ = bsattn(*common, *inputs, "--backend", "cuda", "-o", path("o_bad.npy"))
    expect(rc == 2 and len(err) == 1 and all(n in err[0] for n in needles),
           "%s, --backend cuda: want exit 2 and one line with %r, got %d %r" % (what, needles, rc, err))

# --kernel (the variant peers.py checks) is a CUDA option: a usage error with the CPU backend; an
# unknown name lists the variants (a build without CUDA cannot list them: its GPU failure comes first).
rc, err, _ = bsattn(*common, *b16, "--backend", "cpu", "--kernel", "fa2-v4-w4-h", "-o", path("o_bad.npy"))
expect(rc == 2 and len(err) == 1 and "--backend cuda" in err[0], "--kernel with cpu: %d %r" % (rc, err))
rc, err, _ = bsattn(*common, *b16, "--backend", "cuda", "--kernel", "nosuch", "-o", path("o_bad.npy"))
if cuda_build:
    expect(rc == 2 and len(err) == 1 and "allowed" in err[0], "--kernel nosuch: %d %r" % (rc, err))
else:
    expect(rc == 1 and len(err) == 1 and no_gpu_line in err[0], "--kernel nosuch, build without CUDA: %d %r" % (rc, err))

# What the CUDA kernels cannot run (head_dim above 256; 1..256 run, padded to 64/128/256) is a usage error
# before any GPU check, so it reads the same on machines with and without a GPU; a build without CUDA has
# no kernel to ask and says so.
q264 = rng.standard_normal((B, S, H, 264)).astype(np.float32)
np.save(path("q264.npy"), bf16_bits(bf16_round(q264)))
np.save(path("k264.npy"), bf16_bits(bf16_round(q264[:, ::-1].copy())))
d264 = ["--q", path("q264.npy"), "--k", path("k264.npy"), "--v", path("k264.npy"), "--dtype", "bf16"]
rc, err, _ = bsattn(*common, *d264, "--backend", "cuda", "-o", path("o_bad.npy"))
if cuda_build:
    expect(rc == 2 and len(err) == 1 and "head dims 1 to 256" in err[0] and "264" in err[0],
           "head_dim 264 with --backend cuda: want exit 2 naming head dims 1 to 256, got %d %r" % (rc, err))
else:
    expect(rc == 1 and len(err) == 1 and no_gpu_line in err[0], "head_dim 264, build without CUDA: %d %r" % (rc, err))
expect(not os.path.exists(path("o_bad.npy")), "head_dim 264: output written")

# 4. CPU: float32 files with --dtype bf16 compute exactly what the bf16 files (rounded here) give;
#    --json records the rounding.
rc1, err1, _ = bsattn(*common, *f32, "--dtype", "bf16", "--backend", "cpu", "-o", path("o_round.npy"),
                      "--json", path("run_round.json"), "-q")
rc2, err2, _ = bsattn(*common, *b16, "--backend", "cpu", "-o", path("o_b16.npy"), "-q")
rc3, err3, _ = bsattn(*common, *f32, "--backend", "cpu", "-o", path("o_f32.npy"), "-q")
expect(rc1 == 0 and rc2 == 0 and rc3 == 0, "cpu runs: %r %r %r" % (err1, err2, err3))
if rc1 == 0 and rc2 == 0 and rc3 == 0:
    o_round, o_b16, o_f32 = (np.load(path(n)) for n in ("o_round.npy", "o_b16.npy", "o_f32.npy"))
    expect(np.array_equal(o_round, o_b16), "cpu: --dtype bf16 on float32 files differs from the bf16 files")
    expect(not np.array_equal(o_round, o_f32), "cpu: --dtype bf16 did not round the float32 inputs")
    rel = np.linalg.norm(o_round - o_f32) / np.linalg.norm(o_f32)
    expect(0 < rel < 2e-2, "cpu: bf16-rounded inputs moved O by %.3g (expected bf16-sized)" % rel)
    spec = json.load(open(path("run_round.json")))["inputs"]
    expect(spec["q"]["dtype"] == "bf16" and spec["q"].get("file_dtype") == "f32", "run --json inputs: %r" % spec["q"])

# 5. With a GPU: cuda on bf16 inputs agrees with the CPU reference on the same inputs (bf16 output
#    rounding and f32 accumulation order: ~1e-2 relative).
if have_gpu:
    rc, err, _ = bsattn(*common, *b16, "--backend", "cuda", "-o", path("o_cuda.npy"), "-q")
    o_cuda = np.load(path("o_cuda.npy"))
    rel = np.linalg.norm(o_cuda - np.load(path("o_b16.npy"))) / np.linalg.norm(np.load(path("o_b16.npy")))
    expect(rc == 0 and rel < 1e-2, "cuda vs cpu on bf16 inputs: rel %.3g, %r" % (rel, err))

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("ok: run dtypes (%s)" % ("GPU present: cuda compared with cpu" if have_gpu else "no GPU: typed before the GPU check"))
