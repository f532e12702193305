// conv2d on SD1.5 UNet shapes (batch 1). "conv3x3 CxH" = C->C channels, HxH pixels, stride 1 pad 1.
#include "bench_cases.h"
#include "ops/conv2d.h"

namespace dbt::bench {
namespace {

Case conv_case(const char* what, int64_t C, int64_t O, int64_t H, int64_t K, ops::Conv2dParams p, bool backward,
               int64_t N = 1) {
  Shape ys = ops::conv2d_output_shape({N, C, H, H}, {O, C, K, K}, p);
  double flops = 2.0 * double(N * O) * double(C * K * K) * double(ys[2] * ys[3]) * (backward ? 2.0 : 1.0);
  std::string name = std::string(what) + " " + std::to_string(C) + "->" + std::to_string(O) + " " +
                     std::to_string(H) + "x" + std::to_string(H) + (backward ? " backward" : "") +
                     (N > 1 ? " batch " + std::to_string(N) : "");
  return Case{name, flops, [=] {
                Tensor x = filled({N, C, H, H}, 1), w = filled({O, C, K, K}, 2), b = filled({O}, 3);
                Tensor y = Tensor::empty(ys), dy = filled(ys, 4);
                Tensor dx = Tensor::empty({N, C, H, H}), dw = Tensor::zeros({O, C, K, K}), db = Tensor::zeros({O});
                if (backward)
                  return std::function<void()>([=]() mutable { ops::conv2d_backward(x, w, dy, p, &dx, &dw, &db); });
                return std::function<void()>([=]() mutable { ops::conv2d_forward(x, w, &b, p, y); });
              }};
}

using ops::Conv2dParams;
Registrar r1(conv_case("conv3x3", 320, 320, 64, 3, Conv2dParams::make(1, 1), false));
Registrar r2(conv_case("conv3x3", 640, 640, 32, 3, Conv2dParams::make(1, 1), false));
Registrar r3(conv_case("conv3x3", 1280, 1280, 16, 3, Conv2dParams::make(1, 1), false));
Registrar r4(conv_case("conv3x3 s2", 320, 320, 64, 3, Conv2dParams::make(2, 1), false));
Registrar r5(conv_case("conv1x1", 320, 320, 64, 1, Conv2dParams::make(1, 0), false));
Registrar r6(conv_case("conv3x3", 320, 320, 64, 3, Conv2dParams::make(1, 1), true));
Registrar r7(conv_case("conv3x3", 640, 640, 32, 3, Conv2dParams::make(1, 1), true));
Registrar r8(conv_case("conv3x3 s2", 320, 320, 64, 3, Conv2dParams::make(2, 1), true));
// The deepest UNet levels: weights (59 MB) dominate, few pixels (SD1.5 at 64x64 / 32x32 latents).
Registrar r9(conv_case("conv3x3", 1280, 1280, 16, 3, Conv2dParams::make(1, 1), true));
Registrar r10(conv_case("conv3x3", 1280, 1280, 8, 3, Conv2dParams::make(1, 1), true));
Registrar r11(conv_case("conv3x3", 1280, 1280, 8, 3, Conv2dParams::make(1, 1), false));
// Batch 2 (DreamBooth with prior preservation): the weight gradient is one product over both images.
Registrar r12(conv_case("conv3x3", 1280, 1280, 8, 3, Conv2dParams::make(1, 1), true, 2));

}  // namespace
}  // namespace dbt::bench
