"""The parts of scripts/peers.py that need neither PyTorch nor a GPU: FLOP accounting per pass, the
peer records merged into a bsattn.bench/v1 document, which masks are checked against `bsattn run`,
and how gradient checks are summarised. tests/python/test_peer_records.py tests them on any machine."""
import math

# FLOPs of a pass relative to the forward (FlashAttention's convention, as bsattn's lib/bench/accounting):
# the backward's five matrix products against the forward's two.
PASS_FLOP_FACTOR = {"fwd": 1.0, "bwd": 2.5, "fwd+bwd": 3.5}

# Keys a peer record copies from the bsattn record it was timed against (the problem and the mask).
PROBLEM_KEYS = ("pattern", "spec", "causal", "batch", "heads", "heads_kv", "seq", "head_dim", "block", "dtype",
                "pass", "density_target", "density", "pair_density", "kept_blocks", "flops_dense_equiv",
                "bytes_min", "mask_file", "seed", "score", "rab", "gate_u")

DENSE_SPECS = ("dense", "causal")
GRAD_NAMES = ("dq", "dk", "dv")


def pass_factor(pass_name):
    if pass_name not in PASS_FLOP_FACTOR:
        raise ValueError("unknown pass %r (allowed: %s)" % (pass_name, ", ".join(PASS_FLOP_FACTOR)))
    return PASS_FLOP_FACTOR[pass_name]


def forward_flops(base, dense):
    """The forward FLOPs of a bsattn record's problem (its computed pairs, or the dense shape's), whatever
    pass the record timed: bsattn writes the pass's FLOPs, forward x pass_factor."""
    key = "flops_dense_equiv" if dense else "flops_computed"
    return base[key] / pass_factor(base["pass"])


def peer_flops(base, dense, pass_name=None):
    """FLOPs credited to a peer timed on BASE's problem for PASS_NAME (default: BASE's own pass): the
    sparse peer (FlexAttention) computes BASE's pairs, dense peers (SDPA) the dense (or causal) shape."""
    return forward_flops(base, dense) * pass_factor(pass_name or base["pass"])


def is_dense(base):
    return base["spec"] in DENSE_SPECS


def needs_grads(pass_name):
    return pass_name in ("bwd", "fwd+bwd")


def mask_identity(r):
    """Records of different passes share a mask when these agree (bench writes one file per record)."""
    return (r["batch"], r["heads"], r["heads_kv"], r["seq"], r["head_dim"], r["block"], r["spec"], r["causal"],
            r.get("seed"))


def check_key(r):
    """One check per head dim and pattern: dense masks, causal dense masks, and each sparse pattern."""
    return (r["head_dim"], r["causal"], "dense" if is_dense(r) else r["pattern"])


def check_decision(chosen, r, min_seq):
    """Whether R's outputs are checked against `bsattn run`. CHOSEN maps check_key -> the mask_identity
    whose run serves that key. Returns "run" (R's mask is the first of its key at the smallest S: run
    bsattn on it, then record it in CHOSEN), "cached" (R's mask was run already: another pass of it), or
    None (no check). A failed run leaves CHOSEN unchanged, so the next mask of that key is tried."""
    key = check_key(r)
    if key in chosen:
        return "cached" if chosen[key] == mask_identity(r) else None
    return "run" if r["seq"] == min_seq else None


def forward_kernels(records):
    """The forward kernel bsattn timed on each mask (from its `fwd` records): `bsattn run --kernel` takes a
    forward kernel, while `bwd` records name the backward's."""
    return {mask_identity(r): r.get("kernel") for r in records if r["pass"] == "fwd"}


def timing_order(records):
    """Dense shapes first, so that FlexAttention's speedups have their own dense baseline in the same pass."""
    return sorted(records, key=lambda r: (r["seq"], r["head_dim"], r["causal"], -(r["density_target"] or 1)))


def peer_record(cols, base, impl, timing, flops, torch_version, gemm_tflops=None, dense_ms=None, extra=None):
    """A record like bsattn's (every column of COLS present, null when unknown) for IMPL timed on BASE's
    problem and pass: TIMING is measure()'s dict, FLOPS from peer_flops."""
    r = {c: None for c in cols}
    for c in PROBLEM_KEYS:
        r[c] = base.get(c)
    r.update({"impl": impl, "backend": "torch " + torch_version, "kernel": "", "flops_computed": flops})
    r.update(timing)
    sec = timing["median_ms"] * 1e-3
    r["tflops_effective"] = flops / sec / 1e12
    r["tflops_dense_equiv"] = base["flops_dense_equiv"] / sec / 1e12
    r["gbytes_per_s"] = base["bytes_min"] / sec / 1e9 if base.get("bytes_min") else None
    if gemm_tflops:
        r["gemm_fraction"] = r["tflops_effective"] / gemm_tflops
    if dense_ms:
        r["dense_median_ms"] = dense_ms
        r["speedup_vs_dense"] = dense_ms / timing["median_ms"]
    if extra:
        r.update(extra)
    return r


def output_check(rel, max_abs):
    return {"check_ref": "bsattn run --backend cuda", "check_rel_err": rel, "check_max_abs_err": max_abs}


