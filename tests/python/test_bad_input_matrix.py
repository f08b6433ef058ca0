"""The bad-input matrix of issue 23, over all five subcommands: every case must exit 2 (bad input) or 1
(a failure at run time, e.g. no GPU), print exactly one line on stderr, `bsattn CMD: error: ...`, that
names the option or file (each case lists the text it must contain), and leave every file as it was:
no output written, replaced or left behind (temporaries included), no input changed. Cases marked
ascii must print only printable ASCII (a file that is not JSON is never quoted raw). After the matrix,
well-formed lists given to the same options must still be accepted.

Children run under a 3 GiB address-space limit, so a request that tries to allocate what its input
promises (instead of refusing it) fails as "out of host memory" with exit 1 and is reported. Set
BSATTN_NO_RLIMIT=1 for sanitizer builds, whose shadow memory needs more address space.

Run by ctest as: /usr/bin/python3 THIS BSATTN_BINARY SCRATCH_DIR."""
import base64
import hashlib
import json
import os
import resource
import shutil
import struct
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import CliTest  # noqa: E402

t = CliTest("bad_input_matrix")
shutil.rmtree(t.scratch)
IN = os.path.join(t.scratch, "in")
OUT = os.path.join(t.scratch, "out")
os.makedirs(IN)
os.makedirs(OUT)
os.makedirs(os.path.join(OUT, "adir"))
NODIR = os.path.join(t.scratch, "nodir")  # never created


def i(name):
    return os.path.join(IN, name)


def o(name):
    return os.path.join(OUT, name)


# ---- fixtures ----
rng = np.random.default_rng(23)
S, H, D = 256, 2, 16
for name in ("q", "k", "v", "do"):
    np.save(i(name + ".npy"), rng.standard_normal((1, S, H, D)).astype(np.float32))
np.save(i("qbig.npy"), np.full((1, S, H, D), 3e38, np.float32))  # finite, but q.k overflows float32
np.save(i("dobig.npy"), np.full((1, S, H, D), 3e38, np.float32))
np.save(i("qnan.npy"), np.where(np.arange(S * H * D).reshape(1, S, H, D) == 5, np.nan, 1.0).astype(np.float32))
np.save(i("kdim.npy"), rng.standard_normal((1, S, H, 2 * D)).astype(np.float32))
np.save(i("kshort.npy"), rng.standard_normal((1, S - 64, H, D)).astype(np.float32))
np.save(i("q16.npy"), rng.standard_normal((1, S, H, D)).astype(np.float16))
np.save(i("mask.npy"), np.ones((1, H, 4, 4), bool))
np.save(i("mask2.npy"), np.full((1, H, 4, 4), 2, np.uint8))
np.save(i("maskf.npy"), np.ones((1, H, 4, 4), np.float32))
np.save(i("mask1d.npy"), np.ones((4,), bool))
with open(i("notnpy.npy"), "wb") as f:
    f.write(b"this is not a numpy file\n" * 100)
with open(i("empty.npy"), "wb") as f:
    pass
with open(i("trunc.npy"), "wb") as f:  # a valid header, the data cut short
    f.write(open(i("q.npy"), "rb").read()[:300])
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 2, 2, 16), }"
hdr += " " * (118 - len(hdr)) + "\n"
with open(i("huge_header.npy"), "wb") as f:  # promises 2^40 x 64 floats, holds 16 bytes
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + b"\0" * 16)
with open(i("bigendian.npy"), "wb") as f:
    h2 = "{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }"
    h2 += " " * (118 - len(h2)) + "\n"
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h2)) + h2.encode() + b"\0" * 16)
# Case 7: a 6 GiB file that is not .npy (sparse: it takes no disk space; reading it all would take a
# minute and run out of memory under the limit).
with open(i("sparse6g.npy"), "wb") as f:
    f.truncate(6 << 30)

# A mask made by bsattn itself (.json and CSR), and variants of its .json.
r = subprocess.run([t.bin, "gen-mask", "--pattern", "local:window=1", "--seq", str(S), "--heads", str(H),
                    "--block", "64", "-o", i("mask.json"), "--csr", i("csr"), "-q"], capture_output=True, text=True)
assert r.returncode == 0, r.stderr
base = json.load(open(i("mask.json")))


def mask_json(name, **changes):
    j = json.loads(json.dumps(base))
    for key, value in changes.items():
        if value is None:
            del j[key]
        else:
            j[key] = value
    with open(i(name), "w") as f:
        json.dump(j, f)
    return i(name)


