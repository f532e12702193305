// GEMM family on the GPU: batched gemm with transposes and broadcast operands, linear forward/backward.
// All products go through gemm_engine.cuh (tensor cores for f16/bf16, exact SIMT for f32).
#include "common.cuh"
#include "gemm_engine.cuh"
#include "ops/gemm.h"
#include "reduce.cuh"

namespace dbt::cuda {
namespace {

using gemm::Dense;
using gemm::Epilogue;

int to_int(int64_t v, const char* op, const char* what) {
  if (v > 0x7fffffff) throw OpError(op, std::string(what) + " is too large for one CUDA launch", "");
  return int(v);
}

template <class T> void gemm_t(const Tensor& a, const Tensor& b, Tensor& c, const ops::GemmParams& p) {
  const int M = to_int(c.dim(-2), "gemm", "M"), N = to_int(c.dim(-1), "gemm", "N");
  const int K = to_int(p.trans_a ? a.dim(-2) : a.dim(-1), "gemm", "K");
  const int batches = to_int(c.numel() / std::max<int64_t>(int64_t(M) * N, 1), "gemm", "batch");
  const int64_t sa = a.ndim() == 2 ? 0 : int64_t(M) * K, sb = b.ndim() == 2 ? 0 : int64_t(K) * N;
  Epilogue<T> epi;
  epi.c = dptr<T>(c);
  epi.batch_stride = int64_t(M) * N;
  epi.ldc = N;
  epi.alpha = p.alpha;
  epi.beta = p.beta;
  std::initializer_list<Operand> ops = {{"a", &a}, {"b", &b}, {"c", &c}};
  const T* ap = dptr<T>(a);
  const T* bp = dptr<T>(b);
  // A (m, k): a [M, K] (k contiguous) or, transposed, a [K, M]. B (n, k): b [K, N] or, transposed, b [N, K].
  if (!p.trans_a && p.trans_b)
    gemm::run<T>(Dense<T, true>{ap, sa, K, M, K}, Dense<T, true>{bp, sb, K, N, K}, epi, M, N, K, batches, "gemm", ops);
  else if (!p.trans_a && !p.trans_b)
    gemm::run<T>(Dense<T, true>{ap, sa, K, M, K}, Dense<T, false>{bp, sb, N, N, K}, epi, M, N, K, batches, "gemm", ops);
  else if (p.trans_a && p.trans_b)
    gemm::run<T>(Dense<T, false>{ap, sa, M, M, K}, Dense<T, true>{bp, sb, K, N, K}, epi, M, N, K, batches, "gemm", ops);
  else
    gemm::run<T>(Dense<T, false>{ap, sa, M, M, K}, Dense<T, false>{bp, sb, N, N, K}, epi, M, N, K, batches, "gemm", ops);
}

void gemm_op(const Tensor& a, const Tensor& b, Tensor& c, const ops::GemmParams& p) {
  DBT_CUDA_FLOAT_SWITCH(c.dtype(), "gemm", gemm_t<T>(a, b, c, p));
}

// y [R, O] = x [R, I] @ w[O, I]^T + b
template <class T> void linear_forward_t(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y) {
  const int I = to_int(w.dim(1), "linear_forward", "in"), O = to_int(w.dim(0), "linear_forward", "out");
  const int R = to_int(x.numel() / std::max<int64_t>(I, 1), "linear_forward", "rows");
  Epilogue<T> epi;
  epi.c = dptr<T>(y);
  epi.ldc = O;
  if (b) {
    epi.bias = dptr<T>(*b);
    epi.bias_mode = 1;
  }
  gemm::run<T>(Dense<T, true>{dptr<T>(x), 0, I, R, I}, Dense<T, true>{dptr<T>(w), 0, I, O, I}, epi, R, O, I, 1,
               "linear_forward", {{"x", &x}, {"w", &w}, {"b", b}, {"y", &y}});
}

void linear_forward(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y) {
  DBT_CUDA_FLOAT_SWITCH(y.dtype(), "linear_forward", linear_forward_t<T>(x, w, b, y));
}

template <class T>
void linear_backward_t(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor* dw, Tensor* db) {
  const int I = to_int(w.dim(1), "linear_backward", "in"), O = to_int(w.dim(0), "linear_backward", "out");
  const int R = to_int(x.numel() / std::max<int64_t>(I, 1), "linear_backward", "rows");
  std::initializer_list<Operand> ops = {{"x", &x}, {"w", &w}, {"dy", &dy}, {"dx", dx}, {"dw", dw}, {"db", db}};
  if (dx) {  // dx [R, I] = dy [R, O] @ w [O, I]
    Epilogue<T> epi;
    epi.c = dptr<T>(*dx);
    epi.ldc = I;
    gemm::run<T>(Dense<T, true>{dptr<T>(dy), 0, O, R, O}, Dense<T, false>{dptr<T>(w), 0, I, I, O}, epi, R, I, O, 1,
                 "linear_backward", ops);
  }
  if (dw) {  // dw [O, I] += dy^T @ x: A (o, r) = dy[r, o], B (i, r) = x[r, i]
    Epilogue<T> epi;
    epi.c = dptr<T>(*dw);
    epi.ldc = I;
    epi.beta = 1.0f;
    gemm::run<T>(Dense<T, false>{dptr<T>(dy), 0, O, O, R}, Dense<T, false>{dptr<T>(x), 0, I, I, R}, epi, O, I, R, 1,
                 "linear_backward", ops);
  }
  if (db) sum_ajr<T, T>(dptr<T>(dy), R, O, 1, dptr<T>(*db), true, "linear_backward");
}

void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor* dw, Tensor* db) {
  DBT_CUDA_FLOAT_SWITCH(dy.dtype(), "linear_backward", linear_backward_t<T>(x, w, dy, dx, dw, db));
}

}  // namespace

void register_gemm() {
  ops::gemm_table().set(Device::cuda, &gemm_op);
  ops::linear_forward_table().set(Device::cuda, &linear_forward);
  ops::linear_backward_table().set(Device::cuda, &linear_backward);
}

}  // namespace dbt::cuda
