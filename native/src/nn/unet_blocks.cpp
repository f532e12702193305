#include "nn/unet_blocks.h"

#include "nn/tensor_util.h"
#include "ops/activation.h"
#include "ops/elementwise.h"
#include "ops/shape_ops.h"

namespace dbt::nn {

// ---- ResBlock ----
ResBlock::ResBlock(ParamSet& ps, const std::string& key, int64_t cin, int64_t cout, int64_t temb, int groups)
    : cin_(cin), cout_(cout) {
  in_norm_.init(ps, key + ".in_layers.0", cin, groups, 1e-5f, true);
  in_conv_.init(ps, key + ".in_layers.2", cin, cout, 3, ops::Conv2dParams::make(1, 1));
  emb_.init(ps, key + ".emb_layers.1", temb, cout);
  out_norm_.init(ps, key + ".out_layers.0", cout, groups, 1e-5f, true);
  out_conv_.init(ps, key + ".out_layers.3", cout, cout, 3, ops::Conv2dParams::make(1, 1));
  if (cin != cout) skip_.init(ps, key + ".skip_connection", cin, cout, 1, ops::Conv2dParams::make(1, 0));
}

Tensor ResBlock::forward(const Tensor& x, const Tensor& emb_act, const Tensor& ctx, bool save) {
  Tensor h = in_conv_.forward(in_norm_.forward(x, save), save);  // [N, cout, H, W]
  Tensor e = emb_.forward(emb_act, save);                         // [N, cout]
  ops::add(h, e.view({e.dim(0), cout_, 1, 1}), h);
  Tensor y = out_conv_.forward(out_norm_.forward(h, save), save);
  ops::add(y, cin_ != cout_ ? skip_.forward(x, save) : x, y);
  return y;
}

Tensor ResBlock::backward(const Tensor& dy, Tensor& demb_act, Tensor* dctx, bool want_dx) {
  Tensor dh = out_norm_.backward(out_conv_.backward(dy));
  Tensor de = Tensor::empty({dh.dim(0), cout_, 1, 1}, dh.dtype(), dh.device());
  ops::sum_to(dh, de);
  accumulate(demb_act, emb_.backward(de.view({dh.dim(0), cout_})));
  Tensor dx = in_norm_.backward(in_conv_.backward(dh));
  if (cin_ != cout_) accumulate(dx, skip_.backward(dy));
  else accumulate(dx, dy);
  return want_dx ? dx : Tensor();
}

// ---- FeedForward (GEGLU) ----
void FeedForward::init(ParamSet& ps, const std::string& key, int64_t dim) {
  proj_.init(ps, key + ".net.0.proj", dim, 8 * dim);
  out_.init(ps, key + ".net.2", 4 * dim, dim);
}

Tensor FeedForward::forward(const Tensor& x, bool save) {
  Tensor p = proj_.forward(x, save);  // [..., 8 dim] = (hidden, gate)
  Shape gs = p.shape();
  gs[gs.ndim() - 1] /= 2;
  Tensor g = Tensor::empty(gs, p.dtype(), p.device());
  ops::geglu_forward(p, g);
  if (save) gate_in_ = p;
  return out_.forward(g, save);
}

Tensor FeedForward::backward(const Tensor& dy) {
  Tensor dg = out_.backward(dy);
  Tensor dp = empty_like(gate_in_);
  ops::geglu_backward(gate_in_, dg, dp);
  gate_in_ = Tensor();
  return proj_.backward(dp);
}

// ---- TransformerBlock ----
namespace {
const char* const kLdmAttnNames[4] = {"to_q", "to_k", "to_v", "to_out.0"};
}

void TransformerBlock::init(ParamSet& ps, const std::string& key, int64_t dim, int64_t ctx_dim, int heads) {
  attn1_.init(ps, key + ".attn1", dim, dim, heads, false, kLdmAttnNames, false);
  ff_.init(ps, key + ".ff", dim);
  attn2_.init(ps, key + ".attn2", dim, ctx_dim, heads, false, kLdmAttnNames, false);
  norm1_.init(ps, key + ".norm1", dim, 1e-5f);
  norm2_.init(ps, key + ".norm2", dim, 1e-5f);
  norm3_.init(ps, key + ".norm3", dim, 1e-5f);
}

Tensor TransformerBlock::forward(const Tensor& x, const Tensor& ctx, bool save) {
  Tensor h = add(x, attn1_.forward(norm1_.forward(x, save), nullptr, save));
  h = add(h, attn2_.forward(norm2_.forward(h, save), &ctx, save));
  return add(h, ff_.forward(norm3_.forward(h, save), save));
}

Tensor TransformerBlock::backward(const Tensor& dy, Tensor* dctx) {
  Tensor d = add(dy, norm3_.backward(ff_.backward(dy)));
  accumulate(d, norm2_.backward(attn2_.backward(d, dctx)));
  accumulate(d, norm1_.backward(attn1_.backward(d, nullptr)));
  return d;
}

// ---- SpatialTransformer ----
SpatialTransformer::SpatialTransformer(ParamSet& ps, const std::string& key, int64_t ch, int heads, int depth,
                                       int64_t ctx_dim, int groups) {
  norm_.init(ps, key + ".norm", ch, groups, 1e-6f, false);
  proj_in_.init(ps, key + ".proj_in", ch, ch, true, true);
  blocks_.resize(depth);
  for (int d = 0; d < depth; d++) blocks_[d].init(ps, key + ".transformer_blocks." + std::to_string(d), ch, ctx_dim, heads);
  proj_out_.init(ps, key + ".proj_out", ch, ch, true, true);
}

Tensor SpatialTransformer::forward(const Tensor& x, const Tensor& emb_act, const Tensor& ctx, bool save) {
  h_ = x.dim(2);
  w_ = x.dim(3);
  Tensor t = proj_in_.forward(to_tokens(norm_.forward(x, save)), save);  // [N, HW, C]
  for (TransformerBlock& b : blocks_) t = b.forward(t, ctx, save);
  Tensor y = from_tokens(proj_out_.forward(t, save), h_, w_);
  ops::add(y, x, y);
  return y;
}

Tensor SpatialTransformer::backward(const Tensor& dy, Tensor& demb_act, Tensor* dctx, bool want_dx) {
  Tensor dt = proj_out_.backward(to_tokens(dy));
  for (size_t i = blocks_.size(); i-- > 0;) dt = blocks_[i].backward(dt, dctx);
  Tensor dx = norm_.backward(from_tokens(proj_in_.backward(dt), h_, w_));
  accumulate(dx, dy);
  return want_dx ? dx : Tensor();
}

// ---- ConvLayer, Upsample ----
ConvLayer::ConvLayer(ParamSet& ps, const std::string& key, int64_t cin, int64_t cout, int stride) {
  conv_.init(ps, key, cin, cout, 3, ops::Conv2dParams::make(stride, 1));
}

Tensor ConvLayer::forward(const Tensor& x, const Tensor&, const Tensor&, bool save) { return conv_.forward(x, save); }

Tensor ConvLayer::backward(const Tensor& dy, Tensor&, Tensor*, bool want_dx) { return conv_.backward(dy, want_dx); }

Upsample::Upsample(ParamSet& ps, const std::string& key, int64_t ch) {
  conv_.init(ps, key + ".conv", ch, ch, 3, ops::Conv2dParams::make(1, 1));
}

Tensor Upsample::forward(const Tensor& x, const Tensor&, const Tensor&, bool save) {
  Tensor u = Tensor::empty({x.dim(0), x.dim(1), 2 * x.dim(2), 2 * x.dim(3)}, x.dtype(), x.device());
  ops::upsample_nearest2x_forward(x, u);
  return conv_.forward(u, save);
}

Tensor Upsample::backward(const Tensor& dy, Tensor&, Tensor*, bool want_dx) {
  Tensor d = conv_.backward(dy, want_dx);
  if (!want_dx) return Tensor();
  Tensor dx = Tensor::empty({d.dim(0), d.dim(1), d.dim(2) / 2, d.dim(3) / 2}, d.dtype(), d.device());
  ops::upsample_nearest2x_backward(d, dx);
  return dx;
}

}  // namespace dbt::nn