INT64_MAX = 2**63 - 1
mask_json("m_qlen_max.json", q_len=INT64_MAX, kv_len=INT64_MAX, block_q=2**30, block_kv=2**30)  # case 2
mask_json("m_qlen_neg.json", q_len=-5)
mask_json("m_qlen_2p54.json", q_len=2**54, kv_len=2**54, block_q=2**30, block_kv=2**30)  # cases 1, 2
mask_json("m_qlen_2p40.json", q_len=2**40, kv_len=2**40, block_q=2**30, block_kv=2**30, mq=1024, mk=1024,
          head_types=[{"type": "sparse"}] * H,
          bitmap={"encoding": "packbits-base64", "shape": [1, H, 1024, 1024],
                  "data": base64.b64encode(bytes(H * 1024 * 1024 // 8)).decode()})
# Case 3: a few hundred bytes whose sizes ask for 2^35 blocks: refused before the bitmap is allocated.
mask_json("m_heads7.json", heads=7, q_len=2**21, kv_len=2**22, block_q=1, block_kv=2**10)
mask_json("m_bitmap_short.json", heads=2, q_len=2**22, kv_len=2**20, block_q=1, block_kv=2**7)
mask_json("m_bitmap_bad64.json", bitmap={"encoding": "packbits-base64", "shape": [1, H, 4, 4], "data": "!!!!"})
mask_json("m_bitmap_enc.json", bitmap={"encoding": "raw", "shape": [1, H, 4, 4], "data": ""})
ht_stream = [{"type": "streaming", "sink_blocks": 1, "local_blocks": -2**63}] + [{"type": "sparse"}] * (H - 1)
mask_json("m_stream_neg.json", head_types=ht_stream)  # case 4
mask_json("m_stream_big.json", head_types=[{"type": "streaming", "sink_blocks": 2**62, "local_blocks": 1}] * H)
mask_json("m_headtype.json", head_types=[{"type": "diagonal"}] * H)
mask_json("m_schema.json", schema="other/v9")
mask_json("m_qlen_float.json", q_len=2.7777777777777778e+107)  # found by fuzz_mask_json: a cast past int64
mask_json("m_heads_u64.json", heads=2**64 - 1)
mask_json("m_nobatch.json", batch=None)
mask_json("m_batch_str.json", batch="one")
mask_json("m_mk.json", mk=9)  # mq, mk and bitmap.shape repeat the sizes; a file contradicting itself is refused
mask_json("m_bitmap_shape.json", bitmap=dict(base["bitmap"], shape=[1, H, -4, -4]))
mask_json("m_dense_lie.json", head_types=[{"type": "dense"}] * H)  # local bitmap marked dense
with open(i("m_broken.json"), "w") as f:
    f.write('{"schema": "bsattn.mask/v1", "batch": ')
# Case 5: int64 CSR whose index 2^32+1 would read as 1 when truncated.
np.save(i("c64_kv_num_blocks.npy"), np.full((1, H, 4), 1, np.int64))
idx = np.zeros((1, H, 4, 4), np.int64)
idx[0, 0, 0, 0] = 2**32 + 1
np.save(i("c64_kv_indices.npy"), idx)
np.save(i("cneg_kv_num_blocks.npy"), np.full((1, H, 4), -1, np.int32))
np.save(i("cneg_kv_indices.npy"), np.zeros((1, H, 4, 4), np.int32))
np.save(i("cdesc_kv_num_blocks.npy"), np.full((1, H, 4), 2, np.int32))
np.save(i("cdesc_kv_indices.npy"), np.tile(np.array([2, 1, 0, 0], np.int32), (1, H, 4, 1)))
np.save(i("cf_kv_num_blocks.npy"), np.full((1, H, 4), 1, np.float32))
np.save(i("cf_kv_indices.npy"), np.zeros((1, H, 4, 4), np.float32))
np.save(i("cbig_kv_num_blocks.npy"), np.full((1, H, 4), 2**40, np.int64))
np.save(i("cbig_kv_indices.npy"), np.zeros((1, H, 4, 4), np.int64))
# Bench and frontier documents, and sweep configs.
with open(i("bench_bad.json"), "w") as f:
    json.dump({"schema": "bsattn.bench/v1", "records": "nope"}, f)
with open(i("bench_schema.json"), "w") as f:
    json.dump({"schema": "something/v1", "records": []}, f)
with open(i("frontier_bad.json"), "w") as f:
    json.dump({"schema": "bsattn.frontier/v1", "records": [{"pattern": 3}]}, f)
with open(i("frontier_schema.json"), "w") as f:
    json.dump({"schema": "bsattn.bench/v1"}, f)
with open(i("notjson.json"), "w") as f:
    f.write("{ not json")
with open(i("cfg_unknown.json"), "w") as f:
    json.dump({"seq": [256], "colour": "blue"}, f)
with open(i("cfg_seq.json"), "w") as f:
    json.dump({"seq": "1:9223372036854775807:1"}, f)
with open(i("cfg_list.json"), "w") as f:
    json.dump([1, 2], f)
with open(i("cfg_heads.json"), "w") as f:
    json.dump({"heads": [99999999]}, f)
with open(i("cfg_empty_item.json"), "w") as f:
    json.dump({"dtype": ["bf16", ""]}, f)
# Files that are not JSON, under .json names: binary (a PNG header, NUL, ESC, 0xff), control characters
# in a string, bytes that are not UTF-8, truncated, empty, a number past double's range.
with open(i("png.json"), "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x1b[2J\xff\xfe" + bytes(range(256)) * 4)
with open(i("ctl.json"), "wb") as f:
    f.write(b'{"schema": "bsattn.bench/v1", "records": "\x07\x1b[31m\x00"}')
with open(i("latin1.json"), "wb") as f:
    f.write(b'{"schema": "bsattn.mask/v1", "name": "caf\xe9 \xff\xfe"}')
with open(i("trunc.json"), "wb") as f:
    f.write(b'{"schema": "bsattn.bench/v1", "records": [')
with open(i("empty.json"), "wb") as f:
    pass
with open(i("bignum.json"), "w") as f:
    f.write('{"schema": "bsattn.bench/v1", "records": [1e999]}')
# An output that exists and must survive every failed run unchanged.
EXISTING = o("existing.npy")
np.save(EXISTING, np.arange(7, dtype=np.int32))
with open(o("existing.json"), "w") as f:
    f.write('{"keep": true}\n')

QKV = ["--q", i("q.npy"), "--k", i("k.npy"), "--v", i("v.npy")]
CPU = ["--backend", "cpu"]
SMALL = ["--seq", "128", "--heads", "2", "--head-dim", "16"]
LOCAL = "local:window=1"
GEN = ["--pattern", LOCAL, "--seq", "256", "--block", "64"]
SYN = ["--synthetic", "decay", "--seq", "256", "--heads", "2", "--head-dim", "16"]
BENCH = ["--backend", "cpu", "--seq", "128", "--heads", "1", "--head-dim", "16", "--density", "0.5",
         "--pattern", "random", "--block", "64", "--max-time", "0.01", "--min-samples", "1", "--warmup", "0", "-q"]

# (case name, subcommand argv, allowed exit statuses, texts the one stderr line must contain, whether
# stderr must be printable ASCII)
CASES = []


def case(name, argv, needle, rc=(2,), ascii=False):
    CASES.append((name, argv, tuple(rc), (needle,) if isinstance(needle, str) else tuple(needle), ascii))


# ---------------- gen-mask ----------------
g = ["gen-mask"]
case("gm: unknown pattern", g + ["--pattern", "nosuch", "--seq", "256", "-o", o("a.npy")], "nosuch")
case("gm: no sizes", g + ["--pattern", LOCAL, "-o", o("a.npy")], "--seq")
case("gm: seq 0", g + ["--pattern", LOCAL, "--seq", "0", "-o", o("a.npy")], "--seq")
case("gm: seq huge", g + ["--pattern", LOCAL, "--seq", str(2**62), "-o", o("a.npy")], "--seq")
case("gm: seq not a number", g + ["--pattern", LOCAL, "--seq", "abc", "-o", o("a.npy")], "--seq")
case("gm: heads 0", g + GEN + ["--heads", "0", "-o", o("a.npy")], "--heads")
case("gm: batch huge", g + GEN + ["--batch", str(2**40), "-o", o("a.npy")], "--batch")
case("gm: block 0", g + ["--pattern", LOCAL, "--seq", "256", "--block", "0", "-o", o("a.npy")], "--block")
case("gm: block-q huge", g + ["--pattern", LOCAL, "--seq", "256", "--block-q", str(2**40), "-o", o("a.npy")], "--block")
case("gm: mask too many blocks", g + ["--pattern", LOCAL, "--seq", str(2**40), "--block", "1", "-o", o("a.npy")],
     "blocks")
case("gm: window negative", g + ["--pattern", "local:window=-1", "--seq", "256", "-o", o("a.npy")], "window")
case("gm: density nan", g + ["--pattern", "random:density=nan", "--seq", "256", "-o", o("a.npy")], "density")
case("gm: density 2", g + ["--pattern", "random:density=2", "--seq", "256", "-o", o("a.npy")], "density")
case("gm: param unknown", g + ["--pattern", "local:radius=2", "--seq", "256", "-o", o("a.npy")], "radius")
case("gm: param twice", g + ["--pattern", "local:window=1,window=2", "--seq", "256", "-o", o("a.npy")], "twice")
case("gm: streaming local huge", g + ["--pattern", "streaming:sink=1,local=99999999999999", "--seq", "256",
                                      "-o", o("a.npy")], "local")
case("gm: head map overlap", g + ["--head-map", "0-1=dense;1-1=local", "--seq", "256", "--heads", "2",
                                  "-o", o("a.npy")], "twice")
case("gm: head map gap", g + ["--head-map", "0-0=dense", "--seq", "256", "--heads", "2", "-o", o("a.npy")], "head 1")
case("gm: pattern and head map", g + ["--pattern", LOCAL, "--head-map", "0-0=dense", "--seq", "256",
                                      "-o", o("a.npy")], "--head-map")
case("gm: -o extension", g + GEN + ["-o", o("a.txt")], "-o")
case("gm: -o is a folder (13)", g + GEN + ["-o", o("adir")], "adir")
case("gm: -o folder missing", g + GEN + ["-o", os.path.join(NODIR, "a.npy")], "nodir")
case("gm: --csr folder missing (12)", g + GEN + ["-o", o("x.npy"), "--csr", os.path.join(NODIR, "x")], "--csr")
case("gm: --json folder missing (12)", g + GEN + ["-o", o("x.npy"), "--json", os.path.join(NODIR, "s.json")], "--json")
case("gm: --json is a folder (13)", g + GEN + ["-o", o("x.npy"), "--json", o("adir")], "--json")
case("gm: -o and --json the same file", g + GEN + ["-o", o("same.json"), "--json", o("same.json")], "same.json")
case("gm: existing -o kept when --csr fails (12)", g + GEN + ["-o", EXISTING, "--csr", os.path.join(NODIR, "x")],
     "--csr")
case("gm: --emit-permutation folder missing", g + ["--pattern", "video-sta:grid=2x4x4,window=1x3x3", "--block", "4",
                                                   "--order", "gilbert", "--grid", "2x4x4", "-o", o("a.npy"),
                                                   "--emit-permutation", os.path.join(NODIR, "p.npy")],
     "--emit-permutation")
case("gm: seed -1 (13)", g + GEN + ["--seed", "-1", "-o", o("a.npy")], "--seed")
case("gm: seed 2^64", g + GEN + ["--seed", str(2**64), "-o", o("a.npy")], "--seed")
case("gm: seed text", g + GEN + ["--seed", "x", "-o", o("a.npy")], "--seed")
case("gm: quiet without outputs", g + GEN + ["-q"], "nothing to do")
case("gm: synthetic huge (1)", g + ["--pattern", "energy", "--seq", str(2**30), "--heads", "65536", "--block", "65536",
                                    "--synthetic", "decay", "--head-dim", "1024", "-o", o("a.npy")], "limit")
case("gm: synthetic wraps int64 (1)", g + ["--pattern", "energy", "--seq", str(2**40), "--heads", "1048576",
                                           "--block", str(2**30), "--synthetic", "decay", "--head-dim", "1048576",
                                           "-o", o("a.npy")], "--head-dim")
case("gm: synthetic spatial grid overflow (1)", g + ["--pattern", "energy", "--block", "64", "--synthetic",
                                                     "spatial:grid=4294967296x4294967296", "--head-dim", "16",
                                                     "--seq", "256", "-o", o("a.npy")], "grid")
case("gm: energy without inputs", g + ["--pattern", "energy", "--seq", "256", "-o", o("a.npy")], "energy")
case("gm: energy pool 3", g + ["--pattern", "energy:pool=3", "--seq", "256", "--block", "64", "--q", i("q.npy"),
                               "--k", i("k.npy"), "--heads", "2", "-o", o("a.npy")], "pool")
case("gm: --q missing file", g + ["--pattern", "energy", "--seq", "256", "--block", "64", "--q", i("nosuch.npy"),
                                  "--k", i("k.npy"), "--heads", "2", "-o", o("a.npy")], "nosuch.npy")
case("gm: --q not npy", g + ["--pattern", "energy", "--seq", "256", "--block", "64", "--q", i("notnpy.npy"),
                             "--k", i("k.npy"), "--heads", "2", "-o", o("a.npy")], "notnpy.npy")
case("gm: --q 6 GiB not npy (7)", g + ["--pattern", "energy", "--seq", "256", "--block", "64", "--q",
                                       i("sparse6g.npy"), "--k", i("k.npy"), "--heads", "2", "-o", o("a.npy")],
     "sparse6g.npy")
case("gm: --q heads mismatch", g + ["--pattern", "energy", "--seq", "256", "--block", "64", "--q", i("q.npy"),
                                    "--k", i("k.npy"), "--heads", "4", "-o", o("a.npy")], "--q")
case("gm: --q NaN", g + ["--pattern", "energy", "--seq", "256", "--block", "64", "--q", i("qnan.npy"),
                         "--k", i("k.npy"), "--heads", "2", "-o", o("a.npy")], "NaN")
case("gm: --backend cuda non-adaptive (11)", g + GEN + ["--backend", "cuda", "--synthetic", "decay", "--head-dim", "16",
                                                         "-o", o("a.npy")], "energy")
case("gm: --backend cuda float32 Q/K (11)", g + ["--pattern", "energy", "--seq", "256", "--block", "64", "--q",
                                                  i("q.npy"), "--k", i("k.npy"), "--heads", "2", "--backend", "cuda",
                                                  "-o", o("a.npy")], "bf16")
case("gm: --backend cuda max_blocks (11)", g + ["--pattern", "energy:max_blocks=2", "--seq", "256", "--block", "64",
                                                 "--synthetic", "decay", "--heads", "2", "--head-dim", "16",
                                                 "--backend", "cuda", "--dtype", "bf16", "-o", o("a.npy")],
     "max_blocks")
case("gm: --backend cuda, no GPU here (11)", g + ["--pattern", "energy:pool=4", "--seq", "256", "--block", "64",
                                                   "--synthetic", "decay", "--heads", "2", "--head-dim", "16",
                                                   "--backend", "cuda", "--dtype", "bf16", "-o", o("a.npy")],
     "cuda", rc=(1,))
case("gm: --backend other", g + GEN + ["--backend", "tpu", "-o", o("a.npy")], "--backend")
case("gm: --order without grid", g + GEN + ["--order", "gilbert", "-o", o("a.npy")], "--grid")
case("gm: --order unknown", g + ["--pattern", LOCAL, "--seq", "32", "--block", "4", "--order", "zigzag", "--grid",
                                 "4x8", "-o", o("a.npy")], "zigzag")
case("gm: --grid mismatch", g + GEN + ["--order", "gilbert", "--grid", "4x4", "-o", o("a.npy")], "--grid")
case("gm: --grid text", g + GEN + ["--order", "gilbert", "--grid", "axb", "-o", o("a.npy")], "--grid")
case("gm: --text without order", g + GEN + ["--text", "4", "-o", o("a.npy")], "--order")
case("gm: custom file not npy", g + ["--pattern", "custom:file=" + i("notnpy.npy"), "--seq", "256", "--block", "64",
                                     "-o", o("a.npy")], "notnpy.npy")
case("gm: custom file truncated", g + ["--pattern", "custom:file=" + i("trunc.npy"), "--seq", "256", "--block", "64",
                                       "-o", o("a.npy")], "trunc.npy")
case("gm: custom file 6 GiB (7)", g + ["--pattern", "custom:file=" + i("sparse6g.npy"), "--seq", "256", "--block",
                                       "64", "-o", o("a.npy")], "sparse6g.npy")
case("gm: custom header promises 2^40 rows", g + ["--pattern", "custom:file=" + i("huge_header.npy"), "--seq", "256",
                                                  "--block", "64", "-o", o("a.npy")], "huge_header.npy")
case("gm: unknown option", g + GEN + ["--colour", "red", "-o", o("a.npy")], "--colour")
case("gm: recall without inputs", g + GEN + ["--recall", "-o", o("a.npy")], "--recall")
case("gm: --list-patterns --json to a folder", g + ["--list-patterns", "--json", o("adir")], "adir")

# ---------------- visualize ----------------
vm = ["visualize", "mask"]
case("vis mask: missing file", vm + [i("nosuch.npy"), "-o", o("a.png")], "nosuch")
case("vis mask: not npy", vm + [i("notnpy.npy"), "-o", o("a.png")], "notnpy.npy")
case("vis mask: empty npy", vm + [i("empty.npy"), "-o", o("a.png")], "empty.npy")
case("vis mask: 6 GiB not npy (7)", vm + [i("sparse6g.npy"), "-o", o("a.png")], "sparse6g.npy")
case("vis mask: npy header promises 2^40", vm + [i("huge_header.npy"), "-o", o("a.png")], "huge_header.npy")
case("vis mask: big-endian", vm + [i("bigendian.npy"), "-o", o("a.png")], "big-endian")
case("vis mask: values 2", vm + [i("mask2.npy"), "-o", o("a.png")], "mask2.npy")
case("vis mask: float mask", vm + [i("maskf.npy"), "-o", o("a.png")], "maskf.npy")
case("vis mask: 1-D mask", vm + [i("mask1d.npy"), "-o", o("a.png")], "mask1d.npy")
case("vis mask: json q_len INT64_MAX (2)", vm + [i("m_qlen_max.json"), "-o", o("a.png")], "q_len")
case("vis mask: json q_len negative", vm + [i("m_qlen_neg.json"), "-o", o("a.png")], "q_len")
case("vis mask: json heads 7, one listed (3)", vm + [i("m_heads7.json"), "-o", o("a.png")], "m_heads7.json")
case("vis mask: json bitmap short, sizes huge (3)", vm + [i("m_bitmap_short.json"), "-o", o("a.png")], "bitmap")
case("vis mask: json bitmap not base64", vm + [i("m_bitmap_bad64.json"), "-o", o("a.png")], "base64")
case("vis mask: json bitmap encoding", vm + [i("m_bitmap_enc.json"), "-o", o("a.png")], "encoding")
case("vis mask: json streaming local -2^63 (4)", vm + [i("m_stream_neg.json"), "-o", o("a.png")], "local_blocks")
case("vis mask: json streaming sink 2^62 (4)", vm + [i("m_stream_big.json"), "-o", o("a.png")], "sink_blocks")
case("vis mask: json head type", vm + [i("m_headtype.json"), "-o", o("a.png")], "diagonal")
case("vis mask: json schema", vm + [i("m_schema.json"), "-o", o("a.png")], "schema")
case("vis mask: json q_len a huge float", vm + [i("m_qlen_float.json"), "-o", o("a.png")], "q_len")
case("vis mask: json heads 2^64-1", vm + [i("m_heads_u64.json"), "-o", o("a.png")], "heads")
case("run: json heads 2^64-1", ["run", i("m_heads_u64.json")] + QKV + CPU + ["-o", o("o.npy")], "heads")
case("vis mask: json missing batch", vm + [i("m_nobatch.json"), "-o", o("a.png")], "m_nobatch.json")
case("vis mask: json batch a string", vm + [i("m_batch_str.json"), "-o", o("a.png")], "m_batch_str.json")
case("vis mask: json dense head not full", vm + [i("m_dense_lie.json"), "-o", o("a.png")], "dense")
case("vis mask: json broken", vm + [i("m_broken.json"), "-o", o("a.png")], "m_broken.json")
case("vis mask: json mk disagrees", vm + [i("m_mk.json"), "-o", o("a.png")], "mk")
case("vis mask: json bitmap shape disagrees", vm + [i("m_bitmap_shape.json"), "-o", o("a.png")], "bitmap shape")
case("run: json bitmap shape disagrees", ["run", i("m_bitmap_shape.json")] + QKV + CPU + ["-o", o("o.npy")],
     "bitmap shape")
case("vis mask: csr int64 2^32+1 (5)", vm + [i("c64"), "--block", "64", "-o", o("a.png")], "c64_kv_indices.npy")
case("vis mask: csr int64 count 2^40 (5)", vm + [i("cbig"), "--block", "64", "-o", o("a.png")],
     "cbig_kv_num_blocks.npy")
case("vis mask: csr negative count", vm + [i("cneg"), "--block", "64", "-o", o("a.png")], "kv_num_blocks")
case("vis mask: csr not ascending", vm + [i("cdesc"), "--block", "64", "-o", o("a.png")], "ascending")
case("vis mask: csr float", vm + [i("cf"), "--block", "64", "-o", o("a.png")], "dtype")
case("vis mask: no -o", vm + [i("mask.npy")], "-o")
case("vis mask: -o is a folder (13)", vm + [i("mask.npy"), "-o", o("adir")], "adir")
case("vis mask: -o folder missing", vm + [i("mask.npy"), "-o", os.path.join(NODIR, "a.png")], "nodir")
case("vis mask: --json folder missing (12)", vm + [i("mask.npy"), "-o", o("a.png"), "--json",
                                                   os.path.join(NODIR, "f.json")], "--json")
case("vis mask: existing -o kept (12)", vm + [i("mask.npy"), "-o", EXISTING, "--json", os.path.join(NODIR, "f.json")],
     "--json")
case("vis mask: width 1", vm + [i("mask.npy"), "-o", o("a.png"), "--width", "1"], "--width")
case("vis mask: dpi 0", vm + [i("mask.npy"), "-o", o("a.png"), "--dpi", "0"], "--dpi")
case("vis mask: format gif", vm + [i("mask.npy"), "-o", o("a.png"), "--format", "gif"], "--format")
case("vis mask: q-len huge", vm + [i("mask.npy"), "-o", o("a.png"), "--q-len", str(2**50)], "--q-len")
case("vis mask: q-len disagrees", vm + [i("mask.npy"), "-o", o("a.png"), "--q-len", "1000", "--block", "64"],
     "mask.npy")
va = ["visualize", "attention"]
case("vis attn: json q_len 2^54 (1, 2)", va + [i("m_qlen_2p54.json"), "--synthetic", "decay", "--head-dim", "16",
                                               "-o", o("a.png")], "q_len")
case("vis attn: json q_len 2^40, synthetic Q too large (1)", va + [i("m_qlen_2p40.json"), "--synthetic", "decay",
                                                                   "--head-dim", "16", "-o", o("a.png")], "limit")
case("vis attn: q and synthetic", va + [i("mask.npy"), "--q", i("q.npy"), "--k", i("k.npy"), "--synthetic", "decay",
                                        "-o", o("a.png")], "--synthetic")
case("vis attn: no inputs", va + [i("mask.npy"), "-o", o("a.png")], "--synthetic")
case("vis attn: q missing", va + [i("mask.npy"), "--q", i("nosuch.npy"), "--k", i("k.npy"), "-o", o("a.png")],
     "nosuch.npy")
case("vis attn: q 6 GiB not npy (7)", va + [i("mask.npy"), "--q", i("sparse6g.npy"), "--k", i("k.npy"), "--block",
                                            "64", "-o", o("a.png")], "sparse6g.npy")
case("vis attn: seed -1 (13)", va + [i("mask.npy"), "--synthetic", "decay", "--seed", "-1", "-o", o("a.png")], "--seed")
case("vis attn: synthetic unknown", va + [i("mask.npy"), "--synthetic", "noise", "-o", o("a.png")], "noise")
case("vis attn: decades 0", va + [i("mask.npy"), "--synthetic", "decay", "--decades", "0", "-o", o("a.png")],
     "--decades")
case("vis attn: -o is a folder (13)", va + [i("mask.npy"), "--synthetic", "decay", "--head-dim", "16", "--block",
                                            "64", "-o", o("adir")], "adir")
case("vis attn: q NaN", va + [i("mask.npy"), "--q", i("qnan.npy"), "--k", i("k.npy"), "--block", "64",
                              "-o", o("a.png")], "NaN")
vc = ["visualize", "curve"]
case("vis curve: grid bad", vc + ["--grid", "0x4", "-o", o("a.png")], "--grid")
case("vis curve: grid huge", vc + ["--grid", "99999999x99999999x99999999", "-o", o("a.png")], "--grid")
case("vis curve: order unknown", vc + ["--grid", "8x8", "--order", "zigzag", "-o", o("a.png")], "zigzag")
case("vis curve: frames 0", vc + ["--grid", "2x8x8", "--frames", "0", "-o", o("a.png")], "--frames")
case("vis curve: view bad", vc + ["--grid", "8x8", "--view", "both", "-o", o("a.png")], "--view")
case("vis curve: -o is a folder (13)", vc + ["--grid", "8x8", "-o", o("adir")], "adir")
case("vis curve: --json folder missing (12)", vc + ["--grid", "8x8", "-o", o("a.png"), "--json",
                                                    os.path.join(NODIR, "c.json")], "--json")
vf = ["visualize", "frontier"]
case("vis frontier: missing", vf + [i("nosuch.json"), "-o", o("a.png")], "nosuch.json")
case("vis frontier: not json", vf + [i("notjson.json"), "-o", o("a.png")], "notjson.json")
case("vis frontier: bad records", vf + [i("frontier_bad.json"), "-o", o("a.png")], "frontier_bad.json")
case("vis frontier: wrong schema", vf + [i("frontier_schema.json"), "-o", o("a.png")], "frontier_schema.json")
case("vis frontier: a mask json", vf + [i("mask.json"), "-o", o("a.png")], "mask.json")
case("vis frontier: metric bad", vf + [i("frontier_bad.json"), "--metric", "speed", "-o", o("a.png")], "--metric")
case("vis frontier: 6 GiB file", vf + [i("sparse6g.npy"), "-o", o("a.png")], "sparse6g.npy")
vb = ["visualize", "bench"]
case("vis bench: missing", vb + [i("nosuch.json"), "-o", o("a.png")], "nosuch.json")
case("vis bench: not json", vb + [i("notjson.json"), "-o", o("a.png")], "notjson.json")
case("vis bench: records not a list", vb + [i("bench_bad.json"), "-o", o("a.png")], "bench_bad.json")
case("vis bench: wrong schema", vb + [i("bench_schema.json"), "-o", o("a.png")], "bench_schema.json")
case("vis bench: x bad", vb + [i("bench_bad.json"), "--x", "heads", "-o", o("a.png")], "--x")
case("vis bench: -o is a folder (13)", vb + [i("bench_bad.json"), "-o", o("adir")], "adir")
case("vis: no kind", ["visualize"], "visualize")
case("vis: unknown kind", ["visualize", "histogram"], "subcommand")

# ---------------- analyze ----------------
a = ["analyze"]
case("an: huge synthetic sizes (1)", a + [LOCAL, "--synthetic", "decay", "--batch", "1048576", "--seq", "1073741824",
                                          "--heads", "65536", "--head-dim", "256", "--block", "1073741824"], "limit")
case("an: synthetic 2^32 elements (1)", a + [LOCAL, "--synthetic", "decay", "--seq", "1073741824", "--heads", "16",
                                             "--head-dim", "1024", "--block", "1073741824"], "limit")
case("an: synthetic seq 0", a + [LOCAL, "--synthetic", "decay", "--seq", "0"], "--seq")
case("an: synthetic heads 2^20", a + [LOCAL, "--synthetic", "decay", "--heads", str(2**20)], "--heads")
case("an: synthetic odd head-dim", a + [LOCAL] + SYN[:-1] + ["15", "--block", "64"], "head")
case("an: kv-heads not dividing", a + [LOCAL] + SYN + ["--kv-heads", "3", "--block", "64"], "heads")
case("an: synthetic unknown", a + [LOCAL, "--synthetic", "noise", "--seq", "256"], "noise")
case("an: synthetic bad param", a + [LOCAL, "--synthetic", "decay:base=-1", "--seq", "256"], "base")
case("an: q and synthetic", a + [LOCAL] + QKV + ["--synthetic", "decay"], "--synthetic")
case("an: no inputs", a + [LOCAL], "--synthetic")
case("an: q missing", a + [LOCAL, "--q", i("nosuch.npy"), "--k", i("k.npy"), "--v", i("v.npy")], "nosuch.npy")
case("an: q not npy", a + [LOCAL, "--q", i("notnpy.npy"), "--k", i("k.npy"), "--v", i("v.npy")], "notnpy.npy")
case("an: q truncated", a + [LOCAL, "--q", i("trunc.npy"), "--k", i("k.npy"), "--v", i("v.npy")], "trunc.npy")
case("an: q 6 GiB (7)", a + [LOCAL, "--q", i("sparse6g.npy"), "--k", i("k.npy"), "--v", i("v.npy")], "sparse6g.npy")
case("an: q header 2^40 rows", a + [LOCAL, "--q", i("huge_header.npy"), "--k", i("k.npy"), "--v", i("v.npy")],
     "huge_header.npy")
case("an: k shorter than mask", a + [i("mask.npy"), "--q", i("q.npy"), "--k", i("kshort.npy"), "--v",
                                     i("kshort.npy"), "--block", "64"], "mask")
case("an: q NaN", a + [LOCAL, "--q", i("qnan.npy"), "--k", i("k.npy"), "--v", i("v.npy"), "--block", "64"], "NaN")
case("an: score overflow is not a perfect match (9)", a + [LOCAL, "--q", i("qbig.npy"), "--k", i("qbig.npy"),
                                                            "--v", i("v.npy"), "--block", "64"], "overflow")
case("an: score overflow, causal (9)", a + [LOCAL, "--q", i("qbig.npy"), "--k", i("qbig.npy"), "--v", i("v.npy"),
                                            "--block", "64", "--causal"], "overflow")
case("an: mask json q_len INT64_MAX (2)", a + [i("m_qlen_max.json")] + SYN, "q_len")
case("an: mask json heads 7 (3)", a + [i("m_heads7.json")] + SYN, "m_heads7.json")
case("an: mask json streaming (4)", a + [i("m_stream_neg.json")] + SYN, "local_blocks")
case("an: mask csr int64 (5)", a + [i("c64"), "--block", "64"] + SYN, "c64_kv_indices.npy")
case("an: mask 6 GiB (7)", a + [i("sparse6g.npy")] + SYN, "sparse6g.npy")
case("an: mask not npy", a + [i("notnpy.npy")] + SYN, "notnpy.npy")
case("an: mask pattern unknown", a + ["nosuch:x=1"] + SYN, "nosuch")
case("an: seed -1 (13)", a + [LOCAL] + SYN + ["--seed", "-1"], "--seed")
case("an: --json folder missing (12)", a + [LOCAL] + SYN + ["--block", "64", "--json", os.path.join(NODIR, "a.json")],
     "--json")
case("an: --json is a folder (13)", a + [LOCAL] + SYN + ["--block", "64", "--json", o("adir")], "adir")
case("an: existing --json kept on failure", a + [LOCAL, "--q", i("qbig.npy"), "--k", i("qbig.npy"), "--v", i("v.npy"),
                                                 "--block", "64", "--json", o("existing.json")], "overflow")
case("an: threads -1", a + [LOCAL] + SYN + ["--threads", "-1"], "--threads")
case("an: rtol 2", a + [LOCAL] + SYN + ["--rtol", "2"], "--rtol")
case("an: backend cuda here (runtime)", a + [LOCAL] + SYN + ["--block", "64", "--backend", "cuda", "--dtype", "bf16"],
     "cuda", rc=(1, 2))
case("an: dtype bad", a + [LOCAL] + SYN + ["--dtype", "f8"], "--dtype")
case("an: layout bad", a + [LOCAL] + QKV + ["--layout", "sbhd"], "--layout")
case("an: curves grid bad", a + ["--curves", "--grid", "0x0"], "--grid")
case("an: curves --json folder missing", a + ["--curves", "--grid", "8x8", "--json", os.path.join(NODIR, "c.json")],
     "--json")
case("an: curves --markdown is a folder", a + ["--curves", "--grid", "8x8", "--markdown", o("adir")], "adir")

# ---------------- run ----------------
rn = ["run"]
RUNQKV = [LOCAL, "--block", "64"] + QKV + CPU
case("run: no --out", rn + RUNQKV, "--out")
case("run: scale inf (10)", rn + RUNQKV + ["--scale", "inf", "-o", o("o.npy")], "--scale")
case("run: scale nan (10)", rn + RUNQKV + ["--scale", "nan", "-o", o("o.npy")], "--scale")
case("run: scale 1e39 (10)", rn + RUNQKV + ["--scale", "1e39", "-o", o("o.npy")], "--scale")
case("run: scale -1 (10)", rn + RUNQKV + ["--scale", "-1", "-o", o("o.npy")], "--scale")
case("run: scale text", rn + RUNQKV + ["--scale", "big", "-o", o("o.npy")], "--scale")
case("run: score overflow float32 (9)", rn + [LOCAL, "--block", "64", "--q", i("qbig.npy"), "--k", i("qbig.npy"),
                                              "--v", i("v.npy"), "-o", o("o.npy")] + CPU, "overflow")
case("run: score overflow float64 output (9)", rn + [LOCAL, "--block", "64", "--q", i("qbig.npy"), "--k",
                                                     i("qbig.npy"), "--v", i("v.npy"), "-o", o("o.npy"), "--f64"] + CPU,
     "float32")
case("run: dO overflow gives NaN gradients (9)", rn + RUNQKV + ["-o", o("o.npy"), "--do", i("dobig.npy"), "--dq",
                                                                 o("dq.npy"), "--dk", o("dk.npy"), "--dv", o("dv.npy")],
     "dQ")
case("run: existing -o kept when --dv's folder is missing (12)", rn + RUNQKV + ["-o", EXISTING, "--do", i("do.npy"),
                                                                                "--dq", o("dq.npy"), "--dk",
                                                                                o("dk.npy"), "--dv",
                                                                                os.path.join(NODIR, "dv.npy")], "--dv")
case("run: --lse folder missing (12)", rn + RUNQKV + ["-o", o("o.npy"), "--lse", os.path.join(NODIR, "l.npy")], "--lse")
case("run: --json folder missing (12)", rn + RUNQKV + ["-o", o("o.npy"), "--json", os.path.join(NODIR, "r.json")],
     "--json")
case("run: -o is a folder (13)", rn + RUNQKV + ["-o", o("adir")], "adir")
case("run: --dq is a folder (13)", rn + RUNQKV + ["-o", o("o.npy"), "--do", i("do.npy"), "--dq", o("adir"), "--dk",
                                                  o("dk.npy"), "--dv", o("dv.npy")], "adir")
case("run: -o and --lse the same", rn + RUNQKV + ["-o", o("o.npy"), "--lse", o("o.npy")], "o.npy")
case("run: --do without --dq", rn + RUNQKV + ["-o", o("o.npy"), "--do", i("do.npy")], "--dq")
case("run: --dq without --do", rn + RUNQKV + ["-o", o("o.npy"), "--dq", o("dq.npy")], "--do")
case("run: --do wrong shape", rn + RUNQKV + ["-o", o("o.npy"), "--do", i("kshort.npy"), "--dq", o("dq.npy"), "--dk",
                                             o("dk.npy"), "--dv", o("dv.npy")], "--do")
case("run: seed -1 (13)", rn + RUNQKV + ["-o", o("o.npy"), "--seed", "-1"], "--seed")
case("run: files and synthetic both", rn + RUNQKV + ["--synthetic", "decay", "-o", o("o.npy")], "--synthetic")
case("run: q missing", rn + [LOCAL, "--q", i("nosuch.npy"), "--k", i("k.npy"), "--v", i("v.npy"), "-o",
                             o("o.npy")] + CPU, "nosuch.npy")
case("run: q not npy", rn + [LOCAL, "--q", i("notnpy.npy"), "--k", i("k.npy"), "--v", i("v.npy"), "-o",
                             o("o.npy")] + CPU, "notnpy.npy")
case("run: q 6 GiB (7)", rn + [LOCAL, "--q", i("sparse6g.npy"), "--k", i("k.npy"), "--v", i("v.npy"), "-o",
                               o("o.npy")] + CPU, "sparse6g.npy")
case("run: q empty file", rn + [LOCAL, "--q", i("empty.npy"), "--k", i("k.npy"), "--v", i("v.npy"), "-o",
                                o("o.npy")] + CPU, "empty.npy")
case("run: v missing", rn + [LOCAL, "--q", i("q.npy"), "--k", i("k.npy"), "-o", o("o.npy")] + CPU, "--v")
case("run: k head_dim differs", rn + [LOCAL, "--q", i("q.npy"), "--k", i("kdim.npy"), "--v", i("kdim.npy"), "-o",
                                     o("o.npy")] + CPU, "head")
case("run: q f16 with f32 k", rn + [LOCAL, "--q", i("q16.npy"), "--k", i("k.npy"), "--v", i("v.npy"), "-o",
                                    o("o.npy"), "--backend", "cuda"], "--dtype", rc=(1, 2))
case("run: q NaN", rn + [LOCAL, "--block", "64", "--q", i("qnan.npy"), "--k", i("k.npy"), "--v", i("v.npy"), "-o",
                         o("o.npy")] + CPU, "NaN")
case("run: mask json q_len INT64_MAX (2)", rn + [i("m_qlen_max.json")] + QKV + CPU + ["-o", o("o.npy")], "q_len")
case("run: mask json heads 7 (3)", rn + [i("m_heads7.json")] + QKV + CPU + ["-o", o("o.npy")], "m_heads7.json")
case("run: mask json bitmap short (3)", rn + [i("m_bitmap_short.json")] + QKV + CPU + ["-o", o("o.npy")], "bitmap")
case("run: mask json streaming -2^63 (4)", rn + [i("m_stream_neg.json")] + QKV + CPU + ["-o", o("o.npy")],
     "local_blocks")
case("run: mask csr int64 2^32+1 (5)", rn + [i("c64"), "--block", "64"] + QKV + CPU + ["-o", o("o.npy")],
     "c64_kv_indices.npy")
case("run: mask 6 GiB (7)", rn + [i("sparse6g.npy")] + QKV + CPU + ["-o", o("o.npy")], "sparse6g.npy")
# A .json mask carries its block sizes and causal flag: a --causal or --block that says otherwise was
# silently overruled (a non-causal result for --causal).
case("run: --causal with a non-causal .json mask", rn + [i("mask.json")] + QKV + CPU + ["--causal", "-o", o("o.npy")],
     "--causal")
case("run: --block disagrees with the .json mask", rn + [i("mask.json"), "--block", "32"] + QKV + CPU +
     ["-o", o("o.npy")], "block_q 64")
case("an: --block-kv disagrees with the .json mask", a + [i("mask.json"), "--block-kv", "128"] + QKV + CPU,
     "block_kv 64")
case("vis mask: --causal with a non-causal .json mask", vm + [i("mask.json"), "--causal", "-o", o("a.png")], "--causal")
case("run: mask sizes differ", rn + [i("mask.json")] + ["--q", i("kshort.npy"), "--k", i("kshort.npy"), "--v",
                                                        i("kshort.npy")] + CPU + ["-o", o("o.npy")], "mask")
case("run: mask pattern bad param", rn + ["local:window=x", "--block", "64"] + QKV + CPU + ["-o", o("o.npy")], "window")
case("run: score bad", rn + RUNQKV + ["-o", o("o.npy"), "--score", "relu"], "--score")
case("run: silu-n negative", rn + RUNQKV + ["-o", o("o.npy"), "--score", "silu", "--silu-n", "-3"], "--silu-n")
case("run: threads 99999", rn + RUNQKV + ["-o", o("o.npy"), "--threads", "99999"], "--threads")
case("run: kernel on cpu", rn + RUNQKV + ["-o", o("o.npy"), "--kernel", "sm80"], "--kernel")
case("run: max-ctas on cpu", rn + RUNQKV + ["-o", o("o.npy"), "--max-ctas", "4"], "--max-ctas")
case("run: max-ctas negative", rn + RUNQKV + ["-o", o("o.npy"), "--max-ctas", "-4"], "--max-ctas")
case("run: reorder without grid", rn + RUNQKV + ["-o", o("o.npy"), "--reorder", "gilbert"], "--grid")
case("run: reorder grid mismatch", rn + RUNQKV + ["-o", o("o.npy"), "--reorder", "gilbert", "--grid", "4x4"],
     "--order")
case("run: grid without order", rn + RUNQKV + ["-o", o("o.npy"), "--grid", "16x16"], "--order")
case("run: text negative", rn + RUNQKV + ["-o", o("o.npy"), "--text", "-1"], "--text")
case("run: block 0", rn + [LOCAL, "--block", "0"] + QKV + CPU + ["-o", o("o.npy")], "--block")
case("run: layout bad", rn + RUNQKV + ["-o", o("o.npy"), "--layout", "xyz"], "--layout")
case("run: f64 on cuda", rn + [LOCAL, "--block", "64"] + QKV + ["--backend", "cuda", "--f64", "-o", o("o.npy")],
     "--f64")
case("run: cuda with f32 dtype", rn + [LOCAL, "--block", "64"] + QKV + ["--backend", "cuda", "--dtype", "f32", "-o",
                                                                         o("o.npy")], "--dtype")

# ---------------- bench ----------------
b = ["bench"]
case("bench: seq range to INT64_MAX (6)", b + ["--backend", "cpu", "--seq", "1:9223372036854775807:1"], "--seq")
case("bench: seq range overflows (6)", b + ["--backend", "cpu", "--seq", "9223372036854775800:9223372036854775807:3"],
     "--seq")
case("bench: seq huge (6)", b + ["--backend", "cpu", "--seq", "9223372036854775807"], "--seq")
case("bench: heads huge (6)", b + ["--backend", "cpu", "--heads", "99999999"], "--heads")
case("bench: batch range huge (6)", b + ["--backend", "cpu", "--batch", "1:100000000:1"], "--batch")
case("bench: head-dim huge (6)", b + ["--backend", "cpu", "--head-dim", "4096"], "--head-dim")
case("bench: block huge (6)", b + ["--backend", "cpu", "--block", str(2**40)], "--block")
case("bench: kv-heads huge (6)", b + ["--backend", "cpu", "--kv-heads", str(2**40)], "--kv-heads")
case("bench: kv-heads negative", b + ["--backend", "cpu", "--kv-heads", "-1"], "--kv-heads")
case("bench: seq 0", b + ["--backend", "cpu", "--seq", "0"], "--seq")
case("bench: seq text", b + ["--backend", "cpu", "--seq", "lots"], "--seq")
case("bench: seq range backwards", b + ["--backend", "cpu", "--seq", "10:1:1"], "--seq")
case("bench: seq step 0", b + ["--backend", "cpu", "--seq", "1:10:0"], "--seq")
case("bench: density 0", b + ["--backend", "cpu", "--density", "0"], "--density")
case("bench: density nan", b + ["--backend", "cpu", "--density", "nan"], "--density")
case("bench: density range huge", b + ["--backend", "cpu", "--density", "0.000001:1:0.000001"], "--density")
case("bench: dtype bad", b + ["--backend", "cpu", "--dtype", "f8"], "--dtype")
case("bench: pass bad", b + ["--backend", "cpu", "--pass", "sideways"], "--pass")
case("bench: pattern unknown", b + ["--backend", "cpu", "--pattern", "nosuch"], "nosuch")
case("bench: empty list item", b + ["--backend", "cpu", "--seq", "128,,256"], "--seq")
case("bench: config unknown key", b + ["--backend", "cpu", "--config", i("cfg_unknown.json")], "colour")
case("bench: config seq range (6)", b + ["--backend", "cpu", "--config", i("cfg_seq.json")], "seq")
case("bench: config not an object", b + ["--backend", "cpu", "--config", i("cfg_list.json")], "cfg_list.json")
case("bench: config heads huge (6)", b + ["--backend", "cpu", "--config", i("cfg_heads.json")], "heads")
case("bench: config not json", b + ["--backend", "cpu", "--config", i("notjson.json")], "notjson.json")
case("bench: config missing", b + ["--backend", "cpu", "--config", i("nosuch.json")], "--config")
case("bench: seed -1 (13)", b + BENCH + ["--seed", "-1"], "--seed")
case("bench: auto backend notice after the error (13)", b + ["--seq", "0"], "--seq")
case("bench: auto backend, bad timing (13)", b + ["--noise", "-1"], "noise")
case("bench: --json folder missing (12)", b + BENCH + ["--json", os.path.join(NODIR, "b.json")], "--json")
case("bench: --csv folder missing (12)", b + BENCH + ["--csv", os.path.join(NODIR, "b.csv")], "--csv")
case("bench: --markdown is a folder (13)", b + BENCH + ["--markdown", o("adir")], "adir")
case("bench: --json is a folder (13)", b + BENCH + ["--json", o("adir")], "adir")
case("bench: existing --json kept when --csv fails (12)", b + BENCH + ["--json", o("existing.json"), "--csv",
                                                                       os.path.join(NODIR, "b.csv")], "--csv")
case("bench: --save-masks parent missing", b + BENCH + ["--save-masks", os.path.join(NODIR, "sub", "masks")],
     "--save-masks")
case("bench: kernel on cpu", b + BENCH + ["--kernel", "sm80"], "--kernel")
case("bench: max-ctas on cpu", b + BENCH + ["--max-ctas", "8"], "--max-ctas")
case("bench: warmup negative", b + BENCH + ["--warmup", "-1"], "warmup")
case("bench: min-samples 0", b + BENCH + ["--min-samples", "0"], "samples")
case("bench: from missing", b + ["--from", i("nosuch.json")], "--from")
case("bench: from not json", b + ["--from", i("notjson.json")], "not valid JSON")  # not "missing schema"
case("bench: from bad records", b + ["--from", i("bench_bad.json")], "bench_bad.json")
case("bench: from wrong schema", b + ["--from", i("bench_schema.json")], "bench_schema.json")
case("bench: from 6 GiB", b + ["--from", i("sparse6g.npy")], "sparse6g.npy")
case("bench: from, --csv folder missing (12)", b + ["--from", i("bench_bad.json"), "--csv",
                                                    os.path.join(NODIR, "b.csv")], "--csv")
ADAPT = ["--backend", "cpu", "--seq", "128", "--heads", "1", "--head-dim", "16", "--block", "64", "--pattern", "energy",
         "--max-time", "0.01", "--min-samples", "1", "--warmup", "0", "-q"]
case("bench: adaptive pattern without --synthetic", b + ADAPT, "--synthetic")
case("bench: --synthetic unknown kind (11)", b + ADAPT + ["--synthetic", "noise"], "noise")
case("bench: --synthetic too large (1, 11)", b + ["--backend", "cpu", "--seq", "16777216", "--heads", "4096",
                                                  "--head-dim", "1024", "--pattern", "energy", "--synthetic", "decay",
                                                  "--block", str(2**20), "-q"], "limit")
case("bench: backend bad", b + ["--backend", "tpu"], "--backend")
case("bench: list-kernels without CUDA or GPU", b + ["--list-kernels"], "CUDA", rc=(1,))
case("bench: unknown option", b + ["--colour", "red"], "--colour")
# Floating-point options given NaN: CLI::Range compares, and every comparison with NaN is false.
case("run: silu-n nan", rn + RUNQKV + ["-o", o("o.npy"), "--score", "silu", "--silu-n", "nan"], "--silu-n")
case("an: silu-n nan", a + RUNQKV + ["--score", "silu", "--silu-n", "nan", "--json", o("a.json")], "--silu-n")
case("an: rtol nan", a + RUNQKV + ["--check", i("q.npy"), "--rtol", "nan"], "--rtol")
case("vis mask: dpi nan", vm + [i("mask.npy"), "-o", o("a.png"), "--dpi", "nan"], "--dpi")
case("vis attn: decades nan", va + [i("mask.npy"), "--synthetic", "decay", "--head-dim", "16", "--block", "64",
                                    "--decades", "nan", "-o", o("a.png")], "--decades")
# Empty values: many options mean "not given" by an empty string, so '' ran without what was asked.
case("run: --seqlens empty", rn + [LOCAL, "--block", "64", "--q", i("q.npy"), "--k", i("k.npy"), "--v", i("v.npy"),
                                   "--seqlens", "", "-o", o("o.npy")] + CPU, "--seqlens")
case("run: --nsa empty with a mask", rn + RUNQKV + ["--nsa", "", "-o", o("o.npy")], "--nsa")
case("run: --dilated empty", rn + QKV + CPU + ["--dilated", "", "--block", "64", "-o", o("o.npy")], "--dilated")
case("run: mask empty", rn + [""] + QKV + CPU + ["-o", o("o.npy")], "mask")
case("an: --densities empty", a + RUNQKV + ["--sweep", "--densities", "", "--json", o("f.json")], "--densities")
case("an: --curves --order empty", a + ["--curves", "--grid", "8x8", "--order", "", "--markdown", o("c.md")], "--order")
case("bench: --ranks empty", b + BENCH + ["--ranks", "", "--json", o("b.json")], "--ranks")
case("bench: --block empty", b + ["--backend", "cpu", "--block", "", "--json", o("b.json")], "--block")
case("vis mask: --heads empty", vm + [i("mask.npy"), "-o", o("a.png"), "--heads", ""], "--heads")
case("top: no subcommand", [], "subcommand")
case("top: unknown subcommand", ["frobnicate"], "subcommand")

# ---------------- empty items in list options ----------------
# Every list option refuses an empty item (a leading, trailing or doubled separator, or blanks only)
# with a line that names the option and says "empty item", rather than running without it.
EMPTY = "empty item"
case("bench: --density doubled comma", b + ["--backend", "cpu", "--density", "0.1,,0.5"], ("--density", EMPTY))
case("bench: --seq doubled comma", b + ["--backend", "cpu", "--seq", "1024,,2048"], ("--seq", EMPTY))
case("bench: --head-dim trailing comma", b + ["--backend", "cpu", "--head-dim", "64,"], ("--head-dim", EMPTY))
case("bench: --heads leading comma", b + ["--backend", "cpu", "--heads", ",4"], ("--heads", EMPTY))
case("bench: --batch doubled comma", b + ["--backend", "cpu", "--batch", "1,,2"], ("--batch", EMPTY))
case("bench: --block trailing comma", b + ["--backend", "cpu", "--block", "64,"], ("--block", EMPTY))
case("bench: --pattern doubled comma", b + ["--backend", "cpu", "--pattern", "random,,causal"], ("--pattern", EMPTY))
case("bench: --pattern doubled ';'", b + ["--backend", "cpu", "--pattern", "random;;local:window=1"],
     ("--pattern", EMPTY))
case("bench: --pattern spec trailing comma", b + ["--backend", "cpu", "--pattern", "local:window=1,"],
     ("--pattern", EMPTY))
case("bench: --dtype leading comma", b + ["--backend", "cpu", "--dtype", ",f32"], ("--dtype", EMPTY))
case("bench: --pass trailing comma", b + ["--backend", "cpu", "--pass", "fwd,"], ("--pass", EMPTY))
case("bench: --score doubled comma", b + ["--backend", "cpu", "--score", "softmax,,silu"], ("--score", EMPTY))
case("bench: --rab blank item", b + ["--backend", "cpu", "--score", "silu", "--rab", "none, ,pos"], ("--rab", EMPTY))
case("bench: --seqlens doubled comma", b + ["--backend", "cpu", "--seqlens", "0,,1"], ("--seqlens", EMPTY))
case("bench: --ranks trailing comma", b + BENCH + ["--ranks", "1,2,"], ("--ranks", EMPTY))
case("bench: --dilated doubled comma", b + ["--backend", "cpu", "--dilated", "64:1,,128:2"], ("--dilated", EMPTY))
case("bench: --dilated trailing ';'", b + ["--backend", "cpu", "--dilated", "64:1;"], ("--dilated", EMPTY))
case("bench: --order doubled comma", b + ["--backend", "cpu", "--seq", "64", "--dilated", "64:1", "--grid", "8x8",
                                          "--order", "raster,,hilbert"], ("--order", EMPTY))
case("bench: --nsa trailing comma", b + ["--backend", "cpu", "--nsa", "block=64,"], ("--nsa", EMPTY))
case("bench: --config list with an empty item", b + ["--backend", "cpu", "--config", i("cfg_empty_item.json")],
     ("cfg_empty_item.json", "--dtype", EMPTY))
case("gm: --pattern spec doubled comma", g + ["--pattern", "local:window=1,,window=2", "--seq", "256",
                                              "-o", o("a.npy")], ("--pattern", EMPTY))
case("gm: --head-map doubled ';'", g + ["--head-map", "0-0=dense;;1-1=dense", "--seq", "256", "--heads", "2",
                                        "-o", o("a.npy")], ("--head-map", EMPTY))
case("gm: --head-map trailing ';'", g + ["--head-map", "0-1=dense;", "--seq", "256", "--heads", "2",
                                         "-o", o("a.npy")], ("--head-map", EMPTY))
case("gm: --synthetic spec trailing comma", g + ["--pattern", "energy", "--seq", "256", "--block", "64",
                                                 "--synthetic", "decay:base=2,", "--head-dim", "16",
                                                 "-o", o("a.npy")], ("--synthetic", EMPTY))
case("vis mask: --heads doubled comma", vm + [i("mask.npy"), "-o", o("a.png"), "--heads", "0,,1"], ("--heads", EMPTY))
case("vis mask: --heads trailing comma", vm + [i("mask.npy"), "-o", o("a.png"), "--heads", "0,1,"], ("--heads", EMPTY))
case("vis bench: --seq doubled comma", vb + [i("bench_bad.json"), "--seq", "1024,,2048", "-o", o("a.png")],
     ("--seq", EMPTY))
case("vis bench: --pattern trailing comma", vb + [i("bench_bad.json"), "--pattern", "random,", "-o", o("a.png")],
     ("--pattern", EMPTY))
case("vis bench: --impl leading comma", vb + [i("bench_bad.json"), "--impl", ",bsattn", "-o", o("a.png")],
     ("--impl", EMPTY))
case("vis bench: --head-dim doubled comma", vb + [i("bench_bad.json"), "--head-dim", "64,,128", "-o", o("a.png")],
     ("--head-dim", EMPTY))
case("vis bench: --dtype trailing comma", vb + [i("bench_bad.json"), "--dtype", "bf16,", "-o", o("a.png")],
     ("--dtype", EMPTY))
case("vis curve: --order doubled comma", vc + ["--grid", "8x8", "--order", "raster,,hilbert", "-o", o("a.png")],
     ("--order", EMPTY))
case("an: --densities doubled comma", a + RUNQKV + ["--sweep", "--densities", "0.1,,0.5", "--json", o("f.json")],
     ("--densities", EMPTY))
case("an: --patterns doubled ';'", a + RUNQKV + ["--sweep", "--patterns", "local;;random", "--json", o("f.json")],
     ("--patterns", EMPTY))
case("an: --check-grads doubled comma", a + RUNQKV + ["--check-grads", i("q.npy") + ",," + i("k.npy"), "--do",
                                                      i("do.npy")], ("--check-grads", EMPTY))
case("an: --curves --order trailing comma", a + ["--curves", "--grid", "8x8", "--order", "raster,"],
     ("--order", EMPTY))
case("an: --curves --radius leading comma", a + ["--curves", "--grid", "8x8", "--radius", ",1"], ("--radius", EMPTY))
case("an: --curves --blocks doubled comma", a + ["--curves", "--grid", "8x8", "--blocks", "16,,32"],
     ("--blocks", EMPTY))
case("an: --seqlens trailing comma", a + [LOCAL, "--block", "64", "--q", i("q.npy"), "--k", i("k.npy"), "--v",
                                          i("v.npy"), "--seqlens", "128,"], ("--seqlens", EMPTY))
case("an: --dilated doubled comma", a + SYN + ["--dilated", "64:1,,128:2"], ("--dilated", EMPTY))
case("run: --seqlens doubled comma", rn + [LOCAL, "--block", "64", "--q", i("q.npy"), "--k", i("k.npy"), "--v",
                                           i("v.npy"), "--seqlens", "128,,128", "-o", o("o.npy")] + CPU,
     ("--seqlens", EMPTY))
case("run: --dilated leading comma", rn + QKV + CPU + ["--dilated", ",64:1", "--block", "64", "-o", o("o.npy")],
     ("--dilated", EMPTY))
case("run: --nsa doubled comma", rn + QKV + CPU + ["--nsa", "block=64,,stride=32", "-o", o("o.npy")], ("--nsa", EMPTY))
case("run: mask spec trailing comma", rn + ["local:window=1,", "--block", "64"] + QKV + CPU + ["-o", o("o.npy")],
     EMPTY)

# ---------------- files that are not JSON ----------------
# Binary bytes, escape sequences and bytes that are not UTF-8 never reach the terminal: the line names
# the file and the byte offset of the error, with a short excerpt in printable ASCII.
NOTJSON = "not valid JSON"
case("gm: custom:file= .json is binary", g + ["--pattern", "custom:file=" + i("png.json"), "--seq", "256", "--block",
                                           "64", "-o", o("a.npy")], ("png.json", NOTJSON, "byte offset 0"), ascii=True)
case("vis mask: .json mask is binary", vm + [i("png.json"), "-o", o("a.png")], ("png.json", NOTJSON, "byte offset 0"),
     ascii=True)
case("run: .json mask is binary", rn + [i("png.json")] + QKV + CPU + ["-o", o("o.npy")], ("png.json", NOTJSON),
     ascii=True)
case("an: .json mask not UTF-8", a + [i("latin1.json")] + SYN, ("latin1.json", NOTJSON, "byte offset"), ascii=True)
case("vis attn: .json mask has control characters", va + [i("ctl.json"), "--synthetic", "decay", "-o", o("a.png")],
     ("ctl.json", NOTJSON), ascii=True)
case("bench: --from binary", b + ["--from", i("png.json")], ("--from", "png.json", "byte offset"), ascii=True)
case("bench: --from control characters", b + ["--from", i("ctl.json")], ("--from", "ctl.json", NOTJSON), ascii=True)
case("bench: --from truncated", b + ["--from", i("trunc.json")], ("trunc.json", "byte offset"), ascii=True)
case("bench: --from a number past double", b + ["--from", i("bignum.json")], ("bignum.json", NOTJSON), ascii=True)
case("bench: --config binary", b + ["--backend", "cpu", "--config", i("png.json")], ("--config", "png.json", NOTJSON),
     ascii=True)
case("bench: --config empty file", b + ["--backend", "cpu", "--config", i("empty.json")], ("empty.json", NOTJSON),
     ascii=True)
case("vis frontier: binary", vf + [i("png.json"), "-o", o("a.png")], ("png.json", "byte offset"), ascii=True)
case("vis bench: not UTF-8", vb + [i("latin1.json"), "-o", o("a.png")], ("latin1.json", NOTJSON), ascii=True)
case("vis bench: control characters", vb + [i("ctl.json"), "-o", o("a.png")], ("ctl.json", NOTJSON), ascii=True)


def snapshot():
    """Every file under the scratch folder (inputs and outputs) with its content hash."""
    state = {}
    for root, dirs, files in os.walk(t.scratch):
        for d in dirs:
            state[os.path.join(root, d) + "/"] = "dir"
        for f in files:
            p = os.path.join(root, f)
            if os.path.getsize(p) > (64 << 20):  # the sparse 6 GiB input: its size stands for its content
                state[p] = "size %d" % os.path.getsize(p)
            else:
                state[p] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return state


def limit_memory():
    if os.environ.get("BSATTN_NO_RLIMIT") != "1":
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


cuda = subprocess.run([t.bin, "bench", "--list-kernels"], capture_output=True, text=True).returncode == 0
before = snapshot()
for name, argv, rcs, needles, ascii in CASES:
    if cuda and name == "bench: list-kernels without CUDA or GPU":
        continue  # a CUDA build lists its kernels (exit 0) even without a GPU
    r = subprocess.run([t.bin, *argv], capture_output=True, timeout=60, preexec_fn=limit_memory)
    stderr = r.stderr.decode("utf-8", "replace")
    lines = [l for l in stderr.splitlines() if l.strip()]
    known = ("gen-mask", "visualize", "analyze", "run", "bench")
    sub = "bsattn" + (" " + argv[0] if argv and argv[0] in known else "")
    problems = []
    if r.returncode not in rcs:
        problems.append("exit %d (expected %s)" % (r.returncode, " or ".join(map(str, rcs))))
    if len(lines) != 1:
        problems.append("%d stderr lines" % len(lines))
    elif not lines[0].startswith(sub) or ": error: " not in lines[0]:
        problems.append("stderr is not '%s ...: error: ...'" % sub)
    else:
        for needle in needles:
            if needle.lower() not in lines[0].lower():
                problems.append("message does not name '%s'" % needle)
    if ascii and any(not (0x20 <= c < 0x7F or c == 0x0A) for c in r.stderr):
        problems.append("stderr is not printable ASCII: %r" % r.stderr[:200])
    for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer", "internal error"):
        if bad in stderr:
            problems.append("stderr has '%s'" % bad)
    after = snapshot()
    if after != before:
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        problems.append("files changed or left behind: " + ", ".join(os.path.relpath(c, t.scratch) for c in changed))
        for c in changed:  # put things back so later cases are judged on their own
            if c not in before:
                shutil.rmtree(c, ignore_errors=True) if c.endswith("/") else os.remove(c)
        np.save(EXISTING, np.arange(7, dtype=np.int32))
        with open(o("existing.json"), "w") as f:
            f.write('{"keep": true}\n')
        before = snapshot()
    t.check(not problems, "%s: %s\n    bsattn %s\n    stderr: %s" % (name, "; ".join(problems), " ".join(argv),
                                                                    stderr.strip()[:600]))

# Well-formed lists and JSON files given to the same options are still accepted.
ok_bench = o("ok_bench.json")
VALID = [
    ["bench", "--backend", "cpu", "--seq", "128,256", "--heads", "1", "--head-dim", "16,32", "--density", "0.25,0.5",
     "--pattern", "random,local", "--dtype", "f32", "--pass", "fwd", "--block", "64", "--max-time", "0.01",
     "--min-samples", "1", "--warmup", "0", "-q", "--json", ok_bench],
    ["bench", "--from", ok_bench, "-q"],
    vb + [ok_bench, "--seq", "128,256", "--head-dim", "16,32", "--pattern", "random,local", "--dtype", "f32",
          "-o", o("ok_bench.png")],
    g + ["--head-map", "0-0=dense;1-1=local:window=1", "--heads", "2", "--seq", "256", "--block", "64",
         "-o", o("ok_mask.json"), "-q"],
    vm + [o("ok_mask.json"), "--heads", "0,1", "-o", o("ok_mask.png")],
    a + ["--curves", "--grid", "8x8", "--order", "raster,hilbert", "--radius", "1,2", "--blocks", "16,32", "-q"],
    rn + [LOCAL, "--block", "64", "--q", i("q.npy"), "--k", i("k.npy"), "--v", i("v.npy"), "--seqlens", "128,128",
          "-o", o("ok_o.npy")] + CPU,
]
for argv in VALID:
    r = subprocess.run([t.bin, *argv], capture_output=True, timeout=120)
    t.check(r.returncode == 0, "a well-formed value was refused (exit %d)\n    bsattn %s\n    stderr: %s" %
            (r.returncode, " ".join(argv), r.stderr.decode("utf-8", "replace").strip()[:600]))

print("%d bad-input cases over gen-mask, visualize, analyze, run and bench" % len(CASES))
t.check(len(CASES) >= 150, "the matrix has %d cases (at least 150)" % len(CASES))
t.finish("bad-input matrix: every case refused with one line naming what is wrong; no file changed")
