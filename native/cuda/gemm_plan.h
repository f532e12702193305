// Launch plan of one product of the GEMM engine (gemm_engine.cuh): block tile, split-K and grid. Plain host
// arithmetic without CUDA headers, so the CPU test runner checks its invariants (test/test_cuda_plan.cpp)
// on machines without a GPU.
#pragma once
#include <algorithm>
#include <cstdint>

namespace dbt::cuda::gemm {

constexpr int kBK = 32;     // k tile of the tensor-core kernel
constexpr int kSimtBM = 64, kSimtBN = 64, kSimtBK = 16;  // exact f32 kernel (kSimtBK divides kBK)
constexpr int kMaxSplits = 64;
constexpr int64_t kMaxWorkspaceBytes = int64_t(256) << 20;

struct Plan {
  int bm = 0, bn = 0;  // block tile (square)
  bool big = false;    // 128x128 tensor-core tiles (else 64x64)
  int splits = 1;      // K ranges whose f32 partial sums are added in split order
  int k_per_split = kBK;  // a multiple of kBK (so of kSimtBK too); only the last split may be shorter
  int64_t grid_x = 0, grid_y = 0, grid_z = 0;  // N tiles, M tiles, batches * splits
  const char* error = nullptr;  // why the product cannot run as one launch (grid.y/z above 65535)
};

// M, N, batches > 0, K >= 0; sms: the device's multiprocessors; simt: the exact f32 kernel.
inline Plan plan(int M, int N, int K, int batches, int sms, bool simt) {
  Plan p;
  p.big = !simt && int64_t((M + 127) / 128) * ((N + 127) / 128) * batches >= sms;
  p.bm = p.bn = simt ? kSimtBM : p.big ? 128 : 64;
  const int64_t tiles = int64_t((M + p.bm - 1) / p.bm) * ((N + p.bn - 1) / p.bn) * batches;
  // Split K when the tiles cannot fill the GPU twice over and each split keeps >= 4 k-tiles of 32.
  int splits = 1;
  const int64_t want = 2 * int64_t(sms);
  if (tiles < want && K >= 8 * kBK) {
    int64_t s = std::min<int64_t>((want + tiles - 1) / tiles, K / (4 * kBK));
    const int64_t out_bytes = int64_t(M) * N * batches * 4;
    s = std::min<int64_t>(s, std::max<int64_t>(1, kMaxWorkspaceBytes / out_bytes));
    splits = int(std::max<int64_t>(1, std::min<int64_t>(s, kMaxSplits)));
  }
  int k_per_split = ((K + splits - 1) / splits + kBK - 1) / kBK * kBK;
  if (k_per_split == 0) k_per_split = kBK;
  p.splits = std::max(1, (K + k_per_split - 1) / k_per_split);
  p.k_per_split = k_per_split;
  p.grid_x = (N + p.bn - 1) / p.bn;
  p.grid_y = (M + p.bm - 1) / p.bm;
  p.grid_z = int64_t(batches) * p.splits;
  if (p.grid_z > 65535) p.error = "too many batches for one launch";
  else if (p.grid_y > 65535) p.error = "too many rows (M) for one launch";
  return p;
}

}  // namespace dbt::cuda::gemm
