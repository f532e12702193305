// nn modules: every module's backward against finite differences (f64, odd sizes), whole networks by
// directional derivatives (a micro config per tensor, the tiny arch along random directions), and
// gradient checkpointing (identical gradients, lower peak memory).
#include <cstring>

#include "core/allocator.h"
#include "harness.h"
#include "nn/clip.h"
#include "nn/unet.h"
#include "nn/unet_blocks.h"
#include "nn/vae.h"
#include "nn_util.h"

using namespace dbt;
using namespace dbt::test;

namespace {

const DType F64 = DType::f64;

nn::UNetConfig micro_unet() {
  nn::UNetConfig c;
  c.model_channels = 4;
  c.channel_mult = {1, 2};
  c.num_res_blocks = 1;
  c.attention_resolutions = {1, 2};
  c.num_heads = 2;
  c.context_dim = 3;
  c.num_groups = 2;
  return c;
}

Tensor timesteps(std::initializer_list<float> ts) {
  Tensor t = Tensor::empty({int64_t(ts.size())});
  std::copy(ts.begin(), ts.end(), t.data<float>());
  return t;
}

}  // namespace

DBT_TEST(nn_resblock_backward_matches_finite_differences) {
  for (auto [cin, cout] : {std::pair<int64_t, int64_t>{4, 6}, {6, 6}}) {
    nn::ParamSet ps(F64);
    nn::ResBlock rb(ps, "rb", cin, cout, 5, 2);
    randomize_params(ps, 1);
    Tensor x = rand_tensor({2, cin, 5, 3}, 2, -1, 1, F64), emb = rand_tensor({2, 5}, 3, -1, 1, F64);
    Tensor ctx = Tensor::zeros({2, 1, 1}, F64);
    Tensor dx, demb = Tensor::zeros({2, 5}, F64);
    check_grads_full(
        "ResBlock " + std::to_string(cin) + "->" + std::to_string(cout), [&](bool save) { return rb.forward(x, emb, ctx, save); },
        [&](const Tensor& dy) {
          std::memset(demb.raw(), 0, demb.nbytes());
          dx = rb.backward(dy, demb, nullptr, true);
        },
        ps, {{"x", &x, &dx}, {"emb", &emb, &demb}});
  }
}

DBT_TEST(nn_spatial_transformer_backward_matches_finite_differences) {
  nn::ParamSet ps(F64);
  nn::SpatialTransformer st(ps, "st", 4, 2, 1, 3, 2);
  randomize_params(ps, 10);
  Tensor x = rand_tensor({2, 4, 3, 5}, 11, -1, 1, F64), ctx = rand_tensor({2, 4, 3}, 12, -1, 1, F64);
  Tensor emb = Tensor::zeros({2, 1}, F64), demb = Tensor::zeros({2, 1}, F64);
  Tensor dx, dctx = Tensor::zeros({2, 4, 3}, F64);
  check_grads_full(
      "SpatialTransformer", [&](bool save) { return st.forward(x, emb, ctx, save); },
      [&](const Tensor& dy) {
        std::memset(dctx.raw(), 0, dctx.nbytes());
        dx = st.backward(dy, demb, &dctx, true);
      },
      ps, {{"x", &x, &dx}, {"context", &ctx, &dctx}});
}

DBT_TEST(nn_resample_backward_matches_finite_differences) {
  nn::ParamSet ps(F64);
  nn::ConvLayer down(ps, "down.op", 3, 3, 2);
  nn::Upsample up(ps, "up", 3);
  randomize_params(ps, 20);
  Tensor emb, ctx, demb;
  for (auto [h, w] : {std::pair<int64_t, int64_t>{5, 6}, {4, 3}}) {
    Tensor x = rand_tensor({2, 3, h, w}, 21, -1, 1, F64), dx;
    check_grads_full(
        "Downsample then Upsample", [&](bool save) { return up.forward(down.forward(x, emb, ctx, save), emb, ctx, save); },
        [&](const Tensor& dy) { dx = down.backward(up.backward(dy, demb, nullptr, true), demb, nullptr, true); }, ps,
        {{"x", &x, &dx}});
  }
}

DBT_TEST(nn_clip_text_backward_matches_finite_differences) {
  const nn::ClipTextConfig c = tiny_clip(11, 4, 6, 6, 2, 2);
  for (int skip : {1, 2}) {
    nn::ClipTextEncoder enc(c, F64);
    randomize_params(enc.params(), 30);
    Tensor ids = Tensor::empty({2, 5}, DType::i32);
    const int32_t v[10] = {9, 1, 2, 10, 10, 9, 3, 3, 7, 10};
    std::memcpy(ids.raw(), v, sizeof v);
    check_grads_full(
        "CLIP text encoder, clip skip " + std::to_string(skip), [&](bool save) { return enc.forward(ids, skip, save); },
        [&](const Tensor& dy) { enc.backward(dy); }, enc.params(), {});
  }
}

