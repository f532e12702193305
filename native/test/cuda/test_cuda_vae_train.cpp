// The tiny-arch VAE (src/model/arch.ts TINY_ARCH: ch 32, ch_mult [1, 2], one res block, 32 groups) encode and
// decode on the GPU against the CPU, and a tiny-arch UNet training step as the trainer runs it in mixed
// precision: f32 master weights cast to the compute dtype, forward, MSE loss (static loss scale 1024),
// backward, gradients unscaled inside AdamW on the f32 masters. Two steps; losses and weight changes compared.
// Also: a head dim over the CUDA kernels' 256 refuses a backward or several heads by name.
// Same tolerances as the other network tests (relative L2: f32 1e-4, f16 1e-2, bf16 4e-2).
#include <cmath>
#include <vector>

#include "cuda_util.h"
#include "net_util.h"
#include "nn/attention.h"
#include "nn/unet.h"
#include "nn/vae.h"
#include "nn_util.h"
#include "ops/ops.h"

using namespace dbt;
using namespace dbt::test;
using namespace dbt::test::cu;

namespace {

nn::VaeConfig tiny_vae() {
  nn::VaeConfig c;
  c.ch = 32;
  c.ch_mult = {1, 2};
  c.num_res_blocks = 1;
  return c;
}

// Tiny: mid-block attention head dim 64 (the flash kernels). Wide: ch 256, so the middle has SD1.5's 512
// channels, over the CUDA kernels' 256: the materialised-scores path (nn/attention.cpp).
void check_vae(const nn::VaeConfig& cfg, const Shape& img_shape, const std::string& what, uint64_t seed) {
  const int64_t f = int64_t(1) << (cfg.ch_mult.size() - 1);
  Tensor img = rnd(img_shape, seed), z = rnd({img_shape[0], 4, img_shape[2] / f, img_shape[3] / f}, seed + 1);
  for (DType dt : mma_types()) {
    nn::Vae ref(cfg);
    randomize_params(ref.params(), seed + 100);
    for (nn::Param& p : ref.params().all()) round_to(p.value, dt);
    Tensor rimg = clone(img), rz = clone(z);
    round_to(rimg, dt);
    round_to(rz, dt);
    Tensor rmean, rlogvar;
    ref.encode(rimg, rmean, rlogvar);
    Tensor rdec = ref.decode(rz);

    nn::Vae dev(cfg, dt, Device::cuda);
    auto& dp = dev.params().all();
    auto& rp = ref.params().all();
    for (size_t i = 0; i < dp.size(); i++) dp[i].value = upload(rp[i].value, dt);
    Tensor mean, logvar;
    dev.encode(upload(img, dt), mean, logvar);
    Tensor dec = dev.decode(upload(z, dt));
    EXPECT_TRUE(mean.device() == Device::cuda && logvar.device() == Device::cuda && dec.device() == Device::cuda,
                "VAE outputs stay on the GPU");
    const double tol = net_rtol(dt);
    expect_rel(diff(mean, rmean), tol, 0.0, tag(dt) + what + " posterior mean");
    expect_rel(diff(logvar, rlogvar), tol, 0.0, tag(dt) + what + " posterior logvar");
    expect_rel(diff(dec, rdec), tol, 0.0, tag(dt) + what + " decode");
  }
}

}  // namespace

DBT_TEST(cuda_vae_tiny_encode_decode_matches_cpu) {
  // 32x32 images -> 16x16 latents (the downsample's asymmetric padding, mid-block attention over 256 tokens).
  check_vae(tiny_vae(), {2, 3, 32, 32}, "tiny VAE", 31);
}

DBT_TEST(cuda_vae_wide_attention_encode_decode_matches_cpu) {
  nn::VaeConfig cfg = tiny_vae();
  cfg.ch = 256;
  check_vae(cfg, {1, 3, 16, 16}, "VAE with 512-channel middle", 41);
}

DBT_TEST(cuda_attention_wide_head_refuses_what_it_cannot_do) {
  // Head dim 512 on the GPU: forward without saving works (above); saving for a backward, or several heads,
  // is refused by name rather than failing inside the kernels.
  const char* const names[4] = {"q", "k", "v", "o"};
  for (int heads : {1, 2}) {
    nn::ParamSet ps(DType::f32, Device::cuda);
    nn::MultiHeadAttention a;
    a.init(ps, "wide", 512 * heads, 512 * heads, heads, true, names, false);
    Tensor x = upload(rnd({1, 8, 512 * heads}, 80), DType::f32);
    if (heads == 1) {
      Tensor y = a.forward(x, nullptr, false);
      EXPECT_TRUE(y.device() == Device::cuda && y.dim(2) == 512, "single head, forward only: runs");
    }
    expect_throws<Error>([&] { a.forward(x, nullptr, true); }, "head dim 512 > 256",
                         "head dim 512, " + std::to_string(heads) + " head(s), saved");
  }
}

