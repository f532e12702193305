// Attention: self / cross / causal, fast (chunked) vs reference, reference backward vs finite
// differences, and the memory bound for N = 4096.
#include <cmath>
#include <vector>

#include "core/allocator.h"
#include "harness.h"
#include "ops/attention.h"

using namespace dbt;
using namespace dbt::test;
using ops::AttentionParams;

namespace {
struct Case {
  const char* name;
  int64_t B, Nq, Nk, H, D, Dv;
  bool causal;
};
const Case kCases[] = {
    {"self N=70 (two chunks)", 2, 70, 70, 2, 5, 5, false},
    {"cross 37 queries x 11 keys, Dv != D", 1, 37, 11, 2, 8, 6, false},
    {"causal N=13, 3 heads", 2, 13, 13, 3, 4, 4, true},
    {"causal N=130", 1, 130, 130, 1, 3, 3, true},
    {"single key", 1, 5, 1, 1, 4, 4, false},
    {"cross 70 queries x 1100 keys (backward: three key blocks)", 1, 70, 1100, 2, 8, 8, false},
    {"causal N=600 (backward: two key blocks, masked tiles)", 1, 600, 600, 1, 4, 4, true},
};
}  // namespace

DBT_TEST(attention_fast_matches_reference) {
  uint64_t seed = 1;
  for (const Case& c : kCases) {
    AttentionParams p{int(c.H), 0.0f, c.causal};
    Tensor q = rand_tensor({c.B, c.Nq, c.H * c.D}, seed++, -2, 2), k = rand_tensor({c.B, c.Nk, c.H * c.D}, seed++, -2, 2);
    Tensor v = rand_tensor({c.B, c.Nk, c.H * c.Dv}, seed++);
    Tensor o = Tensor::empty({c.B, c.Nq, c.H * c.Dv}), l = Tensor::empty({c.B, c.H, c.Nq});
    poison(o);
    ops::attention_forward(q, k, v, p, o, &l);
    Tensor q64 = to_dtype(q, DType::f64), k64 = to_dtype(k, DType::f64), v64 = to_dtype(v, DType::f64);
    Tensor ro = Tensor::empty(o.shape(), DType::f64), rl = Tensor::empty(l.shape(), DType::f64);
    ops::attention_forward(q64, k64, v64, p, ro, &rl);
    expect_close(o, ro, 2e-6, 2e-5, std::string(c.name) + " out");
    expect_close(l, rl, 2e-6, 2e-6, std::string(c.name) + " lse");

    Tensor dout = rand_tensor(o.shape(), seed++);
    Tensor dq = Tensor::empty(q.shape()), dk = Tensor::empty(k.shape()), dv = Tensor::empty(v.shape());
    poison(dq);
    poison(dk);
    poison(dv);
    ops::attention_backward(q, k, v, o, l, dout, p, &dq, &dk, &dv);
    Tensor rdq = Tensor::empty(q.shape(), DType::f64), rdk = Tensor::empty(k.shape(), DType::f64),
           rdv = Tensor::empty(v.shape(), DType::f64);
    ops::attention_backward(q64, k64, v64, ro, rl, to_dtype(dout, DType::f64), p, &rdq, &rdk, &rdv);
    expect_close(dq, rdq, 1e-5, 1e-4, std::string(c.name) + " dq");
    expect_close(dk, rdk, 1e-5, 1e-4, std::string(c.name) + " dk");
    expect_close(dv, rdv, 1e-5, 1e-4, std::string(c.name) + " dv");
  }
}

