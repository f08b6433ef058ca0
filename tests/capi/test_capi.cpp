// libbsattn's C ABI as shipped (the shared library and apps/capi/bsattn.h only) on the CPU reference:
// forward and backward against a float64 attention written plainly here, on seeded random inputs with
// poisoned outputs (GQA, q_len != kv_len with partial blocks, causal, varlen, head types, SiLU, bf16),
// masks from specs and files, and the error paths (codes and one-line messages, per thread).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "apps/capi/bsattn.h"

namespace {

const double kNegInf = -std::numeric_limits<double>::infinity();

// One attention problem in f64, BSHD (packed when varlen), its mask as a bitmap.
struct Ref {
  int64_t B = 1, Sq = 0, Sk = 0, Hq = 1, Hkv = 1, D = 16, bq = 32, bk = 32, mask_b = 1;
  bool causal = false, silu = false;
  double silu_n = 1, user_scale = 0;
  std::vector<int32_t> cu_q, cu_k;  // empty: fixed length
  std::vector<uint8_t> bits;        // [mask_b, Hq, Mq, Mk]
  int64_t mq() const { return (Sq + bq - 1) / bq; }
  int64_t mk() const { return (Sk + bk - 1) / bk; }
  int64_t rows_q() const { return cu_q.empty() ? B * Sq : cu_q.back(); }
  int64_t rows_k() const { return cu_k.empty() ? B * Sk : cu_k.back(); }
  double scale() const { return user_scale != 0 ? user_scale : 1.0 / std::sqrt(double(D)); }
  int64_t len_q(int64_t b) const { return cu_q.empty() ? Sq : cu_q[b + 1] - cu_q[b]; }
  int64_t len_k(int64_t b) const { return cu_k.empty() ? Sk : cu_k[b + 1] - cu_k[b]; }
  int64_t start_q(int64_t b) const { return cu_q.empty() ? b * Sq : cu_q[b]; }
  int64_t start_k(int64_t b) const { return cu_k.empty() ? b * Sk : cu_k[b]; }
  bool visible(int64_t b, int64_t h, int64_t i, int64_t j) const {
    const int64_t mb = mask_b == 1 ? 0 : b;
    if (!bits[size_t(((mb * Hq + h) * mq() + i / bq) * mk() + j / bk)]) return false;
    return !causal || j <= i + len_k(b) - len_q(b);
  }
  int64_t lse_index(int64_t b, int64_t h, int64_t i) const {
    return cu_q.empty() ? (b * Hq + h) * Sq + i : h * rows_q() + start_q(b) + i;
  }
};

struct Fwd {
  std::vector<double> o, lse;
};

double silu(double x) { return x / (1 + std::exp(-x)); }

Fwd ref_forward(const Ref& r, const std::vector<double>& q, const std::vector<double>& k, const std::vector<double>& v) {
  Fwd f;
  f.o.assign(size_t(r.rows_q() * r.Hq * r.D), 0);
  f.lse.assign(size_t(r.cu_q.empty() ? r.B * r.Hq * r.Sq : r.Hq * r.rows_q()), 0);
  const int64_t group = r.Hq / r.Hkv;
  for (int64_t b = 0; b < r.B; ++b)
    for (int64_t h = 0; h < r.Hq; ++h)
      for (int64_t i = 0; i < r.len_q(b); ++i) {
        const double* qi = &q[size_t(((r.start_q(b) + i) * r.Hq + h) * r.D)];
        std::vector<double> s(size_t(r.len_k(b)), kNegInf);
        double mx = kNegInf;
        for (int64_t j = 0; j < r.len_k(b); ++j) {
          if (!r.visible(b, h, i, j)) continue;
          const double* kj = &k[size_t(((r.start_k(b) + j) * r.Hkv + h / group) * r.D)];
          double dot = 0;
          for (int64_t d = 0; d < r.D; ++d) dot += qi[d] * kj[d];
          s[size_t(j)] = r.scale() * dot;
          mx = std::max(mx, s[size_t(j)]);
        }
        double* oi = &f.o[size_t(((r.start_q(b) + i) * r.Hq + h) * r.D)];
        double sum = 0;
        for (int64_t j = 0; j < r.len_k(b); ++j) {
          if (s[size_t(j)] == kNegInf) continue;
          const double w = r.silu ? silu(s[size_t(j)]) / r.silu_n : std::exp(s[size_t(j)] - mx);
          sum += w;
          const double* vj = &v[size_t(((r.start_k(b) + j) * r.Hkv + h / group) * r.D)];
          for (int64_t d = 0; d < r.D; ++d) oi[d] += w * vj[d];
        }
        if (!r.silu && sum > 0)
          for (int64_t d = 0; d < r.D; ++d) oi[d] /= sum;
        f.lse[size_t(r.lse_index(b, h, i))] = r.silu ? 0 : (sum > 0 ? mx + std::log(sum) : kNegInf);
      }
  return f;
}

// dQ, dK, dV of softmax attention from dO: P = softmax(S), dP = dO V^T, dS = P (dP - rowsum(dO O)).
void ref_backward(const Ref& r, const std::vector<double>& q, const std::vector<double>& k,
                  const std::vector<double>& v, const std::vector<double>& dout, std::vector<double>& dq,
                  std::vector<double>& dk, std::vector<double>& dv) {
  const Fwd f = ref_forward(r, q, k, v);
  dq.assign(q.size(), 0);
  dk.assign(k.size(), 0);
  dv.assign(v.size(), 0);
  const int64_t group = r.Hq / r.Hkv;
  for (int64_t b = 0; b < r.B; ++b)
    for (int64_t h = 0; h < r.Hq; ++h)
      for (int64_t i = 0; i < r.len_q(b); ++i) {
        const size_t qrow = size_t(((r.start_q(b) + i) * r.Hq + h) * r.D);
        const double lse = f.lse[size_t(r.lse_index(b, h, i))];
        if (lse == kNegInf) continue;
        double delta = 0;
        for (int64_t d = 0; d < r.D; ++d) delta += dout[qrow + d] * f.o[qrow + d];
        for (int64_t j = 0; j < r.len_k(b); ++j) {
          if (!r.visible(b, h, i, j)) continue;
          const size_t krow = size_t(((r.start_k(b) + j) * r.Hkv + h / group) * r.D);
          double dot = 0, dp = 0;
          for (int64_t d = 0; d < r.D; ++d) {
            dot += q[qrow + d] * k[krow + d];
            dp += dout[qrow + d] * v[krow + d];
          }
          const double p = std::exp(r.scale() * dot - lse), ds = p * (dp - delta);
          for (int64_t d = 0; d < r.D; ++d) {
            dq[qrow + d] += r.scale() * ds * k[krow + d];
            dk[krow + d] += r.scale() * ds * q[qrow + d];
            dv[krow + d] += p * dout[qrow + d];
          }
        }
      }
}

std::vector<double> randn(size_t n, std::mt19937_64& g) {
  std::normal_distribution<double> nd;
  std::vector<double> x(n);
  for (auto& e : x) e = nd(g);
  return x;
}

uint16_t to_bf16(float f) {  // round to nearest even (inputs here are finite)
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fff + ((u >> 16) & 1);
  return uint16_t(u >> 16);
}
double from_bf16(uint16_t b) {
  uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

bsattn_tensor tensor(void* data, int32_t dtype, std::vector<int64_t> shape) {
  bsattn_tensor t{};
  t.data = data;
  t.dtype = dtype;
  t.ndim = int32_t(shape.size());
  int64_t stride = 1;
  for (int i = t.ndim - 1; i >= 0; --i) {
    t.shape[i] = shape[size_t(i)];
    t.strides[i] = stride;
    stride *= shape[size_t(i)];
  }
  return t;
}

// The problem's tensors in f32 (or bf16), outputs poisoned with NaN, and the C ABI's view of them.
struct Case {
  Ref r;
  std::vector<double> q, k, v, dout;
  std::vector<float> qf, kf, vf, of, doutf, lse, dq, dk, dv;
  std::vector<uint16_t> qb, kb, vb, ob, doutb;
  bool bf16 = false;
  bsattn_mask_desc mask{};
  bsattn_options opt{};
  bsattn_tensor tq{}, tk{}, tv{}, to{}, tlse{}, tdout{}, tdq{}, tdk{}, tdv{};

  Case(const Ref& ref, uint64_t seed, bool use_bf16 = false) : r(ref), bf16(use_bf16) {
    std::mt19937_64 g(seed);
    q = randn(size_t(r.rows_q() * r.Hq * r.D), g);
    k = randn(size_t(r.rows_k() * r.Hkv * r.D), g);
    v = randn(size_t(r.rows_k() * r.Hkv * r.D), g);
    dout = randn(q.size(), g);
    if (bf16) {  // the reference computes on the rounded values
      for (auto* x : {&q, &k, &v, &dout})
        for (double& e : *x) e = from_bf16(to_bf16(float(e)));
    }
    const float nan = std::nanf("");
    auto f32 = [](const std::vector<double>& x) { return std::vector<float>(x.begin(), x.end()); };
    auto b16 = [](const std::vector<double>& x) {
      std::vector<uint16_t> r(x.size());
      for (size_t i = 0; i < x.size(); ++i) r[i] = to_bf16(float(x[i]));
      return r;
    };
    qf = f32(q), kf = f32(k), vf = f32(v), doutf = f32(dout);
    qb = b16(q), kb = b16(k), vb = b16(v), doutb = b16(dout);
    of.assign(q.size(), nan);
    ob.assign(q.size(), 0xFFFF);
    lse.assign(size_t(r.cu_q.empty() ? r.B * r.Hq * r.Sq : r.Hq * r.rows_q()), nan);
    dq.assign(q.size(), nan);
    dk.assign(k.size(), nan);
    dv.assign(v.size(), nan);
    mask.batch = r.mask_b;
    mask.heads = r.Hq;
    mask.q_len = r.Sq;
    mask.kv_len = r.Sk;
    mask.block_q = r.bq;
    mask.block_kv = r.bk;
    mask.causal = r.causal;
    mask.bitmap = r.bits.data();
    bsattn_options_init(&opt);
    opt.scale = r.user_scale;
    if (r.silu) {
      opt.score = BSATTN_SCORE_SILU;
      opt.silu_n = r.silu_n;
    }
    const bool varlen = !r.cu_q.empty();
    if (varlen) {
      opt.cu_seqlens_q = this->r.cu_q.data();
      opt.cu_seqlens_k = this->r.cu_k.data();
      opt.varlen_batch = r.B;
    }
    const int32_t dt = bf16 ? BSATTN_BF16 : BSATTN_F32;
    auto qs = varlen ? std::vector<int64_t>{r.rows_q(), r.Hq, r.D} : std::vector<int64_t>{r.B, r.Sq, r.Hq, r.D};
    auto ks = varlen ? std::vector<int64_t>{r.rows_k(), r.Hkv, r.D} : std::vector<int64_t>{r.B, r.Sk, r.Hkv, r.D};
    auto ls = varlen ? std::vector<int64_t>{r.Hq, r.rows_q()} : std::vector<int64_t>{r.B, r.Hq, r.Sq};
    tq = tensor(bf16 ? (void*)qb.data() : qf.data(), dt, qs);
    tk = tensor(bf16 ? (void*)kb.data() : kf.data(), dt, ks);
    tv = tensor(bf16 ? (void*)vb.data() : vf.data(), dt, ks);
    to = tensor(bf16 ? (void*)ob.data() : of.data(), dt, qs);
    tdout = tensor(bf16 ? (void*)doutb.data() : doutf.data(), dt, qs);
    tlse = tensor(lse.data(), BSATTN_F32, ls);
    tdq = tensor(dq.data(), BSATTN_F32, qs);
    tdk = tensor(dk.data(), BSATTN_F32, ks);
    tdv = tensor(dv.data(), BSATTN_F32, ks);
  }
  int forward() { return bsattn_attention_forward(&tq, &tk, &tv, &mask, &opt, &to, &tlse); }
  int backward() {
    return bsattn_attention_backward(&tq, &tk, &tv, &to, &tlse, &tdout, &mask, &opt, &tdq, &tdk, &tdv);
  }
  double out(size_t i) const { return bf16 ? from_bf16(ob[i]) : of[i]; }
};

std::vector<uint8_t> random_bits(int64_t n, double density, std::mt19937_64& g) {
  std::bernoulli_distribution keep(density);
  std::vector<uint8_t> b(static_cast<size_t>(n));
  for (auto& e : b) e = keep(g);
  return b;
}

// Worst |got - want| / (atol + rtol |want|) over every element; <= 1 passes.
template <class G>
double worst(const G& got, const std::vector<double>& want, double atol, double rtol) {
  double w = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double g = got(i);
    if (std::isinf(want[i]) && g == want[i]) continue;
    if (!std::isfinite(g)) return std::numeric_limits<double>::infinity();
    w = std::max(w, std::abs(g - want[i]) / (atol + rtol * std::abs(want[i])));
  }
  return w;
}

// The forward's O and LSE against the reference: f32 ~1e-5 relative (one rounding per accumulated
// product over at most a few hundred keys); bf16 O is rounded once to 8 bits of mantissa (2^-8).
void check_forward(Case& c) {
  REQUIRE_MESSAGE(c.forward() == BSATTN_OK, bsattn_last_error());
  CHECK(std::string(bsattn_last_error()).empty());
  const Fwd f = ref_forward(c.r, c.q, c.k, c.v);
  const double tol = c.bf16 ? 1e-2 : 2e-5;
  CHECK(worst([&](size_t i) { return c.out(i); }, f.o, tol, tol) <= 1);
  CHECK(worst([&](size_t i) { return double(c.lse[i]); }, f.lse, 2e-5, 2e-5) <= 1);
}

// Gradients in f32 ~1e-4: dS subtracts two sums of similar size.
void check_backward(Case& c) {
  REQUIRE_MESSAGE(c.forward() == BSATTN_OK, bsattn_last_error());
  REQUIRE_MESSAGE(c.backward() == BSATTN_OK, bsattn_last_error());
  std::vector<double> dq, dk, dv;
  // The backward reads O as given: in bf16, the rounded O; the reference's own f64 O differs from it by
  // that rounding, which moves dS by about dO * 2^-8 (hence the bf16 tolerance).
  ref_backward(c.r, c.q, c.k, c.v, c.dout, dq, dk, dv);
  const double tol = c.bf16 ? 3e-2 : 1e-4;
  CHECK(worst([&](size_t i) { return double(c.dq[i]); }, dq, tol, tol) <= 1);
  CHECK(worst([&](size_t i) { return double(c.dk[i]); }, dk, tol, tol) <= 1);
  CHECK(worst([&](size_t i) { return double(c.dv[i]); }, dv, tol, tol) <= 1);
}

Ref gqa_problem(bool causal, uint64_t seed) {
  Ref r;
  r.B = 2, r.Sq = 100, r.Sk = 130, r.Hq = 4, r.Hkv = 2, r.D = 16, r.bq = 32, r.bk = 32;
  r.causal = causal;
  std::mt19937_64 g(seed);
  r.bits = random_bits(r.mask_b * r.Hq * r.mq() * r.mk(), 0.5, g);
  return r;
}

}  // namespace