DBT_TEST(cuda_vae_logvar_clamped_on_gpu) {
  // quant_conv's bias pushed far out: every logvar lands on a clamp bound, on both devices.
  const nn::VaeConfig cfg = tiny_vae();
  nn::Vae ref(cfg);
  randomize_params(ref.params(), 400);
  nn::Param* qb = ref.params().find("first_stage_model.quant_conv.bias");
  EXPECT_TRUE(qb != nullptr, "quant_conv.bias registered");
  for (int64_t c = 4; c < 8; c++) qb->value.data<float>()[c] = c % 2 ? 500.0f : -500.0f;
  Tensor img = rnd({1, 3, 16, 16}, 33), rmean, rlogvar;
  ref.encode(img, rmean, rlogvar);
  nn::Vae dev(cfg, DType::f32, Device::cuda);
  auto& dp = dev.params().all();
  for (size_t i = 0; i < dp.size(); i++) dp[i].value = upload(ref.params().all()[i].value, DType::f32);
  Tensor mean, logvar;
  dev.encode(upload(img, DType::f32), mean, logvar);
  Tensor got = download(logvar);
  for (int64_t i = 0; i < got.numel(); i++) {
    EXPECT_TRUE(get(got, i) == get(rlogvar, i), "GPU logvar equals the CPU's");
    EXPECT_TRUE(get(got, i) == ((i / 64) % 2 ? 20.0 : -30.0), "logvar on its clamp bound");
  }
}

namespace {

constexpr double kLossScale = 1024.0;
constexpr int kSteps = 2;

struct StepData {
  Tensor x, target, t;
};
std::vector<StepData> step_data() {
  std::vector<StepData> d;
  for (int s = 0; s < kSteps; s++) {
    Tensor t = Tensor::empty({2});
    t.data<float>()[0] = 50.0f + 400.0f * float(s);
    t.data<float>()[1] = 900.0f - 300.0f * float(s);
    d.push_back({rnd({2, 4, 16, 16}, 60 + s), rnd({2, 4, 16, 16}, 70 + s), t});
  }
  return d;
}

// AdamW hyper-parameters for step s. eps is large (10x the rms of the reference's first gradients) so each
// update is a smooth function of the gradient: with eps ~ 0 the first Adam step is lr * sign(g), and a
// gradient within rounding of zero would flip a whole-lr step. Decay off: it is exact on identical f32
// masters and the comparison should see only the gradient path.
ops::AdamWParams hparams(int s, double eps) {
  ops::AdamWParams hp;
  hp.lr = 0.05;
  hp.eps = eps;
  hp.weight_decay = 0.0;
  hp.step = s + 1;
  hp.grad_scale = 1.0 / kLossScale;
  return hp;
}

Tensor scalar_on(double v, DType dt, Device d) {
  Tensor t = Tensor::empty({1}, dt, d);
  ops::fill(t, v);
  return t;
}

}  // namespace

