// The CLIP text transformer of SD1.x (HF CLIPTextModel under `cond_stage_model.transformer.text_model.`):
// token + position embeddings, pre-LayerNorm layers with causal self-attention and a quick_gelu MLP,
// final LayerNorm. clip_skip k (the web UIs' "Clip skip"): run the first num_layers - (k - 1) layers,
// then the final LayerNorm (k = 1: the normal output).
#pragma once
#include <vector>

#include "nn/attention.h"
#include "nn/layers.h"
#include "nn/param.h"

namespace dbt::nn {

struct ClipTextConfig {
  int64_t vocab_size = 49408, hidden_size = 768, intermediate_size = 3072, max_positions = 77;
  int num_layers = 12, num_heads = 12;
  float layer_norm_eps = 1e-5f;
};

class ClipTextEncoder {
 public:
  // Parameters are allocated (zeroed) on `device`; token ids may be given on the CPU.
  explicit ClipTextEncoder(const ClipTextConfig& cfg, DType dtype = DType::f32, Device device = Device::cpu);
  ParamSet& params() { return params_; }
  const ClipTextConfig& config() const { return cfg_; }
  void set_checkpointing(bool on) { checkpointing_ = on; }

  // ids i32 [B, S] (S <= max_positions) -> [B, S, hidden]. Throws Error for a bad clip_skip or token id.
  Tensor forward(const Tensor& ids, int clip_skip, bool save);
  // After forward(save = true): accumulates parameter gradients (fused gradients: steps each parameter as
  // it completes, then those of layers past clip_skip with zero gradients); releases what forward saved.
  void backward(const Tensor& dy);

 private:
  struct Layer {
    LayerNorm ln1, ln2;
    MultiHeadAttention attn;
    Linear fc1, fc2;
    Act act;
    Tensor input;  // checkpointing
    bool recompute = false;
    Tensor forward(const Tensor& x, bool save);
    Tensor backward(const Tensor& dy);
  };

  ClipTextConfig cfg_;
  ParamSet params_;
  Param* tok_ = nullptr;
  Param* pos_ = nullptr;
  std::vector<Layer> layers_;
  LayerNorm final_;
  bool checkpointing_ = false;
  Tensor ids_;
  int used_layers_ = 0;
};

}  // namespace dbt::nn
