// The SD1.5 UNet (860 M parameters, random weights, bf16) at 512x512 (64x64 latents), 77-token context:
//   train:  zeroed gradients, forward (saving, per-block checkpointing), backward into parameter gradients,
//           8-bit AdamW over all parameters (multi-tensor launches, block 2048); batch 2 (instance + class);
//           "fused": the 8-bit AdamW step inside backward per parameter (nn/param.h), gradients never all alive
//   sample: one classifier-free-guidance step: forward of the batch [uncond, cond] (nothing saved) and
//           eps = u + 7.5 (c - u)
// A missing CUDA op makes the case fail with that op's error; the other cases still run.
#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

#include "bench_cuda.h"
#include "nn/adamw.h"
#include "nn/unet.h"
#include "ops/ops.h"

namespace dbt::bench::cuda {
namespace {

const DType kDt = DType::bf16;

std::shared_ptr<nn::UNet> make_unet() {
  auto u = std::make_shared<nn::UNet>(nn::UNetConfig{}, kDt, Device::cuda);
  randomize_params(u->params(), kDt, 1);
  return u;
}

Tensor timesteps(int n) {
  Tensor t = Tensor::empty({n});
  for (int i = 0; i < n; i++) t.data<float>()[i] = 100.0f + 600.0f * float(i);
  return t;
}

struct Cases {
  Cases() {
    for (bool fused : {false, true})
      Registrar train(Case{std::string("unet sd15 train step b2 64x64 ckpt adamw8bit") + (fused ? " fused" : ""),
                           std::string("{\"kind\":\"") + (fused ? "unet_train_fused" : "unet_train") +
                               "\",\"batch\":2,\"latent\":64,\"checkpointing\":true,\"optimizer\":\"adamw8bit\","
                               "\"dtype\":\"bf16\"}",
                           0.0, [fused] {
                             struct State {
                               std::shared_ptr<nn::UNet> u;
                               std::unique_ptr<nn::AdamW> opt;
                               int64_t step = 0;
                             };
                             auto st = std::make_shared<State>();
                             st->u = make_unet();
                             st->u->set_checkpointing(true);
                             st->opt = std::make_unique<nn::AdamW>(st->u->params(), true, 2048);
                             if (fused) st->opt->fuse();
                             else st->u->params().enable_grads(true);
                             Tensor x = device_random({2, 4, 64, 64}, kDt, 11), ctx = device_random({2, 77, 768}, kDt, 12);
                             Tensor dy = device_random({2, 4, 64, 64}, kDt, 13, 0.01f), t = timesteps(2);
                             return std::function<void()>([=]() mutable {
                               st->opt->hparams().step = ++st->step;
                               if (!fused) st->u->params().zero_grads();
                               st->u->forward(x, t, ctx, true);
                               st->u->backward(dy, nullptr);
                               if (!fused) st->opt->step_all();
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
