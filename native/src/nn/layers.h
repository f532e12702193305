// Leaf layers of the SD1.x networks. Each owns Param pointers into its network's ParamSet, a forward
// that (when `save`) keeps what its backward needs, and a backward that writes the input gradient,
// accumulates parameter gradients (when enabled), signals them ready (fused gradients: the optimizer steps
// them there, so a backward must not read its parameters after the signal) and releases what forward saved.
#pragma once
#include <string>

#include "core/tensor.h"
#include "nn/param.h"
#include "ops/activation.h"
#include "ops/conv2d.h"
#include "ops/norm.h"

namespace dbt::nn {

// y = x W^T + b over the last dim. `conv1x1`: the checkpoint stores W as [out, in, 1, 1] (SD1's proj_in,
// proj_out and the VAE attention's q/k/v/proj_out), applied here to token sequences.
struct Linear {
  Param* w = nullptr;
  Param* b = nullptr;
  int64_t in = 0, out = 0;
  Tensor x_;

  void init(ParamSet& ps, const std::string& key, int64_t in, int64_t out, bool bias = true, bool conv1x1 = false);
  Tensor forward(const Tensor& x, bool save);
  Tensor backward(const Tensor& dy, bool want_dx = true);
};

struct Conv2d {
  Param* w = nullptr;
  Param* b = nullptr;
  int64_t cin = 0, cout = 0, k = 0;
  ops::Conv2dParams p;
  Tensor x_;

  void init(ParamSet& ps, const std::string& key, int64_t cin, int64_t cout, int64_t k, ops::Conv2dParams p);
  Tensor forward(const Tensor& x, bool save);
  Tensor backward(const Tensor& dy, bool want_dx = true);
};

// GroupNorm with an optional fused SiLU (the norm -> SiLU pairs of ResBlocks and output heads).
struct GroupNorm {
  Param* gamma = nullptr;
  Param* beta = nullptr;
  ops::GroupNormParams p;
  Tensor x_, mean_, rstd_;

  void init(ParamSet& ps, const std::string& key, int64_t channels, int groups, float eps, bool silu);
  Tensor forward(const Tensor& x, bool save);
  Tensor backward(const Tensor& dy);
};

struct LayerNorm {
  Param* gamma = nullptr;
  Param* beta = nullptr;
  float eps = 1e-5f;
  Tensor x_, mean_, rstd_;

  void init(ParamSet& ps, const std::string& key, int64_t dim, float eps);
  Tensor forward(const Tensor& x, bool save);
  Tensor backward(const Tensor& dy);
};

struct Act {
  ops::Activation a = ops::Activation::silu;
  Tensor x_;

  Tensor forward(const Tensor& x, bool save);
  Tensor backward(const Tensor& dy);
};

// New tensor of x's shape and dtype on x's device (contents undefined).
Tensor empty_like(const Tensor& x);
// y = a + b (broadcasting b), a new tensor.
Tensor add(const Tensor& a, const Tensor& b);
// acc += x (same shape).
void accumulate(Tensor& acc, const Tensor& x);

}  // namespace dbt::nn
