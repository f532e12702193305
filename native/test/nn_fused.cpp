// Fused gradients (nn/param.h): the optimizer step inside backward gives the same bits as a full backward
// followed by the same updates (AdamW and 8-bit AdamW, with and without checkpointing, UNet and CLIP text
// encoder), signals every parameter exactly once per backward, keeps the allocator's peak lower by about the
// gradient bytes, and refuses what it cannot do.
#include <cstring>

#include "core/allocator.h"
#include "harness.h"
#include "nn/adamw.h"
#include "nn/clip.h"
#include "nn/unet.h"
#include "nn_util.h"

using namespace dbt;
using namespace dbt::test;

namespace {

Tensor timesteps(std::initializer_list<float> ts) {
  Tensor t = Tensor::empty({int64_t(ts.size())});
  std::copy(ts.begin(), ts.end(), t.data<float>());
  return t;
}

void set_hparams(nn::AdamW& opt, int64_t step) {
  ops::AdamWParams& hp = opt.hparams();
  hp.lr = 1e-3 * (1.0 + 0.1 * double(step));
  hp.weight_decay = 1e-2;
  hp.step = step;
}

void expect_same_params_and_states(nn::ParamSet& a, nn::AdamW& oa, nn::ParamSet& b, nn::AdamW& ob, const std::string& what) {
  for (size_t i = 0; i < a.all().size(); i++) {
    nn::Param& pa = a.all()[i];
    nn::Param& pb = b.all()[i];
    const std::string w = what + " " + pa.key;
    expect_equal_bits(pb.value, pa.value, w);
    const nn::AdamW::State& sa = oa.state(pa);
    const nn::AdamW::State& sb = ob.state(pb);
    if (oa.eight_bit()) {
      expect_equal_bits(sb.m_q, sa.m_q, w + " m_q");
      expect_equal_bits(sb.m_absmax, sa.m_absmax, w + " m_absmax");
      expect_equal_bits(sb.v_q, sa.v_q, w + " v_q");
      expect_equal_bits(sb.v_absmax, sa.v_absmax, w + " v_absmax");
    } else {
      expect_equal_bits(sb.m, sa.m, w + " m");
      expect_equal_bits(sb.v, sa.v, w + " v");
    }
    EXPECT_TRUE(!pb.grad.defined(), w + ": fused gradient still alive after backward");
  }
}

}  // namespace

DBT_TEST(nn_fused_unet_step_equals_full_backward_then_step) {
  for (bool eight_bit : {false, true})
    for (bool ckpt : {false, true}) {
      const std::string what = std::string(eight_bit ? "8-bit" : "f32") + " AdamW" + (ckpt ? ", checkpointed" : "");
      nn::UNet full(tiny_unet()), fused(tiny_unet());
      randomize_params(full.params(), 300);
      randomize_params(fused.params(), 300);
      full.set_checkpointing(ckpt);
      fused.set_checkpointing(ckpt);
      nn::AdamW ofull(full.params(), eight_bit, 256), ofused(fused.params(), eight_bit, 256);
      full.params().enable_grads(true);
      ofused.fuse();
      const uint64_t n = fused.params().all().size();
      for (int64_t step = 1; step <= 2; step++) {
        Tensor x = rand_tensor({2, 4, 8, 8}, 310 + step), ctx = rand_tensor({2, 5, 32}, 320 + step);
        Tensor dy = rand_tensor({2, 4, 8, 8}, 330 + step);
        Tensor t = timesteps({float(17 * step), float(600 + step)});
        set_hparams(ofull, step);
        set_hparams(ofused, step);

        full.params().zero_grads();
        Tensor dctx_full = Tensor::zeros(ctx.shape());
        full.forward(x, t, ctx, true);
        full.backward(dy, &dctx_full);
        ofull.step_all();

        Tensor dctx_fused = Tensor::zeros(ctx.shape());
        fused.forward(x, t, ctx, true);
        fused.backward(dy, &dctx_fused);

        const std::string ws = what + ", step " + std::to_string(step) + ":";
        expect_equal_bits(dctx_fused, dctx_full, ws + " d context");
        expect_same_params_and_states(full.params(), ofull, fused.params(), ofused, ws);
        EXPECT_TRUE(fused.params().ready_signals() == n * uint64_t(step),
                    ws + " " + std::to_string(fused.params().ready_signals()) + " ready signals for " + std::to_string(n) +
                        " parameters");
      }
    }
}

