#include "core/cpu_features.h"

#include <cstdlib>
#include <cstring>

namespace dbt {
namespace {

SimdLevel detect() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return SimdLevel::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return SimdLevel::avx2;
#endif
  return SimdLevel::portable;
}

SimdLevel initial() {
  SimdLevel level = detect();
  if (const char* s = std::getenv("DBT_SIMD")) {
    SimdLevel want = level;
    if (!std::strcmp(s, "portable")) want = SimdLevel::portable;
    else if (!std::strcmp(s, "avx2")) want = SimdLevel::avx2;
    else if (!std::strcmp(s, "avx512")) want = SimdLevel::avx512;
    if (int(want) < int(level)) level = want;
  }
  return level;
}

SimdLevel g_level = initial();

}  // namespace

SimdLevel simd_level() { return g_level; }
SimdLevel detected_simd_level() { return detect(); }
void set_simd_level(SimdLevel level) {
  SimdLevel max = detect();
  g_level = int(level) > int(max) ? max : level;
}
const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::avx512: return "avx512";
    case SimdLevel::avx2: return "avx2";
    default: return "portable";
  }
}

}  // namespace dbt
