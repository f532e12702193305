// The SD1.x VAE (LDM AutoencoderKL, `first_stage_model.`): Encoder -> quant_conv -> posterior moments;
// post_quant_conv -> Decoder. GroupNorm eps 1e-6 everywhere; attention only in the middle blocks
// (single head, 1x1-conv q/k/v); Downsample pads (0, 1, 0, 1) then a stride-2 conv without padding.
// Forward only (the VAE is frozen in training); intermediates are freed as the pass goes.
#pragma once
#include <vector>

#include "nn/attention.h"
#include "nn/layers.h"
#include "nn/param.h"

namespace dbt::nn {

struct VaeConfig {
  int64_t in_channels = 3, out_ch = 3, ch = 128, z_channels = 4, embed_dim = 4;
  std::vector<int> ch_mult{1, 2, 4, 4};
  int num_res_blocks = 2;
  bool double_z = true;
  int num_groups = 32;
};

class Vae {
 public:
  // Parameters are allocated (zeroed) on `device`; inputs must be there too (every intermediate follows them).
  explicit Vae(const VaeConfig& cfg, DType dtype = DType::f32, Device device = Device::cpu);
  ParamSet& params() { return params_; }
  const VaeConfig& config() const { return cfg_; }

  // img [N, in_channels, H, W] -> mean, logvar [N, embed_dim, h, w] (logvar clamped to [-30, 20]).
  void encode(const Tensor& img, Tensor& mean, Tensor& logvar);
  // Unscaled latent z [N, embed_dim, h, w] -> image [N, out_ch, H, W].
  Tensor decode(const Tensor& z);

 private:
  struct Resnet {
    GroupNorm norm1, norm2;
    Conv2d conv1, conv2, nin;
    bool has_nin = false;
    void init(ParamSet& ps, const std::string& key, int64_t cin, int64_t cout, int groups);
    Tensor forward(const Tensor& x);
  };
  struct AttnBlock {
    GroupNorm norm;
    MultiHeadAttention attn;
    void init(ParamSet& ps, const std::string& key, int64_t ch, int groups);
    Tensor forward(const Tensor& x);
  };
  struct Mid {
    Resnet block_1, block_2;
    AttnBlock attn_1;
    void init(ParamSet& ps, const std::string& key, int64_t ch, int groups);
    Tensor forward(const Tensor& x);
  };

  VaeConfig cfg_;
  ParamSet params_;
  // encoder
  Conv2d enc_in_, enc_out_, quant_;
  std::vector<std::vector<Resnet>> down_;
  std::vector<Conv2d> downsample_;
  Mid enc_mid_;
  GroupNorm enc_norm_;
  // decoder
  Conv2d post_quant_, dec_in_, dec_out_;
  Mid dec_mid_;
  std::vector<std::vector<Resnet>> up_;  // up_[level], level 0 = full resolution
  std::vector<Conv2d> upsample_;         // upsample_[level] for level > 0
  GroupNorm dec_norm_;
};

}  // namespace dbt::nn