DBT_TEST(attention_reference_backward_matches_finite_differences) {
  for (bool causal : {false, true}) {
    AttentionParams p{2, 0.3f, causal};
    Tensor q = rand_tensor({1, 4, 6}, 1, -1, 1, DType::f64), k = rand_tensor({1, 4, 6}, 2, -1, 1, DType::f64);
    Tensor v = rand_tensor({1, 4, 4}, 3, -1, 1, DType::f64), dout = rand_tensor({1, 4, 4}, 4, -1, 1, DType::f64);
    Tensor o = Tensor::empty({1, 4, 4}, DType::f64), l = Tensor::empty({1, 2, 4}, DType::f64);
    auto loss = [&] {
      ops::attention_forward(q, k, v, p, o, nullptr);
      return dot(o, dout);
    };
    ops::attention_forward(q, k, v, p, o, &l);
    Tensor dq = Tensor::empty(q.shape(), DType::f64), dk = Tensor::empty(k.shape(), DType::f64),
           dv = Tensor::empty(v.shape(), DType::f64);
    ops::attention_backward(q, k, v, o, l, dout, p, &dq, &dk, &dv);
    std::string what = causal ? "causal " : "";
    expect_close(dq, numeric_grad(loss, q), 1e-8, 1e-6, what + "dq");
    expect_close(dk, numeric_grad(loss, k), 1e-8, 1e-6, what + "dk");
    expect_close(dv, numeric_grad(loss, v), 1e-8, 1e-6, what + "dv");
  }
}

DBT_TEST(attention_4096_tokens_never_holds_the_score_matrix) {
  const int64_t N = 4096, C = 8;
  Tensor q = rand_tensor({1, N, C}, 1), k = rand_tensor({1, N, C}, 2), v = rand_tensor({1, N, C}, 3);
  Tensor o = Tensor::empty({1, N, C}), l = Tensor::empty({1, 1, N}), dout = rand_tensor({1, N, C}, 4);
  Tensor dq = Tensor::empty(q.shape()), dk = Tensor::empty(k.shape()), dv = Tensor::empty(v.shape());
  Allocator& a = allocator(Device::cpu);
  a.reset_peak();
  size_t base = a.stats().current;
  AttentionParams p{1, 0.0f, false};
  ops::attention_forward(q, k, v, p, o, &l);
  ops::attention_backward(q, k, v, o, l, dout, p, &dq, &dk, &dv);
  size_t extra = a.stats().peak - base;
  size_t nxn = size_t(N * N * 4);
  EXPECT_TRUE(extra <= nxn / 8, "scratch " + format_bytes(extra) + " vs N*N " + format_bytes(nxn));
  // spot check one output row against a direct computation
  double m = -1e300, s = 0, acc[8] = {};
  const float* Q = q.data<float>();
  const float* K = k.data<float>();
  const float* V = v.data<float>();
  const int64_t i = 1234;
  std::vector<double> sc(static_cast<size_t>(N));
  for (int64_t j = 0; j < N; j++) {
    double d = 0;
    for (int64_t c = 0; c < C; c++) d += double(Q[i * C + c]) * double(K[j * C + c]);
    sc[size_t(j)] = d / std::sqrt(double(C));
    m = std::max(m, sc[size_t(j)]);
  }
  for (int64_t j = 0; j < N; j++) {
    double e = std::exp(sc[size_t(j)] - m);
    s += e;
    for (int64_t c = 0; c < C; c++) acc[c] += e * double(V[j * C + c]);
  }
  for (int64_t c = 0; c < C; c++)
    EXPECT_TRUE(std::fabs(get(o, i * C + c) - acc[c] / s) < 1e-5, "row 1234 of the N=4096 attention");
}

DBT_TEST(attention_rejects_bad_shapes) {
  Tensor q = Tensor::zeros({1, 4, 6}), k = Tensor::zeros({1, 5, 6}), v = Tensor::zeros({1, 5, 6}), o = Tensor::zeros({1, 4, 6});
  expect_throws<OpError>([&] { ops::attention_forward(q, k, v, AttentionParams{4, 0, false}, o, nullptr); },
                         "attention_forward: channels must be divisible by heads (4)", "heads");
  expect_throws<OpError>([&] { ops::attention_forward(q, k, v, AttentionParams{2, 0, true}, o, nullptr); },
                         "causal mask needs as many queries as keys", "causal");
}
