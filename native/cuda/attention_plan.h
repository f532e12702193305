// Launch arithmetic of the attention kernels (attention.cu): head-dim padding, shared-memory carving and
// the block size. Plain host arithmetic without CUDA headers (also compiled into the kernels), so the CPU
// test runner checks its invariants (test/test_cuda_attention_plan.cpp) on machines without a GPU.
// es: bytes per element of the storage dtype (2: f16/bf16 on tensor cores, 4: f32 SIMT).
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/host_device.h"

namespace dbt::cuda::attn {

constexpr int kTile = 32;        // keys per key tile (forward, dQ); queries per query tile (dK/dV)
constexpr int kRows = 16;        // rows per warp
constexpr int kLdS = kTile + 4;  // f32 score tiles [16][kLdS]
constexpr int kMaxWarps = 4;     // blocks of 4, 2 or 1 warps
constexpr int kPaddedDims[] = {32, 48, 64, 80, 128, 160, 256};

constexpr int pad_for(int es) { return es == 2 ? 8 : 4; }            // keeps rows 16-byte aligned
constexpr int row_ld(int es, int dp) { return dp + pad_for(es); }    // [rows][DP] operand tiles
constexpr int p_ld(int es) { return kTile + pad_for(es); }           // [16][kTile] P / dS tiles

// The padded head dim (a multiple of 16) for head dim d; 0 above 256 (unsupported).
inline int padded_dim(int d) {
  for (int c : kPaddedDims)
    if (d <= c) return c;
  return 0;
}

// Shared-memory carving, identical on host (sizes) and device (pointers): regions 128-byte aligned.
struct Carve {
  size_t off = 0;
  DBT_HD size_t take(size_t bytes) {
    size_t o = off;
    off += (bytes + 127) & ~size_t(127);
    return o;
  }
};

// Forward (also the f32 lse recompute of the backward): Q rows of the block, one K and V tile, per warp a
// score tile, a P tile and 16 row factors.
struct FwdSmem {
  size_t q, k, v, s, p, f, bytes;
  DBT_HD FwdSmem(int es, int dp, int warps) {
    Carve c;
    q = c.take(size_t(warps) * kRows * row_ld(es, dp) * es);
    k = c.take(size_t(kTile) * row_ld(es, dp) * es);
    v = c.take(size_t(kTile) * row_ld(es, dp) * es);
    s = c.take(size_t(warps) * kRows * kLdS * 4);
    p = c.take(size_t(warps) * kRows * p_ld(es) * es);
    f = c.take(size_t(warps) * kRows * 4);
    bytes = c.off;
  }
};

// Backward passes: the block's own rows of two operands (K,V or Q,dO), one tile of the other two, the
// tile's lse/delta (dK/dV pass) or the block's (dQ pass), per warp two score tiles and two P/dS tiles.
struct BwdSmem {
  size_t own_a, own_b, tile_a, tile_b, lse, delta, s, dp, p, ds, bytes;
  DBT_HD BwdSmem(int es, int dpad, int warps) {
    Carve c;
    own_a = c.take(size_t(warps) * kRows * row_ld(es, dpad) * es);
    own_b = c.take(size_t(warps) * kRows * row_ld(es, dpad) * es);
    tile_a = c.take(size_t(kTile) * row_ld(es, dpad) * es);
    tile_b = c.take(size_t(kTile) * row_ld(es, dpad) * es);
    const int n = warps * kRows > kTile ? warps * kRows : kTile;
    lse = c.take(size_t(n) * 4);
    delta = c.take(size_t(n) * 4);
    s = c.take(size_t(warps) * kRows * kLdS * 4);
    dp = c.take(size_t(warps) * kRows * kLdS * 4);
    p = c.take(size_t(warps) * kRows * p_ld(es) * es);
    ds = c.take(size_t(warps) * kRows * p_ld(es) * es);
    bytes = c.off;
  }
};

// The largest block (4, 2 or 1 warps) whose shared memory is at most `limit` bytes (the device's opt-in
// maximum), with its size in `bytes`; 0 when even one warp does not fit.
template <class Smem> int pick_warps(int es, int dp, size_t limit, size_t& bytes) {
  for (int w = kMaxWarps; w >= 1; w /= 2) {
    bytes = Smem(es, dp, w).bytes;
    if (bytes <= limit) return w;
  }
  bytes = Smem(es, dp, 1).bytes;
  return 0;
}

}  // namespace dbt::cuda::attn
