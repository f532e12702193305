// Memory-bound training ops at SD1.5 shapes (512x512, batch 2, bf16): GroupNorm+SiLU (ResBlock levels),
// LayerNorm and GEGLU (transformer at 64x64), and the optimizer over 100M f32 parameters (SD1.5's UNet has
// 860M: a tenth keeps the case quick): AdamW, 8-bit AdamW on one tensor and over 700 tensors (multi-tensor
// launches), and both on bf16 parameters with stochastic rounding (no f32 master copy). `bytes` is the
// minimum DRAM traffic, for GB/s.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench_cuda.h"
#include "ops/ops.h"

namespace dbt::bench::cuda {
namespace {

const DType kBf16 = DType::bf16;

void group_norm_case(int N, int C, int HW, bool backward) {
  char name[160], spec[256];
  std::snprintf(name, sizeof name, "group_norm+silu b%d c%d %dx%d %s", N, C, HW, HW, backward ? "bwd" : "fwd");
  std::snprintf(spec, sizeof spec,
                "{\"kind\":\"group_norm_%s\",\"N\":%d,\"C\":%d,\"HW\":%d,\"groups\":32,\"silu\":true,\"eps\":1e-5,"
                "\"dtype\":\"bf16\"}",
                backward ? "bwd" : "fwd", N, C, HW * HW);
  const double n = double(N) * C * HW * HW;
  Case c{name, spec, 0.0, [=] {
           Tensor x = device_random({N, C, HW, HW}, kBf16, 1), ga = device_random({C}, kBf16, 2);
           Tensor be = device_random({C}, kBf16, 3), y = Tensor::empty(x.shape(), kBf16, Device::cuda);
           Tensor m = Tensor::empty({N, 32}, kBf16, Device::cuda), r = Tensor::empty({N, 32}, kBf16, Device::cuda);
           ops::GroupNormParams p{32, 1e-5f, true};
           ops::group_norm_forward(x, ga, be, p, y, &m, &r);
           if (!backward)
             return std::function<void()>([=]() mutable { ops::group_norm_forward(x, ga, be, p, y, &m, &r); });
           Tensor dy = device_random(x.shape(), kBf16, 4), dx = Tensor::empty(x.shape(), kBf16, Device::cuda);
           Tensor dg = Tensor::empty({C}, kBf16, Device::cuda), db = Tensor::empty({C}, kBf16, Device::cuda);
           ops::fill(dg, 0.0);
           ops::fill(db, 0.0);
           return std::function<void()>(
               [=]() mutable { ops::group_norm_backward(x, ga, be, m, r, dy, p, &dx, &dg, &db); });
         }};
  c.bytes = 2.0 * n * (backward ? 3 : 2);
  Registrar reg(c);
}

void layer_norm_case(int rows, int C, bool backward) {
  char name[160], spec[256];
  std::snprintf(name, sizeof name, "layer_norm %dx%d %s", rows, C, backward ? "bwd" : "fwd");
  std::snprintf(spec, sizeof spec, "{\"kind\":\"layer_norm_%s\",\"rows\":%d,\"C\":%d,\"dtype\":\"bf16\"}",
                backward ? "bwd" : "fwd", rows, C);
  Case c{name, spec, 0.0, [=] {
           Tensor x = device_random({rows, C}, kBf16, 1), ga = device_random({C}, kBf16, 2);
           Tensor be = device_random({C}, kBf16, 3), y = Tensor::empty(x.shape(), kBf16, Device::cuda);
           Tensor m = Tensor::empty({rows}, kBf16, Device::cuda), r = Tensor::empty({rows}, kBf16, Device::cuda);
           ops::layer_norm_forward(x, ga, be, 1e-5f, y, &m, &r);
           if (!backward)
             return std::function<void()>([=]() mutable { ops::layer_norm_forward(x, ga, be, 1e-5f, y, &m, &r); });
           Tensor dy = device_random(x.shape(), kBf16, 4), dx = Tensor::empty(x.shape(), kBf16, Device::cuda);
           Tensor dg = Tensor::empty({C}, kBf16, Device::cuda), db = Tensor::empty({C}, kBf16, Device::cuda);
           ops::fill(dg, 0.0);
           ops::fill(db, 0.0);
           return std::function<void()>([=]() mutable { ops::layer_norm_backward(x, ga, m, r, dy, &dx, &dg, &db); });
         }};
  c.bytes = 2.0 * rows * double(C) * (backward ? 3 : 2);
  Registrar reg(c);
}

void geglu_case(int rows, int F, bool backward) {
  char name[160], spec[256];
  std::snprintf(name, sizeof name, "geglu %dx%d %s", rows, F, backward ? "bwd" : "fwd");
  std::snprintf(spec, sizeof spec, "{\"kind\":\"geglu_%s\",\"rows\":%d,\"F\":%d,\"dtype\":\"bf16\"}",
                backward ? "bwd" : "fwd", rows, F);
  Case c{name, spec, 0.0, [=] {
           Tensor x = device_random({rows, 2 * F}, kBf16, 1), y = Tensor::empty({rows, F}, kBf16, Device::cuda);
           if (!backward) return std::function<void()>([=]() mutable { ops::geglu_forward(x, y); });
           Tensor dy = device_random({rows, F}, kBf16, 2), dx = Tensor::empty(x.shape(), kBf16, Device::cuda);
           return std::function<void()>([=]() mutable { ops::geglu_backward(x, dy, dx); });
         }};
  c.bytes = 2.0 * rows * double(F) * (backward ? 5 : 3);
  Registrar reg(c);
}

constexpr int64_t kParams = 100'000'000;

// AdamW over kParams parameters with f32 moments: f32 parameters and gradients, or with `sr` bf16 ones
// updated with stochastic rounding.
void adamw_case(bool sr) {
  char spec[128];
  std::snprintf(spec, sizeof spec, "{\"kind\":\"%s\",\"params\":%lld}", sr ? "adamw_sr" : "adamw",
                (long long)kParams);
  Case c{sr ? "adamw bf16 stochastic rounding 100M params" : "adamw f32 100M params", spec, 0.0, [sr] {
           const DType pt = sr ? kBf16 : DType::f32;
           Tensor p = device_random({kParams}, pt, 1), g = device_random({kParams}, pt, 2, 1e-3f);
           Tensor m = Tensor::empty({kParams}, DType::f32, Device::cuda), v = Tensor::empty({kParams}, DType::f32, Device::cuda);
           ops::fill(m, 0.0);
           ops::fill(v, 0.0);
           auto step = std::make_shared<int64_t>(0);
           return std::function<void()>([=]() mutable {
             ops::AdamWParams hp;
             hp.step = ++*step;
             hp.stochastic_rounding = sr;
             if (sr) hp.sr_seed = 1234;
             ops::adamw_update(p, g, m, v, hp);
           });
         }};
  // read p, g, m, v; write p, m, v (p and g in 2 bytes with sr)
  c.bytes = (sr ? 2.0 + 2 + 4 + 4 + 2 + 4 + 4 : 7.0 * 4) * double(kParams);
  Registrar reg(c);
}

// 8-bit AdamW over kParams parameters split into `tensors` tensors (1: the per-tensor op): f32 parameters,
// or with `sr` bf16 parameters and gradients updated with stochastic rounding.
void adamw8bit_case(int tensors, int block, bool sr = false) {
  char name[160], spec[160];
  if (sr) {
    std::snprintf(name, sizeof name, "adamw8bit bf16 stochastic rounding 100M params %d tensors block %d", tensors, block);
    std::snprintf(spec, sizeof spec, "{\"kind\":\"adamw8bit_sr\",\"params\":%lld,\"tensors\":%d,\"block\":%d}",
                  (long long)kParams, tensors, block);
  } else {
    std::snprintf(name, sizeof name, "adamw8bit 100M params %d tensor%s block %d", tensors, tensors > 1 ? "s" : "", block);
    std::snprintf(spec, sizeof spec, "{\"kind\":\"adamw8bit\",\"params\":%lld,\"tensors\":%d,\"block\":%d}",
                  (long long)kParams, tensors, block);
  }
  const DType dt = sr ? kBf16 : DType::f32;
  Case c{name, spec, 0.0, [=] {
           struct State {
             std::vector<Tensor> p, g, mq, ma, vq, va;
           };
           auto st = std::make_shared<State>();
           for (int i = 0; i < tensors; i++) {
             const int64_t n = kParams / tensors + (i < kParams % tensors ? 1 : 0);
             const int64_t nb = ops::adamw8bit_blocks(n, block);
             st->p.push_back(device_random({n}, dt, 1 + uint64_t(i)));
             st->g.push_back(device_random({n}, dt, 100000 + uint64_t(i), 1e-3f));
             st->mq.push_back(Tensor::empty({n}, DType::u8, Device::cuda));
             st->vq.push_back(Tensor::empty({n}, DType::u8, Device::cuda));
             st->ma.push_back(Tensor::empty({nb}, DType::f32, Device::cuda));
             st->va.push_back(Tensor::empty({nb}, DType::f32, Device::cuda));
             ops::adamw8bit_init(st->mq.back(), st->ma.back(), st->vq.back(), st->va.back());
           }
           auto step = std::make_shared<int64_t>(0);
           return std::function<void()>([=]() {
             ops::AdamWParams hp;
             hp.step = ++*step;
             hp.stochastic_rounding = sr;
             if (sr) hp.sr_seed = 1234;
             State& s = *st;
             if (tensors == 1) {
               ops::adamw8bit_update(s.p[0], s.g[0], s.mq[0], s.ma[0], s.vq[0], s.va[0], block, hp);
               return;
             }
             std::vector<ops::AdamW8bitTensor> list;
             for (int i = 0; i < tensors; i++) {
               size_t k = size_t(i);
               list.push_back({&s.p[k], &s.g[k], &s.mq[k], &s.ma[k], &s.vq[k], &s.va[k], uint32_t(i)});
             }
             ops::adamw8bit_update_multi(list, block, hp);
           });
         }};
  // read p, g and both codes; write p and both codes
  c.bytes = (sr ? 10.0 : 16.0) * double(kParams);
  Registrar reg(c);
}

struct Cases {
  Cases() {
    for (bool bwd : {false, true}) {
      group_norm_case(2, 320, 64, bwd);
      group_norm_case(2, 640, 32, bwd);
      group_norm_case(2, 1280, 16, bwd);
      layer_norm_case(8192, 320, bwd);
      geglu_case(8192, 1280, bwd);
    }
    adamw_case(false);
    adamw8bit_case(1, 2048);
    adamw8bit_case(1, 256);
    adamw8bit_case(700, 2048);
    adamw_case(true);
    adamw8bit_case(700, 2048, /*sr=*/true);
  }
} g_cases;

}  // namespace
}  // namespace dbt::bench::cuda
