// The SD1.5 UNet (860 M parameters, random weights, bf16) at 512x512 (64x64 latents), 77-token context:
//   train:  forward (saving, per-block checkpointing) + backward into parameter gradients, batch 2
//           (instance + class image); no optimizer step (timed separately once the fused AdamW lands)
//   sample: one classifier-free-guidance step: forward of the batch [uncond, cond] (nothing saved) and
//           eps = u + 7.5 (c - u)
// A missing CUDA op makes the case fail with that op's error; the other cases still run.
#include <cmath>
#include <cstdio>
#include <memory>

#include "bench_cuda.h"
#include "nn/unet.h"
#include "ops/ops.h"

namespace dbt::bench::cuda {
namespace {

const DType kDt = DType::bf16;

// Weights uniform in +-sqrt(3 / fan_in) (norm gains near 1), generated on the host tensor by tensor.
std::shared_ptr<nn::UNet> make_unet() {
  auto u = std::make_shared<nn::UNet>(nn::UNetConfig{}, kDt, Device::cuda);
  uint64_t seed = 1;
  for (nn::Param& p : u->params().all()) {
    const Shape& s = p.value.shape();
    if (s.ndim() >= 2) {
      p.value = device_random(s, kDt, seed++, float(std::sqrt(3.0 / double(s.prod(1, s.ndim())))));
    } else if (p.key.size() >= 7 && p.key.compare(p.key.size() - 7, 7, ".weight") == 0) {
      ops::fill(p.value, 1.0);
    } else {
      p.value = device_random(s, kDt, seed++, 0.1f);
    }
  }
  return u;
}

Tensor timesteps(int n) {
  Tensor t = Tensor::empty({n});
  for (int i = 0; i < n; i++) t.data<float>()[i] = 100.0f + 600.0f * float(i);
  return t;
}

struct Cases {
  Cases() {
    Registrar train(Case{"unet sd15 train step b2 64x64 ckpt (fwd+bwd)",
                         "{\"kind\":\"unet_train\",\"batch\":2,\"latent\":64,\"checkpointing\":true,\"dtype\":\"bf16\"}",
                         0.0, [] {
                           auto u = make_unet();
                           u->set_checkpointing(true);
                           u->params().enable_grads(true);
                           Tensor x = device_random({2, 4, 64, 64}, kDt, 11), ctx = device_random({2, 77, 768}, kDt, 12);
                           Tensor dy = device_random({2, 4, 64, 64}, kDt, 13, 0.01f), t = timesteps(2);
                           return std::function<void()>([=]() mutable {
                             u->forward(x, t, ctx, true);
                             u->backward(dy, nullptr);
                           });
                         }});
    Registrar sample(Case{"unet sd15 sample step cfg b1 64x64",
                          "{\"kind\":\"unet_sample\",\"batch\":1,\"latent\":64,\"cfg\":7.5,\"dtype\":\"bf16\"}",
                          0.0, [] {
                            auto u = make_unet();
                            Tensor x = device_random({2, 4, 64, 64}, kDt, 21), ctx = device_random({2, 77, 768}, kDt, 22);
                            Tensor t = timesteps(1);
                            Tensor tt = Tensor::empty({2});
                            tt.data<float>()[0] = tt.data<float>()[1] = t.data<float>()[0];
                            Tensor eps = Tensor::empty({1, 4, 64, 64}, kDt, Device::cuda);
                            return std::function<void()>([=]() mutable {
                              Tensor y = u->forward(x, tt, ctx, false);
                              Tensor un = y.slice(0, 1), co = y.slice(1, 2);
                              ops::copy(un, eps);
                              ops::axpby(7.5f, co, 1.0f, eps);
                              ops::axpby(-7.5f, un, 1.0f, eps);
                            });
                          }});
  }
} g_cases;

}  // namespace
}  // namespace dbt::bench::cuda
