// DBT_HD marks the pure arithmetic shared by the CPU core and the CUDA kernels (philox.h,
// cuda/broadcast_map.h, cuda/attention_plan.h): compiled for host and device by nvcc, plain inline elsewhere.
#pragma once

#ifdef __CUDACC__
#define DBT_HD __host__ __device__ __forceinline__
#else
#define DBT_HD inline
#endif
