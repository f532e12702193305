// Host arithmetic of the CUDA backend, checked on every machine (no GPU or CUDA toolkit needed): the GEMM
// launch plan (split-K ranges, grid limits, workspace cap, and that the CUDA tests' shapes reach the paths
// they claim to test), the element-wise kernels' broadcast index maps and sum_to views against brute force,
// and the caching allocator's size classes.
#include <algorithm>
#include <vector>

#include "../cuda/allocator.h"
#include "../cuda/broadcast_map.h"
#include "../cuda/gemm_plan.h"
#include "harness.h"
#include "ops/elementwise.h"

using namespace dbt;
using namespace dbt::test;
namespace g = dbt::cuda::gemm;

namespace {

std::string plan_what(int M, int N, int K, int b, int sms, bool simt) {
  return "plan M" + std::to_string(M) + " N" + std::to_string(N) + " K" + std::to_string(K) + " batches " +
         std::to_string(b) + " sms " + std::to_string(sms) + (simt ? " simt" : " tc");
}

void check_plan(int M, int N, int K, int b, int sms, bool simt) {
  const g::Plan p = g::plan(M, N, K, b, sms, simt);
  const std::string what = plan_what(M, N, K, b, sms, simt);
  EXPECT_TRUE(p.bm == p.bn && (simt ? p.bm == g::kSimtBM && !p.big : p.bm == (p.big ? 128 : 64)), what);
  EXPECT_TRUE(p.k_per_split > 0 && p.k_per_split % g::kBK == 0 && g::kBK % g::kSimtBK == 0,
              what + ": k ranges start on tile boundaries of both kernels");
  EXPECT_TRUE(p.splits >= 1 && p.splits <= g::kMaxSplits, what);
  if (K == 0) {
    EXPECT_TRUE(p.splits == 1, what + ": K 0 runs one (empty) split");
  } else {
    EXPECT_TRUE(int64_t(p.splits) * p.k_per_split >= K, what + ": the splits cover K");
    EXPECT_TRUE(int64_t(p.splits - 1) * p.k_per_split < K, what + ": no split is empty");
  }
  if (K < 8 * g::kBK) EXPECT_TRUE(p.splits == 1, what + ": short K is never split");
  if (p.splits > 1) {
    EXPECT_TRUE(p.k_per_split >= 4 * g::kBK, what + ": each split keeps >= 4 k-tiles");
    EXPECT_TRUE(int64_t(p.splits) * b * M * N * 4 <= g::kMaxWorkspaceBytes, what + ": workspace cap");
    EXPECT_TRUE(p.grid_x * p.grid_y * b < 2 * int64_t(sms), what + ": split only when tiles are too few");
  }
  EXPECT_TRUE(p.grid_x * p.bn >= N && (p.grid_x - 1) * p.bn < N, what + ": grid x covers N exactly");
  EXPECT_TRUE(p.grid_y * p.bm >= M && (p.grid_y - 1) * p.bm < M, what + ": grid y covers M exactly");
  EXPECT_TRUE(p.grid_z == int64_t(b) * p.splits, what);
  EXPECT_TRUE((p.error != nullptr) == (p.grid_y > 65535 || p.grid_z > 65535), what + ": grid limits");
}

// Offset of output index i in an operand of shape s broadcast to out, from scratch.
int64_t broadcast_offset(const Shape& out, const Shape& s, int64_t i) {
  int64_t off = 0, stride = 1, rem = i;
  for (int d = out.ndim() - 1; d >= 0; d--) {
    const int64_t c = rem % out[d];
    rem /= out[d];
    const int sd = d - (out.ndim() - s.ndim());
    if (sd >= 0) {
      if (s[sd] > 1) off += c * stride;
      stride *= s[sd];
    }
  }
  return off;
}

Shape random_shape(Rng& r, int ndim, int64_t max_dim) {
  std::vector<int64_t> d;
  for (int i = 0; i < ndim; i++) d.push_back(1 + r.below(max_dim));
  return Shape(d);
}

// A shape that broadcasts to `full`: a suffix of its dims, each kept or set to 1.
Shape random_reduced(Rng& r, const Shape& full) {
  const int nd = 1 + int(r.below(full.ndim()));
  std::vector<int64_t> d;
  for (int i = full.ndim() - nd; i < full.ndim(); i++) d.push_back(r.below(3) == 0 ? 1 : full[i]);
  return Shape(d);
}

}  // namespace

DBT_TEST(cuda_gemm_plan_invariants) {
  const int dims[] = {1, 5, 63, 64, 65, 77, 128, 129, 320, 640, 1280, 4096, 8192};
  const int ks[] = {0, 1, 31, 32, 33, 255, 256, 257, 1000, 4096, 5760, 8192, 65536, 1 << 20};
  for (int sms : {40, 46, 108, 114, 132})
    for (bool simt : {false, true})
      for (int M : dims)
        for (int N : dims)
          for (int K : ks)
            for (int b : {1, 2, 16}) check_plan(M, N, K, b, sms, simt);
  // Grid limits are errors, not failed launches.
  EXPECT_TRUE(g::plan(64, 64, 64, 70000, 132, false).error != nullptr, "batches above 65535");
  EXPECT_TRUE(g::plan(65535 * 128, 16, 64, 1, 132, false).error == nullptr, "M at the grid.y limit");
  EXPECT_TRUE(g::plan(65535 * 128 + 1, 16, 64, 1, 132, false).error != nullptr, "M past the grid.y limit");
}

