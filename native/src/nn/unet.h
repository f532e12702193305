// The SD1.x UNet (LDM openaimodel.UNetModel with use_spatial_transformer, legacy head split), built from a
// config detected from checkpoint shapes, parameters under `model.diffusion_model.`.
#pragma once
#include <memory>
#include <vector>

#include "nn/layers.h"
#include "nn/param.h"
#include "nn/unet_blocks.h"

namespace dbt::nn {

struct UNetConfig {
  int64_t in_channels = 4, out_channels = 4, model_channels = 320;
  std::vector<int> channel_mult{1, 2, 4, 4};
  int num_res_blocks = 2;
  std::vector<int> attention_resolutions{4, 2, 1};  // downsampling factors that get a SpatialTransformer
  int num_heads = 8;                                // dim_head = channels / num_heads
  int transformer_depth = 1;
  int64_t context_dim = 768;
  int num_groups = 32;
};

class UNet {
 public:
  // Parameters are allocated (zeroed) on `device`.
  explicit UNet(const UNetConfig& cfg, DType dtype = DType::f32, Device device = Device::cpu);
  ParamSet& params() { return params_; }
  const UNetConfig& config() const { return cfg_; }

  // Per-block gradient checkpointing (ResBlocks and SpatialTransformers keep only their input).
  void set_checkpointing(bool on) { checkpointing_ = on; }
  bool checkpointing() const { return checkpointing_; }

  // x [N, in, H, W] (H, W divisible by 2^(levels-1)), t f32 [N], context [N, L, context_dim] -> eps [N, out, H, W].
  // save: keep what backward needs (training); otherwise intermediates are freed as the pass goes.
  Tensor forward(const Tensor& x, const Tensor& t, const Tensor& context, bool save);
  // After forward(save = true): accumulates parameter gradients (when enabled; fused gradients: each
  // parameter is stepped and its gradient freed as soon as it is complete, see param.h) and, if dcontext is
  // given, the context gradient into it ([N, L, context_dim], caller-zeroed). Releases everything forward saved.
  void backward(const Tensor& dy, Tensor* dcontext);

 private:
  struct Slot {
    std::unique_ptr<UNetLayer> layer;
    Tensor input;  // kept instead of activations when checkpointed
    bool recompute = false;
  };
  using Block = std::vector<Slot>;

  Tensor run_block(Block& b, Tensor h, bool save);
  Tensor back_block(Block& b, Tensor dy, Tensor& demb_act, Tensor* dctx, bool want_dx);

  UNetConfig cfg_;
  ParamSet params_;
  bool checkpointing_ = false;
  Linear time1_, time2_;
  Act time_act_, emb_act_;
  std::vector<Block> input_, output_;
  Block middle_;
  std::vector<int64_t> skip_channels_;  // channels of each input block's output
  GroupNorm out_norm_;
  Conv2d out_conv_;
  // forward state
  Tensor emb_act_out_, ctx_;
  int levels_ = 0;
};

}  // namespace dbt::nn
