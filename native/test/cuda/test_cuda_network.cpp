// Network-level checks: the batched transpose behind the image <-> token layouts, and the tiny-arch UNet
// (src/model/arch.ts TINY_ARCH) and a small CLIP text encoder (causal attention over 77 tokens, embeddings)
// forward and backward on the GPU against the same network on the CPU (f32, same weights and inputs rounded
// to the GPU's dtype), checkpointed on the GPU.
// A missing CUDA op fails here with the op's own "no implementation for device cuda" error.
// Tolerances are norm-wise (relative L2 error), since rounding compounds over ~30 layers: f32 1e-4,
// f16 1e-2, bf16 4e-2; per parameter tensor 3x that, with an rms floor like the op tests.
#include <cmath>

#include "cuda_util.h"
#include "nn/clip.h"
#include "nn/unet.h"
#include "nn_util.h"
#include "ops/shape_ops.h"

using namespace dbt;
using namespace dbt::test;
using namespace dbt::test::cu;

namespace {

double net_rtol(DType dt) { return dt == DType::f32 ? 1e-4 : dt == DType::f16 ? 1e-2 : 4e-2; }

struct Norms {
  double err2 = 0, ref2 = 0;
  int64_t n = 0;
};
Norms diff(const Tensor& got_dev, const Tensor& want_cpu) {
  Tensor g = download(got_dev);
  Norms r;
  r.n = want_cpu.numel();
  for (int64_t i = 0; i < r.n; i++) {
    const double w = get(want_cpu, i), d = get(g, i) - w;
    if (!std::isfinite(get(g, i))) r.err2 = INFINITY;
    r.err2 += d * d;
    r.ref2 += w * w;
  }
  return r;
}
void expect_rel(const Norms& d, double tol, double floor2, const std::string& what) {
  const double err = std::sqrt(d.err2), bound = tol * std::sqrt(d.ref2 + floor2);
  if (!(err <= bound))
    throw TestFailure(what + ": relative L2 error " + std::to_string(err / std::sqrt(std::max(d.ref2, 1e-300))) +
                      " (|err| " + std::to_string(err) + " > bound " + std::to_string(bound) + ")");
}

// Rounds a CPU f32 tensor in place to dt's precision.
void round_to(Tensor& t, DType dt) {
  if (dt == DType::f32) return;
  Tensor h = Tensor::empty(t.shape(), dt);
  ops::cast(t, h);
  ops::cast(h, t);
}

// All parameter gradients together within the network tolerance, each tensor within 3x (rms floor).
void expect_grads_close(nn::ParamSet& dev, nn::ParamSet& ref, DType dt, const std::string& what) {
  auto& dp = dev.all();
  auto& rp = ref.all();
  const double tol = net_rtol(dt);
  std::vector<Norms> per(dp.size());
  Norms all;
  for (size_t i = 0; i < dp.size(); i++) {
    per[i] = diff(dp[i].grad, rp[i].grad);
    all.err2 += per[i].err2;
    all.ref2 += per[i].ref2;
    all.n += per[i].n;
  }
  expect_rel(all, tol, 0.0, what + " parameter gradients (all)");
  const double ms = all.ref2 / double(std::max<int64_t>(all.n, 1));  // mean square of all gradients
  for (size_t i = 0; i < dp.size(); i++) expect_rel(per[i], 3 * tol, ms * double(per[i].n), what + " d " + dp[i].key);
}

// Same weights on the GPU in dt (ref's, already rounded to dt), gradients on.
void upload_params(nn::ParamSet& dev, nn::ParamSet& ref, DType dt) {
  auto& dp = dev.all();
  auto& rp = ref.all();
  for (size_t i = 0; i < dp.size(); i++) dp[i].value = upload(rp[i].value, dt);
  dev.enable_grads(true);
}

nn::UNetConfig tiny_unet() {
  nn::UNetConfig c;
  c.model_channels = 32;
  c.channel_mult = {1, 2};
  c.num_res_blocks = 1;
  c.attention_resolutions = {1, 2};
  c.num_heads = 2;
  c.context_dim = 32;
  return c;
}

}  // namespace