TEST_CASE("C ABI: version and defaults") {
  CHECK(bsattn_abi_version() == BSATTN_ABI_VERSION);
  CHECK(std::string(bsattn_version()).size() > 0);
  bsattn_options o;
  std::memset(&o, 0x5a, sizeof o);
  bsattn_options_init(&o);
  CHECK(o.backend == BSATTN_BACKEND_CPU);
  CHECK(o.score == BSATTN_SCORE_SOFTMAX);
  CHECK(o.scale == 0);
  CHECK(o.cu_seqlens_q == nullptr);
  CHECK(o.workspace == nullptr);
  CHECK(o.bwd_kernel == nullptr);
  size_t bytes = 1;
  Case c(gqa_problem(false, 1), 2);
  CHECK(bsattn_workspace_size(&c.tq, &c.tk, &c.tv, &c.mask, &c.opt, 1, &bytes) == BSATTN_OK);
  CHECK(bytes == 0);  // the CPU backend needs none
}

TEST_CASE("C ABI forward and backward on the CPU reference match float64 attention (GQA, partial blocks, causal)") {
  for (bool causal : {false, true}) {
    CAPTURE(causal);
    Case c(gqa_problem(causal, 11), 12);
    check_forward(c);
    Case d(gqa_problem(causal, 13), 14);
    check_backward(d);
  }
}

