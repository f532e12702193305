// Nearest 2x upsampling, concat and split on the GPU against the CPU reference: copies must be exact (bits),
// the upsampling backward (a 4-term sum) within the dtype's tolerance. Odd sizes, every dim, u8/i32 words.
#include <cmath>

#include "cuda_util.h"

using namespace dbt;
using namespace dbt::test;
using namespace dbt::test::cu;

namespace {
// CPU tensor of dtype dt with random non-zero contents (floats rounded to dt, integers from them).
Tensor host_random(const Shape& s, DType dt, uint64_t seed) {
  Tensor f = rnd(s, seed, -100.0, 100.0);
  Tensor out = Tensor::empty(s, dt);
  for (int64_t i = 0; i < f.numel(); i++) {
    double v = get(f, i);
    if (dt == DType::u8) v = 1 + std::fmod(std::fabs(v) * 7.0, 254.0);
    if (dt == DType::i32) v = std::floor(v * 1e5) + 0.0;
    set(out, i, v);
  }
  return out;
}
Tensor to_device_raw(const Tensor& h) {
  Tensor d = Tensor::empty(h.shape(), h.dtype(), Device::cuda);
  ops::copy(h, d);
  return d;
}
}  // namespace

DBT_TEST(cuda_upsample_nearest2x_matches_reference) {
  uint64_t seed = 1;
  for (const Shape& s : {Shape{1, 1, 1, 1}, Shape{2, 3, 5, 7}, Shape{1, 4, 32, 33}}) {
    for (DType dt : {DType::f32, DType::bf16, DType::f16, DType::u8, DType::i32}) {
      Tensor x = host_random(s, dt, seed++);
      Shape ys{s[0], s[1], 2 * s[2], 2 * s[3]};
      Tensor want = Tensor::empty(ys, dt);
      ops::ref::upsample_nearest2x_forward(x, want);  // byte copies: the reference takes any dtype
      Tensor y = Tensor::empty(ys, dt, Device::cuda);
      ops::fill(y, 77.0);
      ops::upsample_nearest2x_forward(to_device_raw(x), y);
      expect_equal_bits(download_raw(y), want, tag(dt) + "upsample forward " + s.str());
    }
    for (DType dt : float_types()) {
      Shape ys{s[0], s[1], 2 * s[2], 2 * s[3]};
      Tensor dy = rnd(ys, seed++);
      Tensor want = Tensor::empty(s, DType::f64);
      ops::upsample_nearest2x_backward(rounded64(dy, dt), want);
      Tensor dx = poisoned(s, dt);
      ops::upsample_nearest2x_backward(upload(dy, dt), dx);
      expect_close_dev(dx, want, dt, "upsample backward " + s.str());
    }
  }
}

DBT_TEST(cuda_concat_and_split_match_reference) {
  struct Case {
    Shape y;
    int dim;
    std::vector<int64_t> sizes;
  };
  const Case cases[] = {
      {{2, 9, 5, 3}, 1, {4, 5}},        // UNet skip concat
      {{2, 7, 3}, 0, {1, 1}},           // dim 0 (y's size along dim is set from the sizes below)
      {{3, 5, 11}, -1, {2, 0, 9}},      // last dim, an empty part
      {{4, 6}, 1, {1, 2, 3}},
      {{13}, 0, {6, 7}},
  };
  uint64_t seed = 100;
  for (Case c : cases) {
    const int d = c.dim < 0 ? c.dim + c.y.ndim() : c.dim;
    int64_t total = 0;
    for (int64_t s : c.sizes) total += s;
    c.y[d] = total;
    for (DType dt : {DType::f32, DType::bf16, DType::u8, DType::i32}) {
      std::vector<Tensor> hx, gx;
      for (int64_t s : c.sizes) {
        Shape ps = c.y;
        ps[d] = s;
        hx.push_back(host_random(ps, dt, seed++));
        gx.push_back(to_device_raw(hx.back()));
      }
      Tensor want = Tensor::empty(c.y, dt);
      ops::ref::concat(hx, d, want);
      Tensor y = Tensor::empty(c.y, dt, Device::cuda);
      ops::fill(y, 77.0);
      ops::concat(gx, c.dim, y);
      std::string what = tag(dt) + "dim " + std::to_string(c.dim) + " " + c.y.str();
      expect_equal_bits(download_raw(y), want, "concat " + what);

      // split back, skipping the first part
      std::vector<Tensor> parts;
      std::vector<Tensor*> pp;
      for (size_t i = 0; i < c.sizes.size(); i++) {
        Shape ps = c.y;
        ps[d] = c.sizes[i];
        parts.push_back(Tensor::empty(ps, dt, Device::cuda));
        ops::fill(parts.back(), 77.0);
      }
      for (size_t i = 0; i < parts.size(); i++) pp.push_back(i == 0 ? nullptr : &parts[i]);
      ops::split(y, c.dim, c.sizes, pp);
      for (size_t i = 1; i < parts.size(); i++)
        expect_equal_bits(download_raw(parts[i]), hx[i], "split part " + std::to_string(i) + " " + what);
    }
  }
}
