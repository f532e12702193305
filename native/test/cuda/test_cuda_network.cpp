// Network-level checks: the batched transpose behind the image <-> token layouts, and the tiny-arch UNet
// (src/model/arch.ts TINY_ARCH) and a small CLIP text encoder (causal attention over 77 tokens, embeddings)
// forward and backward on the GPU against the same network on the CPU (f32, same weights and inputs rounded
// to the GPU's dtype), checkpointed on the GPU.
// A missing CUDA op fails here with the op's own "no implementation for device cuda" error.
// Tolerances are norm-wise (relative L2 error), since rounding compounds over ~30 layers: f32 1e-4,
// f16 1e-2, bf16 4e-2; per parameter tensor 3x that, with an rms floor like the op tests.
#include "cuda_util.h"
#include "net_util.h"
#include "nn/clip.h"
#include "nn/unet.h"
#include "nn_util.h"
#include "ops/shape_ops.h"

using namespace dbt;
using namespace dbt::test;
using namespace dbt::test::cu;

DBT_TEST(cuda_transpose_matches_cpu) {
  for (DType dt : mma_types())
    for (Shape s : {Shape{2, 37, 70}, Shape{1, 256, 320}, Shape{3, 1, 5}, Shape{2, 4096, 40}}) {
      Tensor x = upload(rnd(s, 7), dt), y = poisoned({s[0], s[2], s[1]}, dt);
      ops::transpose(x, y);
      Tensor want = Tensor::empty(y.shape(), dt);
      ops::transpose(download_raw(x), want);
      expect_equal_bits(download_raw(y), want, tag(dt) + "transpose " + s.str());
    }
}

DBT_TEST(cuda_unet_tiny_forward_backward_matches_cpu) {
  const nn::UNetConfig cfg = tiny_unet();
  Tensor x = rnd({2, 4, 16, 16}, 1), ctx = rnd({2, 77, 32}, 2), dy = rnd({2, 4, 16, 16}, 3);
  Tensor t = Tensor::empty({2});
  t.data<float>()[0] = 10.0f;
  t.data<float>()[1] = 700.0f;
  for (DType dt : mma_types()) {
    // CPU reference (f32) with weights and inputs rounded to dt.
    nn::UNet ref(cfg);
    randomize_params(ref.params(), 100);
    for (nn::Param& p : ref.params().all()) round_to(p.value, dt);
    Tensor rx = clone(x), rctx = clone(ctx), rdy = clone(dy);
    round_to(rx, dt);
    round_to(rctx, dt);
    round_to(rdy, dt);
    ref.params().enable_grads(true);
    Tensor ry = ref.forward(rx, t, rctx, true);
    Tensor rdctx = Tensor::zeros(ctx.shape());
    ref.backward(rdy, &rdctx);

    // The same network on the GPU in dt, checkpointed (recomputes each block in the backward).
    nn::UNet dev(cfg, dt, Device::cuda);
    upload_params(dev.params(), ref.params(), dt);
    dev.set_checkpointing(true);
    Tensor y = dev.forward(upload(x, dt), t, upload(ctx, dt), true);
    Tensor dctx = Tensor::empty(ctx.shape(), dt, Device::cuda);
    ops::fill(dctx, 0.0);
    dev.backward(upload(dy, dt), &dctx);

    const double tol = net_rtol(dt);
    expect_rel(diff(y, ry), tol, 0.0, tag(dt) + "tiny UNet output");
    expect_rel(diff(dctx, rdctx), tol, 0.0, tag(dt) + "tiny UNet d context");
    expect_grads_close(dev.params(), ref.params(), dt, tag(dt) + "tiny UNet");
  }
}

DBT_TEST(cuda_clip_text_forward_backward_matches_cpu) {
  const nn::ClipTextConfig cfg = tiny_clip(100, 64, 128, 77, 3, 2);
  Tensor ids = Tensor::empty({2, 77}, DType::i32);
  for (int i = 0; i < 2 * 77; i++) ids.data<int32_t>()[i] = (i * 37 + 11) % 100;
  Tensor dy = rnd({2, 77, 64}, 5);
  for (DType dt : mma_types()) {
    nn::ClipTextEncoder ref(cfg);
    randomize_params(ref.params(), 200);
    for (nn::Param& p : ref.params().all()) round_to(p.value, dt);
    Tensor rdy = clone(dy);
    round_to(rdy, dt);
    ref.params().enable_grads(true);
    Tensor ry = ref.forward(ids, 2, true);
    ref.backward(rdy);

    nn::ClipTextEncoder dev(cfg, dt, Device::cuda);
    upload_params(dev.params(), ref.params(), dt);
    dev.set_checkpointing(true);
    Tensor y = dev.forward(ids, 2, true);  // ids on the CPU: copied to the device
    dev.backward(upload(dy, dt));
    expect_rel(diff(y, ry), net_rtol(dt), 0.0, tag(dt) + "CLIP text output");
    expect_grads_close(dev.params(), ref.params(), dt, tag(dt) + "CLIP text");
  }
}
