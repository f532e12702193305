// The CUDA attention kernels' launch arithmetic (native/cuda/attention_plan.h), checked on every machine:
// head-dim padding, shared-memory regions (aligned, disjoint, inside the block's allocation, per-warp
// slices and WMMA fragments 32-byte aligned), and which block size each GPU generation gets.
#include <algorithm>
#include <string>
#include <vector>

#include "../cuda/attention_plan.h"
#include "harness.h"

using namespace dbt;
using namespace dbt::test;
using namespace dbt::cuda::attn;

namespace {

struct Region {
  size_t off, bytes, slice;  // slice: bytes of one warp's part (0: shared by the block)
  const char* name;
};

void check_regions(const std::vector<Region>& rs, size_t total, const std::string& what) {
  for (size_t i = 0; i < rs.size(); i++) {
    const Region& r = rs[i];
    EXPECT_TRUE(r.off % 128 == 0, what + " " + r.name + " 128-byte aligned");
    EXPECT_TRUE(r.off + r.bytes <= total, what + " " + r.name + " inside the block's shared memory");
    if (r.slice) EXPECT_TRUE(r.slice % 32 == 0, what + " " + r.name + " per-warp slices 32-byte aligned");
    for (size_t j = i + 1; j < rs.size(); j++)
      EXPECT_TRUE(r.off + r.bytes <= rs[j].off, what + " " + r.name + " before " + rs[j].name + ", disjoint");
  }
}

}  // namespace

DBT_TEST(cuda_attention_padded_dims) {
  for (int d = 1; d <= 300; d++) {
    const int p = padded_dim(d);
    if (d > 256) {
      EXPECT_TRUE(p == 0, "head dim " + std::to_string(d) + " is refused");
      continue;
    }
    bool smallest = true;
    for (int c : kPaddedDims) smallest = smallest && (c < d || p <= c);
    EXPECT_TRUE(p >= d && p % 16 == 0 && smallest, "head dim " + std::to_string(d) + " -> " + std::to_string(p));
  }
  EXPECT_TRUE(padded_dim(40) == 48 && padded_dim(80) == 80 && padded_dim(160) == 160 && padded_dim(64) == 64,
              "SD1.5's head dims 40/80/160 and CLIP's 64");
}

DBT_TEST(cuda_attention_shared_memory_layout) {
  for (int es : {2, 4})
    for (int dp : kPaddedDims)
      for (int w : {1, 2, 4}) {
        const std::string what = "es " + std::to_string(es) + " DP " + std::to_string(dp) + " warps " + std::to_string(w);
        const size_t row = size_t(row_ld(es, dp)) * es, prow = size_t(p_ld(es)) * es;
        EXPECT_TRUE(row % 16 == 0 && prow % 16 == 0, what + ": rows are whole 16-byte chunks");
        EXPECT_TRUE(es == 4 || (row_ld(es, dp) % 8 == 0 && p_ld(es) % 8 == 0 && kLdS % 4 == 0), what + ": WMMA ldm");
        const FwdSmem f(es, dp, w);
        check_regions({{f.q, w * kRows * row, kRows * row, "Q"},
                       {f.k, kTile * row, 0, "K"},
                       {f.v, kTile * row, 0, "V"},
                       {f.s, size_t(w) * kRows * kLdS * 4, kRows * kLdS * 4, "S"},
                       {f.p, w * kRows * prow, kRows * prow, "P"},
                       {f.f, size_t(w) * kRows * 4, 0, "row factors"}},
                      f.bytes, "forward " + what);
        const BwdSmem b(es, dp, w);
        const size_t n = size_t(std::max(w * kRows, kTile)) * 4;
        check_regions({{b.own_a, w * kRows * row, kRows * row, "own a"},
                       {b.own_b, w * kRows * row, kRows * row, "own b"},
                       {b.tile_a, kTile * row, 0, "tile a"},
                       {b.tile_b, kTile * row, 0, "tile b"},
                       {b.lse, n, 0, "lse"},
                       {b.delta, n, 0, "delta"},
                       {b.s, size_t(w) * kRows * kLdS * 4, kRows * kLdS * 4, "S"},
                       {b.dp, size_t(w) * kRows * kLdS * 4, kRows * kLdS * 4, "dP"},
                       {b.p, w * kRows * prow, kRows * prow, "P"},
                       {b.ds, w * kRows * prow, kRows * prow, "dS"}},
                      b.bytes, "backward " + what);
      }
}

DBT_TEST(cuda_attention_block_sizes_per_gpu) {
  const size_t kSm75 = 64 << 10, kSm86 = 99 << 10, kSm80 = 163 << 10, kSm90 = 227 << 10;
  size_t bytes = 0;
  for (int dp : kPaddedDims) {
    const std::string what = "DP " + std::to_string(dp);
    // f16/bf16 run on every supported GPU, f32 from sm_86's 99 KiB up to head dim 160.
    for (size_t limit : {kSm75, kSm86, kSm80, kSm90}) {
      EXPECT_TRUE(pick_warps<FwdSmem>(2, dp, limit, bytes) >= 1 && bytes <= limit, what + " 16-bit forward fits");
      EXPECT_TRUE(pick_warps<BwdSmem>(2, dp, limit, bytes) >= 1 && bytes <= limit, what + " 16-bit backward fits");
      if (limit >= kSm86 && dp <= 160) {
        EXPECT_TRUE(pick_warps<FwdSmem>(4, dp, limit, bytes) >= 1, what + " f32 forward fits");
        EXPECT_TRUE(pick_warps<BwdSmem>(4, dp, limit, bytes) >= 1, what + " f32 backward fits");
      }
    }
  }
  // SD1.5's shapes get full 4-warp blocks on A100/H100 and on sm_86/89 cards.
  for (int dp : {48, 80, 160})
    for (size_t limit : {kSm86, kSm80, kSm90}) {
      EXPECT_TRUE(pick_warps<FwdSmem>(2, dp, limit, bytes) == 4, "SD forward DP " + std::to_string(dp) + " 4 warps");
      if (dp <= 80 || limit >= kSm80)
        EXPECT_TRUE(pick_warps<BwdSmem>(2, dp, limit, bytes) == 4, "SD backward DP " + std::to_string(dp) + " 4 warps");
    }
  // Nothing fits: 0 warps and the one-warp size for the error message.
  EXPECT_TRUE(pick_warps<FwdSmem>(4, 256, 32 << 10, bytes) == 0 && bytes == FwdSmem(4, 256, 1).bytes,
              "f32 head dim 256 in 32 KiB: refused with the one-warp size");
}
