// Batched transpose y [B, C, R] = x [B, R, C] (image <-> token layouts around the transformer blocks):
// 32 x 32 tiles through shared memory so both the reads and the writes are coalesced; any dtype, moved as
// 1/2/4/8-byte words.
#include "common.cuh"
#include "ops/shape_ops.h"

namespace dbt::cuda {
namespace {

constexpr int kT = 32;

template <class U> __global__ void transpose_kernel(const U* __restrict__ x, U* __restrict__ y, int R, int C) {
  __shared__ U tile[kT][kT + 1];  // +1: columns fall in different banks
  const int64_t off = int64_t(blockIdx.z) * R * C;
  const int r0 = blockIdx.y * kT, c0 = blockIdx.x * kT, tx = threadIdx.x;
  for (int i = threadIdx.y; i < kT; i += blockDim.y) {
    const int r = r0 + i, c = c0 + tx;
    if (r < R && c < C) tile[i][tx] = x[off + int64_t(r) * C + c];
  }
  __syncthreads();
  for (int i = threadIdx.y; i < kT; i += blockDim.y) {
    const int c = c0 + i, r = r0 + tx;
    if (r < R && c < C) y[off + int64_t(c) * R + r] = tile[tx][i];
  }
}

void transpose(const Tensor& x, Tensor& y) {
  const int64_t B = x.dim(0), R = x.dim(1), C = x.dim(2);
  if (B == 0 || R == 0 || C == 0) return;
  const int64_t gr = (R + kT - 1) / kT, gc = (C + kT - 1) / kT;  // gc <= 2^26 when C fits an int
  if (B > 65535 || gr > 65535 || R > 0x7fffffff || C > 0x7fffffff)
    throw OpError("transpose", "tensor too large for one CUDA launch", describe_operands({{"x", &x}, {"y", &y}}));
  const dim3 grid{unsigned(gc), unsigned(gr), unsigned(B)}, block{unsigned(kT), 8u};
  cudaStream_t st = stream();
  auto run = [&](auto word) {
    using U = decltype(word);
    transpose_kernel<U><<<grid, block, 0, st>>>(static_cast<const U*>(x.raw()), static_cast<U*>(y.raw()), int(R), int(C));
  };
  switch (dtype_size(x.dtype())) {
    case 1: run(uint8_t{}); break;
    case 2: run(uint16_t{}); break;
    case 4: run(uint32_t{}); break;
    case 8: run(uint64_t{}); break;
    default: throw OpError("transpose", std::string("unsupported dtype ") + dtype_name(x.dtype()), "");
  }
  check_launch("transpose", {{"x", &x}, {"y", &y}});
}

}  // namespace

void register_transpose() { ops::transpose_table().set(Device::cuda, &transpose); }

}  // namespace dbt::cuda
