// SIMD level of this CPU, detected once at run time. Fast kernels pick their code path from it;
// DBT_SIMD=avx512|avx2|portable caps it (for tests of every path and for comparisons).
#pragma once

namespace dbt {

enum class SimdLevel { portable = 0, avx2 = 1, avx512 = 2 };

SimdLevel simd_level();
void set_simd_level(SimdLevel level);  // capped at what the CPU supports
SimdLevel detected_simd_level();       // what the CPU supports
const char* simd_level_name(SimdLevel level);

}  // namespace dbt
