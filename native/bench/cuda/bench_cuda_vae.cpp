// The SD1.5 VAE decoder (ch 128, ch_mult 1/2/4/4, two res blocks per level + one in the decoder, 512-channel
// middle with single-head attention over 4096 tokens), random bf16 weights: one decode of a 64x64 latent to a
// 512x512 image, batch 1 (what sampling does once per image). scripts/torch_ref/vae_torch.py is the same
// decoder in plain PyTorch.
#include <cmath>
#include <memory>

#include "bench_cuda.h"
#include "nn/vae.h"
#include "ops/ops.h"

namespace dbt::bench::cuda {
namespace {

const DType kDt = DType::bf16;

std::shared_ptr<nn::Vae> make_vae() {
  auto v = std::make_shared<nn::Vae>(nn::VaeConfig{}, kDt, Device::cuda);
  randomize_params(v->params(), kDt, 1000);
  return v;
}

struct Cases {
  Cases() {
    Registrar decode(Case{"vae sd15 decode b1 64x64 -> 512x512",
                          "{\"kind\":\"vae_decode\",\"batch\":1,\"latent\":64,\"dtype\":\"bf16\"}", 0.0, [] {
                            auto v = make_vae();
                            Tensor z = device_random({1, 4, 64, 64}, kDt, 31);
                            return std::function<void()>([=]() { v->decode(z); });
                          }});
  }
} g_cases;

}  // namespace
}  // namespace dbt::bench::cuda
