// The blocks of LDM's openaimodel.UNetModel for SD1.x: ResBlock (timestep injection, 1x1 skip conv when
// channels change), SpatialTransformer (GroupNorm eps 1e-6, 1x1 proj_in/proj_out, BasicTransformerBlocks
// with self-attention, cross-attention on the text context and a GEGLU feed-forward), Downsample
// (3x3 stride-2 conv, padding 1), Upsample (nearest 2x then 3x3 conv) and the input conv.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nn/attention.h"
#include "nn/layers.h"

namespace dbt::nn {

// One entry of a TimestepEmbedSequential. emb_act = silu(time embedding) [N, 4*model_channels] (computed
// once by the UNet), ctx = text context [N, L, context_dim].
class UNetLayer {
 public:
  virtual ~UNetLayer() = default;
  virtual Tensor forward(const Tensor& x, const Tensor& emb_act, const Tensor& ctx, bool save) = 0;
  // Returns dx (undefined when !want_dx); accumulates into demb_act and, if not null, *dctx.
  virtual Tensor backward(const Tensor& dy, Tensor& demb_act, Tensor* dctx, bool want_dx) = 0;
  // Worth recomputing in backward instead of keeping activations (gradient checkpointing).
  virtual bool checkpointable() const { return false; }
};

class ResBlock : public UNetLayer {
 public:
  ResBlock(ParamSet& ps, const std::string& key, int64_t cin, int64_t cout, int64_t temb, int groups);
  Tensor forward(const Tensor& x, const Tensor& emb_act, const Tensor& ctx, bool save) override;
  Tensor backward(const Tensor& dy, Tensor& demb_act, Tensor* dctx, bool want_dx) override;
  bool checkpointable() const override { return true; }

 private:
  int64_t cin_, cout_;
  GroupNorm in_norm_, out_norm_;  // in_layers.0 / out_layers.0, each followed by SiLU (fused)
  Conv2d in_conv_, out_conv_;     // in_layers.2 / out_layers.3
  Linear emb_;                    // emb_layers.1
  Conv2d skip_;                   // skip_connection (only when cin != cout)
};

class FeedForward {
 public:
  void init(ParamSet& ps, const std::string& key, int64_t dim);
  Tensor forward(const Tensor& x, bool save);
  Tensor backward(const Tensor& dy);

 private:
  Linear proj_, out_;  // net.0.proj (dim -> 8 dim, GEGLU), net.2 (4 dim -> dim)
  Tensor gate_in_;     // GEGLU input, saved
};

class TransformerBlock {
 public:
  void init(ParamSet& ps, const std::string& key, int64_t dim, int64_t ctx_dim, int heads);
  Tensor forward(const Tensor& x, const Tensor& ctx, bool save);
  Tensor backward(const Tensor& dy, Tensor* dctx);

 private:
  LayerNorm norm1_, norm2_, norm3_;
  MultiHeadAttention attn1_, attn2_;
  FeedForward ff_;
};

class SpatialTransformer : public UNetLayer {
 public:
  SpatialTransformer(ParamSet& ps, const std::string& key, int64_t ch, int heads, int depth, int64_t ctx_dim,
                     int groups);
  Tensor forward(const Tensor& x, const Tensor& emb_act, const Tensor& ctx, bool save) override;
  Tensor backward(const Tensor& dy, Tensor& demb_act, Tensor* dctx, bool want_dx) override;
  bool checkpointable() const override { return true; }

 private:
  GroupNorm norm_;
  Linear proj_in_, proj_out_;  // 1x1 convs in the checkpoint
  std::vector<TransformerBlock> blocks_;
  int64_t h_ = 0, w_ = 0;
};

// A plain convolution as a UNet layer: input_blocks.0.0, Downsample's `op`.
class ConvLayer : public UNetLayer {
 public:
  ConvLayer(ParamSet& ps, const std::string& key, int64_t cin, int64_t cout, int stride);
  Tensor forward(const Tensor& x, const Tensor& emb_act, const Tensor& ctx, bool save) override;
  Tensor backward(const Tensor& dy, Tensor& demb_act, Tensor* dctx, bool want_dx) override;

 private:
  Conv2d conv_;
};

class Upsample : public UNetLayer {
 public:
  Upsample(ParamSet& ps, const std::string& key, int64_t ch);
  Tensor forward(const Tensor& x, const Tensor& emb_act, const Tensor& ctx, bool save) override;
  Tensor backward(const Tensor& dy, Tensor& demb_act, Tensor* dctx, bool want_dx) override;

 private:
  Conv2d conv_;
};

}  // namespace dbt::nn
