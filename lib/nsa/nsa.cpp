#include "lib/nsa/nsa.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "lib/error.h"
#include "lib/npy.h"
#include "lib/nsa/nsa_gpu.h"
#include "lib/reference/parallel.h"
#include "lib/spec.h"
#include "lib/tensor/tensor_io.h"
#include "lib/varlen/varlen.h"

namespace bsattn {

nlohmann::json NsaParams::to_json() const {
  return {{"block", block},   {"stride", stride}, {"select", select}, {"topn", topn},
          {"window", window}, {"init", init},     {"local", local},   {"qblock", qblock},
          {"pool", pool_file.empty() ? nlohmann::json("mean") : nlohmann::json(pool_file)}};
}

NsaParams parse_nsa_spec(const std::string& text, const std::string& what) {
  const double big = double(int64_t(1) << 30);
  const std::vector<ParamDef> defs = {
      {"block", ParamKind::Int, "64", 1, big, "compression block length l", {}},
      {"stride", ParamKind::Int, "32", 1, big, "compression stride d (<= block)", {}},
      {"select", ParamKind::Int, "64", 1, big, "selection block size l'", {}},
      {"topn", ParamKind::Int, "16", 1, big, "selected blocks per query, forced ones included", {}},
      {"window", ParamKind::Int, "512", 1, big, "sliding window in tokens (rounded up to select blocks)", {}},
      {"init", ParamKind::Int, "1", 0, big, "forced initial blocks", {}},
      {"local", ParamKind::Int, "2", 0, big, "forced local blocks", {}},
      {"qblock", ParamKind::Int, "1", 1, big, "queries sharing one selection", {}},
  };
  Spec s = parse_spec("nsa:" + text, what);
  Params pr(defs, s.args, what);
  NsaParams p;
  p.block = pr.get_int("block"), p.stride = pr.get_int("stride"), p.select = pr.get_int("select");
  p.topn = pr.get_int("topn"), p.window = pr.get_int("window"), p.init = pr.get_int("init");
  p.local = pr.get_int("local"), p.qblock = pr.get_int("qblock");
  if (p.stride > p.block)
    throw UsageError(what + ": stride=" + std::to_string(p.stride) + " is larger than block=" + std::to_string(p.block) +
                     " (allowed: 1 <= stride <= block, so that the compressed blocks cover every token)");
  return p;
}

std::vector<double> load_nsa_pool(const std::string& path, int64_t block, const std::string& what) {
  NpyArray a = read_npy(path);
  if (a.shape.size() != 1 || a.shape[0] != block || !(a.dtype == DType::Float32 || a.dtype == DType::Float64))
    throw UsageError(what + " " + path + ": " + dtype_name(a.dtype) + " " + a.shape_str() + " (allowed: 1-D float32/float64 of " +
                     std::to_string(block) + " weights, one per position of a compression block)");
  std::vector<double> w(static_cast<size_t>(block));
  for (int64_t i = 0; i < block; ++i) {
    w[size_t(i)] = a.dtype == DType::Float32 ? a.as<float>()[i] : a.as<double>()[i];
    if (!std::isfinite(w[size_t(i)])) throw UsageError(what + " " + path + ": weight " + std::to_string(i) + " is not finite");
  }
  return w;
}

std::vector<float> load_nsa_gates(const std::string& path, int64_t rows, int64_t heads, bool logits,
                                  const std::string& what) {
  NpyArray a = read_npy(path);
  int64_t n = 1;
  for (auto d : a.shape) n *= d;
  const bool shape_ok = a.shape.size() >= 3 && a.shape.back() == 3 && a.shape[a.shape.size() - 2] == heads &&
                        n == rows * heads * 3;
  if (!shape_ok || a.dtype != DType::Float32)
    throw UsageError(what + " " + path + ": " + dtype_name(a.dtype) + " " + a.shape_str() + " (allowed: float32 [B,S," +
                     std::to_string(heads) + ",3] or [total," + std::to_string(heads) + ",3], " + std::to_string(rows) +
                     " tokens; the last axis is cmp, slc, win)");
  std::vector<float> g(a.as<float>(), a.as<float>() + n);
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(g[size_t(i)]))
      throw UsageError(what + " " + path + ": value " + std::to_string(i) + " is not finite (allowed: finite gates)");
    if (logits) g[size_t(i)] = float(1.0 / (1.0 + std::exp(-double(g[size_t(i)]))));
  }
  return g;
}

