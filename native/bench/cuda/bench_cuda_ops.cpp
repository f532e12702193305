// SD1.5 op shapes at 512x512 (64x64 latents), batch 2 (one instance + one class image), bf16.
#include <cstdarg>
#include <cstdio>
#include <string>

#include "bench_cuda.h"
#include "ops/ops.h"

namespace dbt::bench::cuda {
namespace {

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

const DType kBf16 = DType::bf16;

void conv_case(int N, int C, int H, int O, int k, int stride, int pad, bool backward) {
  const int Ho = (H + 2 * pad - k) / stride + 1;
  const double flops = 2.0 * N * O * Ho * Ho * double(C) * k * k * (backward ? 2 : 1);
  std::string name = fmt("conv%dx%d %d->%d %dx%d s%d b%d %s", k, k, C, O, H, H, stride, N, backward ? "bwd" : "fwd");
  std::string spec = fmt("{\"kind\":\"conv_%s\",\"N\":%d,\"C\":%d,\"H\":%d,\"W\":%d,\"O\":%d,\"k\":%d,\"stride\":%d,"
                         "\"pad\":%d,\"dtype\":\"bf16\"}",
                         backward ? "bwd" : "fwd", N, C, H, H, O, k, stride, pad);
  Registrar reg(Case{name, spec, flops, [=] {
                       Tensor x = device_random({N, C, H, H}, kBf16, 1), w = device_random({O, C, k, k}, kBf16, 2, 0.05f);
                       Tensor b = device_random({O}, kBf16, 3);
                       Tensor y = Tensor::empty({N, O, Ho, Ho}, kBf16, Device::cuda);
                       auto p = ops::Conv2dParams::make(stride, pad);
                       if (!backward) return std::function<void()>([=]() mutable { ops::conv2d_forward(x, w, &b, p, y); });
                       Tensor dy = device_random({N, O, Ho, Ho}, kBf16, 4), dx = Tensor::empty(x.shape(), kBf16, Device::cuda);
                       Tensor dw = Tensor::empty(w.shape(), kBf16, Device::cuda), db = Tensor::empty({O}, kBf16, Device::cuda);
                       ops::fill(dw, 0.0);
                       ops::fill(db, 0.0);
                       return std::function<void()>(
                           [=]() mutable { ops::conv2d_backward(x, w, dy, p, &dx, &dw, &db); });
                     }});
}

void linear_case(int rows, int in, int out, bool backward, const char* what) {
  const double flops = 2.0 * rows * double(in) * out * (backward ? 2 : 1);
  std::string name = fmt("linear %s %dx%d->%d %s", what, rows, in, out, backward ? "bwd" : "fwd");
  std::string spec = fmt("{\"kind\":\"linear_%s\",\"rows\":%d,\"in\":%d,\"out\":%d,\"dtype\":\"bf16\"}",
                         backward ? "bwd" : "fwd", rows, in, out);
  Registrar reg(Case{name, spec, flops, [=] {
                       Tensor x = device_random({rows, in}, kBf16, 1), w = device_random({out, in}, kBf16, 2, 0.05f);
                       Tensor b = device_random({out}, kBf16, 3);
                       if (!backward) {
                         Tensor y = Tensor::empty({rows, out}, kBf16, Device::cuda);
                         return std::function<void()>([=]() mutable { ops::linear_forward(x, w, &b, y); });
                       }
                       Tensor dy = device_random({rows, out}, kBf16, 4), dx = Tensor::empty({rows, in}, kBf16, Device::cuda);
                       Tensor dw = Tensor::empty({out, in}, kBf16, Device::cuda), db = Tensor::empty({out}, kBf16, Device::cuda);
                       ops::fill(dw, 0.0);
                       ops::fill(db, 0.0);
                       return std::function<void()>([=]() mutable { ops::linear_backward(x, w, dy, &dx, &dw, &db); });
                     }});
}

void gemm_case(int M, int N, int K) {
  std::string name = fmt("gemm %dx%dx%d", M, N, K);
  std::string spec = fmt("{\"kind\":\"gemm\",\"M\":%d,\"N\":%d,\"K\":%d,\"dtype\":\"bf16\"}", M, N, K);
  Registrar reg(Case{name, spec, 2.0 * M * N * double(K), [=] {
                       Tensor a = device_random({M, K}, kBf16, 1), b = device_random({K, N}, kBf16, 2);
                       Tensor c = Tensor::empty({M, N}, kBf16, Device::cuda);
                       return std::function<void()>([=]() mutable { ops::gemm(a, b, c); });
                     }});
}

struct Cases {
  Cases() {
    gemm_case(4096, 4096, 4096);
    // ResBlock 3x3 convs per level (batch 2), conv_in, a downsample.
    for (bool bwd : {false, true}) {
      conv_case(2, 320, 64, 320, 3, 1, 1, bwd);
      conv_case(2, 640, 32, 640, 3, 1, 1, bwd);
      conv_case(2, 1280, 16, 1280, 3, 1, 1, bwd);
      conv_case(2, 1280, 8, 1280, 3, 1, 1, bwd);
      conv_case(2, 4, 64, 320, 3, 1, 1, bwd);
      conv_case(2, 320, 64, 320, 3, 2, 1, bwd);
      conv_case(2, 320, 64, 320, 1, 1, 0, bwd);  // proj_in
    }
    // Transformer linears at 64x64 (4096 tokens x 2): q/k/v/out, GEGLU in, FF out, cross-attn k/v.
    for (bool bwd : {false, true}) {
      linear_case(8192, 320, 320, bwd, "qkvo");
      linear_case(8192, 320, 2560, bwd, "geglu-in");
      linear_case(8192, 1280, 320, bwd, "ff-out");
      linear_case(154, 768, 320, bwd, "cross-kv");
      linear_case(512, 1280, 5120, bwd, "geglu-in@16");
    }
  }
} g_cases;

}  // namespace
}  // namespace dbt::bench::cuda
