// Embedding lookup / scatter-add gradient (repeated ids, bit-identical to the CPU order in f32), timestep
// embedding, sum / mean and the weighted MSE loss on the GPU against the CPU reference.
#include <algorithm>
#include <cmath>

#include "cuda_util.h"

using namespace dbt;
using namespace dbt::test;
using namespace dbt::test::cu;

namespace {
Tensor random_ids(const Shape& s, int64_t V, uint64_t seed) {
  Tensor f = rnd(s, seed, 0.0, 1.0);
  Tensor ids = Tensor::empty(s, DType::i32);
  for (int64_t i = 0; i < ids.numel(); i++) ids.data<int32_t>()[i] = int32_t(std::min<double>(V - 1, get(f, i) * V));
  ids.data<int32_t>()[0] = 3 % int32_t(V);  // repeated ids: positions 0, 1 and the last share a row
  ids.data<int32_t>()[1] = 3 % int32_t(V);
  ids.data<int32_t>()[ids.numel() - 1] = 3 % int32_t(V);
  return ids;
}
Tensor ids_to_device(const Tensor& h) {
  Tensor d = Tensor::empty(h.shape(), DType::i32, Device::cuda);
  ops::copy(h, d);
  return d;
}
}  // namespace

DBT_TEST(cuda_embedding_matches_reference) {
  uint64_t seed = 1;
  for (DType dt : float_types())
    for (auto [ids_shape, V, D] : {std::tuple<Shape, int64_t, int64_t>{Shape{2, 77}, 1000, 768},
                                   std::tuple<Shape, int64_t, int64_t>{Shape{5}, 7, 3},
                                   std::tuple<Shape, int64_t, int64_t>{Shape{3, 4, 5}, 50, 33}}) {
      std::string what = "embedding ids " + ids_shape.str() + " table [" + std::to_string(V) + "," + std::to_string(D) + "]";
      Tensor ids = random_ids(ids_shape, V, seed++), table = rnd({V, D}, seed++);
      std::vector<int64_t> ys = ids_shape.vec();
      ys.push_back(D);
      Tensor dy = rnd(Shape(ys), seed++), dt0 = rnd({V, D}, seed++);
      Tensor gids = ids_to_device(ids);

      Tensor want = Tensor::empty(Shape(ys), DType::f64);
      ops::embedding_forward(ids, rounded64(table, dt), want);
      Tensor y = poisoned(Shape(ys), dt);
      ops::embedding_forward(gids, upload(table, dt), y);
      expect_close_dev(y, want, dt, what + " forward (exact copies)", 0.0);

      Tensor wd = rounded64(dt0, dt);
      ops::embedding_backward(ids, rounded64(dy, dt), wd);
      Tensor gd = upload(dt0, dt);
      ops::embedding_backward(gids, upload(dy, dt), gd);
      expect_close_dev(gd, wd, dt, what + " backward (accumulated)");
      if (dt == DType::f32) {  // same additions in the same order as the CPU's f32 path: same bits
        Tensor cd = clone(dt0);
        ops::embedding_backward(ids, dy, cd);
        expect_equal_bits(download_raw(gd), cd, what + " backward bits vs CPU f32");
      }
    }
}

DBT_TEST(cuda_embedding_rejects_bad_ids) {
  Tensor ids = Tensor::empty({4}, DType::i32);
  for (int i = 0; i < 4; i++) ids.data<int32_t>()[i] = i;
  ids.data<int32_t>()[2] = 10;
  Tensor table = upload(rnd({10, 4}, 1), DType::f32), y = poisoned({4, 4}, DType::f32);
  Tensor gids = ids_to_device(ids);
  expect_throws<OpError>([&] { ops::embedding_forward(gids, table, y); },
                         "token id 10 at position 2 is outside the table's 10 rows", "forward id check");
  expect_throws<OpError>([&] { ops::embedding_backward(gids, y, table); }, "token id 10 at position 2",
                         "backward id check");
  ops::fill(table, 1.0);  // the device is still usable
  EXPECT_TRUE(get(download(table), 0) == 1.0, "usable after the error");
}

