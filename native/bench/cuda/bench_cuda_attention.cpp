// SD1.5 attention shapes at 512x512 (batch 2: instance + class image), bf16: self-attention at 64x64,
// 32x32, 16x16 and 8x8 (mid block), cross-attention to 77 text tokens at each, CLIP's causal self-attention;
// forward alone and forward + backward. FLOPs: 4 B H Nq Nk D forward, 2.5x that backward (halved when causal).
#include <cstdio>
#include <string>

#include "bench_cuda.h"
#include "ops/attention.h"
#include "ops/tensor_ops.h"

namespace dbt::bench::cuda {
namespace {

void attention_case(const char* what, int B, int heads, int Nq, int Nk, int D, bool causal, bool backward) {
  const DType dt = DType::bf16;
  double fwd = 4.0 * B * heads * double(Nq) * Nk * D * (causal ? 0.5 : 1.0);
  char name[160], spec[256];
  std::snprintf(name, sizeof name, "attention %s b%d h%d %dx%d d%d %s", what, B, heads, Nq, Nk, D,
                backward ? "fwd+bwd" : "fwd");
  std::snprintf(spec, sizeof spec,
                "{\"kind\":\"attention_%s\",\"B\":%d,\"heads\":%d,\"Nq\":%d,\"Nk\":%d,\"D\":%d,\"causal\":%s,"
                "\"dtype\":\"bf16\"}",
                backward ? "fwdbwd" : "fwd", B, heads, Nq, Nk, D, causal ? "true" : "false");
  Registrar reg(Case{name, spec, backward ? 3.5 * fwd : fwd, [=] {
                       const int64_t C = int64_t(heads) * D;
                       Tensor q = device_random({B, Nq, C}, dt, 1), k = device_random({B, Nk, C}, dt, 2);
                       Tensor v = device_random({B, Nk, C}, dt, 3);
                       Tensor out = Tensor::empty({B, Nq, C}, dt, Device::cuda);
                       Tensor lse = Tensor::empty({B, heads, Nq}, dt, Device::cuda);
                       ops::AttentionParams p{heads, 0.0f, causal};
                       if (!backward)
                         return std::function<void()>([=]() mutable { ops::attention_forward(q, k, v, p, out, nullptr); });
                       Tensor dout = device_random({B, Nq, C}, dt, 4);
                       Tensor dq = Tensor::empty(q.shape(), dt, Device::cuda), dk = Tensor::empty(k.shape(), dt, Device::cuda);
                       Tensor dv = Tensor::empty(v.shape(), dt, Device::cuda);
                       return std::function<void()>([=]() mutable {
                         ops::attention_forward(q, k, v, p, out, &lse);
                         ops::attention_backward(q, k, v, out, lse, dout, p, &dq, &dk, &dv);
                       });
                     }});
}

struct Cases {
  Cases() {
    for (bool bwd : {false, true}) {
      attention_case("self@64", 2, 8, 4096, 4096, 40, false, bwd);
      attention_case("cross@64", 2, 8, 4096, 77, 40, false, bwd);
      attention_case("self@32", 2, 8, 1024, 1024, 80, false, bwd);
      attention_case("cross@32", 2, 8, 1024, 77, 80, false, bwd);
      attention_case("self@16", 2, 8, 256, 256, 160, false, bwd);
      attention_case("cross@16", 2, 8, 256, 77, 160, false, bwd);
      attention_case("self@8", 2, 8, 64, 64, 160, false, bwd);
      attention_case("clip", 2, 12, 77, 77, 64, true, bwd);
    }
  }
} g_cases;

}  // namespace
}  // namespace dbt::bench::cuda