DBT_TEST(nn_fused_clip_step_equals_full_backward_then_step) {
  const nn::ClipTextConfig c = tiny_clip(30, 8, 12, 9, 3, 2);
  Tensor ids = Tensor::empty({2, 7}, DType::i32);
  for (int i = 0; i < 14; i++) ids.data<int32_t>()[i] = (i * 7 + 3) % 30;
  for (bool eight_bit : {false, true}) {
    const std::string what = std::string("CLIP, ") + (eight_bit ? "8-bit" : "f32") + " AdamW";
    nn::ClipTextEncoder full(c), fused(c);
    randomize_params(full.params(), 400);
    randomize_params(fused.params(), 400);
    fused.set_checkpointing(true);
    nn::AdamW ofull(full.params(), eight_bit, 256), ofused(fused.params(), eight_bit, 256);
    full.params().enable_grads(true);
    ofused.fuse();
    const uint64_t n = fused.params().all().size();
    for (int64_t step = 1; step <= 2; step++) {
      Tensor dy = rand_tensor({2, 7, 8}, 410 + step);
      set_hparams(ofull, step);
      set_hparams(ofused, step);
      full.params().zero_grads();
      full.forward(ids, 2, true);  // clip skip 2: the last layer gets no gradient (zero in both modes)
      full.backward(dy);
      ofull.step_all();
      fused.forward(ids, 2, true);
      fused.backward(dy);
      const std::string ws = what + ", step " + std::to_string(step) + ":";
      expect_same_params_and_states(full.params(), ofull, fused.params(), ofused, ws);
      EXPECT_TRUE(fused.params().ready_signals() == n * uint64_t(step), ws + " one ready signal per parameter");
    }
  }
}

DBT_TEST(nn_fused_peak_lower_by_the_gradients) {
  size_t peak[2], grad_bytes = 0;
  for (bool fuse : {false, true}) {
    nn::UNet u(tiny_unet());
    randomize_params(u.params(), 500);
    u.set_checkpointing(true);
    nn::AdamW opt(u.params(), true, 2048);
    set_hparams(opt, 1);
    if (fuse) opt.fuse();
    Tensor x = rand_tensor({2, 4, 16, 16}, 501), ctx = rand_tensor({2, 77, 32}, 502), dy = rand_tensor({2, 4, 16, 16}, 503);
    Tensor t = timesteps({10.0f, 700.0f}), dctx = Tensor::zeros(ctx.shape());
    Allocator& a = allocator(Device::cpu);
    const size_t base = a.stats().current;
    a.reset_peak();
    if (!fuse) u.params().enable_grads(true);
    {
      Tensor y = u.forward(x, t, ctx, true);
      u.backward(dy, &dctx);
    }
    if (!fuse) opt.step_all();
    peak[fuse] = a.stats().peak - base;
    if (!fuse)
      for (nn::Param& p : u.params().all()) grad_bytes += p.grad.nbytes();
  }
  EXPECT_TRUE(peak[1] + grad_bytes / 2 < peak[0], "fused peak " + std::to_string(peak[1]) + " vs full " +
                                                      std::to_string(peak[0]) + ", gradients " + std::to_string(grad_bytes));
}

DBT_TEST(nn_fused_refuses_what_it_cannot_do) {
  nn::ParamSet ps;
  nn::Linear l;
  l.init(ps, "lin", 3, 2);
  randomize_params(ps, 600);
  expect_throws<Error>([&] { ps.enable_fused_grads(nullptr); }, "need a gradient-ready hook", "no hook");
  int calls = 0;
  ps.enable_fused_grads([&](nn::Param& p) {
    EXPECT_TRUE(p.grad.defined() && p.grad.shape() == p.value.shape(), p.key + ": hook without its gradient");
    calls++;
  });
  Tensor x = rand_tensor({4, 3}, 601), dy = rand_tensor({4, 2}, 602);
  ps.begin_backward();
  l.forward(x, true);
  l.backward(dy);
  EXPECT_TRUE(calls == 2 && !l.w->grad.defined() && !l.b->grad.defined(), "weight and bias stepped and freed");
  // The same module run twice in one backward: its second accumulation comes after the step.
  l.forward(x, true);
  expect_throws<Error>([&] { l.backward(dy); }, "lin.weight is accumulated after its optimizer step", "used twice");
  expect_throws<Error>([&] { ps.grad_ready(*l.b); }, "lin.bias signalled ready twice", "second signal");
  ps.begin_backward();  // a new backward clears the signals
  l.forward(x, true);
  l.backward(dy);
  EXPECT_TRUE(calls == 4, "second backward stepped both parameters");

  nn::AdamW opt(ps, false);
  opt.fuse();
  expect_throws<Error>([&] { opt.step_all(); }, "needs full gradients", "step_all in fused mode");
  nn::ParamSet other;
  nn::Param* q = other.add("q", {2});
  expect_throws<Error>([&] { opt.step(*q); }, "q is not a parameter", "foreign parameter");
  expect_throws<Error>([&] { nn::AdamW(ps, true, 100); }, "block must be 2048 or 256", "bad block");
  {
    nn::AdamW scoped(ps, true, 256);
    scoped.fuse();
    EXPECT_TRUE(ps.hook_owner() == &scoped, "hook owner");
  }
  EXPECT_TRUE(ps.grad_mode() == nn::GradMode::off && nn::grad_of(l.w) == nullptr,
              "an optimizer going away turns its fused gradients off");
}
