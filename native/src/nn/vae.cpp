#include "nn/vae.h"

#include "nn/tensor_util.h"
#include "ops/elementwise.h"
#include "ops/shape_ops.h"

namespace dbt::nn {
namespace {
const std::string P = "first_stage_model.";
const float kEps = 1e-6f;
const ops::Conv2dParams k3 = ops::Conv2dParams::make(1, 1), k1 = ops::Conv2dParams::make(1, 0);
const char* const kVaeAttnNames[4] = {"q", "k", "v", "proj_out"};
}  // namespace

void Vae::Resnet::init(ParamSet& ps, const std::string& key, int64_t cin, int64_t cout, int groups) {
  norm1.init(ps, key + ".norm1", cin, groups, kEps, true);
  conv1.init(ps, key + ".conv1", cin, cout, 3, k3);
  norm2.init(ps, key + ".norm2", cout, groups, kEps, true);
  conv2.init(ps, key + ".conv2", cout, cout, 3, k3);
  has_nin = cin != cout;
  if (has_nin) nin.init(ps, key + ".nin_shortcut", cin, cout, 1, k1);
}

Tensor Vae::Resnet::forward(const Tensor& x) {
  Tensor h = conv2.forward(norm2.forward(conv1.forward(norm1.forward(x, false), false), false), false);
  ops::add(h, has_nin ? nin.forward(x, false) : x, h);
  return h;
}

void Vae::AttnBlock::init(ParamSet& ps, const std::string& key, int64_t ch, int groups) {
  norm.init(ps, key + ".norm", ch, groups, kEps, false);
  attn.init(ps, key, ch, ch, 1, true, kVaeAttnNames, false, true);
}

Tensor Vae::AttnBlock::forward(const Tensor& x) {
  Tensor a = attn.forward(to_tokens(norm.forward(x, false)), nullptr, false);
  Tensor y = from_tokens(a, x.dim(2), x.dim(3));
  ops::add(y, x, y);
  return y;
}

void Vae::Mid::init(ParamSet& ps, const std::string& key, int64_t ch, int groups) {
  block_1.init(ps, key + ".block_1", ch, ch, groups);
  attn_1.init(ps, key + ".attn_1", ch, groups);
  block_2.init(ps, key + ".block_2", ch, ch, groups);
}

Tensor Vae::Mid::forward(const Tensor& x) { return block_2.forward(attn_1.forward(block_1.forward(x))); }

Vae::Vae(const VaeConfig& cfg, DType dtype, Device device) : cfg_(cfg), params_(dtype, device) {
  const int G = cfg.num_groups;
  const int levels = int(cfg.ch_mult.size());
  if (levels == 0 || cfg.num_res_blocks < 1) throw Error("VAE: invalid configuration");
  const int64_t zc = cfg.double_z ? 2 * cfg.z_channels : cfg.z_channels;
  // encoder
  const std::string E = P + "encoder.";
  enc_in_.init(params_, E + "conv_in", cfg.in_channels, cfg.ch, 3, k3);
  int64_t cin = cfg.ch;
  down_.resize(levels);
  for (int l = 0; l < levels; l++) {
    const int64_t cout = cfg.ch * cfg.ch_mult[l];
    down_[l].resize(cfg.num_res_blocks);
    for (int b = 0; b < cfg.num_res_blocks; b++) {
      down_[l][b].init(params_, E + "down." + std::to_string(l) + ".block." + std::to_string(b), cin, cout, G);
      cin = cout;
    }
    if (l != levels - 1) {
      downsample_.emplace_back();
      downsample_.back().init(params_, E + "down." + std::to_string(l) + ".downsample.conv", cin, cin, 3,
                              ops::Conv2dParams{2, 0, 1, 0, 1});
    }
  }
  enc_mid_.init(params_, E + "mid", cin, G);
  enc_norm_.init(params_, E + "norm_out", cin, G, kEps, true);
  enc_out_.init(params_, E + "conv_out", cin, zc, 3, k3);
  quant_.init(params_, P + "quant_conv", zc, 2 * cfg.embed_dim, 1, k1);
  // decoder
  const std::string D = P + "decoder.";
  post_quant_.init(params_, P + "post_quant_conv", cfg.embed_dim, cfg.z_channels, 1, k1);
  cin = cfg.ch * cfg.ch_mult[levels - 1];
  dec_in_.init(params_, D + "conv_in", cfg.z_channels, cin, 3, k3);
  dec_mid_.init(params_, D + "mid", cin, G);
  up_.resize(levels);
  upsample_.resize(levels);
  for (int l = levels - 1; l >= 0; l--) {
    const int64_t cout = cfg.ch * cfg.ch_mult[l];
    up_[l].resize(cfg.num_res_blocks + 1);
    for (int b = 0; b <= cfg.num_res_blocks; b++) {
      up_[l][b].init(params_, D + "up." + std::to_string(l) + ".block." + std::to_string(b), cin, cout, G);
      cin = cout;
    }
    if (l != 0) upsample_[l].init(params_, D + "up." + std::to_string(l) + ".upsample.conv", cin, cin, 3, k3);
  }
  dec_norm_.init(params_, D + "norm_out", cin, G, kEps, true);
  dec_out_.init(params_, D + "conv_out", cin, cfg.out_ch, 3, k3);
}

void Vae::encode(const Tensor& img, Tensor& mean, Tensor& logvar) {
  if (img.ndim() != 4 || img.dim(1) != cfg_.in_channels || img.dtype() != params_.dtype())
    throw Error("VAE encode: image must be [N, " + std::to_string(cfg_.in_channels) + ", H, W] " +
                dtype_name(params_.dtype()) + ", got " + img.desc());
  Tensor h = enc_in_.forward(img, false);
  for (size_t l = 0; l < down_.size(); l++) {
    for (Resnet& r : down_[l]) h = r.forward(h);
    if (l + 1 < down_.size()) h = downsample_[l].forward(h, false);
  }
  h = enc_mid_.forward(h);
  Tensor moments = quant_.forward(enc_out_.forward(enc_norm_.forward(h, false), false), false);
  mean = slice_channels(moments, 0, cfg_.embed_dim);
  logvar = slice_channels(moments, cfg_.embed_dim, 2 * cfg_.embed_dim);
  ops::clamp(logvar, -30.0f, 20.0f, logvar);
}

Tensor Vae::decode(const Tensor& z) {
  if (z.ndim() != 4 || z.dim(1) != cfg_.embed_dim || z.dtype() != params_.dtype())
    throw Error("VAE decode: latent must be [N, " + std::to_string(cfg_.embed_dim) + ", h, w] " +
                dtype_name(params_.dtype()) + ", got " + z.desc());
  Tensor h = dec_mid_.forward(dec_in_.forward(post_quant_.forward(z, false), false));
  for (size_t l = up_.size(); l-- > 0;) {
    for (Resnet& r : up_[l]) h = r.forward(h);
    if (l != 0) {
      Tensor u = Tensor::empty({h.dim(0), h.dim(1), 2 * h.dim(2), 2 * h.dim(3)}, h.dtype(), h.device());
      ops::upsample_nearest2x_forward(h, u);
      h = upsample_[l].forward(u, false);
    }
  }
  return dec_out_.forward(dec_norm_.forward(h, false), false);
}

}  // namespace dbt::nn
