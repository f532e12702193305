// Index arithmetic of the CUDA element-wise kernels (elementwise.cu): how a broadcast operand's index
// follows from the output index, and how sum_to views its reduction. Plain C++ usable on host and device
// (no CUDA headers), so the CPU test runner checks it against brute force (test/test_cuda_plan.cpp).
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "core/host_device.h"
#include "core/shape.h"

namespace dbt::cuda {

// How an operand's index follows from the output index i.
struct IndexMap {
  int kind = 0;     // 0: i (same shape); 1: i % m (operand repeats, e.g. bias [C] of [B,N,C]);
                    // 2: i / m (operand constant over the inner m, e.g. [N,C,1,1] of [N,C,H,W]); 3: general
  int64_t m = 1;
  int64_t stride[kMaxDims] = {};  // kind 3: stride per output dim (0 where broadcast)
};
struct OutDims {
  int64_t d[kMaxDims];  // output dims right-aligned to kMaxDims (leading 1s)
};

DBT_HD int64_t map_index(const IndexMap& mp, const OutDims& od, int64_t i) {
  switch (mp.kind) {
    case 0: return i;
    case 1: return i % mp.m;
    case 2: return i / mp.m;
    default: {
      int64_t off = 0, rem = i;
#ifdef __CUDA_ARCH__
#pragma unroll
#endif
      for (int d = kMaxDims - 1; d >= 0; d--) {
        int64_t c = rem % od.d[d];
        rem /= od.d[d];
        off += c * mp.stride[d];
      }
      return off;
    }
  }
}

// Operand shape `s` (broadcasting to `out`) -> its index map; bstride: the operand's strides right-aligned
// to kMaxDims with 0 on broadcast dims (ops::BroadcastIndex).
inline IndexMap make_map(const Shape& out, const Shape& s, const int64_t* bstride) {
  IndexMap mp;
  if (s == out) return mp;
  const int no = out.ndim();
  std::vector<int64_t> sp(size_t(no), 1);  // s right-aligned to out's rank
  for (int i = 0; i < s.ndim(); i++) sp[size_t(no - s.ndim() + i)] = s[i];
  int first = 0;
  while (first < no && sp[size_t(first)] == 1) first++;
  bool suffix = true;  // 1s, then out's trailing dims: the operand repeats every numel(s) outputs
  for (int d = first; d < no; d++) suffix = suffix && sp[size_t(d)] == out[d];
  if (suffix) {
    mp.kind = 1;
    mp.m = s.numel();
    return mp;
  }
  int last = no - 1;
  while (last >= 0 && sp[size_t(last)] == 1) last--;
  bool prefix = true;  // out's leading dims, then 1s: constant over blocks of numel(out)/numel(s)
  for (int d = 0; d <= last; d++) prefix = prefix && sp[size_t(d)] == out[d];
  if (prefix) {
    mp.kind = 2;
    mp.m = out.numel() / s.numel();
    return mp;
  }
  mp.kind = 3;
  for (int d = 0; d < kMaxDims; d++) mp.stride[d] = bstride[d];
  return mp;
}

// sum_to(x -> y) as out[j] = sum over a < A, r < R of x[(a * J + j) * R + r] when the reduced and kept dims
// of x (right-aligned with y, size-1 dims ignored) form one of the patterns K, R, RK, KR, RKR (runs of
// equal kinds merged). Returns false for other patterns (the general kernel handles them).
inline bool sum_to_ajr(const Shape& xs, const Shape& ys, int64_t& A, int64_t& J, int64_t& R) {
  std::vector<std::pair<char, int64_t>> groups;
  for (int i = 0; i < xs.ndim(); i++) {
    int yi = i - (xs.ndim() - ys.ndim());
    int64_t xd = xs[i], yd = yi >= 0 ? ys[yi] : 1;
    if (xd == 1) continue;
    char kind = yd == xd ? 'K' : 'R';
    if (!groups.empty() && groups.back().first == kind) groups.back().second *= xd;
    else groups.push_back({kind, xd});
  }
  std::string pat;
  for (auto& g : groups) pat += g.first;
  A = J = R = 1;
  if (pat == "" || pat == "K") J = groups.empty() ? 1 : groups[0].second;
  else if (pat == "R") R = groups[0].second;
  else if (pat == "RK") A = groups[0].second, J = groups[1].second;
  else if (pat == "KR") J = groups[0].second, R = groups[1].second;
  else if (pat == "RKR") A = groups[0].second, J = groups[1].second, R = groups[2].second;
  else return false;
  return true;
}

// The general sum_to: output j sums x at reduce_offset(rd, base(j), r) for r < count = numel(x) / numel(y).
struct ReduceDims {
  int64_t xstride[kMaxDims];  // x's contiguous strides (right-aligned)
  int64_t rdims[kMaxDims];    // sizes of the reduced dims (1 elsewhere)
  int64_t ydims[kMaxDims];    // y's dims right-aligned to x (1 where reduced)
};
inline ReduceDims make_reduce_dims(const Shape& xs, const Shape& ys) {
  ReduceDims rd;
  int off = kMaxDims - xs.ndim();
  int64_t stride = 1;
  for (int d = kMaxDims - 1; d >= 0; d--) {
    int i = d - off;
    int64_t xd = i >= 0 ? xs[i] : 1;
    int yi = i - (xs.ndim() - ys.ndim());
    int64_t yd = (i >= 0 && yi >= 0) ? ys[yi] : 1;
    rd.xstride[d] = stride;
    rd.ydims[d] = yd;
    rd.rdims[d] = yd == xd ? 1 : xd;
    stride *= xd;
  }
  return rd;
}
// Offset in x of output j's first term.
DBT_HD int64_t reduce_base(const ReduceDims& rd, int64_t j) {
  int64_t base = 0, rem = j;
  for (int d = kMaxDims - 1; d >= 0; d--) {
    base += (rem % rd.ydims[d]) * rd.xstride[d];
    rem /= rd.ydims[d];
  }
  return base;
}
// Offset in x of term r of the output whose first term is at base.
DBT_HD int64_t reduce_offset(const ReduceDims& rd, int64_t base, int64_t r) {
  int64_t off = base, q = r;
  for (int d = kMaxDims - 1; d >= 0; d--) {
    off += (q % rd.rdims[d]) * rd.xstride[d];
    q /= rd.rdims[d];
  }
  return off;
}

}  // namespace dbt::cuda
