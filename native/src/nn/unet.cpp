#include "nn/unet.h"

#include <algorithm>

#include "nn/tensor_util.h"
#include "ops/embedding.h"
#include "ops/shape_ops.h"
#include "ops/tensor_ops.h"

namespace dbt::nn {
namespace {
const std::string P = "model.diffusion_model.";

bool has(const std::vector<int>& v, int x) { return std::find(v.begin(), v.end(), x) != v.end(); }
}  // namespace

UNet::UNet(const UNetConfig& cfg, DType dtype, Device device) : cfg_(cfg), params_(dtype, device) {
  const int64_t mc = cfg.model_channels, temb = 4 * mc;
  const int G = cfg.num_groups;
  levels_ = int(cfg.channel_mult.size());
  if (levels_ == 0 || cfg.num_res_blocks < 1 || cfg.num_heads < 1) throw Error("UNet: invalid configuration");
  time1_.init(params_, P + "time_embed.0", mc, temb);
  time2_.init(params_, P + "time_embed.2", temb, temb);
  time_act_.a = emb_act_.a = ops::Activation::silu;

  auto slot = [](UNetLayer* l) { Slot s; s.layer.reset(l); return s; };
  auto attn = [&](const std::string& key, int64_t ch) {
    if (ch % cfg.num_heads != 0) throw Error("UNet: " + std::to_string(ch) + " channels not divisible by num_heads");
    return new SpatialTransformer(params_, key, ch, cfg.num_heads, cfg.transformer_depth, cfg.context_dim, G);
  };

  input_.emplace_back();
  input_.back().push_back(slot(new ConvLayer(params_, P + "input_blocks.0.0", cfg.in_channels, mc, 1)));
  skip_channels_.push_back(mc);
  int64_t ch = mc;
  int ds = 1;
  for (int level = 0; level < levels_; level++) {
    for (int r = 0; r < cfg.num_res_blocks; r++) {
      const std::string key = P + "input_blocks." + std::to_string(input_.size());
      Block b;
      b.push_back(slot(new ResBlock(params_, key + ".0", ch, cfg.channel_mult[level] * mc, temb, G)));
      ch = cfg.channel_mult[level] * mc;
      if (has(cfg.attention_resolutions, ds)) b.push_back(slot(attn(key + ".1", ch)));
      input_.push_back(std::move(b));
      skip_channels_.push_back(ch);
    }
    if (level != levels_ - 1) {
      const std::string key = P + "input_blocks." + std::to_string(input_.size());
      Block b;
      b.push_back(slot(new ConvLayer(params_, key + ".0.op", ch, ch, 2)));
      input_.push_back(std::move(b));
      skip_channels_.push_back(ch);
      ds *= 2;
    }
  }
  middle_.push_back(slot(new ResBlock(params_, P + "middle_block.0", ch, ch, temb, G)));
  middle_.push_back(slot(attn(P + "middle_block.1", ch)));
  middle_.push_back(slot(new ResBlock(params_, P + "middle_block.2", ch, ch, temb, G)));

  std::vector<int64_t> chans = skip_channels_;
  for (int level = levels_ - 1; level >= 0; level--) {
    for (int i = 0; i <= cfg.num_res_blocks; i++) {
      const std::string key = P + "output_blocks." + std::to_string(output_.size());
      const int64_t ich = chans.back();
      chans.pop_back();
      Block b;
      b.push_back(slot(new ResBlock(params_, key + ".0", ch + ich, cfg.channel_mult[level] * mc, temb, G)));
      ch = cfg.channel_mult[level] * mc;
      if (has(cfg.attention_resolutions, ds)) b.push_back(slot(attn(key + ".1", ch)));
      if (level > 0 && i == cfg.num_res_blocks) {
        b.push_back(slot(new Upsample(params_, key + "." + std::to_string(b.size()), ch)));
        ds /= 2;
      }
      output_.push_back(std::move(b));
    }
  }
  out_norm_.init(params_, P + "out.0", ch, G, 1e-5f, true);
  out_conv_.init(params_, P + "out.2", mc, cfg.out_channels, 3, ops::Conv2dParams::make(1, 1));
}

Tensor UNet::run_block(Block& b, Tensor h, bool save) {
  for (Slot& s : b) {
    s.recompute = save && checkpointing_ && s.layer->checkpointable();
    if (s.recompute) {
      s.input = h;
      h = s.layer->forward(h, emb_act_out_, ctx_, false);
    } else {
      h = s.layer->forward(h, emb_act_out_, ctx_, save);
    }
  }
  return h;
}

Tensor UNet::back_block(Block& b, Tensor dy, Tensor& demb_act, Tensor* dctx, bool want_dx) {
  for (size_t i = b.size(); i-- > 0;) {
    Slot& s = b[i];
    if (s.recompute) {
      s.layer->forward(s.input, emb_act_out_, ctx_, true);
      s.input = Tensor();
      s.recompute = false;
    }
    dy = s.layer->backward(dy, demb_act, dctx, want_dx || i > 0);
  }
  return dy;
}

Tensor UNet::forward(const Tensor& x, const Tensor& t, const Tensor& context, bool save) {
  const int64_t div = int64_t(1) << (levels_ - 1);
  if (x.ndim() != 4 || x.dim(1) != cfg_.in_channels || x.dim(2) % div != 0 || x.dim(3) % div != 0)
    throw Error("UNet: input must be [N, " + std::to_string(cfg_.in_channels) + ", H, W] with H and W divisible by " +
                std::to_string(div) + ", got " + x.desc());
  if (t.ndim() != 1 || t.dim(0) != x.dim(0) || t.dtype() != DType::f32)
    throw Error("UNet: timesteps must be f32 [" + std::to_string(x.dim(0)) + "], got " + t.desc());
  if (context.ndim() != 3 || context.dim(0) != x.dim(0) || context.dim(2) != cfg_.context_dim)
    throw Error("UNet: context must be [" + std::to_string(x.dim(0)) + ", L, " + std::to_string(cfg_.context_dim) +
                "], got " + context.desc());
  if (x.dtype() != params_.dtype() || context.dtype() != params_.dtype())
    throw Error(std::string("UNet: inputs must be ") + dtype_name(params_.dtype()) + " like the weights");
  ctx_ = context;
  // LDM forms the sinusoidal embedding in f32 whatever the model's dtype; on x's device (t may be on the CPU).
  Tensor tt = t;
  if (t.device() != x.device()) {
    tt = Tensor::empty(t.shape(), DType::f32, x.device());
    ops::copy(t, tt);
  }
  Tensor temb = Tensor::empty({x.dim(0), cfg_.model_channels}, DType::f32, x.device());
  ops::timestep_embedding(tt, int(cfg_.model_channels), 10000.0f, temb);
  if (x.dtype() != DType::f32) {
    Tensor cast = Tensor::empty(temb.shape(), x.dtype(), x.device());
    ops::cast(temb, cast);
    temb = cast;
  }
  Tensor emb = time2_.forward(time_act_.forward(time1_.forward(temb, save), save), save);
  emb_act_out_ = emb_act_.forward(emb, save);

  std::vector<Tensor> hs;
  Tensor h = x;
  for (Block& b : input_) {
    h = run_block(b, h, save);
    hs.push_back(h);
  }
  h = run_block(middle_, h, save);
  for (Block& b : output_) {
    Tensor cat = Tensor::empty({h.dim(0), h.dim(1) + hs.back().dim(1), h.dim(2), h.dim(3)}, h.dtype(), h.device());
    ops::concat({h, hs.back()}, 1, cat);  // [h, skip]: h first
    h = cat;
    hs.pop_back();
    h = run_block(b, h, save);
  }
  Tensor y = out_conv_.forward(out_norm_.forward(h, save), save);
  if (!save) emb_act_out_ = ctx_ = Tensor();
  return y;
}

void UNet::backward(const Tensor& dy, Tensor* dcontext) {
  if (!emb_act_out_.defined()) throw Error("UNet: backward without a saved forward (forward with save = true first)");
  params_.begin_backward();
  Tensor demb_act = Tensor::empty(emb_act_out_.shape(), emb_act_out_.dtype(), emb_act_out_.device());
  ops::fill(demb_act, 0.0);
  Tensor dh = out_norm_.backward(out_conv_.backward(dy));

  std::vector<Tensor> dskip(input_.size());  // gradient reaching each input block's output through skips
  // Output blocks in reverse; output block j consumed skip input_.size() - 1 - j.
  for (size_t j = output_.size(); j-- > 0;) {
    Tensor dcat = back_block(output_[j], dh, demb_act, dcontext, true);
    const size_t k = input_.size() - 1 - j;
    const int64_t cs = skip_channels_[k];
    Tensor dmain = Tensor::empty({dcat.dim(0), dcat.dim(1) - cs, dcat.dim(2), dcat.dim(3)}, dcat.dtype(), dcat.device());
    Tensor ds = Tensor::empty({dcat.dim(0), cs, dcat.dim(2), dcat.dim(3)}, dcat.dtype(), dcat.device());
    ops::split(dcat, 1, {dmain.dim(1), cs}, {&dmain, &ds});
    dskip[k] = ds;
    dh = dmain;
  }
  dh = back_block(middle_, dh, demb_act, dcontext, true);
  for (size_t i = input_.size(); i-- > 0;) {
    accumulate(dh, dskip[i]);
    dskip[i] = Tensor();
    dh = back_block(input_[i], dh, demb_act, dcontext, i > 0);
  }
  Tensor demb = emb_act_.backward(demb_act);
  time1_.backward(time_act_.backward(time2_.backward(demb)), false);
  params_.end_backward();
  emb_act_out_ = ctx_ = Tensor();
}

}  // namespace dbt::nn