TEST_CASE("C ABI: bf16 inputs, a batch-1 mask broadcast over the batch, a scale") {
  Ref r = gqa_problem(true, 21);
  r.user_scale = 0.3;
  Case c(r, 22, true);
  check_forward(c);
  Case d(r, 23, true);
  check_backward(d);
}

TEST_CASE("C ABI: gradients in the inputs' 16-bit type are the f32 gradients rounded once; mixed dtypes refused") {
  Ref r = gqa_problem(false, 24);
  Case c(r, 25, true);
  check_backward(c);  // f32 gradients, checked against float64
  std::vector<uint16_t> dq16(c.dq.size(), 0xFFFF), dk16(c.dk.size(), 0xFFFF), dv16(c.dv.size(), 0xFFFF);
  bsattn_tensor g[3] = {c.tdq, c.tdk, c.tdv};
  uint16_t* bufs[3] = {dq16.data(), dk16.data(), dv16.data()};
  const std::vector<float>* f32[3] = {&c.dq, &c.dk, &c.dv};
  for (int i = 0; i < 3; ++i) g[i].data = bufs[i], g[i].dtype = BSATTN_BF16;
  REQUIRE_MESSAGE(bsattn_attention_backward(&c.tq, &c.tk, &c.tv, &c.to, &c.tlse, &c.tdout, &c.mask, &c.opt, &g[0], &g[1],
                                            &g[2]) == BSATTN_OK,
                  bsattn_last_error());
  for (int i = 0; i < 3; ++i) {
    size_t bad = 0;
    for (size_t e = 0; e < f32[i]->size(); ++e) bad += bufs[i][e] != to_bf16((*f32[i])[e]);
    CHECK_MESSAGE(bad == 0, "gradient " << i << ": " << bad << " elements differ from the rounded f32 gradient");
  }
  // dK in f32 beside a bf16 dQ: one line naming dk and what is allowed, nothing written
  bsattn_tensor mixed = c.tdk;
  std::vector<float> dk32(c.dk.size(), 7.f);
  mixed.data = dk32.data();
  CHECK(bsattn_attention_backward(&c.tq, &c.tk, &c.tv, &c.to, &c.tlse, &c.tdout, &c.mask, &c.opt, &g[0], &mixed,
                                  &g[2]) == BSATTN_ERROR_USAGE);
  const std::string err = bsattn_last_error();
  CHECK(err.find("dk") != std::string::npos);
  CHECK(err.find("dtype of q") != std::string::npos);
  CHECK(dk32[0] == 7.f);
}