DBT_TEST(cuda_timestep_embedding_matches_reference) {
  for (DType dt : float_types())
    for (int dim : {320, 7, 2}) {
      Tensor t = Tensor::empty({5});
      const double ts[5] = {0.0, 1.0, 37.0, 500.0, 999.0};  // integer timesteps as training draws them
      for (int i = 0; i < 5; i++) set(t, i, ts[i]);
      // The reference in f32 (the argument formed in f32 like PyTorch) on t rounded to dt (bf16: 999 -> 1000).
      Tensor want32 = Tensor::empty({5, dim});
      ops::ref::timestep_embedding(to_dtype(rounded64(t, dt), DType::f32), dim, 10000.0f, want32);
      Tensor y = poisoned({5, dim}, dt);
      ops::timestep_embedding(upload(t, dt), dim, 10000.0f, y);
      expect_close_dev(y, to_dtype(want32, DType::f64), dt, "timestep_embedding dim " + std::to_string(dim));
    }
}

DBT_TEST(cuda_sum_and_mean_match_reference) {
  uint64_t seed = 300;
  for (DType dt : float_types())
    for (const Shape& s : {Shape{1}, Shape{1000}, Shape{3, 16385}, Shape{2, 4, 64, 64}, Shape{1000003}})
      for (bool mean : {false, true}) {
        std::string what = std::string(mean ? "mean " : "sum ") + s.str();
        // Mean away from 0 (the relative check is meaningful), sums kept inside f16's range (65504).
        const double scale = std::min(1.0, 20000.0 / double(s.numel()));
        Tensor x = rnd(s, seed++, -0.5 * scale, 1.5 * scale);
        Tensor want = Tensor::empty({1}, DType::f64);
        ops::reduce_all(rounded64(x, dt), mean, want);
        Tensor y = poisoned({1}, dt);
        ops::reduce_all(upload(x, dt), mean, y);
        expect_close_dev(y, want, dt, what);

        Tensor dy = rnd({1}, seed++), wdx = Tensor::empty(s, DType::f64);
        ops::reduce_all_backward(rounded64(dy, dt), mean, wdx);
        Tensor dx = poisoned(s, dt);
        ops::reduce_all_backward(upload(dy, dt), mean, dx);
        // dy / numel is subnormal in f16 for long tensors: compare with the reference rounded to the dtype.
        expect_close_dev(dx, rounded64(wdx, dt), dt, what + " backward");
      }
}

DBT_TEST(cuda_sum_is_deterministic) {
  Tensor x = upload(rnd({3000017}, 9), DType::f32), a = poisoned({1}, DType::f32), b = poisoned({1}, DType::f32);
  ops::reduce_all(x, false, a);
  ops::reduce_all(x, false, b);
  expect_equal_bits(download_raw(a), download_raw(b), "two sums of the same tensor");
}

DBT_TEST(cuda_mse_loss_matches_reference) {
  uint64_t seed = 400;
  for (DType dt : float_types())
    for (const Shape& s : {Shape{2, 4, 64, 64}, Shape{3, 5}, Shape{1, 40000}, Shape{7}})
      for (bool weighted : {false, true}) {
        std::string what = std::string("mse ") + s.str() + (weighted ? " weighted" : "");
        const int64_t N = s[0];
        Tensor pred = rnd(s, seed++), target = rnd(s, seed++), w = rnd({N}, seed++, 0.1, 2.0), dl = rnd({1}, seed++);
        Tensor p64 = rounded64(pred, dt), t64 = rounded64(target, dt), w64 = rounded64(w, dt);
        Tensor loss = Tensor::empty({1}, DType::f64), ps = Tensor::empty({N}, DType::f64);
        ops::mse_loss_forward(p64, t64, weighted ? &w64 : nullptr, loss, &ps);
        Tensor gp = upload(pred, dt), gt = upload(target, dt), gw = upload(w, dt);
        Tensor gl = poisoned({1}, dt), gps = poisoned({N}, dt);
        ops::mse_loss_forward(gp, gt, weighted ? &gw : nullptr, gl, &gps);
        expect_close_dev(gl, loss, dt, what + " loss");
        expect_close_dev(gps, ps, dt, what + " per-sample");
        Tensor gl2 = poisoned({1}, dt);  // per_sample is optional
        ops::mse_loss_forward(gp, gt, weighted ? &gw : nullptr, gl2, nullptr);
        expect_close_dev(gl2, loss, dt, what + " loss without per-sample");

        Tensor wdp = Tensor::empty(s, DType::f64);
        ops::mse_loss_backward(p64, t64, weighted ? &w64 : nullptr, rounded64(dl, dt), wdp);
        Tensor dp = poisoned(s, dt);
        ops::mse_loss_backward(gp, gt, weighted ? &gw : nullptr, upload(dl, dt), dp);
        expect_close_dev(dp, wdp, dt, what + " dpred");
      }
}