BlockMask nsa_window_mask(const AttentionProblem& p, const NsaParams& np) {
  const int64_t B = p.batch, S = p.q_len, H = p.heads_q;
  MaskShape ms;
  ms.batch = B, ms.heads = H, ms.q_len = ms.kv_len = S, ms.block_q = np.qblock, ms.block_kv = np.select;
  BlockMask m(ms);
  m.causal = true;
  const int64_t W = (np.window + np.select - 1) / np.select, Mq = ms.mq();
  for (int64_t row = 0; row < Mq; ++row) {
    const int64_t t0 = row * np.qblock, t1 = std::min(S, (row + 1) * np.qblock) - 1;
    const int64_t c0 = t0 / np.select, c = t1 / np.select;  // key blocks of the row's first and last query
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t j = std::max<int64_t>(0, c0 - W + 1); j <= c; ++j) m.set(b, h, row, j);
  }
  m.apply_causal();
  m.spec = {{"nsa", np.to_json()}, {"branch", "window"}};
  return m;
}

// The GPU path (lib/nsa/nsa_gpu.h): Q/K/V rounded to the 16-bit type, every step on the GPU.
static NsaBranches nsa_forward_gpu(const AttentionProblem& p, const float* q, const float* k, const float* v,
                                   const NsaParams& np, const float* gates, const NsaOptions& opt) {
  AttentionProblem pa = p;
  pa.dtype = opt.cuda_dtype;
  nsa_gpu()->check(pa, np, opt.backend);
  const int64_t nq = p.batch * p.q_len * p.heads_q * p.head_dim, nk = p.batch * p.kv_len * p.heads_kv * p.head_dim;
  const std::vector<uint16_t> q16 = to_16bit(std::vector<float>(q, q + nq), pa.dtype),
                              k16 = to_16bit(std::vector<float>(k, k + nk), pa.dtype),
                              v16 = to_16bit(std::vector<float>(v, v + nk), pa.dtype);
  NsaBranches r = nsa_gpu()->forward(pa, np, {q16.data(), k16.data(), v16.data(), nullptr}, gates, opt.backend);
  r.select_mask.spec = {{"nsa", np.to_json()}, {"branch", "selected"}};
  return r;
}

