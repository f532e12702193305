#include "nn/clip.h"

#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/tensor_ops.h"

namespace dbt::nn {
namespace {
const std::string P = "cond_stage_model.transformer.text_model.";
const char* const kClipAttnNames[4] = {"q_proj", "k_proj", "v_proj", "out_proj"};
}  // namespace

ClipTextEncoder::ClipTextEncoder(const ClipTextConfig& cfg, DType dtype, Device device)
    : cfg_(cfg), params_(dtype, device) {
  if (cfg.hidden_size % cfg.num_heads != 0) throw Error("text encoder: hidden size not divisible by heads");
  tok_ = params_.add(P + "embeddings.token_embedding.weight", {cfg.vocab_size, cfg.hidden_size});
  pos_ = params_.add(P + "embeddings.position_embedding.weight", {cfg.max_positions, cfg.hidden_size});
  layers_.resize(cfg.num_layers);
  for (int l = 0; l < cfg.num_layers; l++) {
    const std::string k = P + "encoder.layers." + std::to_string(l);
    Layer& L = layers_[l];
    L.attn.init(params_, k + ".self_attn", cfg.hidden_size, cfg.hidden_size, cfg.num_heads, true, kClipAttnNames, true);
    L.ln1.init(params_, k + ".layer_norm1", cfg.hidden_size, cfg.layer_norm_eps);
    L.fc1.init(params_, k + ".mlp.fc1", cfg.hidden_size, cfg.intermediate_size);
    L.fc2.init(params_, k + ".mlp.fc2", cfg.intermediate_size, cfg.hidden_size);
    L.ln2.init(params_, k + ".layer_norm2", cfg.hidden_size, cfg.layer_norm_eps);
    L.act.a = ops::Activation::quick_gelu;
  }
  final_.init(params_, P + "final_layer_norm", cfg.hidden_size, cfg.layer_norm_eps);
}

Tensor ClipTextEncoder::Layer::forward(const Tensor& x, bool save) {
  Tensor h = add(x, attn.forward(ln1.forward(x, save), nullptr, save));
  return add(h, fc2.forward(act.forward(fc1.forward(ln2.forward(h, save), save), save), save));
}

Tensor ClipTextEncoder::Layer::backward(const Tensor& dy) {
  Tensor d = add(dy, ln2.backward(fc1.backward(act.backward(fc2.backward(dy)))));
  accumulate(d, ln1.backward(attn.backward(d, nullptr)));
  return d;
}

Tensor ClipTextEncoder::forward(const Tensor& ids, int clip_skip, bool save) {
  if (clip_skip < 1 || clip_skip > cfg_.num_layers)
    throw Error("clip skip must be from 1 to " + std::to_string(cfg_.num_layers) + " (the number of text encoder layers), got " +
                std::to_string(clip_skip));
  used_layers_ = cfg_.num_layers - (clip_skip - 1);
  if (ids.dtype() != DType::i32 || ids.ndim() != 2 || ids.dim(1) < 1 || ids.dim(1) > cfg_.max_positions)
    throw Error("text encoder: token ids must be i32 [B, S] with 1 <= S <= " + std::to_string(cfg_.max_positions) +
                ", got " + ids.desc());
  const Device dev = tok_->value.device();
  Tensor dids = ids;
  if (ids.device() != dev) {
    dids = Tensor::empty(ids.shape(), DType::i32, dev);
    ops::copy(ids, dids);
  }
  Tensor h = Tensor::empty({ids.dim(0), ids.dim(1), cfg_.hidden_size}, params_.dtype(), dev);
  ops::embedding_forward(dids, tok_->value, h);
  ops::add(h, pos_->value.slice(0, ids.dim(1)), h);
  for (int l = 0; l < used_layers_; l++) {
    Layer& L = layers_[l];
    L.recompute = save && checkpointing_;
    if (L.recompute) L.input = h;
    h = L.forward(h, save && !L.recompute);
  }
  Tensor y = final_.forward(h, save);
  ids_ = save ? dids : Tensor();
  return y;
}

void ClipTextEncoder::backward(const Tensor& dy) {
  if (!ids_.defined()) throw Error("text encoder: backward without a saved forward (forward with save = true first)");
  params_.begin_backward();
  Tensor d = final_.backward(dy);
  for (int l = used_layers_; l-- > 0;) {
    Layer& L = layers_[l];
    if (L.recompute) {
      L.forward(L.input, true);
      L.input = Tensor();
      L.recompute = false;
    }
    d = L.backward(d);
  }
  if (Tensor* dtok = grad_of(tok_)) ops::embedding_backward(ids_, d, *dtok);
  if (Tensor* dpos = grad_of(pos_)) {
    Tensor dp = Tensor::empty({d.dim(1), d.dim(2)}, d.dtype(), d.device());
    ops::sum_to(d, dp);
    Tensor rows = dpos->slice(0, d.dim(1));
    accumulate(rows, dp);
  }
  grad_ready(tok_);
  grad_ready(pos_);
  params_.end_backward();  // fused: the layers past clip_skip, which got no gradient
  ids_ = Tensor();
}

}  // namespace dbt::nn
