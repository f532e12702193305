// Shared helpers of the nn module tests: random parameters, finite-difference checks of a module's
// backward (full for small tensors, directional for whole networks).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "harness.h"
#include "nn/clip.h"
#include "nn/param.h"
#include "nn/unet.h"

namespace dbt::test {

// The tiny UNet of src/model/arch.ts TINY_ARCH (what every test and the demo use).
inline nn::UNetConfig tiny_unet() {
  nn::UNetConfig c;
  c.model_channels = 32;
  c.channel_mult = {1, 2};
  c.num_res_blocks = 1;
  c.attention_resolutions = {1, 2};
  c.num_heads = 2;
  c.context_dim = 32;
  return c;
}

// A small CLIP text encoder config for tests.
inline nn::ClipTextConfig tiny_clip(int64_t vocab, int64_t hidden, int64_t intermediate, int64_t positions,
                                    int layers, int heads) {
  nn::ClipTextConfig c;
  c.vocab_size = vocab;
  c.hidden_size = hidden;
  c.intermediate_size = intermediate;
  c.max_positions = positions;
  c.num_layers = layers;
  c.num_heads = heads;
  return c;
}

// Every parameter uniform in [-a, a) with a = sqrt(3 / fan_in) (norm gains 1 ± 0.2, biases ± 0.2).
void randomize_params(nn::ParamSet& ps, uint64_t seed);

struct GradInput {
  std::string name;
  Tensor* value;     // f64, perturbed by the finite differences
  Tensor* analytic;  // gradient the backward produced
};

// Runs fwd(save=true) then bwd(r) with a random r, then compares every parameter gradient and every
// input's gradient to central finite differences of loss = <fwd(save=false), r>. Full: every element.
void check_grads_full(const std::string& what, const std::function<Tensor(bool)>& fwd,
                      const std::function<void(const Tensor&)>& bwd, nn::ParamSet& ps,
                      const std::vector<GradInput>& inputs, double rtol = 1e-6);

// Same, but one random direction per parameter tensor (and per input): (L(θ+hv) − L(θ−hv)) / 2h vs <g, v>.
// `every`: check every k-th parameter tensor (plus one direction over all parameters at once).
void check_grads_directional(const std::string& what, const std::function<Tensor(bool)>& fwd,
                             const std::function<void(const Tensor&)>& bwd, nn::ParamSet& ps,
                             const std::vector<GradInput>& inputs, int every = 1, double rtol = 1e-6);

}  // namespace dbt::test
