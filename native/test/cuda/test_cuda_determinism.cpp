// Every CUDA reduction is meant to repeat bit for bit (fixed reduction trees, no float atomics): run each
// twice on the same inputs, with the allocator's cache disturbed in between, and compare the bits.
#include <functional>

#include "cuda_util.h"

using namespace dbt;
using namespace dbt::test;
using namespace dbt::test::cu;

namespace {
// Runs fn twice (fresh outputs each time) and compares every output's bits.
void twice(const std::string& what, const std::function<std::vector<Tensor>()>& fn) {
  std::vector<Tensor> a = fn();
  Tensor junk = poisoned({12345}, DType::f32);  // moves the allocator's free lists around
  std::vector<Tensor> b = fn();
  for (size_t i = 0; i < a.size(); i++)
    expect_equal_bits(download_raw(a[i]), download_raw(b[i]), what + " output " + std::to_string(i));
}
}  // namespace

DBT_TEST(cuda_reductions_are_deterministic) {
  const DType dt = DType::bf16;
  Tensor x = upload(rnd({2, 64, 33, 35}, 1, 0.5, 2.0), dt), dy = upload(rnd({2, 64, 33, 35}, 2), dt);
  Tensor ga = upload(rnd({64}, 3, 0.5, 1.5), dt), be = upload(rnd({64}, 4), dt);
  ops::GroupNormParams p{32, 1e-5f, true};
  twice("group_norm", [&] {
    Tensor y = poisoned(x.shape(), dt), m = poisoned({2, 32}, dt), r = poisoned({2, 32}, dt);
    ops::group_norm_forward(x, ga, be, p, y, &m, &r);
    Tensor dx = poisoned(x.shape(), dt), dg = upload(rnd({64}, 5), dt), db = upload(rnd({64}, 6), dt);
    ops::group_norm_backward(x, ga, be, m, r, dy, p, &dx, &dg, &db);
    return std::vector<Tensor>{y, m, r, dx, dg, db};
  });

  Tensor lx = upload(rnd({3, 300, 320}, 7), dt), ldy = upload(rnd({3, 300, 320}, 8), dt);
  Tensor lg = upload(rnd({320}, 9, 0.5, 1.5), dt), lb = upload(rnd({320}, 10), dt);
  twice("layer_norm", [&] {
    Tensor y = poisoned(lx.shape(), dt), m = poisoned({900}, dt), r = poisoned({900}, dt);
    ops::layer_norm_forward(lx, lg, lb, 1e-5f, y, &m, &r);
    Tensor dx = poisoned(lx.shape(), dt), dg = upload(rnd({320}, 11), dt), db = upload(rnd({320}, 12), dt);
    ops::layer_norm_backward(lx, lg, m, r, ldy, &dx, &dg, &db);
    return std::vector<Tensor>{y, m, r, dx, dg, db};
  });

  twice("softmax", [&] {
    Tensor y = poisoned(lx.shape(), dt), dx = poisoned(lx.shape(), dt);
    ops::softmax_forward(lx, y);
    ops::softmax_backward(y, ldy, dx);
    return std::vector<Tensor>{y, dx};
  });

  Tensor pred = upload(rnd({2, 4, 64, 64}, 13), DType::f32), target = upload(rnd({2, 4, 64, 64}, 14), DType::f32);
  Tensor w = upload(rnd({2}, 15, 0.5, 1.0), DType::f32);
  twice("mse / sum", [&] {
    Tensor loss = poisoned({1}, DType::f32), ps = poisoned({2}, DType::f32), s = poisoned({1}, DType::f32);
    ops::mse_loss_forward(pred, target, &w, loss, &ps);
    ops::reduce_all(pred, true, s);
    return std::vector<Tensor>{loss, ps, s};
  });

  Tensor ids = Tensor::empty({154}, DType::i32);
  for (int i = 0; i < 154; i++) ids.data<int32_t>()[i] = (i * 7) % 40;  // every row repeated
  Tensor gids = Tensor::empty({154}, DType::i32, Device::cuda);
  ops::copy(ids, gids);
  Tensor edy = upload(rnd({154, 768}, 16), dt);
  twice("embedding backward", [&] {
    Tensor dt_ = upload(rnd({40, 768}, 17), dt);
    ops::embedding_backward(gids, edy, dt_);
    return std::vector<Tensor>{dt_};
  });

  std::vector<Tensor> grads;
  for (int i = 0; i < 200; i++) grads.push_back(upload(rnd({1 + (int64_t(i) * 131) % 70000}, 100 + uint64_t(i)), dt));
  twice("global norm", [&] {
    Tensor n = poisoned({1}, dt);
    ops::global_norm(grads, n);
    return std::vector<Tensor>{n};
  });

  twice("upsample backward", [&] {
    Tensor dx = poisoned({2, 8, 17, 19}, dt);
    ops::upsample_nearest2x_backward(upload(rnd({2, 8, 34, 38}, 19), dt), dx);
    return std::vector<Tensor>{dx};
  });
}
