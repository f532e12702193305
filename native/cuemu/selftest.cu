// cuemu's own tests: the emulated device language against what CUDA specifies (shuffles, block barriers
// with a reduction, WMMA against a plain product, dynamic shared memory), and the bugs it must report as
// launch failures instead of running on (a barrier in divergent code, a warp collective naming exited
// lanes, __trap, too much shared memory, a bad launch shape). Each failure case runs in a child process:
// a launch failure is sticky, as on a GPU.
#include <mma.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace {

int g_failed = 0;
void expect(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  if (!ok) g_failed++;
}

__global__ void shuffle_kernel(const float* x, float* sum, float* bcast, float* rot) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x, lane = threadIdx.x & 31;
  float v = x[i];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  sum[i] = v;
  bcast[i] = __shfl_sync(0xffffffffu, x[i], 5);
  rot[i] = __shfl_sync(0xffffffffu, x[i], (lane + 1) & 31);
}

__global__ void block_kernel(const int* flags, int* any, float* rev) {
  __shared__ float tile[256];
  const int t = threadIdx.x;
  tile[t] = float(t + 1000 * blockIdx.x);
  __syncthreads();
  rev[blockIdx.x * blockDim.x + t] = tile[blockDim.x - 1 - t];  // another thread's write: needs the barrier
  any[blockIdx.x * blockDim.x + t] = __syncthreads_or(flags[blockIdx.x * blockDim.x + t]);
}

// Reads its static shared array before anything writes it, in every block: garbage (NaN) on each block,
// never the previous block's values.
__global__ void unwritten_shared_kernel(float* out) {
  __shared__ float stale[32];
  out[blockIdx.x * 32 + threadIdx.x] = stale[threadIdx.x];
  __syncthreads();
  stale[threadIdx.x] = 1.0f;
}

__global__ void dynamic_kernel(float* out) {
  extern __shared__ __align__(16) float buf[];
  buf[threadIdx.x] = float(threadIdx.x) * 2.0f;
  __syncthreads();
  out[threadIdx.x] = buf[(threadIdx.x + 1) % blockDim.x];
}

__global__ void wmma_kernel(const __half* a, const __half* b, float* c) {
  using namespace nvcuda;
  wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
  wmma::fill_fragment(acc, 0.5f);
  wmma::load_matrix_sync(fa, a, 16);
  wmma::load_matrix_sync(fb, b, 16);
  wmma::mma_sync(acc, fa, fb, acc);
  wmma::store_matrix_sync(c, acc, 16, wmma::mem_col_major);
}

// Lanes 0-15 wait at the block barrier, lanes 16-31 of the same warp at a warp barrier: neither completes.
// (Threads that have exited count as arrived at __syncthreads, as on Volta and later GPUs.)
__global__ void divergent_barrier_kernel(float* out) {
  if (threadIdx.x < 16) __syncthreads();
  else if (threadIdx.x < 32) __syncwarp();
  out[threadIdx.x] = 1.0f;
}

__global__ void exited_lane_kernel(float* out) {
  if (threadIdx.x == 3) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
}

__global__ void trap_kernel(float* out) {
  if (threadIdx.x == 7) __trap();
  out[threadIdx.x] = 1.0f;
}

__global__ void noop_kernel(float*) {}

template <class T> T* dev_alloc(size_t n) {
  T* p = nullptr;
  if (cudaMalloc(&p, n * sizeof(T)) != cudaSuccess) std::abort();
  return p;
}

// Runs fn in a child process; returns the child's exit status.
int in_child(const std::function<int()>& fn) {
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    std::fclose(stderr);  // the emulator's own report of the failure is expected noise here
    std::_Exit(fn());
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

// A launch that must fail with `want`, after which (sticky) the stream reports it too when `sticky`.
void expect_launch_error(const char* what, cudaError_t want, bool sticky, const std::function<void(float*)>& launch) {
  const int rc = in_child([&] {
    float* out = dev_alloc<float>(64);
    launch(out);
    cudaError_t e = cudaGetLastError();
    if (e != want) return 1;
    if (sticky != (cudaStreamSynchronize(nullptr) != cudaSuccess)) return 2;
    if (!sticky) {  // the engine stays usable after a configuration error
      noop_kernel<<<1, 32>>>(out);
      if (cudaGetLastError() != cudaSuccess) return 3;
    }
    return 0;
  });
  expect(rc == 0, std::string(what) + (rc == 0 ? "" : " (child exit " + std::to_string(rc) + ")"));
}

}  // namespace

