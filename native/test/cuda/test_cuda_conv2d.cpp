// conv2d on the GPU against the CPU reference (f64): 3x3 stride 1 and 2, the VAE's asymmetric padding,
// 1x1 (plain-product path) and 1x1 stride 2 (gather path), odd sizes, forward and all three gradients.
#include "cuda_util.h"

using namespace dbt;
using namespace dbt::test;
using namespace dbt::test::cu;

namespace {
struct ConvCase {
  int64_t N, C, H, W, O, k;
  ops::Conv2dParams p;
};
}  // namespace

DBT_TEST(cuda_conv2d_matches_reference) {
  const ConvCase cases[] = {
      {2, 3, 9, 11, 5, 3, ops::Conv2dParams::make(1, 1)},
      {2, 5, 9, 7, 6, 3, ops::Conv2dParams::make(2, 1)},
      {1, 4, 9, 9, 3, 3, ops::Conv2dParams{2, 0, 1, 0, 1}},  // VAE downsample
      {2, 7, 5, 6, 9, 1, ops::Conv2dParams::make(1, 0)},     // 1x1: plain product
      {1, 3, 6, 6, 4, 1, ops::Conv2dParams::make(2, 0)},     // 1x1 stride 2: gathers
      {1, 4, 8, 8, 32, 3, ops::Conv2dParams::make(1, 1)},    // conv_in-like (K = 36)
      {2, 64, 16, 16, 64, 3, ops::Conv2dParams::make(1, 1)}, // aligned channels
      {1, 16, 7, 5, 8, 3, ops::Conv2dParams::make(1, 0)},    // no padding
      {2, 32, 8, 8, 320, 1, ops::Conv2dParams::make(1, 0)},  // proj_in-like
  };
  uint64_t seed = 1;
  for (DType dt : mma_types())
    for (const ConvCase& c : cases) {
      Tensor x = rnd({c.N, c.C, c.H, c.W}, seed++), w = rnd({c.O, c.C, c.k, c.k}, seed++, -0.3, 0.3);
      Tensor b = rnd({c.O}, seed++);
      Shape ys = ops::conv2d_output_shape(x.shape(), w.shape(), c.p);
      Tensor dy = rnd(ys, seed++), dw0 = rnd(w.shape(), seed++), db0 = rnd({c.O}, seed++);
      Tensor x64 = rounded64(x, dt), w64 = rounded64(w, dt), b64 = rounded64(b, dt), dy64 = rounded64(dy, dt);
      char what[160];
      std::snprintf(what, sizeof what, "conv x [%lld,%lld,%lld,%lld] w %lldx%lld k%lld stride %d pad %d%d%d%d",
                    (long long)c.N, (long long)c.C, (long long)c.H, (long long)c.W, (long long)c.O, (long long)c.C,
                    (long long)c.k, c.p.stride, c.p.pad_top, c.p.pad_bottom, c.p.pad_left, c.p.pad_right);

      Tensor want = Tensor::empty(ys, DType::f64);
      ops::conv2d_forward(x64, w64, &b64, c.p, want);
      Tensor gx_ = upload(x, dt), gw_ = upload(w, dt), gb_ = upload(b, dt), y = poisoned(ys, dt);
      ops::conv2d_forward(gx_, gw_, &gb_, c.p, y);
      expect_close_dev(y, want, dt, std::string(what) + " forward");

      Tensor rx = Tensor::empty(x.shape(), DType::f64), rw = rounded64(dw0, dt), rb = rounded64(db0, dt);
      ops::conv2d_backward(x64, w64, dy64, c.p, &rx, &rw, &rb);
      Tensor dx = poisoned(x.shape(), dt), dw = upload(dw0, dt), db = upload(db0, dt);
      ops::conv2d_backward(gx_, gw_, upload(dy, dt), c.p, &dx, &dw, &db);
      expect_close_dev(dx, rx, dt, std::string(what) + " dx");
      expect_close_dev(dw, rw, dt, std::string(what) + " dw (accumulated)");
      expect_close_dev(db, rb, dt, std::string(what) + " db (accumulated)");
    }
}

DBT_TEST(cuda_conv2d_sd_shape_spot_check) {
  // One SD1.5 ResBlock conv at 32x32 (checked on a slice of outputs to keep the reference cheap).
  const DType dt = half_mma_type();
  Tensor x = rnd({1, 640, 32, 32}, 7), w = rnd({640, 640, 3, 3}, 8, -0.05, 0.05);
  auto p = ops::Conv2dParams::make(1, 1);
  Tensor y = poisoned({1, 640, 32, 32}, dt);
  ops::conv2d_forward(upload(x, dt), upload(w, dt), nullptr, p, y);
  // Reference for output channels 0..7 only: w[0:8].
  Tensor w8 = rounded64(w, dt).slice(0, 8);
  Tensor want = Tensor::empty({1, 8, 32, 32}, DType::f64);
  ops::conv2d_forward(rounded64(x, dt), w8, nullptr, p, want);
  Tensor got = download(y);
  Tensor got8 = Tensor::empty({1, 8, 32, 32}, DType::f64);
  for (int64_t i = 0; i < got8.numel(); i++) set(got8, i, get(got, i));
  Tensor dev8 = upload(got8, DType::f32);
  expect_close_dev(dev8, want, dt, "conv 640->640 3x3 at 32x32 (channels 0-7)");
}