NsaBranches nsa_forward(const AttentionProblem& p, const float* q, const float* k, const float* v, const NsaParams& np,
                        const float* gates, const NsaOptions& opt) {
  if (p.varlen()) {  // each sequence alone; outputs packed, masks embedded (lib/varlen/varlen.h)
    NsaBranches all;
    std::vector<BlockMask> sel, win;
    const int64_t H = p.heads_q, Hkv = p.heads_kv, D = p.head_dim;
    for (int64_t b = 0; b < p.batch; ++b) {
      const int64_t r0 = p.cu_seqlens_q[size_t(b)], len = p.cu_seqlens_q[size_t(b) + 1] - r0;
      if (p.cu_seqlens_k[size_t(b)] != r0 || p.cu_seqlens_k[size_t(b) + 1] != r0 + len)
        throw UsageError("NSA is self-attention: the key offsets must equal the query offsets");
      AttentionProblem one = p;
      one.cu_seqlens_q.clear(), one.cu_seqlens_k.clear();
      one.batch = 1, one.q_len = one.kv_len = len;
      NsaBranches x = nsa_forward(one, q + r0 * H * D, k + r0 * Hkv * D, v + r0 * Hkv * D, np,
                                  gates ? gates + r0 * H * 3 : nullptr, opt);
      using Part = std::pair<std::vector<float>*, const std::vector<float>*>;
      for (const Part& part : {Part{&all.out, &x.out}, Part{&all.cmp, &x.cmp}, Part{&all.slc, &x.slc}, Part{&all.win, &x.win}})
        part.first->insert(part.first->end(), part.second->begin(), part.second->end());
      all.compressed_blocks += x.compressed_blocks;
      sel.push_back(std::move(x.select_mask)), win.push_back(std::move(x.window_mask));
    }
    all.select_mask = embed_sequence_masks(sel, p.q_len);
    all.window_mask = embed_sequence_masks(win, p.q_len);
    return all;
  }
  if (p.q_len != p.kv_len) throw UsageError("NSA is self-attention: Q and K must have the same length");
  if (p.score != ScoreFn::Softmax) throw UsageError("NSA takes softmax scores (drop --score silu)");
  if (p.heads_q % p.heads_kv) throw UsageError("NSA: query heads must be a multiple of key/value heads");
  if (opt.backend.backend == Backend::Cuda) {
    if (!nsa_gpu()) throw RuntimeFailure("this bsattn was built without CUDA; use --backend cpu");
    return nsa_forward_gpu(p, q, k, v, np, gates, opt);
  }
  const int64_t B = p.batch, S = p.q_len, H = p.heads_q, Hkv = p.heads_kv, D = p.head_dim, G = H / Hkv;
  const double scale = p.effective_scale();
  const int64_t Nc = S >= np.block ? (S - np.block) / np.stride + 1 : 0;
  NsaBranches r;
  r.compressed_blocks = Nc;

  // Pooled K/V [B, Nc, Hkv, D] in float64.
  std::vector<double> w = np.pool.empty() ? std::vector<double>(size_t(np.block), 1.0 / double(np.block)) : np.pool;
  std::vector<double> kc(size_t(B * Nc * Hkv * D), 0.0), vc(kc.size(), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < Nc; ++i)
      for (int64_t j = 0; j < np.block; ++j) {
        const int64_t src = ((b * S + i * np.stride + j) * Hkv) * D, dst = ((b * Nc + i) * Hkv) * D;
        for (int64_t e = 0; e < Hkv * D; ++e) {
          kc[size_t(dst + e)] += w[size_t(j)] * double(k[src + e]);
          vc[size_t(dst + e)] += w[size_t(j)] * double(v[src + e]);
        }
      }

  // Compressed attention and the selection importance of each (b, query row, kv group, key block).
  const int64_t Mq = (S + np.qblock - 1) / np.qblock, Ms = (S + np.select - 1) / np.select;
  r.cmp.assign(size_t(B * S * H * D), 0.f);
  std::vector<double> imp(size_t(B * Mq * Hkv * Ms), 0.0);
  parallel_for(
      B * Hkv * Mq,
      [&](int64_t task) {
        const int64_t b = task / (Hkv * Mq), g = task / Mq % Hkv, row = task % Mq;
        double* im = &imp[size_t(((b * Mq + row) * Hkv + g) * Ms)];
        std::vector<double> s(static_cast<size_t>(Nc)), o(static_cast<size_t>(D));
        for (int64_t t = row * np.qblock; t < std::min(S, (row + 1) * np.qblock); ++t) {
          const int64_t nvis = t + 1 >= np.block ? std::min(Nc, (t + 1 - np.block) / np.stride + 1) : 0;
          if (nvis == 0) continue;
          for (int64_t h = g * G; h < (g + 1) * G; ++h) {
            const float* qt = q + ((b * S + t) * H + h) * D;
            double m = -INFINITY;
            for (int64_t i = 0; i < nvis; ++i) {
              const double* kk = &kc[size_t(((b * Nc + i) * Hkv + g) * D)];
              double dot = 0;
              for (int64_t e = 0; e < D; ++e) dot += double(qt[e]) * kk[e];
              s[size_t(i)] = dot * scale;
              m = std::max(m, s[size_t(i)]);
            }
            double sum = 0;
            for (int64_t i = 0; i < nvis; ++i) sum += (s[size_t(i)] = std::exp(s[size_t(i)] - m));
            std::fill(o.begin(), o.end(), 0.0);
            for (int64_t i = 0; i < nvis; ++i) {
              const double pi = s[size_t(i)] / sum;
              const double* vv = &vc[size_t(((b * Nc + i) * Hkv + g) * D)];
              for (int64_t e = 0; e < D; ++e) o[size_t(e)] += pi * vv[e];
              const int64_t j0 = i * np.stride / np.select, j1 = (i * np.stride + np.block - 1) / np.select;
              for (int64_t j = j0; j <= std::min(j1, Ms - 1); ++j) im[j] += pi;
            }
            float* ot = &r.cmp[size_t(((b * S + t) * H + h) * D)];
            for (int64_t e = 0; e < D; ++e) ot[e] = float(o[size_t(e)]);
          }
        }
      },
      opt.threads);

  // The selection and window masks.
  MaskShape ms;
  ms.batch = B, ms.heads = H, ms.q_len = ms.kv_len = S, ms.block_q = np.qblock, ms.block_kv = np.select;
  r.select_mask = BlockMask(ms);
  r.select_mask.causal = true;
  r.window_mask = nsa_window_mask(p, np);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t row = 0; row < Mq; ++row) {
      const int64_t t1 = std::min(S, (row + 1) * np.qblock) - 1;
      const int64_t c = t1 / np.select;  // the key block of the row's last query
      for (int64_t g = 0; g < Hkv; ++g) {
        const double* im = &imp[size_t(((b * Mq + row) * Hkv + g) * Ms)];
        std::vector<uint8_t> take(size_t(c + 1), 0);
        int64_t n = 0;
        for (int64_t j = 0; j <= c; ++j)
          if (j < np.init || j > c - np.local) take[size_t(j)] = 1, ++n;
        std::vector<int64_t> rest;
        for (int64_t j = 0; j <= c; ++j)
          if (!take[size_t(j)]) rest.push_back(j);
        std::stable_sort(rest.begin(), rest.end(), [&](int64_t a, int64_t z) { return im[a] > im[z]; });
        for (int64_t j : rest) {
          if (n >= np.topn) break;
          take[size_t(j)] = 1, ++n;
        }
        for (int64_t h = g * G; h < (g + 1) * G; ++h)
          for (int64_t j = 0; j <= c; ++j)
            if (take[size_t(j)]) r.select_mask.set(b, h, row, j);
      }
    }
  r.select_mask.apply_causal();
  r.select_mask.spec = {{"nsa", np.to_json()}, {"branch", "selected"}};

  // The two block-sparse branches on the CPU reference.
  AttentionProblem pa = p;
  pa.dtype = ElemType::F32;
  const AttentionInputs in{q, k, v, nullptr};
  r.slc = attention_forward(pa, r.select_mask, in, opt.backend).out;
  r.win = attention_forward(pa, r.window_mask, in, opt.backend).out;

  r.out.resize(r.cmp.size());
  for (int64_t row = 0; row < B * S; ++row)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t gi = (row * H + h) * 3;
      const float gc = gates ? gates[gi] : 1.f / 3, gs = gates ? gates[gi + 1] : 1.f / 3, gw = gates ? gates[gi + 2] : 1.f / 3;
      for (int64_t e = 0; e < D; ++e) {
        const size_t x = size_t((row * H + h) * D + e);
        r.out[x] = gc * r.cmp[x] + gs * r.slc[x] + gw * r.win[x];
      }
    }
  return r;
}