DBT_TEST(cuda_unet_tiny_train_step_matches_cpu) {
  const nn::UNetConfig cfg = tiny_unet();
  Tensor ctx = rnd({2, 77, 32}, 50);
  const std::vector<StepData> data = step_data();
  for (DType dt : mma_types()) {
    // CPU reference in f32 (weights start rounded to dt: the GPU's first compute copy equals them).
    nn::UNet ref(cfg);
    randomize_params(ref.params(), 500);
    for (nn::Param& p : ref.params().all()) round_to(p.value, dt);
    auto& rp = ref.params().all();
    std::vector<Tensor> start, rm, rv;
    for (nn::Param& p : rp) {
      start.push_back(clone(p.value));
      rm.push_back(Tensor::zeros(p.value.shape()));
      rv.push_back(Tensor::zeros(p.value.shape()));
    }
    ref.params().enable_grads(true);
    Tensor rctx = clone(ctx);
    round_to(rctx, dt);
    double eps = 0.0;
    std::vector<double> rloss;
    for (int s = 0; s < kSteps; s++) {
      Tensor x = clone(data[s].x), target = clone(data[s].target);
      round_to(x, dt);
      round_to(target, dt);
      ref.params().zero_grads();
      Tensor y = ref.forward(x, data[s].t, rctx, true);
      Tensor loss = Tensor::empty({1}), dy = Tensor::empty(y.shape());
      ops::mse_loss_forward(y, target, nullptr, loss, nullptr);
      ops::mse_loss_backward(y, target, nullptr, scalar_on(kLossScale, DType::f32, Device::cpu), dy);
      ref.backward(dy, nullptr);
      rloss.push_back(get(loss, 0));
      if (s == 0) {
        double ss = 0;
        int64_t n = 0;
        for (nn::Param& p : rp) {
          for (int64_t i = 0; i < p.grad.numel(); i++) ss += get(p.grad, i) * get(p.grad, i);
          n += p.grad.numel();
        }
        eps = 10.0 * std::sqrt(ss / double(n)) / kLossScale;
        EXPECT_TRUE(eps > 0.0, "reference gradients not all zero");
      }
      for (size_t i = 0; i < rp.size(); i++) ops::adamw_update(rp[i].value, rp[i].grad, rm[i], rv[i], hparams(s, eps));
    }

    // GPU: f32 masters and moments; the model's weights are the masters cast to dt before every step.
    nn::UNet dev(cfg, dt, Device::cuda);
    dev.set_checkpointing(true);
    dev.params().enable_grads(true);
    auto& dp = dev.params().all();
    std::vector<Tensor> master, m, v, g32;
    for (size_t i = 0; i < dp.size(); i++) {
      master.push_back(upload(start[i], DType::f32));
      m.push_back(Tensor::empty(start[i].shape(), DType::f32, Device::cuda));
      ops::fill(m.back(), 0.0);
      v.push_back(Tensor::empty(start[i].shape(), DType::f32, Device::cuda));
      ops::fill(v.back(), 0.0);
      g32.push_back(Tensor::empty(start[i].shape(), DType::f32, Device::cuda));
    }
    Tensor dctx = upload(ctx, dt), dloss = scalar_on(kLossScale, dt, Device::cuda);
    for (int s = 0; s < kSteps; s++) {
      for (size_t i = 0; i < dp.size(); i++) ops::cast(master[i], dp[i].value);
      dev.params().zero_grads();
      Tensor target = upload(data[s].target, dt);
      Tensor y = dev.forward(upload(data[s].x, dt), data[s].t, dctx, true);
      Tensor loss = Tensor::empty({1}, dt, Device::cuda), dy = Tensor::empty(y.shape(), dt, Device::cuda);
      ops::mse_loss_forward(y, target, nullptr, loss, nullptr);
      ops::mse_loss_backward(y, target, nullptr, dloss, dy);
      dev.backward(dy, nullptr);
      for (size_t i = 0; i < dp.size(); i++) {
        ops::cast(dp[i].grad, g32[i]);
        ops::adamw_update(master[i], g32[i], m[i], v[i], hparams(s, eps));
      }
      const double got = get(download(loss), 0);
      const double tol = net_rtol(dt);
      if (!(std::abs(got - rloss[s]) <= tol * std::abs(rloss[s])))
        throw TestFailure(tag(dt) + "train step " + std::to_string(s + 1) + " loss " + std::to_string(got) +
                          " vs CPU " + std::to_string(rloss[s]));
    }

    // Weight changes (master - start) against the CPU's: all together within twice the network tolerance
    // (two steps), each tensor within 3x that with an rms floor.
    const double tol = 2 * net_rtol(dt);
    std::vector<Norms> per(dp.size());
    Norms all;
    for (size_t i = 0; i < dp.size(); i++) {
      Tensor got = download(master[i]);
      Norms& d = per[i];
      d.n = got.numel();
      for (int64_t j = 0; j < d.n; j++) {
        const double s0 = get(start[i], j), want = get(rp[i].value, j) - s0, e = (get(got, j) - s0) - want;
        if (!std::isfinite(get(got, j))) d.err2 = INFINITY;
        d.err2 += e * e;
        d.ref2 += want * want;
      }
      all.err2 += d.err2;
      all.ref2 += d.ref2;
      all.n += d.n;
    }
    EXPECT_TRUE(all.ref2 > 0.0, "the reference step changed the weights");
    expect_rel(all, tol, 0.0, tag(dt) + "tiny UNet train step: weight changes (all)");
    const double ms = all.ref2 / double(all.n);
    for (size_t i = 0; i < dp.size(); i++)
      expect_rel(per[i], 3 * tol, ms * double(per[i].n), tag(dt) + "tiny UNet train step: change of " + dp[i].key);
  }
}
