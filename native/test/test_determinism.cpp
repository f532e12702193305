// Every fast op gives bitwise identical results for 1 and 3 threads and from run to run.
#include <functional>
#include <vector>

#include "core/thread_pool.h"
#include "harness.h"
#include "ops/ops.h"

using namespace dbt;
using namespace dbt::test;

namespace {

// Runs f with 1 thread, then twice with 3 threads, comparing every output bit for bit.
void check(const std::string& name, const std::function<std::vector<Tensor>()>& f) {
  int saved = num_threads();
  set_num_threads(1);
  std::vector<Tensor> a = f();
  set_num_threads(3);
  std::vector<Tensor> b = f();
  std::vector<Tensor> c = f();
  set_num_threads(saved);
  for (size_t i = 0; i < a.size(); i++) {
    expect_equal_bits(a[i], b[i], name + " output " + std::to_string(i) + " (1 vs 3 threads)");
    expect_equal_bits(b[i], c[i], name + " output " + std::to_string(i) + " (run to run)");
  }
}

Tensor sm_grad() { return rand_tensor({300, 96}, 99); }

}  // namespace

DBT_TEST(fast_ops_are_bitwise_deterministic_across_thread_counts) {
  Tensor x = rand_tensor({2, 64, 12, 10}, 1), ga = rand_tensor({64}, 2), be = rand_tensor({64}, 3);
  check("group_norm", [&] {
    Tensor y = Tensor::empty(x.shape()), m = Tensor::empty({2, 32}), r = Tensor::empty({2, 32});
    ops::group_norm_forward(x, ga, be, ops::GroupNormParams{32, 1e-5f, true}, y, &m, &r);
    Tensor dx = Tensor::empty(x.shape()), dg = Tensor::zeros({64}), db = Tensor::zeros({64});
    ops::group_norm_backward(x, ga, be, m, r, y, ops::GroupNormParams{32, 1e-5f, true}, &dx, &dg, &db);
    return std::vector<Tensor>{y, dx, dg, db};
  });
  Tensor s = rand_tensor({300, 96}, 4), g96 = rand_tensor({96}, 5), b96 = rand_tensor({96}, 6);
  check("layer_norm", [&] {
    Tensor y = Tensor::empty(s.shape()), m = Tensor::empty({300}), r = Tensor::empty({300});
    ops::layer_norm_forward(s, g96, b96, 1e-5f, y, &m, &r);
    Tensor dx = Tensor::empty(s.shape()), dg = Tensor::zeros({96}), db = Tensor::zeros({96});
    ops::layer_norm_backward(s, g96, m, r, y, &dx, &dg, &db);
    return std::vector<Tensor>{y, dx, dg, db};
  });
  Tensor q = rand_tensor({2, 150, 64}, 7), k = rand_tensor({2, 77, 64}, 8), v = rand_tensor({2, 77, 64}, 9);
  check("attention", [&] {
    ops::AttentionParams p{4, 0.0f, false};
    Tensor o = Tensor::empty({2, 150, 64}), l = Tensor::empty({2, 4, 150});
    ops::attention_forward(q, k, v, p, o, &l);
    Tensor dq = Tensor::empty(q.shape()), dk = Tensor::empty(k.shape()), dv = Tensor::empty(v.shape());
    ops::attention_backward(q, k, v, o, l, o, p, &dq, &dk, &dv);
    return std::vector<Tensor>{o, l, dq, dk, dv};
  });
  check("linear", [&] {
    Tensor y = Tensor::empty({300, 200});
    ops::linear_forward(s, rand_tensor({200, 96}, 11), nullptr, y);
    Tensor dx = Tensor::empty({300, 96}), dw = Tensor::zeros({200, 96}), db = Tensor::zeros({200});
    ops::linear_backward(s, rand_tensor({200, 96}, 11), y, &dx, &dw, &db);
    return std::vector<Tensor>{y, dx, dw, db};
  });
  check("elementwise, reductions, loss", [&] {
    Tensor e = rand_tensor({2, 64, 1, 1}, 12);
    Tensor y = Tensor::empty(x.shape());
    ops::add(x, e, y);
    Tensor se = Tensor::empty(e.shape()), tot = Tensor::empty({1}), loss = Tensor::empty({1});
    ops::sum_to(y, se);
    ops::reduce_all(y, true, tot);
    ops::mse_loss_forward(y, x, nullptr, loss, nullptr);
    Tensor up = Tensor::empty({2, 64, 24, 20}), sm = Tensor::empty(s.shape());
    ops::upsample_nearest2x_forward(x, up);
    ops::softmax_forward(s, sm);
    Tensor act = Tensor::empty(s.shape());
    ops::activation_forward(ops::Activation::gelu, s, act);
    return std::vector<Tensor>{y, se, tot, loss, up, sm, act};
  });
  check("optimizers", [&] {
    Tensor p = clone(s), m = Tensor::zeros(s.shape()), vv = Tensor::zeros(s.shape());
    ops::adamw_update(p, sm_grad(), m, vv, ops::AdamWParams{1e-3, 0.9, 0.999, 1e-8, 1e-2, 3, 1.0});
    Tensor p8 = clone(s), mq = Tensor::empty({s.numel()}, DType::u8), ma = Tensor::empty({ops::adamw8bit_blocks(s.numel(), 256)}),
           vq = Tensor::empty({s.numel()}, DType::u8), va = Tensor::empty({ops::adamw8bit_blocks(s.numel(), 256)});
    ops::adamw8bit_init(mq, ma, vq, va);
    ops::adamw8bit_update(p8, sm_grad(), mq, ma, vq, va, 256, ops::AdamWParams{});
    Tensor n = Tensor::empty({1});
    ops::global_norm({p, p8}, n);
    return std::vector<Tensor>{p, m, vv, p8, mq, vq, n};
  });
}