TEST_CASE("C ABI: varlen (cu_seqlens, packed rows), mask rows relative to each sequence") {
  Ref r;
  r.B = 3, r.Hq = 2, r.Hkv = 1, r.D = 16, r.bq = 16, r.bk = 16, r.causal = true;
  r.cu_q = {0, 40, 70, 140};  // lengths 40, 30, 70
  r.cu_k = {0, 50, 80, 150};  // 50, 30, 70
  r.Sq = r.Sk = 70;           // the maxima size the mask
  std::mt19937_64 g(31);
  r.bits = random_bits(r.Hq * r.mq() * r.mk(), 0.6, g);
  Case c(r, 32);
  check_forward(c);
  Case d(r, 33);
  check_backward(d);
}

TEST_CASE("C ABI: SiLU score (HSTU), LSE 0") {
  Ref r = gqa_problem(true, 41);
  r.silu = true;
  r.silu_n = 130;
  Case c(r, 42);
  check_forward(c);
}

TEST_CASE("C ABI: the mask as row CSR, and head types (dense ignores the bitmap, streaming follows sink + local)") {
  Ref r;
  r.B = 1, r.Sq = r.Sk = 128, r.Hq = r.Hkv = 3, r.D = 16, r.bq = r.bk = 16, r.causal = true;
  std::mt19937_64 g(51);
  r.bits = random_bits(r.Hq * r.mq() * r.mk(), 0.3, g);
  Case want(r, 52);
  REQUIRE(want.forward() == BSATTN_OK);

  // The same mask given as the row CSR.
  bsattn_mask* m = nullptr;
  REQUIRE(bsattn_mask_create(&want.mask, &m) == BSATTN_OK);
  const size_t rows = size_t(r.Hq * r.mq());
  std::vector<int32_t> num(rows), idx(rows * size_t(r.mk()));
  REQUIRE(bsattn_mask_copy_csr(m, num.data(), idx.data(), nullptr, nullptr, rows, rows) == BSATTN_OK);
  bsattn_mask_free(m);
  Case csr(r, 52);
  csr.mask.bitmap = nullptr;
  csr.mask.kv_num_blocks = num.data();
  csr.mask.kv_indices = idx.data();
  REQUIRE_MESSAGE(csr.forward() == BSATTN_OK, bsattn_last_error());
  CHECK(std::memcmp(csr.of.data(), want.of.data(), want.of.size() * 4) == 0);

  // Head 0 dense over an empty bitmap, head 2 streaming (1 sink block, 2 local blocks): the reference
  // sees the blocks those definitions keep.
  Ref typed = r;
  const int64_t mq = r.mq(), mk = r.mk();
  std::fill(typed.bits.begin(), typed.bits.begin() + mq * mk, uint8_t(0));
  Case c(typed, 53);
  const std::vector<uint8_t> typed_bits = typed.bits;
  uint8_t types[3] = {BSATTN_HEAD_DENSE, BSATTN_HEAD_SPARSE, BSATTN_HEAD_STREAMING};
  int32_t sink[3] = {0, 0, 1}, local[3] = {0, 0, 2};
  c.mask.head_type = types;
  c.mask.head_sink = sink;
  c.mask.head_local = local;
  Ref defined = typed;
  for (int64_t i = 0; i < mq; ++i)
    for (int64_t j = 0; j < mk; ++j) {
      defined.bits[size_t(i * mk + j)] = 1;
      defined.bits[size_t((2 * mq + i) * mk + j)] = j < 1 || (j <= i && j > i - 2);
    }
  c.r = defined;
  c.mask.bitmap = typed_bits.data();
  check_forward(c);
}

