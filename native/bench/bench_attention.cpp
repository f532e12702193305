// Attention on SD1.5 shapes (batch 1, 8 heads): self-attention at 64x64 latents (4096 tokens, head dim 40),
// at 32x32 (1024 tokens, head dim 80), and cross-attention on 77 text tokens.
#include "bench_cases.h"
#include "ops/attention.h"

namespace dbt::bench {
namespace {

Case attn_case(int64_t Nq, int64_t Nk, int64_t C, bool backward) {
  const int64_t H = 8;
  double flops = 4.0 * double(Nq) * double(Nk) * double(C) * (backward ? 2.5 : 1.0);
  std::string name = "attention " + std::to_string(Nq) + "x" + std::to_string(Nk) + " c" + std::to_string(C) +
                     (backward ? " backward" : "");
  return Case{name, flops, [=] {
                Tensor q = filled({1, Nq, C}, 1), k = filled({1, Nk, C}, 2), v = filled({1, Nk, C}, 3);
                Tensor o = Tensor::empty({1, Nq, C}), l = Tensor::empty({1, H, Nq}), dout = filled({1, Nq, C}, 4);
                Tensor dq = Tensor::empty(q.shape()), dk = Tensor::empty(k.shape()), dv = Tensor::empty(v.shape());
                ops::AttentionParams p{int(H), 0.0f, false};
                ops::attention_forward(q, k, v, p, o, &l);
                if (backward)
                  return std::function<void()>(
                      [=]() mutable { ops::attention_backward(q, k, v, o, l, dout, p, &dq, &dk, &dv); });
                return std::function<void()>([=]() mutable { ops::attention_forward(q, k, v, p, o, &l); });
              }};
}

Registrar r1(attn_case(4096, 4096, 320, false));
Registrar r2(attn_case(4096, 4096, 320, true));
Registrar r3(attn_case(1024, 1024, 640, false));
Registrar r4(attn_case(4096, 77, 320, false));

}  // namespace
}  // namespace dbt::bench
