"""scripts/peer_records.py, the part of peers.py that needs no PyTorch: FLOP accounting per pass (hand-computed
cases), the check plan, gradient-check keys, and peer records that `bsattn bench --from` accepts next to the
bsattn records of a real CPU bench document (forward records, and backward ones derived as bsattn writes them)."""
import json
import os
import subprocess
import sys

from clitest import CliTest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import peer_records as pr  # noqa: E402

t = CliTest("peer_records")

# FLOPs: one head, S = 256, D = 64, dense: 4 * 64 * 256 * 256 = 16777216 forward; backward 2.5 x = 41943040,
# forward + backward 3.5 x = 58720256.
fwd = 4 * 64 * 256 * 256
t.check(fwd == 16777216, "hand-computed forward FLOPs")
base = {"pass": "bwd", "flops_computed": 41943040.0, "flops_dense_equiv": 41943040.0, "spec": "dense"}
t.check(pr.forward_flops(base, False) == 16777216, "forward FLOPs recovered from a bwd record")
t.check(pr.peer_flops(base, False) == 41943040, "peer FLOPs of a bwd record: 2.5 x forward")
t.check(pr.peer_flops(base, True, "fwd+bwd") == 58720256, "fwd+bwd FLOPs: 3.5 x forward")
t.check(pr.peer_flops(dict(base, **{"pass": "fwd", "flops_computed": 16777216.0}), False) == 16777216,
        "peer FLOPs of a fwd record: the record's own")
# A half-density sparse record: FlexAttention is credited its computed pairs, SDPA the dense shape.
sparse = {"pass": "bwd", "flops_computed": 2.5 * fwd / 2, "flops_dense_equiv": 2.5 * fwd, "spec": "random:density=0.5"}
t.check(pr.peer_flops(sparse, False) == 20971520 and pr.peer_flops(sparse, True) == 41943040,
        "sparse vs dense FLOPs of a bwd record")
try:
    pr.pass_factor("bwd2")
    t.check(False, "an unknown pass is refused")
except ValueError as e:
    t.check("fwd, bwd, fwd+bwd" in str(e), "the unknown-pass message lists the passes: %s" % e)
t.check(pr.needs_grads("bwd") and pr.needs_grads("fwd+bwd") and not pr.needs_grads("fwd"), "needs_grads")

# Gradient checks: the record holds the worst of dQ/dK/dV and names where each maximum came from.
errs = {"dq": (3e-3, 0.02), "dk": (5e-3, 0.01), "dv": (4e-3, 0.04)}
g = pr.grad_check(errs)
t.check(g["check_rel_err"] == 5e-3 and g["check_max_abs_err"] == 0.04, "grad_check keeps the worst: %s" % g)
t.check("rel_err dk" in g["check_ref"] and "max_abs_err dv" in g["check_ref"], "grad_check names the gradients: %s" % g)
for bad in ({"dq": (1e-3, 1e-3), "dk": (1e-3, 1e-3)}, dict(errs, dv=(float("nan"), 0.0))):
    try:
        pr.grad_check(bad)
        t.check(False, "grad_check refuses %s" % bad)
    except ValueError:
        pass

# Run the CPU bench for a real document: its records' keys are the columns peer records must use.
masks = t.path("masks")
doc_path = t.path("bench.json")
cmd = [t.bin, "bench", "--backend", "cpu", "--seq", "256", "--head-dim", "64", "--heads", "2", "--batch", "1",
       "--block", "64", "--density", "0.5,1.0", "--pattern", "random,causal", "--pass", "fwd", "--min-samples", "2",
       "--max-time", "0.05", "--json", doc_path, "--save-masks", masks, "-q"]