TEST_CASE("C ABI errors: codes and one line naming what is wrong, nothing written") {
  Case c(gqa_problem(false, 61), 62);
  auto refused = [&](int code, const char* what) {
    const int rc = c.forward();
    CHECK(rc == code);
    const std::string msg = bsattn_last_error();
    CHECK_MESSAGE(msg.find(what) != std::string::npos, msg);
    CHECK(msg.find('\n') == std::string::npos);
    CHECK(std::isnan(c.of[0]));  // untouched
  };
  Case ok = c;
  {  // wrong dtype
    std::vector<uint16_t> k16(c.kf.size());
    c.tk = tensor(k16.data(), BSATTN_F16, {2, 130, 2, 16});
    refused(BSATTN_ERROR_USAGE, "k: dtype f16 (allowed: f32, the dtype of q)");
    c.tk = ok.tk;
    c.tq.dtype = 7;
    refused(BSATTN_ERROR_USAGE, "q: dtype 7");
    c.tq = ok.tq;
    c.tlse.dtype = BSATTN_BF16;
    refused(BSATTN_ERROR_USAGE, "lse: dtype bf16 (allowed: f32, always f32)");
    c.tlse = ok.tlse;
  }
  {  // mismatched shapes
    c.tv.shape[1] = 129;
    refused(BSATTN_ERROR_USAGE, "v: shape [2,129,2,16] (expected [2,130,2,16])");
    c.tv = ok.tv;
    c.to.shape[3] = 8;
    refused(BSATTN_ERROR_USAGE, "o: shape");
    c.to = ok.to;
    c.mask.heads = 2;
    refused(BSATTN_ERROR_USAGE, "mask has 2 heads but Q has 4");
    c.mask = ok.mask;
    c.mask.q_len = 64;
    refused(BSATTN_ERROR_USAGE, "mask is for q_len=64");
    c.mask = ok.mask;
  }
  {  // strides
    std::swap(c.tq.strides[1], c.tq.strides[2]);
    refused(BSATTN_ERROR_USAGE, "not contiguous");
    c.tq = ok.tq;
  }
  {  // null pointers
    c.tq.data = nullptr;
    refused(BSATTN_ERROR_USAGE, "q.data is a null pointer");
    c.tq = ok.tq;
    CHECK(bsattn_attention_forward(nullptr, &c.tk, &c.tv, &c.mask, &c.opt, &c.to, &c.tlse) == BSATTN_ERROR_USAGE);
    CHECK(std::string(bsattn_last_error()) == "q is a null pointer");
    CHECK(bsattn_attention_forward(&c.tq, &c.tk, &c.tv, nullptr, &c.opt, &c.to, &c.tlse) == BSATTN_ERROR_USAGE);
    CHECK(bsattn_attention_forward(&c.tq, &c.tk, &c.tv, &c.mask, nullptr, &c.to, &c.tlse) == BSATTN_ERROR_USAGE);
    CHECK(bsattn_attention_forward(&c.tq, &c.tk, &c.tv, &c.mask, &c.opt, &c.to, nullptr) == BSATTN_ERROR_USAGE);
    CHECK(std::string(bsattn_last_error()) == "lse is a null pointer");
    c.mask.bitmap = nullptr;
    refused(BSATTN_ERROR_USAGE, "give the bitmap or the row CSR");
    c.mask = ok.mask;
    CHECK(c.backward() == BSATTN_ERROR_USAGE);  // O still holds the NaN poison: refused, naming it
    CHECK(std::string(bsattn_last_error()).find("O has NaN at [b=0, s=0, h=0, d=0]") != std::string::npos);
    c.tdk.data = nullptr;
    CHECK(c.backward() == BSATTN_ERROR_USAGE);
    CHECK(std::string(bsattn_last_error()) == "dk.data is a null pointer");
    c.tdk = ok.tdk;
  }
  {  // bad values
    std::vector<uint8_t> bits = c.r.bits;
    bits[5] = 2;
    c.mask.bitmap = bits.data();
    refused(BSATTN_ERROR_USAGE, "mask.bitmap: element 5 is 2 (allowed: 0 or 1)");
    c.mask = ok.mask;
    c.opt.score = 5;
    refused(BSATTN_ERROR_USAGE, "options.score: 5");
    c.opt = ok.opt;
    c.opt.kernel = "sm90-ws";
    refused(BSATTN_ERROR_USAGE, "need BSATTN_BACKEND_CUDA");
    c.opt = ok.opt;
    uint8_t types[4] = {1, 1, 9, 1};
    c.mask.head_type = types;
    refused(BSATTN_ERROR_USAGE, "mask.head_type[2] = 9");
    c.mask = ok.mask;
    c.qf[3] = std::nanf("");
    refused(BSATTN_ERROR_USAGE, "NaN");
    c.qf[3] = 0.5f;
  }
  {  // varlen offsets that do not fit the packed rows
    int32_t cu[3] = {0, 100, 150};
    c.opt.cu_seqlens_q = cu;
    refused(BSATTN_ERROR_USAGE, "give both or neither");
    c.opt.cu_seqlens_k = cu;
    c.opt.varlen_batch = 2;
    refused(BSATTN_ERROR_USAGE, "packed [total_rows, heads, head_dim]");
    c.opt = ok.opt;
  }
  // The CUDA backend on host pointers: refused before anything runs (no GPU, no CUDA in this build, or
  // no workspace), never a crash.
  if (!bsattn_cuda_available()) {
    c.opt.backend = BSATTN_BACKEND_CUDA;
    CHECK(c.forward() != BSATTN_OK);
    CHECK(std::string(bsattn_last_error()).size() > 0);
    CHECK(std::isnan(c.of[0]));
    c.opt = ok.opt;
  }
  // A success clears the message; messages are per thread.
  REQUIRE(c.forward() == BSATTN_OK);
  CHECK(std::string(bsattn_last_error()).empty());
  std::string other;
  std::thread t([&] {
    bsattn_mask* m = nullptr;
    CHECK(bsattn_mask_generate("no-such-pattern", nullptr, 1, 1, 1024, 1024, 128, 128, 0, 0, &m) == BSATTN_ERROR_USAGE);
    CHECK(m == nullptr);
    other = bsattn_last_error();
  });
  t.join();
  CHECK(other.find("no-such-pattern") != std::string::npos);
  CHECK(std::string(bsattn_last_error()).empty());
}