NsaQuality nsa_quality(const AttentionProblem& p, const float* q, const float* k, const float* v, const NsaParams& np,
                       const float* gates, int threads) {
  NsaOptions opt;
  opt.threads = threads;
  NsaBranches r = nsa_forward(p, q, k, v, np, gates, opt);
  MaskShape shape = r.select_mask.shape;
  shape.block_q = shape.block_kv = 128;  // dense heads: any block size; 128 keeps the reference's GEMMs large
  std::vector<float> dense = dense_output(p, shape, true, q, k, v, threads);
  NsaQuality x;
  const int64_t rows = p.total_q();
  x.out = compare_tensors(r.out.data(), dense.data(), rows, p.heads_q, p.head_dim);
  x.cmp = compare_tensors(r.cmp.data(), dense.data(), rows, p.heads_q, p.head_dim);
  x.slc = compare_tensors(r.slc.data(), dense.data(), rows, p.heads_q, p.head_dim);
  x.win = compare_tensors(r.win.data(), dense.data(), rows, p.heads_q, p.head_dim);
  x.select_stats = p.varlen() ? varlen_mask_stats(r.select_mask, p.cu_seqlens_q) : mask_stats(r.select_mask);
  x.window_stats = p.varlen() ? varlen_mask_stats(r.window_mask, p.cu_seqlens_q) : mask_stats(r.window_mask);
  x.compressed_blocks = r.compressed_blocks;
  return x;
}

nlohmann::json to_json(const NsaQuality& r) {
  auto rep = [](const ErrorReport& e) {
    nlohmann::json j = {{"overall", to_json(e.overall)}, {"heads", nlohmann::json::array()}};
    for (auto& h : e.heads) j["heads"].push_back(to_json(h));
    return j;
  };
  return {{"reference", "dense causal softmax attention (cpu float32)"},
          {"out", rep(r.out)}, {"compressed", rep(r.cmp)}, {"selected", rep(r.slc)}, {"window", rep(r.win)},
          {"select_mask", to_json(r.select_stats)}, {"window_mask", to_json(r.window_stats)},
          {"compressed_blocks", r.compressed_blocks}};
}

}  // namespace bsattn
