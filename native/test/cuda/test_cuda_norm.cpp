// GroupNorm (+SiLU, both SD eps, groups spanning several statistics chunks) and LayerNorm on the GPU against
// the CPU reference (f64 on inputs rounded to the dtype). The backward runs from the statistics the GPU
// forward saved (downloaded for the reference), so both sides normalise with the same mean and rstd.
// Backward sums cancel (dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat))): tolerances get slack 10.
#include "cuda_util.h"

using namespace dbt;
using namespace dbt::test;
using namespace dbt::test::cu;
using ops::GroupNormParams;

namespace {

void gn_case(DType dt, const Shape& xs, GroupNormParams p, uint64_t seed) {
  const int64_t C = xs[1], N = xs[0];
  Tensor x = rnd(xs, seed, 1.0, 3.0), ga = rnd({C}, seed + 1, 0.5, 1.5), be = rnd({C}, seed + 2);
  Tensor dy = rnd(xs, seed + 3), dg0 = rnd({C}, seed + 4), db0 = rnd({C}, seed + 5);
  std::string what = "group_norm " + xs.str() + " G" + std::to_string(p.groups) + " eps " + std::to_string(p.eps) +
                     (p.silu ? " +silu" : "");
  Tensor x64 = rounded64(x, dt), ga64 = rounded64(ga, dt), be64 = rounded64(be, dt);
  Tensor ry = Tensor::empty(xs, DType::f64), rm = Tensor::empty({N, p.groups}, DType::f64),
         rr = Tensor::empty({N, p.groups}, DType::f64);
  ops::group_norm_forward(x64, ga64, be64, p, ry, &rm, &rr);
  Tensor gx = upload(x, dt), gga = upload(ga, dt), gbe = upload(be, dt);
  Tensor y = poisoned(xs, dt), m = poisoned({N, p.groups}, dt), r = poisoned({N, p.groups}, dt);
  ops::group_norm_forward(gx, gga, gbe, p, y, &m, &r);
  expect_close_dev(y, ry, dt, what + " y");
  expect_close_dev(m, rm, dt, what + " mean");
  expect_close_dev(r, rr, dt, what + " rstd");
  Tensor y2 = poisoned(xs, dt);  // statistics are optional
  ops::group_norm_forward(gx, gga, gbe, p, y2, nullptr, nullptr);
  expect_close_dev(y2, ry, dt, what + " y without statistics");

  Tensor m64 = download(m), r64 = download(r);
  Tensor rdx = Tensor::empty(xs, DType::f64), rdg = rounded64(dg0, dt), rdb = rounded64(db0, dt);
  ops::group_norm_backward(x64, ga64, be64, m64, r64, rounded64(dy, dt), p, &rdx, &rdg, &rdb);
  Tensor dx = poisoned(xs, dt), dg = upload(dg0, dt), db = upload(db0, dt);
  ops::group_norm_backward(gx, gga, gbe, m, r, upload(dy, dt), p, &dx, &dg, &db);
  expect_close_dev(dx, rdx, dt, what + " dx", 10);
  expect_close_dev(dg, rdg, dt, what + " dgamma (accumulated)", 10);
  expect_close_dev(db, rdb, dt, what + " dbeta (accumulated)", 10);
  Tensor dx2 = poisoned(xs, dt);  // dx alone
  ops::group_norm_backward(gx, gga, gbe, m, r, upload(dy, dt), p, &dx2, nullptr, nullptr);
  expect_close_dev(dx2, rdx, dt, what + " dx alone", 10);
}

void ln_case(DType dt, const Shape& xs, float eps, uint64_t seed) {
  const int64_t C = xs[xs.ndim() - 1], R = xs.numel() / C;
  Tensor x = rnd(xs, seed, -1.0, 2.0), ga = rnd({C}, seed + 1, 0.5, 1.5), be = rnd({C}, seed + 2);
  Tensor dy = rnd(xs, seed + 3), dg0 = rnd({C}, seed + 4), db0 = rnd({C}, seed + 5);
  std::string what = "layer_norm " + xs.str();
  Tensor x64 = rounded64(x, dt), ga64 = rounded64(ga, dt), be64 = rounded64(be, dt);
  Tensor ry = Tensor::empty(xs, DType::f64), rm = Tensor::empty({R}, DType::f64), rr = Tensor::empty({R}, DType::f64);
  ops::layer_norm_forward(x64, ga64, be64, eps, ry, &rm, &rr);
  Tensor gx = upload(x, dt), gga = upload(ga, dt);
  Tensor y = poisoned(xs, dt), m = poisoned({R}, dt), r = poisoned({R}, dt);
  ops::layer_norm_forward(gx, gga, upload(be, dt), eps, y, &m, &r);
  expect_close_dev(y, ry, dt, what + " y");
  expect_close_dev(m, rm, dt, what + " mean");
  expect_close_dev(r, rr, dt, what + " rstd");

  Tensor rdx = Tensor::empty(xs, DType::f64), rdg = rounded64(dg0, dt), rdb = rounded64(db0, dt);
  ops::layer_norm_backward(x64, ga64, download(m), download(r), rounded64(dy, dt), &rdx, &rdg, &rdb);
  Tensor dx = poisoned(xs, dt), dg = upload(dg0, dt), db = upload(db0, dt);
  ops::layer_norm_backward(gx, gga, m, r, upload(dy, dt), &dx, &dg, &db);
  expect_close_dev(dx, rdx, dt, what + " dx", 10);
  expect_close_dev(dg, rdg, dt, what + " dgamma (accumulated)", 10);
  expect_close_dev(db, rdb, dt, what + " dbeta (accumulated)", 10);
}

}  // namespace