DBT_TEST(nn_unet_micro_backward_matches_finite_differences) {
  nn::UNet u(micro_unet(), F64);
  randomize_params(u.params(), 40);
  Tensor x = rand_tensor({2, 4, 4, 6}, 41, -1, 1, F64), ctx = rand_tensor({2, 3, 3}, 42, -1, 1, F64);
  Tensor t = timesteps({999.0f, 3.5f});
  Tensor dctx = Tensor::zeros(ctx.shape(), F64);
  check_grads_directional(
      "UNet (micro)", [&](bool save) { return u.forward(x, t, ctx, save); },
      [&](const Tensor& dy) {
        std::memset(dctx.raw(), 0, dctx.nbytes());
        u.backward(dy, &dctx);
      },
      u.params(), {{"context", &ctx, &dctx}});
}

DBT_TEST(nn_unet_tiny_backward_matches_finite_differences) {
  nn::UNet u(tiny_unet(), F64);
  randomize_params(u.params(), 50);
  Tensor x = rand_tensor({1, 4, 4, 4}, 51, -1, 1, F64), ctx = rand_tensor({1, 3, 32}, 52, -1, 1, F64);
  Tensor t = timesteps({250.0f});
  Tensor dctx = Tensor::zeros(ctx.shape(), F64);
  check_grads_directional(
      "UNet (tiny)", [&](bool save) { return u.forward(x, t, ctx, save); },
      [&](const Tensor& dy) {
        std::memset(dctx.raw(), 0, dctx.nbytes());
        u.backward(dy, &dctx);
      },
      u.params(), {{"context", &ctx, &dctx}}, 25);
}

DBT_TEST(nn_unet_checkpointing_same_gradients_lower_peak) {
  nn::UNet u(tiny_unet());
  randomize_params(u.params(), 60);
  u.params().enable_grads(true);
  Tensor x = rand_tensor({2, 4, 16, 16}, 61), ctx = rand_tensor({2, 77, 32}, 62);
  Tensor t = timesteps({10.0f, 700.0f});
  Tensor dy = rand_tensor({2, 4, 16, 16}, 63);
  std::vector<std::vector<Tensor>> grads;
  size_t peaks[2];
  for (bool ckpt : {false, true}) {
    u.set_checkpointing(ckpt);
    u.params().zero_grads();
    Tensor dctx = Tensor::zeros(ctx.shape());
    Allocator& a = allocator(Device::cpu);
    const size_t base = a.stats().current;
    a.reset_peak();
    {
      Tensor y = u.forward(x, t, ctx, true);
      u.backward(dy, &dctx);
    }
    peaks[ckpt] = a.stats().peak - base;
    std::vector<Tensor> g;
    for (nn::Param& p : u.params().all()) g.push_back(clone(p.grad));
    g.push_back(dctx);
    grads.push_back(g);
  }
  for (size_t i = 0; i < grads[0].size(); i++)
    expect_equal_bits(grads[1][i], grads[0][i], i < u.params().all().size() ? u.params().all()[i].key : "context");
  EXPECT_TRUE(peaks[1] < peaks[0] * 3 / 4, "checkpointing peak " + std::to_string(peaks[1]) + " vs " + std::to_string(peaks[0]));
}

DBT_TEST(nn_param_keys_and_errors) {
  nn::UNet u(tiny_unet());
  EXPECT_TRUE(u.params().find("model.diffusion_model.output_blocks.1.2.conv.weight") != nullptr, "upsample conv key");
  EXPECT_TRUE(u.params().find("model.diffusion_model.input_blocks.1.1.proj_in.weight")->value.shape() == Shape({32, 32, 1, 1}),
              "proj_in is a 1x1 conv");
  expect_throws<Error>([&] { u.params().at("model.diffusion_model.nope"); }, "unknown parameter key model.diffusion_model.nope",
                       "unknown key");
  Tensor x = Tensor::zeros({1, 4, 5, 4}), ctx = Tensor::zeros({1, 3, 32});
  expect_throws<Error>([&] { u.forward(x, timesteps({1}), ctx, false); }, "divisible by 2", "odd latent");
  nn::ClipTextEncoder enc(tiny_clip(10, 4, 4, 77, 2, 2));
  Tensor ids = Tensor::zeros({1, 3}, DType::i32);
  expect_throws<Error>([&] { enc.forward(ids, 3, false); }, "clip skip must be from 1 to 2", "clip skip");
  ids.data<int32_t>()[1] = 10;
  expect_throws<Error>([&] { enc.forward(ids, 1, false); }, "", "bad token id");
}

DBT_TEST(nn_clip_checkpointing_same_gradients) {
  const nn::ClipTextConfig c = tiny_clip(30, 8, 12, 9, 3, 2);
  nn::ClipTextEncoder enc(c);
  randomize_params(enc.params(), 70);
  enc.params().enable_grads(true);
  Tensor ids = Tensor::empty({2, 9}, DType::i32);
  for (int i = 0; i < 18; i++) ids.data<int32_t>()[i] = (i * 7 + 3) % 30;
  Tensor dy = rand_tensor({2, 9, 8}, 71);
  std::vector<std::vector<Tensor>> grads;
  for (bool ckpt : {false, true}) {
    enc.set_checkpointing(ckpt);
    enc.params().zero_grads();
    enc.forward(ids, 2, true);
    enc.backward(dy);
    std::vector<Tensor> g;
    for (nn::Param& p : enc.params().all()) g.push_back(clone(p.grad));
    grads.push_back(g);
  }
  for (size_t i = 0; i < grads[0].size(); i++) expect_equal_bits(grads[1][i], grads[0][i], enc.params().all()[i].key);
}