DBT_TEST(cuda_gemm_plan_reaches_the_paths_the_cuda_tests_claim) {
  // test/cuda/test_cuda_gemm.cpp and test_cuda_conv2d.cpp name these shapes as covering 128x128 tiles and
  // split-K; on the GPUs gpu-check.sh runs on (H100 SXM/H200: 132 SMs, H100 PCIe: 114, A100: 108).
  for (int sms : {108, 114, 132}) {
    const std::string on = " on " + std::to_string(sms) + " SMs";
    EXPECT_TRUE(g::plan(1536, 1408, 72, 1, sms, false).big, "gemm 1536x1408x72 uses 128x128 tiles" + on);
    EXPECT_TRUE(!g::plan(64, 64, 64, 1, sms, false).big, "gemm 64x64x64 uses 64x64 tiles" + on);
    for (bool simt : {false, true}) {
      EXPECT_TRUE(g::plan(64, 80, 4096, 1, sms, simt).splits > 1, "gemm 64x80x4096 splits K" + on);
      EXPECT_TRUE(g::plan(320, 320, 8192, 1, sms, simt).splits > 1, "gemm 320x320x8192 splits K" + on);
      EXPECT_TRUE(g::plan(64, 576, 2 * 256, 1, sms, simt).splits > 1, "conv 64->64 3x3 16x16 b2 dW splits K" + on);
      EXPECT_TRUE(g::plan(37, 65, 200, 1, sms, simt).splits == 1, "K 200 is not split" + on);
    }
  }
}

DBT_TEST(cuda_broadcast_maps_match_brute_force) {
  Rng r(11);
  int kinds[4] = {0, 0, 0, 0};
  for (int t = 0; t < 3000; t++) {
    const Shape out = random_shape(r, 1 + int(r.below(kMaxDims)), 4);
    const Shape s = t % 7 == 0 ? out : random_reduced(r, out);
    ops::BroadcastIndex bi(out, s, out);
    const cuda::IndexMap mp = cuda::make_map(out, s, bi.stride_a);
    cuda::OutDims od;
    for (int d = 0; d < kMaxDims; d++) od.d[d] = bi.dims[d];
    kinds[mp.kind]++;
    for (int64_t i = 0; i < out.numel(); i++)
      if (cuda::map_index(mp, od, i) != broadcast_offset(out, s, i))
        throw TestFailure("map kind " + std::to_string(mp.kind) + " of " + s.str() + " -> " + out.str() +
                          " wrong at output " + std::to_string(i));
  }
  for (int k = 0; k < 4; k++) EXPECT_TRUE(kinds[k] > 50, "every map kind exercised: kind " + std::to_string(k));
}

DBT_TEST(cuda_sum_to_views_match_brute_force) {
  Rng r(12);
  int fast = 0, general = 0;
  for (int t = 0; t < 3000; t++) {
    const Shape xs = random_shape(r, 1 + int(r.below(kMaxDims)), 4);
    const Shape ys = random_reduced(r, xs);
    const std::string what = "sum_to " + xs.str() + " -> " + ys.str();
    std::vector<int64_t> yidx(size_t(xs.numel()));  // output of each x element
    for (int64_t i = 0; i < xs.numel(); i++) yidx[size_t(i)] = broadcast_offset(xs, ys, i);
    int64_t A, J, R;
    if (cuda::sum_to_ajr(xs, ys, A, J, R)) {
      fast++;
      EXPECT_TRUE(A * J * R == xs.numel() && J == ys.numel(), what + ": [A, J, R] view sizes");
      for (int64_t i = 0; i < xs.numel(); i++)
        if ((i / R) % J != yidx[size_t(i)]) throw TestFailure(what + ": [A, J, R] view wrong at " + std::to_string(i));
    } else {
      general++;
      const cuda::ReduceDims rd = cuda::make_reduce_dims(xs, ys);
      const int64_t count = xs.numel() / ys.numel();
      std::vector<std::vector<int64_t>> want(size_t(ys.numel())), got(size_t(ys.numel()));
      for (int64_t i = 0; i < xs.numel(); i++) want[size_t(yidx[size_t(i)])].push_back(i);
      for (int64_t j = 0; j < ys.numel(); j++) {
        const int64_t base = cuda::reduce_base(rd, j);
        for (int64_t q = 0; q < count; q++) got[size_t(j)].push_back(cuda::reduce_offset(rd, base, q));
        std::sort(got[size_t(j)].begin(), got[size_t(j)].end());
        EXPECT_TRUE(got[size_t(j)] == want[size_t(j)], what + ": terms of output " + std::to_string(j));
      }
    }
  }
  EXPECT_TRUE(fast > 100 && general > 100, "both sum_to paths exercised");
}

DBT_TEST(cuda_allocation_classes) {
  std::vector<size_t> sizes = {0, 1, 511, 512, 513, (size_t(1) << 20) - 1, size_t(1) << 20, (size_t(1) << 20) + 1,
                               size_t(3) << 27, size_t(123456789), size_t(1) << 40};
  Rng r(13);
  for (int i = 0; i < 2000; i++) sizes.push_back(size_t(r.below(int64_t(1) << (1 + r.below(40)))));
  std::sort(sizes.begin(), sizes.end());
  size_t prev = 0;
  for (size_t b : sizes) {
    const size_t c = cuda::allocation_class(b);
    const std::string what = "class of " + std::to_string(b) + " = " + std::to_string(c);
    EXPECT_TRUE(c >= b && c > 0 && c % 512 == 0, what);
    EXPECT_TRUE(c - b <= std::max<size_t>(512, b / 8), what + ": waste at most 512 B or 12.5 %");
    EXPECT_TRUE(cuda::allocation_class(c) == c, what + ": a class is its own class");
    EXPECT_TRUE(c >= prev, what + ": monotonic");
    prev = c;
  }
}