def grad_check(errors):
    """Record keys for a gradient check. ERRORS: {"dq": (rel, max_abs), "dk": ..., "dv": ...}, each the
    relative Frobenius error and largest absolute difference against `bsattn run --backend cuda --do`.
    The record holds the worst of the three (check_ref names the gradient each maximum came from); the
    per-gradient figures go into the document's context (peers.grad_checks)."""
    missing = [g for g in GRAD_NAMES if g not in errors]
    if missing:
        raise ValueError("gradient check lacks " + ", ".join(missing))
    for g in GRAD_NAMES:
        if not all(math.isfinite(x) for x in errors[g]):
            raise ValueError("gradient check of %s is not finite: %r" % (g, errors[g]))
    worst_rel = max(GRAD_NAMES, key=lambda g: errors[g][0])
    worst_abs = max(GRAD_NAMES, key=lambda g: errors[g][1])
    return {"check_ref": "bsattn run --backend cuda --do: worst of dQ/dK/dV (rel_err %s, max_abs_err %s)"
                         % (worst_rel, worst_abs),
            "check_rel_err": errors[worst_rel][0], "check_max_abs_err": errors[worst_abs][1]}


def grad_check_context(base, impl, errors):
    """One entry of context.peers.grad_checks: the problem and the three gradients' errors."""
    e = {"impl": impl, "pass": base["pass"], "spec": base["spec"], "causal": base["causal"], "seq": base["seq"],
         "head_dim": base["head_dim"], "heads": base["heads"], "heads_kv": base["heads_kv"]}
    for g in GRAD_NAMES:
        e[g + "_rel_err"], e[g + "_max_abs_err"] = errors[g]
    return e


# --- dilated attention (bench --dilated records: pattern "dilated-attn SPEC", spec "SEG:RATE,...;order=NAME") ---

def is_dilated(r):
    return (r.get("pattern") or "").startswith("dilated-attn")


def parse_dilated_spec(spec):
    """A dilated record's spec -> ([(segment, rate), ...], order)."""
    branches, _, order = spec.partition(";order=")
    pairs = []
    for item in branches.split(","):
        w, _, r = item.partition(":")
        pairs.append((int(w), int(r)))
    return pairs, order or "standard"


def residue_perm(seq, segment, rate):
    """lib/curves/residue.cpp's order: within each segment (the last may be shorter) the tokens class by class
    (position mod rate), so each (segment, class) run of tokens that attend to each other is contiguous.
    perm[j] = the original position of the token at position j."""
    perm = []
    for s0 in range(0, seq, segment):
        n = min(segment, seq - s0)
        for c in range(min(rate, n)):
            perm.extend(range(s0 + c, s0 + n, rate))
    return perm


def dilated_pairs(seq, heads, batch, branches, causal):
    """The (q, k) pairs dilated attention computes (lib/dilated's dilated_pairs): per branch, segment and head
    h, the n tokens of class h mod rate attend to each other (n*n, or n*(n+1)/2 causal)."""
    total = 0
    for w, r in branches:
        for s0 in range(0, seq, w):
            length = min(w, seq - s0)
            for h in range(heads):
                c = h % r
                n = (length - c + r - 1) // r if c < length else 0
                total += n * (n + 1) // 2 if causal else n * n
    return total * batch


def dilated_head_index(seq, segment, rate, heads):
    """A dilated branch's tokens per query head, as the FlexAttention peer packs them: [heads, seq // rate],
    row h the original positions of head h's class (offset h mod rate inside every segment, LongNet), segment
    after segment. Each segment's segment // rate tokens then attend to each other in the packed sequence, and
    every row has its own segment's keys. seq must be a multiple of segment, and segment of rate (ValueError)."""
    import numpy as np
    if seq % segment or segment % rate:
        raise ValueError("packed dilated branches need S=%d a multiple of segment %d, and it of rate %d"
                         % (seq, segment, rate))
    n = segment // rate
    base = (np.arange(seq // segment)[:, None] * segment + np.arange(n)[None, :] * rate).reshape(-1)
    return base[None, :] + (np.arange(heads) % rate)[:, None]


def segment_blocks(length, segment, block, causal):
    """Block masks of a sequence cut into segments of `segment` tokens that attend within themselves (causal:
    to the earlier ones), at FlexAttention's block level: (kept, full) [nb, nb] bool, nb = ceil(length /
    block); kept: the block holds a computed pair; full: only computed pairs, and it is a whole block."""
    import numpy as np
    nb = (length + block - 1) // block
    first = np.arange(nb) * block
    last = np.minimum(first + block, length) - 1
    s0, s1 = first // segment, last // segment
    kept = (s0[:, None] <= s1[None, :]) & (s0[None, :] <= s1[:, None])
    whole = (s0 == s1) & (last - first + 1 == block)
    full = whole[:, None] & whole[None, :] & (s0[:, None] == s0[None, :])
    if causal:
        i, j = np.arange(nb)[:, None], np.arange(nb)[None, :]
        kept &= j <= i
        full &= j < i
    return kept, full