DBT_TEST(cuda_transpose_matches_cpu) {
  for (DType dt : float_types())
    for (Shape s : {Shape{2, 37, 70}, Shape{1, 256, 320}, Shape{3, 1, 5}, Shape{2, 4096, 40}}) {
      Tensor x = upload(rnd(s, 7), dt), y = poisoned({s[0], s[2], s[1]}, dt);
      ops::transpose(x, y);
      Tensor want = Tensor::empty(y.shape(), dt);
      ops::transpose(download_raw(x), want);
      expect_equal_bits(download_raw(y), want, tag(dt) + "transpose " + s.str());
    }
}

DBT_TEST(cuda_unet_tiny_forward_backward_matches_cpu) {
  const nn::UNetConfig cfg = tiny_unet();
  Tensor x = rnd({2, 4, 16, 16}, 1), ctx = rnd({2, 77, 32}, 2), dy = rnd({2, 4, 16, 16}, 3);
  Tensor t = Tensor::empty({2});
  t.data<float>()[0] = 10.0f;
  t.data<float>()[1] = 700.0f;
  for (DType dt : float_types()) {
    // CPU reference (f32) with weights and inputs rounded to dt.
    nn::UNet ref(cfg);
    randomize_params(ref.params(), 100);
    for (nn::Param& p : ref.params().all()) round_to(p.value, dt);
    Tensor rx = clone(x), rctx = clone(ctx), rdy = clone(dy);
    round_to(rx, dt);
    round_to(rctx, dt);
    round_to(rdy, dt);
    ref.params().enable_grads(true);
    Tensor ry = ref.forward(rx, t, rctx, true);
    Tensor rdctx = Tensor::zeros(ctx.shape());
    ref.backward(rdy, &rdctx);

    // The same network on the GPU in dt, checkpointed (recomputes each block in the backward).
    nn::UNet dev(cfg, dt, Device::cuda);
    upload_params(dev.params(), ref.params(), dt);
    dev.set_checkpointing(true);
    Tensor y = dev.forward(upload(x, dt), t, upload(ctx, dt), true);
    Tensor dctx = Tensor::empty(ctx.shape(), dt, Device::cuda);
    ops::fill(dctx, 0.0);
    dev.backward(upload(dy, dt), &dctx);

    const double tol = net_rtol(dt);
    expect_rel(diff(y, ry), tol, 0.0, tag(dt) + "tiny UNet output");
    expect_rel(diff(dctx, rdctx), tol, 0.0, tag(dt) + "tiny UNet d context");
    expect_grads_close(dev.params(), ref.params(), dt, tag(dt) + "tiny UNet");
  }
}

DBT_TEST(cuda_clip_text_forward_backward_matches_cpu) {
  nn::ClipTextConfig cfg;
  cfg.vocab_size = 100;
  cfg.hidden_size = 64;
  cfg.intermediate_size = 128;
  cfg.max_positions = 77;
  cfg.num_layers = 3;
  cfg.num_heads = 2;
  Tensor ids = Tensor::empty({2, 77}, DType::i32);
  for (int i = 0; i < 2 * 77; i++) ids.data<int32_t>()[i] = (i * 37 + 11) % 100;
  Tensor dy = rnd({2, 77, 64}, 5);
  for (DType dt : float_types()) {
    nn::ClipTextEncoder ref(cfg);
    randomize_params(ref.params(), 200);
    for (nn::Param& p : ref.params().all()) round_to(p.value, dt);
    Tensor rdy = clone(dy);
    round_to(rdy, dt);
    ref.params().enable_grads(true);
    Tensor ry = ref.forward(ids, 2, true);
    ref.backward(rdy);

    nn::ClipTextEncoder dev(cfg, dt, Device::cuda);
    upload_params(dev.params(), ref.params(), dt);
    dev.set_checkpointing(true);
    Tensor y = dev.forward(ids, 2, true);  // ids on the CPU: copied to the device
    dev.backward(upload(dy, dt));
    expect_rel(diff(y, ry), net_rtol(dt), 0.0, tag(dt) + "CLIP text output");
    expect_grads_close(dev.params(), ref.params(), dt, tag(dt) + "CLIP text");
  }
}
