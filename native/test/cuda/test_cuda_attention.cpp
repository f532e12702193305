// Attention on the GPU against the CPU reference (f64): self, cross with 77 keys, causal (CLIP), every
// padded head dim (7 -> 32, 24 -> 32, 40 -> 48, 64, 80, 100 -> 128, 160, 256), D != Dv, odd token counts
// (partial tiles of queries and keys), an explicit scale, forward (out, lse) and all three gradients; the
// backward twice for bitwise determinism; an SD-sized spot check.
// Gradients get 3x the dtype tolerance: P and dS are rounded to the storage dtype before their
// tensor-core products (as in every flash attention), and delta = dout . out uses the rounded output.
#include <cmath>

#include "attention_plan.h"
#include "cuda_util.h"
#include "runtime.h"

using namespace dbt;
using namespace dbt::test;
using namespace dbt::test::cu;
using ops::AttentionParams;

namespace {

struct Case {
  const char* name;
  int64_t B, Nq, Nk, H, D, Dv;
  bool causal;
  float scale;
};

const Case kCases[] = {
    {"self 37 tokens, D 40", 2, 37, 37, 2, 40, 40, false, 0.0f},
    {"cross 50 queries x 77 keys, D 40", 2, 50, 77, 2, 40, 40, false, 0.0f},
    {"causal 77 tokens, D 64 (CLIP)", 1, 77, 77, 2, 64, 64, true, 0.0f},
    {"self 70 tokens, D 80", 1, 70, 70, 2, 80, 80, false, 0.0f},
    {"cross 45 queries x 77 keys, D 160", 1, 45, 77, 2, 160, 160, false, 0.0f},
    {"causal 45 tokens, D 160", 1, 45, 45, 1, 160, 160, true, 0.0f},
    {"odd head dim 7, 3 heads (unaligned rows)", 2, 19, 23, 3, 7, 7, false, 0.0f},
    {"D 24, Dv 40", 1, 40, 33, 2, 24, 40, false, 0.0f},
    {"single key", 1, 5, 1, 1, 40, 40, false, 0.0f},
    {"causal 130 tokens, D 32, scale 0.3", 1, 130, 130, 1, 32, 32, true, 0.3f},
    {"cross 66 x 100, D 100 (pads to 128)", 1, 66, 100, 1, 100, 100, false, 0.0f},
    {"D 256", 1, 40, 35, 1, 256, 256, false, 0.0f},
};

struct Run {
  Tensor out, lse, dq, dk, dv;  // device results
  Tensor rout, rlse, rdq, rdk, rdv;  // f64 reference
};

// Forward and backward on the GPU (out and lse of the GPU forward feed its backward) and the reference.
Run run_case(const Case& c, DType dt, uint64_t seed, bool reference = true) {
  AttentionParams p{int(c.H), c.scale, c.causal};
  Tensor q = rnd({c.B, c.Nq, c.H * c.D}, seed, -2, 2), k = rnd({c.B, c.Nk, c.H * c.D}, seed + 1, -2, 2);
  Tensor v = rnd({c.B, c.Nk, c.H * c.Dv}, seed + 2), dout = rnd({c.B, c.Nq, c.H * c.Dv}, seed + 3);
  Shape os{c.B, c.Nq, c.H * c.Dv}, ls{c.B, c.H, c.Nq};
  Run r;
  Tensor gq = upload(q, dt), gk = upload(k, dt), gv = upload(v, dt), gdo = upload(dout, dt);
  r.out = poisoned(os, dt);
  r.lse = poisoned(ls, dt);
  ops::attention_forward(gq, gk, gv, p, r.out, &r.lse);
  r.dq = poisoned(q.shape(), dt);
  r.dk = poisoned(k.shape(), dt);
  r.dv = poisoned(v.shape(), dt);
  ops::attention_backward(gq, gk, gv, r.out, r.lse, gdo, p, &r.dq, &r.dk, &r.dv);
  if (!reference) return r;
  Tensor q64 = rounded64(q, dt), k64 = rounded64(k, dt), v64 = rounded64(v, dt);
  r.rout = Tensor::empty(os, DType::f64);
  r.rlse = Tensor::empty(ls, DType::f64);
  ops::attention_forward(q64, k64, v64, p, r.rout, &r.rlse);
  r.rdq = Tensor::empty(q.shape(), DType::f64);
  r.rdk = Tensor::empty(k.shape(), DType::f64);
  r.rdv = Tensor::empty(v.shape(), DType::f64);
  ops::attention_backward(q64, k64, v64, r.rout, r.rlse, rounded64(dout, dt), p, &r.rdq, &r.rdk, &r.rdv);
  return r;
}

// With a single key P = 1 and dS = P (dO.v - dO.out) with out = v: dq and dk are exactly 0 in the reference,
// so a relative tolerance is 0. The GPU forms dO.v (a product tile) and dO.out (delta) in different
// summation orders and keeps their rounding residue (~1e-7), as any implementation would. Bound them by the
// size of the cancelling terms instead: rms(dO.v) * scale * rms(k or q), inputs as run_case draws them
// (dout, v uniform in [-1, 1], q, k in [-2, 2]), at 3x the dtype's rtol like the other gradients.
void check_vanishing(const Tensor& dev, const Case& c, DType dt, const std::string& what) {
  const double scale = c.scale != 0.0f ? double(c.scale) : 1.0 / std::sqrt(double(c.D));
  const double terms = std::sqrt(double(c.Dv)) / 3.0 * scale * (2.0 / std::sqrt(3.0));
  Tensor zero = Tensor::zeros(dev.shape(), DType::f64);
  expect_close(download(dev), zero, 3.0 * rtol_for(dt) * terms, 0.0, tag(dt) + what + " (exactly 0: one key)");
}

void check_run(const Run& r, const Case& c, DType dt, const std::string& what) {
  expect_close_dev(r.out, r.rout, dt, what + " out");
  expect_close_dev(r.lse, r.rlse, dt, what + " lse");
  if (c.Nk == 1) {
    check_vanishing(r.dq, c, dt, what + " dq");
    check_vanishing(r.dk, c, dt, what + " dk");
  } else {
    expect_close_dev(r.dq, r.rdq, dt, what + " dq", 3.0);
    expect_close_dev(r.dk, r.rdk, dt, what + " dk", 3.0);
  }
  expect_close_dev(r.dv, r.rdv, dt, what + " dv", 3.0);
}

}  // namespace

