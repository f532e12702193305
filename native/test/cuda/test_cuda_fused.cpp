// Fused gradients on the GPU (nn/param.h, nn/adamw.h): the tiny-arch UNet (src/model/arch.ts TINY_ARCH),
// checkpointed, with the optimizer step inside backward gives the same bits as a full backward followed by
// the same updates on the GPU (CUDA reductions are deterministic), one ready signal per parameter, and a
// lower device-allocator peak by about the gradient bytes. Configurations: f32 weights with f32 AdamW;
// bf16 weights with stochastic rounding (per-parameter rounding streams) and f32 or 8-bit moments.
#include "cuda_util.h"
#include "core/allocator.h"
#include "nn/adamw.h"
#include "nn/unet.h"
#include "nn_util.h"

using namespace dbt;
using namespace dbt::test;
using namespace dbt::test::cu;

namespace {
struct Config {
  DType dt;
  bool eight_bit;
};

void upload_weights(nn::ParamSet& dev, nn::ParamSet& host, DType dt) {
  for (size_t i = 0; i < dev.all().size(); i++) dev.all()[i].value = upload(host.all()[i].value, dt);
}

void set_hparams(nn::AdamW& opt, DType dt, int64_t step) {
  ops::AdamWParams& hp = opt.hparams();
  hp.lr = 1e-3;
  hp.weight_decay = 1e-2;
  hp.step = step;
  hp.stochastic_rounding = dt == DType::bf16;
  hp.sr_seed = 99;
}
}  // namespace

DBT_TEST(cuda_fused_unet_step_equals_full_backward_then_step) {
  const nn::UNetConfig cfg = tiny_unet();
  nn::UNet host(cfg);
  randomize_params(host.params(), 700);
  for (Config c : {Config{DType::f32, false}, Config{DType::bf16, false}, Config{DType::bf16, true}}) {
    if (c.dt == DType::bf16 && half_mma_type() != DType::bf16) continue;  // sm_75: bf16 products are refused
    const std::string what = tag(c.dt) + (c.eight_bit ? "8-bit AdamW" : "AdamW");
    nn::UNet full(cfg, c.dt, Device::cuda), fused(cfg, c.dt, Device::cuda);
    upload_weights(full.params(), host.params(), c.dt);
    upload_weights(fused.params(), host.params(), c.dt);
    full.set_checkpointing(true);
    fused.set_checkpointing(true);
    nn::AdamW ofull(full.params(), c.eight_bit, 256), ofused(fused.params(), c.eight_bit, 256);
    full.params().enable_grads(true);
    ofused.fuse();
    Allocator& a = allocator(Device::cuda);
    size_t peak[2], grad_bytes = 0;
    for (nn::Param& p : full.params().all()) grad_bytes += p.grad.nbytes();
    for (int64_t step = 1; step <= 2; step++) {
      Tensor t = Tensor::empty({2});
      t.data<float>()[0] = float(20 * step);
      t.data<float>()[1] = 650.0f;
      Tensor x = upload(rnd({2, 4, 16, 16}, 710 + step), c.dt), ctx = upload(rnd({2, 77, 32}, 720 + step), c.dt);
      Tensor dy = upload(rnd({2, 4, 16, 16}, 730 + step), c.dt);
      set_hparams(ofull, c.dt, step);
      set_hparams(ofused, c.dt, step);
      for (bool fuse : {false, true}) {
        nn::UNet& u = fuse ? fused : full;
        if (!fuse) u.params().zero_grads();
        const size_t base = a.stats().current - (fuse ? 0 : grad_bytes);  // the full mode's gradients count
        a.reset_peak();
        {
          Tensor y = u.forward(x, t, ctx, true);
          u.backward(dy, nullptr);
        }
        if (!fuse) ofull.step_all();
        peak[fuse] = a.stats().peak - base;
      }
      const std::string ws = what + ", step " + std::to_string(step) + ":";
      for (size_t i = 0; i < full.params().all().size(); i++) {
        nn::Param& pa = full.params().all()[i];
        nn::Param& pb = fused.params().all()[i];
        expect_equal_bits(download_raw(pb.value), download_raw(pa.value), ws + " " + pa.key);
        const nn::AdamW::State& sa = ofull.state(pa);
        const nn::AdamW::State& sb = ofused.state(pb);
        for (auto m : {&nn::AdamW::State::m, &nn::AdamW::State::v, &nn::AdamW::State::m_q, &nn::AdamW::State::v_q,
                       &nn::AdamW::State::m_absmax, &nn::AdamW::State::v_absmax})
          if ((sa.*m).defined()) expect_equal_bits(download_raw(sb.*m), download_raw(sa.*m), ws + " state of " + pa.key);
      }
      EXPECT_TRUE(fused.params().ready_signals() == fused.params().all().size() * uint64_t(step), ws + " ready signals");
      EXPECT_TRUE(peak[1] + grad_bytes / 2 < peak[0], ws + " fused peak " + std::to_string(peak[1]) + " vs full " +
                                                          std::to_string(peak[0]) + ", gradients " + std::to_string(grad_bytes));
    }
  }
}