r = subprocess.run(cmd, capture_output=True, text=True)
t.check(r.returncode == 0, "cpu bench ran: %s" % r.stderr.strip())
if r.returncode == 0:
    doc = json.load(open(doc_path))
    ours = [x for x in doc["records"] if x["impl"] == "bsattn" and x.get("mask_file")]
    t.check(len(ours) >= 3, "bench wrote bsattn records with mask files (%d)" % len(ours))
    # Backward records as the CUDA bench writes them: the same masks, pass bwd, FLOPs and names of the pass.
    bwd = []
    for x in ours:
        b = dict(x)
        b.update({"pass": "bwd", "kernel": "bwd-sm80", "flops_computed": 2.5 * x["flops_computed"],
                  "flops_dense_equiv": 2.5 * x["flops_dense_equiv"]})
        bwd.append(b)
    records = ours + bwd
    cols = list(ours[0].keys())
    timing = {"samples": 5, "median_ms": 2.0, "mean_ms": 2.1, "min_ms": 1.9, "max_ms": 2.4, "rel_noise": 0.01,
              "noise_met": True}

    # Timing order: per (S, D, causal), dense first; the plan checks one mask per key at the smallest S, every
    # pass of it, and a failed run lets the next mask of the key be tried.
    order = pr.timing_order(records)
    t.check(all(pr.is_dense(order[i]) or not pr.is_dense(order[i + 1]) or
                (order[i]["causal"], order[i]["seq"]) != (order[i + 1]["causal"], order[i + 1]["seq"])
                for i in range(len(order) - 1)), "dense masks come first within their shape")
    chosen = {}
    decisions = []
    for x in order:
        d = pr.check_decision(chosen, x, 256)
        if d == "run":
            chosen[pr.check_key(x)] = pr.mask_identity(x)
        decisions.append((d, x["pass"], x["spec"], x["causal"]))
    runs = [d for d in decisions if d[0] == "run"]
    cached = [d for d in decisions if d[0] == "cached"]
    keys = {pr.check_key(x) for x in records}
    t.check(len(runs) == len(keys), "one bsattn run per check key: %s" % runs)
    t.check(len(cached) == len(runs), "the other pass of each checked mask reuses its run: %s" % cached)
    first = order[0]
    t.check(pr.check_decision({}, first, 256) == "run" and pr.check_decision({}, dict(first, seq=512), 256) is None,
            "only the smallest S is checked")
    fk = pr.forward_kernels(records)
    t.check(all(fk[pr.mask_identity(b)] == next(x["kernel"] for x in ours if pr.mask_identity(x) == pr.mask_identity(b))
                for b in bwd), "bwd records find their mask's forward kernel")

    merged = []
    for x in records:
        dense = pr.is_dense(x)
        extra = pr.grad_check(errs) if pr.needs_grads(x["pass"]) else pr.output_check(4e-3, 0.01)
        rec = pr.peer_record(cols, x, "flex_attention", timing, pr.peer_flops(x, False), "2.11.0", 800.0, 3.0, extra)
        t.check(set(rec) == set(cols), "peer record has exactly the bsattn columns")
        t.check(rec["pass"] == x["pass"] and rec["flops_computed"] == x["flops_computed"], "peer keeps pass and FLOPs")
        want = x["flops_computed"] / 2e-3 / 1e12
        t.check(abs(rec["tflops_effective"] - want) <= 1e-12 * want, "tflops_effective = FLOPs / median")
        t.check(abs(rec["speedup_vs_dense"] - 1.5) < 1e-12 and abs(rec["gemm_fraction"] - want / 800) < 1e-12,
                "speedup and GEMM fraction")
        merged.append(rec)
        if dense:
            s = pr.peer_record(cols, dict(x, pattern="dense"), "sdpa_cudnn", timing, pr.peer_flops(x, True), "2.11.0")
            t.check(s["flops_computed"] == x["flops_dense_equiv"] and s["gemm_fraction"] is None,
                    "SDPA is credited the dense FLOPs; no ceiling, no fraction")
            merged.append(s)
    ctx_entry = pr.grad_check_context(bwd[0], "flex_attention", errs)
    t.check(ctx_entry["dk_rel_err"] == 5e-3 and ctx_entry["dv_max_abs_err"] == 0.04, "context entry per gradient")
    doc["records"] = records + merged
    doc["context"]["peers"] = {"grad_checks": [ctx_entry]}
    out = t.path("merged.json")
    json.dump(doc, open(out, "w"))
    r = subprocess.run([t.bin, "bench", "--from", out, "--csv", t.path("merged.csv"), "-q"], capture_output=True,
                       text=True)
    t.check(r.returncode == 0, "bench --from accepts the peer records: %s" % r.stderr.strip())

# The FlexAttention dilated peer's packing: dilated_head_index (each head's class tokens, segment after segment)
# and segment_blocks (the packed sequence's block masks) against the token-level definition in original
# positions: a pair of packed positions is computed exactly when the original pair is, and the blocks are
# kept when they hold a computed pair, full when they hold only computed pairs (and are whole blocks).
import numpy as np  # noqa: E402
for seq, w, r, heads, block, causal in [(64, 16, 2, 3, 8, False), (64, 16, 2, 3, 8, True), (128, 64, 4, 4, 16, False),
                                        (192, 24, 8, 8, 16, True), (200, 40, 1, 2, 16, True), (96, 96, 2, 4, 8, True),
                                        (256, 128, 4, 2, 8, False)]:
    idx = pr.dilated_head_index(seq, w, r, heads)
    n = w // r
    L = seq // r
    kept, full = pr.segment_blocks(L, n, block, causal)
    nb = (L + block - 1) // block
    t.check(idx.shape == (heads, L), "dilated_head_index shape %s" % ((seq, w, r, heads),))
    for h in range(heads):
        Q, K = idx[h][:, None], idx[h][None, :]
        tok = (Q // w == K // w) & (Q % w % r == h % r) & (K % w % r == h % r)
        if causal:
            tok &= K <= Q
        mine = np.zeros(seq, bool)
        mine[idx[h]] = True
        pos = np.arange(seq)
        t.check(np.array_equal(mine, pos % w % r == h % r), "head %d's tokens are its class %s" % (h, (seq, w, r)))
        pk = (np.arange(L)[:, None] // n == np.arange(L)[None, :] // n)
        if causal:
            pk &= np.arange(L)[None, :] <= np.arange(L)[:, None]
        t.check(np.array_equal(pk, tok), "packed pairs = the definition's %s" % ((seq, w, r, h, causal),))
        pad = np.zeros((nb * block, nb * block), bool)
        pad[:L, :L] = pk
        exist = np.zeros_like(pad)
        exist[:L, :L] = True
        t4, e4 = pad.reshape(nb, block, nb, block), exist.reshape(nb, block, nb, block)
        t.check(np.array_equal(kept, t4.any((1, 3))), "segment kept blocks %s" % ((L, n, block, causal),))
        t.check(np.array_equal(full, (t4 | ~e4).all((1, 3)) & e4.all((1, 3))),
                "segment full blocks %s" % ((L, n, block, causal),))
try:
    pr.dilated_head_index(100, 16, 2, 2)
    t.check(False, "dilated_head_index refuses S not a multiple of the segment")
except ValueError:
    pass

t.finish("peer_records: FLOPs per pass, check plan, gradient checks, peer records and dilated block masks OK")