// Whether this device's shared memory holds the backward kernels' block for the case (f32 at head dims of
// 160 and more does not fit on sm_75/86/89: the backward refuses it by name, docs/cuda.md).
bool backward_fits(const Case& c, DType dt) {
  size_t bytes = 0;
  const int es = dt == DType::f32 ? 4 : 2;
  const int dp = cuda::attn::padded_dim(int(std::max(c.D, c.Dv)));
  return cuda::attn::pick_warps<cuda::attn::BwdSmem>(es, dp, cuda::device().smem_per_block_optin, bytes) > 0;
}

DBT_TEST(cuda_attention_matches_reference) {
  uint64_t seed = 1;
  for (DType dt : mma_types())
    for (const Case& c : kCases) {
      const std::string what = std::string("attention ") + c.name;
      if (!backward_fits(c, dt)) {
        expect_throws<Error>([&] { run_case(c, dt, seed, false); }, "KiB of shared memory per block",
                             tag(dt) + what + ": refused on this device");
      } else {
        check_run(run_case(c, dt, seed), c, dt, what);
      }
      seed += 4;
    }
}

DBT_TEST(cuda_attention_optional_outputs) {
  // No lse from the forward; backward with only dq, then only dk and dv.
  const Case c{"", 2, 33, 77, 2, 40, 40, false, 0.0f};
  for (DType dt : mma_types()) {
    AttentionParams p{int(c.H), 0.0f, false};
    Tensor q = rnd({c.B, c.Nq, c.H * c.D}, 50, -2, 2), k = rnd({c.B, c.Nk, c.H * c.D}, 51, -2, 2);
    Tensor v = rnd({c.B, c.Nk, c.H * c.Dv}, 52), dout = rnd({c.B, c.Nq, c.H * c.Dv}, 53);
    Tensor q64 = rounded64(q, dt), k64 = rounded64(k, dt), v64 = rounded64(v, dt);
    Tensor ro = Tensor::empty({c.B, c.Nq, c.H * c.Dv}, DType::f64), rl = Tensor::empty({c.B, c.H, c.Nq}, DType::f64);
    ops::attention_forward(q64, k64, v64, p, ro, &rl);
    Tensor rdq = Tensor::empty(q.shape(), DType::f64), rdk = Tensor::empty(k.shape(), DType::f64),
           rdv = Tensor::empty(v.shape(), DType::f64);
    ops::attention_backward(q64, k64, v64, ro, rl, rounded64(dout, dt), p, &rdq, &rdk, &rdv);

    Tensor gq = upload(q, dt), gk = upload(k, dt), gv = upload(v, dt), gdo = upload(dout, dt);
    Tensor out = poisoned(ro.shape(), dt);
    ops::attention_forward(gq, gk, gv, p, out, nullptr);
    expect_close_dev(out, ro, dt, "attention out without lse");
    Tensor lse = poisoned(rl.shape(), dt);
    ops::attention_forward(gq, gk, gv, p, out, &lse);
    Tensor dq = poisoned(q.shape(), dt), dk = poisoned(k.shape(), dt), dv = poisoned(v.shape(), dt);
    ops::attention_backward(gq, gk, gv, out, lse, gdo, p, &dq, nullptr, nullptr);
    expect_close_dev(dq, rdq, dt, "attention dq alone", 3.0);
    ops::attention_backward(gq, gk, gv, out, lse, gdo, p, nullptr, &dk, &dv);
    expect_close_dev(dk, rdk, dt, "attention dk without dq", 3.0);
    expect_close_dev(dv, rdv, dt, "attention dv without dq", 3.0);
  }
}

