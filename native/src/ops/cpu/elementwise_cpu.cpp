// Element-wise ops, fast CPU version: broadcast dims are coalesced, the innermost run is a plain loop
// with stride 0 or 1 per operand (vectorisable), work is split over fixed output ranges.
#include <algorithm>
#include <vector>

#include "core/thread_pool.h"
#include "ops/elementwise.h"

namespace dbt::ops::cpu {
namespace {

constexpr int64_t kGrain = 1 << 15;

// Up to kMaxDims dims after merging neighbours that are contiguous for every operand.
struct Layout {
  int n = 0;
  int64_t dims[kMaxDims];
  int64_t sa[kMaxDims], sb[kMaxDims];
};

Layout coalesce(const BroadcastIndex& bi) {
  Layout l;
  for (int i = 0; i < kMaxDims; i++) {
    if (bi.dims[i] == 1) continue;
    if (l.n > 0) {
      int j = l.n - 1;
      if (l.sa[j] == bi.stride_a[i] * bi.dims[i] && l.sb[j] == bi.stride_b[i] * bi.dims[i]) {
        l.dims[j] *= bi.dims[i];
        l.sa[j] = bi.stride_a[i];
        l.sb[j] = bi.stride_b[i];
        continue;
      }
    }
    l.dims[l.n] = bi.dims[i];
    l.sa[l.n] = bi.stride_a[i];
    l.sb[l.n] = bi.stride_b[i];
    l.n++;
  }
  if (l.n == 0) {
    l.n = 1;
    l.dims[0] = 1;
    l.sa[0] = l.sb[0] = 0;
  }
  return l;
}

// Offsets of a and b for the start of output row `row` (row = flat index over all dims but the last).
void row_offsets(const Layout& l, int64_t row, int64_t& oa, int64_t& ob) {
  oa = ob = 0;
  for (int i = l.n - 2; i >= 0; i--) {
    int64_t idx = row % l.dims[i];
    row /= l.dims[i];
    oa += idx * l.sa[i];
    ob += idx * l.sb[i];
  }
}

template <class F>
void inner(const float* A, int64_t sa, const float* B, int64_t sb, float* Y, int64_t n, F f) {
  if (sa && sb)
    for (int64_t i = 0; i < n; i++) Y[i] = f(A[i], B[i]);
  else if (sa)
    for (int64_t i = 0; i < n; i++) Y[i] = f(A[i], B[0]);
  else if (sb)
    for (int64_t i = 0; i < n; i++) Y[i] = f(A[0], B[i]);
  else
    for (int64_t i = 0; i < n; i++) Y[i] = f(A[0], B[0]);
}

template <class F> void broadcast_map(const Tensor& a, const Tensor& b, float* Y, const Shape& out, F f) {
  const Layout l = coalesce(BroadcastIndex(out, a.shape(), b.shape()));
  const float* A = a.data<float>();
  const float* B = b.data<float>();
  const int64_t len = l.dims[l.n - 1], total = out.numel();
  const int64_t sa = l.sa[l.n - 1], sb = l.sb[l.n - 1];
  parallel_for(total, kGrain, [&](int64_t b0, int64_t e0) {
    int64_t pos = b0;
    while (pos < e0) {
      const int64_t row = pos / len, col = pos % len, seg = std::min(len - col, e0 - pos);
      int64_t oa, ob;
      row_offsets(l, row, oa, ob);
      inner(A + oa + col * sa, sa, B + ob + col * sb, sb, Y + pos, seg, f);
      pos += seg;
    }
  });
}

}  // namespace

void binary_forward(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& y) {
  // y may alias a or b only when it has that operand's full shape: element i reads before it writes i.
  float* Y = y.data<float>();
  switch (op) {
    case BinaryOp::add: return broadcast_map(a, b, Y, y.shape(), [](float u, float v) { return u + v; });
    case BinaryOp::sub: return broadcast_map(a, b, Y, y.shape(), [](float u, float v) { return u - v; });
    case BinaryOp::mul: return broadcast_map(a, b, Y, y.shape(), [](float u, float v) { return u * v; });
  }
}

void binary_backward(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& dy, Tensor* da, Tensor* db) {
  // grad of each operand = sum_to(dy (* other operand for mul), operand's shape)
  auto grad_for = [&](const Tensor& self, const Tensor& other, Tensor* d, float sign) {
    if (!d) return;
    if (op == BinaryOp::mul) {
      Tensor prod = Tensor::empty(dy.shape());
      broadcast_map(dy, other, prod.data<float>(), dy.shape(), [](float u, float v) { return u * v; });
      sum_to(prod, *d);
    } else if (self.shape() == dy.shape()) {
      const float* DY = dy.data<float>();
      float* D = d->data<float>();
      parallel_for(dy.numel(), kGrain, [&](int64_t b0, int64_t e0) {
        for (int64_t i = b0; i < e0; i++) D[i] = sign * DY[i];
      });
    } else {
      sum_to(dy, *d);
      if (sign != 1.0f) axpby(sign, *d, 0.0f, *d);
    }
  };
  grad_for(a, b, da, 1.0f);
  grad_for(b, a, db, op == BinaryOp::sub ? -1.0f : 1.0f);
}

void axpby(float alpha, const Tensor& x, float beta, Tensor& y) {
  const float* X = x.data<float>();
  float* Y = y.data<float>();
  parallel_for(x.numel(), kGrain, [&](int64_t b0, int64_t e0) {
    if (beta == 0.0f)
      for (int64_t i = b0; i < e0; i++) Y[i] = alpha * X[i];
    else
      for (int64_t i = b0; i < e0; i++) Y[i] = alpha * X[i] + beta * Y[i];
  });
}

void clamp(const Tensor& x, float lo, float hi, Tensor& y) {
  const float* X = x.data<float>();
  float* Y = y.data<float>();
  parallel_for(x.numel(), kGrain, [&](int64_t b0, int64_t e0) {
    for (int64_t i = b0; i < e0; i++) Y[i] = std::min(hi, std::max(lo, X[i]));
  });
}

void sum_to(const Tensor& x, Tensor& y) {
  const float* X = x.data<float>();
  float* Y = y.data<float>();
  if (x.numel() == y.numel()) {
    std::copy(X, X + x.numel(), Y);
    return;
  }
  // Operand "b" = y (stride 0 on the dims it sums over); output = x.
  const Layout l = coalesce(BroadcastIndex(x.shape(), x.shape(), y.shape()));
  if (l.n == 2 && l.sb[0] == 0 && l.sb[1] == 1) {
    // [rows, cols] -> [cols]: column sums, rows in order, columns split over threads.
    const int64_t rows = l.dims[0], cols = l.dims[1];
    parallel_for(cols, 64, [&](int64_t c0, int64_t c1) {
      std::vector<double> acc(size_t(c1 - c0), 0.0);
      for (int64_t r = 0; r < rows; r++) {
        const float* xr = X + r * cols;
        for (int64_t c = c0; c < c1; c++) acc[size_t(c - c0)] += double(xr[c]);
      }
      for (int64_t c = c0; c < c1; c++) Y[c] = float(acc[size_t(c - c0)]);
    });
    return;
  }
  // General: each y element sums the x elements that map to it, in x's order.
  // Dims of x split into kept (sb != 0) and summed (sb == 0) ones; x strides are the row-major ones.
  int64_t xs[kMaxDims];
  int64_t s = 1;
  for (int i = l.n - 1; i >= 0; i--) {
    xs[i] = s;
    s *= l.dims[i];
  }
  std::vector<int> keep, red;
  for (int i = 0; i < l.n; i++) (l.sb[i] ? keep : red).push_back(i);
  // The innermost summed dim, when it is x's last dim, is summed as a contiguous run.
  const bool contiguous = !red.empty() && red.back() == l.n - 1;
  const int64_t run = contiguous ? l.dims[l.n - 1] : 1;
  if (contiguous) red.pop_back();
  int64_t red_count = 1;
  for (int i : red) red_count *= l.dims[i];
  parallel_for(y.numel(), 1, [&](int64_t y0, int64_t y1) {
    for (int64_t yi = y0; yi < y1; yi++) {
      int64_t base = 0, rem = yi;
      for (int k = int(keep.size()) - 1; k >= 0; k--) {
        int i = keep[size_t(k)];
        base += (rem % l.dims[i]) * xs[i];
        rem /= l.dims[i];
      }
      double acc = 0.0;
      for (int64_t r = 0; r < red_count; r++) {
        int64_t off = base, rr = r;
        for (int k = int(red.size()) - 1; k >= 0; k--) {
          int i = red[size_t(k)];
          off += (rr % l.dims[i]) * xs[i];
          rr /= l.dims[i];
        }
        const float* xr = X + off;
        for (int64_t t = 0; t < run; t++) acc += double(xr[t]);
      }
      Y[yi] = float(acc);
    }
  });
}

}  // namespace dbt::ops::cpu