int main() {
  const int n = 64;
  std::vector<float> hx(n);
  for (int i = 0; i < n; i++) hx[size_t(i)] = float((i * 37) % 11) - 5.0f;
  float *x = dev_alloc<float>(n), *sum = dev_alloc<float>(n), *bc = dev_alloc<float>(n), *rot = dev_alloc<float>(n);
  cudaMemcpy(x, hx.data(), n * sizeof(float), cudaMemcpyHostToDevice);
  shuffle_kernel<<<2, 32>>>(x, sum, bc, rot);
  bool ok = cudaGetLastError() == cudaSuccess;
  for (int w = 0; w < 2; w++) {
    float s = 0;
    for (int l = 0; l < 32; l++) s += hx[size_t(w * 32 + l)];
    for (int l = 0; l < 32; l++) {
      const int i = w * 32 + l;
      ok = ok && sum[i] == s && bc[i] == hx[size_t(w * 32 + 5)] && rot[i] == hx[size_t(w * 32 + (l + 1) % 32)];
    }
  }
  expect(ok, "warp shuffles: xor butterfly sum, broadcast, rotation");

  int *flags = dev_alloc<int>(512), *any = dev_alloc<int>(512);
  float* rev = dev_alloc<float>(512);
  for (int i = 0; i < 512; i++) flags[i] = i == 300;  // only block 1 has a set flag
  block_kernel<<<2, 256>>>(flags, any, rev);
  ok = cudaGetLastError() == cudaSuccess;
  for (int i = 0; i < 512; i++)
    ok = ok && any[i] == (i >= 256) && rev[i] == float(255 - i % 256 + 1000 * (i / 256));
  expect(ok, "__syncthreads publishes shared writes; __syncthreads_or reduces per block");

  float* uw = dev_alloc<float>(64);
  unwritten_shared_kernel<<<2, 32>>>(uw);
  ok = cudaGetLastError() == cudaSuccess;
  for (int i = 0; i < 64; i++) ok = ok && std::isnan(uw[i]);
  expect(ok, "static shared memory starts as NaN in every block");

  float* dout = dev_alloc<float>(96);
  dynamic_kernel<<<1, 96, 96 * sizeof(float)>>>(dout);
  ok = cudaGetLastError() == cudaSuccess;
  for (int i = 0; i < 96; i++) ok = ok && dout[i] == float((i + 1) % 96) * 2.0f;
  expect(ok, "dynamic shared memory");

  __half *a = dev_alloc<__half>(256), *b = dev_alloc<__half>(256);
  float* c = dev_alloc<float>(256);
  for (int i = 0; i < 256; i++) {
    a[i] = __float2half_rn(float(i % 7) - 3.0f);
    b[i] = __float2half_rn(float(i % 5) * 0.25f);
  }
  wmma_kernel<<<1, 32>>>(a, b, c);
  ok = cudaGetLastError() == cudaSuccess;
  for (int m = 0; m < 16; m++)
    for (int j = 0; j < 16; j++) {
      float want = 0.5f;
      for (int k = 0; k < 16; k++) want += __half2float(a[m * 16 + k]) * __half2float(b[j * 16 + k]);  // col-major B
      ok = ok && c[j * 16 + m] == want;  // stored column-major
    }
  expect(ok, "WMMA 16x16x16 (row-major A, col-major B, col-major store) equals the plain product");

  ok = true;
  for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, 1e-3f, 3.14159f})
    ok = ok && __half2float(__float2half_rn(f)) == float(__half2float(__float2half_rn(f))) &&
         std::fabs(__half2float(__float2half_rn(f)) - f) <= std::fabs(f) * 0.0005f;
  ok = ok && std::isinf(__half2float(__float2half_rn(65520.0f))) && __half2float(__float2half_rn(2.9802322e-08f)) == 0.0f;
  ok = ok && __bfloat162float(__float2bfloat16_rn(1.00390625f)) == 1.0f &&  // tie to even
       __bfloat162float(__float2bfloat16_rn(1.01171875f)) == 1.015625f && std::isnan(__bfloat162float(__float2bfloat16_rn(NAN)));
  expect(ok, "f16 / bf16 conversions round to nearest even");

  expect_launch_error("a __syncthreads and a __syncwarp waiting on each other (deadlock) is a launch failure", cudaErrorLaunchFailure, true,
                      [](float* o) { divergent_barrier_kernel<<<1, 64>>>(o); });
  expect_launch_error("a shuffle naming an exited lane is a launch failure", cudaErrorLaunchFailure, true,
                      [](float* o) { exited_lane_kernel<<<1, 32>>>(o); });
  expect_launch_error("__trap is a launch failure", cudaErrorLaunchFailure, true,
                      [](float* o) { trap_kernel<<<1, 32>>>(o); });
  expect_launch_error("more than 1024 threads is a configuration error", cudaErrorInvalidConfiguration, false,
                      [](float* o) { noop_kernel<<<1, 1025>>>(o); });
  expect_launch_error("a grid of 0 blocks is a configuration error", cudaErrorInvalidConfiguration, false,
                      [](float* o) { noop_kernel<<<0, 32>>>(o); });
  expect_launch_error("dynamic shared memory above 48 KiB needs the attribute", cudaErrorInvalidValue, false,
                      [](float* o) { noop_kernel<<<1, 32, 64 * 1024>>>(o); });
  const int rc = in_child([] {
    float* out = dev_alloc<float>(32);
    if (cudaFuncSetAttribute(noop_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024) != cudaSuccess)
      return 1;
    noop_kernel<<<1, 32, 64 * 1024>>>(out);
    return cudaGetLastError() == cudaSuccess ? 0 : 2;
  });
  expect(rc == 0, "dynamic shared memory above 48 KiB runs after cudaFuncSetAttribute");

  std::printf("cuemu selftest: %d failed\n", g_failed);
  return g_failed ? 1 : 0;
}
