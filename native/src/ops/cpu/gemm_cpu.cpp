// GEMM family, fast CPU versions (on top of the packed SGEMM).
#include <algorithm>

#include "core/thread_pool.h"
#include "ops/cpu/sgemm.h"
#include "ops/gemm.h"

namespace dbt::ops::cpu {

void gemm(const Tensor& a, const Tensor& b, Tensor& c, const GemmParams& p) {
  const int64_t M = c.dim(-2), N = c.dim(-1);
  const int64_t K = p.trans_a ? a.dim(-2) : a.dim(-1);
  const int64_t batch = c.numel() / std::max<int64_t>(M * N, 1);
  const float* A = a.data<float>();
  const float* B = b.data<float>();
  float* C = c.data<float>();
  const int64_t lda = p.trans_a ? M : K, ldb = p.trans_b ? K : N;
  auto one = [&](int64_t bi) {
    const float* Ab = a.ndim() == 2 ? A : A + bi * M * K;
    const float* Bb = b.ndim() == 2 ? B : B + bi * K * N;
    dbt::cpu::sgemm(p.trans_a, p.trans_b, M, N, K, p.alpha, Ab, lda, Bb, ldb, p.beta, C + bi * M * N, N);
  };
  // Many small matrices: one batch entry per task. Otherwise each GEMM uses all threads.
  if (batch >= num_threads() && double(M) * N * K < double(1 << 21)) {
    parallel_for(batch, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t bi = b0; bi < b1; bi++) one(bi);
    });
  } else {
    for (int64_t bi = 0; bi < batch; bi++) one(bi);
  }
}

void linear_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y) {
  const int64_t in = w.dim(1), out = w.dim(0), rows = x.numel() / std::max<int64_t>(in, 1);
  float* Y = y.data<float>();
  if (b) {
    const float* Bv = b->data<float>();
    for (int64_t r = 0; r < rows; r++) std::copy(Bv, Bv + out, Y + r * out);
  }
  dbt::cpu::sgemm(false, true, rows, out, in, 1.0f, x.data<float>(), in, w.data<float>(), in, b ? 1.0f : 0.0f, Y,
                  out);
}

void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor* dw, Tensor* db) {
  const int64_t in = w.dim(1), out = w.dim(0), rows = x.numel() / std::max<int64_t>(in, 1);
  const float* DY = dy.data<float>();
  if (dx)  // [rows, in] = dy[rows, out] @ w[out, in]
    dbt::cpu::sgemm(false, false, rows, in, out, 1.0f, DY, out, w.data<float>(), in, 0.0f, dx->data<float>(), in);
  if (dw)  // [out, in] += dy^T @ x
    dbt::cpu::sgemm(true, false, out, in, rows, 1.0f, DY, out, x.data<float>(), in, 1.0f, dw->data<float>(), in);
  if (db) {
    // Column sums in row order: each thread owns a range of columns, so the result is split-independent.
    float* DB = db->data<float>();
    parallel_for(out, 256, [&](int64_t o0, int64_t o1) {
      for (int64_t r = 0; r < rows; r++) {
        const float* row = DY + r * out;
        for (int64_t o = o0; o < o1; o++) DB[o] += row[o];
      }
    });
  }
}

}  // namespace dbt::ops::cpu