TEST_CASE("C ABI masks: a pattern spec as gen-mask takes it, a head map, CSR forms, files") {
  bsattn_mask* m = nullptr;
  REQUIRE_MESSAGE(bsattn_mask_generate("local:window=2", nullptr, 1, 2, 1000, 1000, 128, 128, 1, 0, &m) == BSATTN_OK,
                  bsattn_last_error());
  bsattn_mask_info info{};
  REQUIRE(bsattn_mask_get_info(m, &info) == BSATTN_OK);
  CHECK(info.mq == 8);
  CHECK(info.mk == 8);
  CHECK(info.q_len == 1000);
  CHECK(info.causal == 1);
  std::vector<uint8_t> bits(size_t(2 * 8 * 8));
  REQUIRE(bsattn_mask_copy_bitmap(m, bits.data(), bits.size()) == BSATTN_OK);
  CHECK(bsattn_mask_copy_bitmap(m, bits.data(), 3) == BSATTN_ERROR_USAGE);
  std::vector<int32_t> kn(16), ki(128), qn(16), qi(128);
  REQUIRE(bsattn_mask_copy_csr(m, kn.data(), ki.data(), qn.data(), qi.data(), 16, 16) == BSATTN_OK);
  for (int64_t r = 0; r < 16; ++r) {  // the row CSR lists the bitmap's kept blocks, ascending
    std::vector<int32_t> kept;
    for (int32_t j = 0; j < 8; ++j)
      if (bits[size_t(r * 8 + j)]) kept.push_back(j);
    CHECK(kn[size_t(r)] == int32_t(kept.size()));
    CHECK(std::equal(kept.begin(), kept.end(), ki.begin() + r * 8));
    const int64_t i = r % 8;  // causal: nothing right of the diagonal
    for (int32_t j : kept) CHECK(j <= i);
  }
  int64_t col_total = 0, row_total = 0;
  for (int x = 0; x < 16; ++x) col_total += qn[size_t(x)], row_total += kn[size_t(x)];
  CHECK(col_total == row_total);
  const char* json = bsattn_mask_json(m);
  REQUIRE(json);
  CHECK(std::string(json).find("bsattn.mask/v1") != std::string::npos);
  CHECK(std::string(json).find("local") != std::string::npos);

  // Files round-trip through the library's writers and readers.
  const std::string npy = std::string(BSATTN_TEST_DATA_DIR) + "/capi_mask.npy";
  const std::string js = std::string(BSATTN_TEST_DATA_DIR) + "/capi_mask.json";
  REQUIRE(bsattn_mask_save(m, npy.c_str()) == BSATTN_OK);
  REQUIRE(bsattn_mask_save(m, js.c_str()) == BSATTN_OK);
  for (const std::string& path : {npy, js}) {
    bsattn_mask* back = nullptr;
    REQUIRE_MESSAGE(bsattn_mask_load(path.c_str(), 1000, 1000, 128, 128, 1, &back) == BSATTN_OK, bsattn_last_error());
    std::vector<uint8_t> again(bits.size());
    REQUIRE(bsattn_mask_copy_bitmap(back, again.data(), again.size()) == BSATTN_OK);
    CHECK(again == bits);
    bsattn_mask_free(back);
  }
  bsattn_mask_free(m);
  CHECK(bsattn_mask_save(m = nullptr, npy.c_str()) == BSATTN_ERROR_USAGE);
  CHECK(bsattn_mask_load((npy + ".missing").c_str(), 0, 0, 0, 0, 0, &m) != BSATTN_OK);
  CHECK(std::string(bsattn_last_error()).find(".missing") != std::string::npos);

  // A head map, with a dense and a streaming range: head types come back.
  REQUIRE_MESSAGE(bsattn_mask_generate(nullptr, "0-1=dense;2-3=streaming:sink=1,local=2", 1, 4, 2048, 2048, 128, 128,
                                       0, 0, &m) == BSATTN_OK,
                  bsattn_last_error());
  uint8_t types[4];
  int32_t sink[4], local[4];
  REQUIRE(bsattn_mask_copy_heads(m, types, sink, local, 4) == BSATTN_OK);
  CHECK(types[0] == BSATTN_HEAD_DENSE);
  CHECK(types[3] == BSATTN_HEAD_STREAMING);
  CHECK(sink[3] == 1);
  CHECK(local[3] == 2);
  bsattn_mask_free(m);

  // Bad specs and arrays: usage errors naming the problem.
  CHECK(bsattn_mask_generate("local:window=-1", nullptr, 1, 1, 1024, 1024, 128, 128, 0, 0, &m) == BSATTN_ERROR_USAGE);
  CHECK(std::string(bsattn_last_error()).find("window") != std::string::npos);
  CHECK(bsattn_mask_generate("local", "0=dense", 1, 1, 1024, 1024, 128, 128, 0, 0, &m) == BSATTN_ERROR_USAGE);
  CHECK(bsattn_mask_generate("local", nullptr, 1, 1, 0, 0, 128, 128, 0, 0, &m) == BSATTN_ERROR_USAGE);
  bsattn_mask_desc d{};
  d.batch = 1, d.heads = 1, d.q_len = d.kv_len = 256, d.block_q = d.block_kv = 128;
  int32_t num[2] = {1, 2}, idx[4] = {0, 0, 1, 0};  // row 1 lists 1 then 0: not ascending
  d.kv_num_blocks = num;
  d.kv_indices = idx;
  CHECK(bsattn_mask_create(&d, &m) == BSATTN_ERROR_USAGE);
  CHECK(std::string(bsattn_last_error()).find("ascending") != std::string::npos);
  idx[3] = 5;
  idx[2] = 0;
  CHECK(bsattn_mask_create(&d, &m) == BSATTN_ERROR_USAGE);
  CHECK(std::string(bsattn_last_error()).find("out of range") != std::string::npos);
  d.block_q = 0;
  CHECK(bsattn_mask_create(&d, &m) == BSATTN_ERROR_USAGE);
}