DBT_TEST(cuda_group_norm_matches_reference) {
  uint64_t seed = 1;
  for (DType dt : float_types()) {
    gn_case(dt, {2, 8, 5, 3}, GroupNormParams{4, 1e-5f, false}, seed += 10);
    gn_case(dt, {2, 8, 5, 3}, GroupNormParams{4, 1e-6f, true}, seed += 10);
    gn_case(dt, {3, 64, 7}, GroupNormParams{32, 1e-6f, false}, seed += 10);
    gn_case(dt, {1, 64, 9, 11}, GroupNormParams{32, 1e-5f, true}, seed += 10);
    // 3 elements per group (one per row). Not 2: then xhat = +-t with 1 - t^2 ~ 4 eps / (x1 - x2)^2, and dx =
    // rstd (1 - t^2) (d1 g1 - d2 g2) / 2 is a difference of O(1) terms ~1e-4 apart: f32 rounding alone is
    // ~1e-3 of it, past the tolerance for ~30 % of random draws (emulated), whatever the kernel.
    gn_case(dt, {2, 6, 1, 1}, GroupNormParams{2, 1e-5f, true}, seed += 10);
    gn_case(dt, {2, 96, 33, 31}, GroupNormParams{32, 1e-5f, true}, seed += 10);  // 3069 per group
    gn_case(dt, {1, 64, 67, 65}, GroupNormParams{32, 1e-6f, true}, seed += 10);  // 8710 per group: 2 chunks
    gn_case(dt, {2, 32, 130, 129}, GroupNormParams{16, 1e-5f, false}, seed += 10);  // 33540: 5 chunks
  }
}

DBT_TEST(cuda_layer_norm_matches_reference) {
  uint64_t seed = 500;
  for (DType dt : float_types()) {
    ln_case(dt, {7, 33}, 1e-5f, seed += 10);
    ln_case(dt, {2, 77, 768}, 1e-5f, seed += 10);    // CLIP
    ln_case(dt, {2, 300, 320}, 1e-5f, seed += 10);   // transformer block, many rows: several gradient chunks
    ln_case(dt, {3, 1281}, 1e-6f, seed += 10);
    ln_case(dt, {5}, 1e-5f, seed += 10);             // one row shorter than a warp
  }
}

DBT_TEST(cuda_group_norm_in_place) {
  for (DType dt : float_types()) {
    GroupNormParams p{4, 1e-5f, true};
    Tensor x = rnd({2, 8, 6, 5}, 77, -2.0, 1.0), ga = rnd({8}, 78, 0.5, 1.5), be = rnd({8}, 79);
    Tensor want = Tensor::empty(x.shape(), DType::f64);
    ops::group_norm_forward(rounded64(x, dt), rounded64(ga, dt), rounded64(be, dt), p, want, nullptr, nullptr);
    Tensor gx = upload(x, dt);
    ops::group_norm_forward(gx, upload(ga, dt), upload(be, dt), p, gx, nullptr, nullptr);
    expect_close_dev(gx, want, dt, "group_norm y = x");
  }
}