DBT_TEST(cuda_attention_backward_is_deterministic) {
  const Case c{"", 2, 300, 77, 2, 40, 40, false, 0.0f};
  const Case cc{"", 1, 200, 200, 2, 80, 80, true, 0.0f};
  for (DType dt : mma_types())
    for (const Case* x : {&c, &cc}) {
      Run a = run_case(*x, dt, 70, false), b = run_case(*x, dt, 70, false);
      expect_equal_bits(download_raw(a.out), download_raw(b.out), tag(dt) + "attention out twice");
      expect_equal_bits(download_raw(a.dq), download_raw(b.dq), tag(dt) + "attention dq twice");
      expect_equal_bits(download_raw(a.dk), download_raw(b.dk), tag(dt) + "attention dk twice");
      expect_equal_bits(download_raw(a.dv), download_raw(b.dv), tag(dt) + "attention dv twice");
    }
}

DBT_TEST(cuda_attention_sd_shape_spot_check) {
  // SD1.5 shapes with one head (the reference is quadratic in double): 1024 tokens at D 40 (many query
  // and key blocks), 256 queries x 77 keys at D 160 (cross-attention at the lowest level).
  const Case cases[] = {{"1024 tokens, D 40", 1, 1024, 1024, 1, 40, 40, false, 0.0f},
                        {"256 x 77 keys, D 160", 2, 256, 77, 1, 160, 160, false, 0.0f}};
  uint64_t seed = 90;
  for (DType dt : mma_types())
    for (const Case& c : cases) {
      if (dt == DType::f32) continue;  // f32 at these sizes is covered by cuda_attention_matches_reference's shapes
      Run r = run_case(c, dt, seed);
      seed += 4;
      check_run(r, c, dt, std::string("attention ") + c.name);
    }
}

DBT_TEST(cuda_attention_rejects_head_dims_above_256) {
  AttentionParams p{1, 0.0f, false};
  Tensor q = upload(rnd({1, 4, 264}, 1), DType::bf16), out = poisoned({1, 4, 264}, DType::bf16);
  expect_throws<Error>([&] { ops::attention_forward(q, q, q, p, out, nullptr); }, "head dims up to 256",
                       "attention head dim 264");
}
