// Optimizer updates and step utilities: AdamW, 8-bit blockwise AdamW (one tensor, or many tensors per
// launch), global gradient norm, clipping, EMA and the overflow check.
//
// Bit compatibility: the AdamW updates use the CPU fast version's f32 expression with explicitly rounded
// intrinsics (__fmul_rn, __fadd_rn, __fdiv_rn, __fsqrt_rn), which nvcc never contracts into FMAs, so
// (for f32 parameters) the parameters, absmax values and 8-bit codes equal the CPU's bit for bit. The CPU
// build must not contract either (x86-64 without -mfma does not).
// Stochastic rounding (AdamWParams::stochastic_rounding, bf16 parameters): the f32 result goes through
// core/philox.h's f32_bits_to_bf16_sr with the Philox word of the element, the same function and key the CPU
// uses, so those parameters are bit-identical too.
// Tensor lists (8-bit AdamW, norm, clipping, overflow check) go to one launch over all their tensors: a
// table of segments in device memory, each CTA finding its tensor by binary search over the segments' first
// blocks. The table is cached per op (TableCache): a training step passes the same tensors every time, so the
// steady state uploads nothing. A single tensor travels by value instead (the fused per-parameter AdamW step
// must not upload). Norm sums are f64 partials over fixed chunks, added in order by one block (deterministic).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <vector>

#include "common.cuh"
#include "core/philox.h"
#include "ops/optim.h"
#include "reduce.cuh"

namespace dbt::cuda {
namespace {

using ops::AdamWParams;

// ---- hyper-parameters, formed on the host exactly as the CPU does ----
struct AdamHyper {
  float b1, b2, gs, eps, omb1, omb2, decay, step, inv_bc2_sqrt;
};
AdamHyper make_hyper(const AdamWParams& p) {
  AdamHyper h;
  h.b1 = float(p.beta1);
  h.b2 = float(p.beta2);
  h.gs = float(p.grad_scale);
  h.eps = float(p.eps);
  h.omb1 = float(1.0 - p.beta1);
  h.omb2 = float(1.0 - p.beta2);
  h.decay = float(1.0 - p.lr * p.weight_decay);
  h.step = float(double(p.lr) / (1.0 - std::pow(double(p.beta1), double(p.step))));
  h.inv_bc2_sqrt = float(1.0 / std::sqrt(1.0 - std::pow(double(p.beta2), double(p.step))));
  return h;
}

// The CPU's AdamW element update; g already scaled. Updates m, v (in registers) and returns the parameter.
__device__ __forceinline__ float adam_step(const AdamHyper& h, float p, float g, float& m, float& v) {
  m = __fadd_rn(__fmul_rn(h.b1, m), __fmul_rn(h.omb1, g));
  v = __fadd_rn(__fmul_rn(h.b2, v), __fmul_rn(__fmul_rn(h.omb2, g), g));
  const float den = __fadd_rn(__fmul_rn(__fsqrt_rn(v), h.inv_bc2_sqrt), h.eps);
  return __fsub_rn(__fmul_rn(p, h.decay), __fdiv_rn(__fmul_rn(h.step, m), den));
}

template <class T>
__global__ void adamw_kernel(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ m, T* __restrict__ v,
                             AdamHyper h, int64_t n) {
  DBT_GRID_STRIDE(i, n) {
    float mi = to_float(m[i]), vi = to_float(v[i]);
    const float p = adam_step(h, to_float(param[i]), __fmul_rn(to_float(grad[i]), h.gs), mi, vi);
    m[i] = from_float<T>(mi);
    v[i] = from_float<T>(vi);
    param[i] = from_float<T>(p);
  }
}

// Stochastically rounded bf16 parameters, f32 moments: one thread per 4 elements (one Philox block).
__global__ void adamw_sr_kernel(uint16_t* __restrict__ param, const __nv_bfloat16* __restrict__ grad,
                                float* __restrict__ m, float* __restrict__ v, AdamHyper h, SrKey key, int64_t n) {
  DBT_GRID_STRIDE(b, (n + 3) / 4) {
    const Philox4 r = sr_block(key, b);
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const int64_t i = b * 4 + j;
      if (i < n) {
        float mi = m[i], vi = v[i];
        const float p = adam_step(h, __uint_as_float(uint32_t(param[i]) << 16), __fmul_rn(to_float(grad[i]), h.gs),
                                  mi, vi);
        m[i] = mi;
        v[i] = vi;
        param[i] = f32_bits_to_bf16_sr(__float_as_uint(p), r.v[j]);
      }
    }
  }
}

// ---- tensor tables ----
// A launch's tensors: `count` segments of a device table, or (table null) the one segment `one`, by value.
// S has `first`: the index of its tensor's first block in the launch's grid (ascending over the table).
template <class S> struct SegRef {
  const S* table;
  int count;
  S one;
};
// The index of the segment holding block b: the last one with first <= b.
template <class S> __device__ __forceinline__ int find_seg(const SegRef<S>& l, int64_t b) {
  int lo = 0, hi = l.count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (l.table[mid].first <= b) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
template <class S> __device__ __forceinline__ S seg_at(const SegRef<S>& l, int k) { return l.table ? l.table[k] : l.one; }

// The last table an op uploaded, reused while its bytes stay the same (content, not tensor identity, is the
// key: equal bytes describe the same pointers and sizes, so a hit is always right). A new table is one
// cudaMemcpyAsync from pageable memory, staged before the call returns. The returned tensor keeps the table
// alive until the caller has queued its launches; a replaced table's memory then goes back to the caching
// allocator, which only hands it to work queued later on the stream.
class TableCache {
 public:
  Tensor get(const void* data, size_t bytes, const char* op) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!dev_.defined() || bytes != host_.size() || std::memcmp(data, host_.data(), bytes) != 0) {
      Tensor t = Tensor::empty(Shape{int64_t(bytes)}, DType::u8, Device::cuda);
      check(cudaMemcpyAsync(t.raw(), data, bytes, cudaMemcpyHostToDevice, stream()), op);
      const auto* b = static_cast<const unsigned char*>(data);
      host_.assign(b, b + bytes);
      dev_ = t;
    }
    return dev_;
  }

 private:
  std::mutex mu_;
  std::vector<unsigned char> host_;
  Tensor dev_;
};
enum TableKind { kAdam8Table, kNormTable, kClipTable, kFiniteTable, kTableKinds };
TableCache& table_cache(TableKind k) {
  static TableCache* caches = new TableCache[kTableKinds];  // never destroyed: no device free after exit
  return caches[k];
}

// Consecutive segments grouped into launches of at most 2^31 - 1 blocks (the grid's x limit; one launch
// unless the tensors hold more blocks than any device could). Sets each segment's first block within
// its launch; a single segment over the limit is refused.
struct Launch {
  size_t seg0, count;
  int64_t blocks, base;  // base: the launch's first block over all launches
};
template <class S>
std::vector<Launch> plan_launches(std::vector<S>& segs, const std::vector<int64_t>& blocks, const char* op) {
  std::vector<Launch> out;
  int64_t base = 0;
  for (size_t i = 0; i < segs.size(); i++) {
    if (blocks[i] > 0x7fffffff) throw Error(std::string(op) + ": tensor too large for one launch");
    if (out.empty() || out.back().blocks + blocks[i] > 0x7fffffff) out.push_back(Launch{i, 0, 0, base});
    segs[i].first = decltype(segs[i].first)(out.back().blocks);
    out.back().count++;
    out.back().blocks += blocks[i];
    base += blocks[i];
  }
  return out;
}
// The table for these segments (several: device memory through the op's cache; one: nothing to upload).
template <class S> Tensor upload_table(const std::vector<S>& segs, TableKind kind, const char* op) {
  return segs.size() > 1 ? table_cache(kind).get(segs.data(), segs.size() * sizeof(S), op) : Tensor();
}
template <class S> SegRef<S> seg_ref(const Tensor& table, const std::vector<S>& segs, const Launch& l) {
  SegRef<S> r{};
  r.count = int(l.count);
  if (table.defined()) r.table = static_cast<const S*>(table.raw()) + l.seg0;
  else r.one = segs[l.seg0];
  return r;
}

// ---- 8-bit AdamW ----
// Signed code book, then unsigned (ops::dynamic_map). Global, not __constant__: every thread loads a
// different entry into shared memory, which constant memory would serialise.
__device__ float g_maps[512];

void upload_maps() {
  static std::once_flag once;
  std::call_once(once, [] {
    // The maps are static host arrays: the copy may complete after this returns.
    check(cudaMemcpyToSymbolAsync(g_maps, ops::dynamic_map(true), 256 * sizeof(float), 0, cudaMemcpyHostToDevice,
                                  stream()),
          "adamw8bit_update");
    check(cudaMemcpyToSymbolAsync(g_maps, ops::dynamic_map(false), 256 * sizeof(float), 256 * sizeof(float),
                                  cudaMemcpyHostToDevice, stream()),
          "adamw8bit_update");
  });
}

// The CPU's nearest_code: lower_bound, then the closer neighbour (ties to the lower code).
__device__ __forceinline__ uint8_t nearest_code(const float* map, float x) {
  int lo = 0, hi = 256;
  while (lo < hi) {
    const int mid = (lo + hi) >> 1;
    if (map[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  if (lo == 0) return 0;
  if (lo == 256) return 255;
  return uint8_t(__fsub_rn(x, map[lo - 1]) <= __fsub_rn(map[lo], x) ? lo - 1 : lo);
}

struct Adam8Seg {
  void* param;
  const void* grad;
  uint8_t* mq;
  float* ma;
  uint8_t* vq;
  float* va;
  int64_t n;
  int32_t first;     // index of this tensor's first quantisation block in the launch's grid (< 2^31)
  uint32_t stream;   // stochastic rounding stream (AdamW8bitTensor::sr_stream)
};
static_assert(sizeof(Adam8Seg) == 64, "no padding: TableCache compares the bytes");

constexpr int kAdam8Threads = 256;  // one thread per element of a 256-block, 8 per element of a 2048-block

// Quantisation blocks [blockIdx.x * per_cta, + per_cta) of the launch (a 256-element block is too little work
// for a whole CTA and its code-book load). Each: find its tensor (a binary search for the first block, then
// onwards), dequantise, update, new absmax (block max: order-free, exact), requantise. The old absmax is read
// by every thread before the block max's barrier and written after it; the loop is uniform over the CTA (its
// barriers are reached by every thread).
// SR: T is __nv_bfloat16 and the parameter is stored by stochastic rounding with key (sr_seed, sr_step,
// segment stream); each thread computes the Philox block of its own element (4 threads share one block).
template <class T, bool SR>
__global__ void __launch_bounds__(kAdam8Threads)
    adam8_kernel(SegRef<Adam8Seg> list, int block, int64_t total, int per_cta, AdamHyper h, uint64_t sr_seed,
                 uint64_t sr_step) {
  __shared__ float smap[256], umap[256], scratch[32];
  smap[threadIdx.x] = g_maps[threadIdx.x];
  umap[threadIdx.x] = g_maps[256 + threadIdx.x];
  __syncthreads();
  const int64_t b0 = int64_t(blockIdx.x) * per_cta, b1 = min(total, b0 + per_cta);
  const int per = block / kAdam8Threads;
  constexpr int kMaxPer = 2048 / kAdam8Threads;
  int k = b0 < b1 ? find_seg(list, b0) : 0;
  for (int64_t b = b0; b < b1; b++) {
    while (k + 1 < list.count && list.table[k + 1].first <= b) k++;
    const Adam8Seg s = seg_at(list, k);
    const int64_t qb = b - s.first, i0 = qb * block, len = min(int64_t(block), s.n - i0);
    T* P = static_cast<T*>(s.param);
    const T* G = static_cast<const T*>(s.grad);
    const float ma = s.ma[qb], va = s.va[qb];
    float mreg[kMaxPer], vreg[kMaxPer];
    float am = 0.0f, av = 0.0f;
#pragma unroll
    for (int j = 0; j < kMaxPer; j++) {
      const int64_t e = threadIdx.x + int64_t(j) * kAdam8Threads;
      mreg[j] = 0.0f;
      vreg[j] = 0.0f;
      if (j < per && e < len) {
        const int64_t i = i0 + e;
        float mi = __fmul_rn(smap[s.mq[i]], ma), vi = __fmul_rn(umap[s.vq[i]], va);
        const float p = adam_step(h, to_float(P[i]), __fmul_rn(to_float(G[i]), h.gs), mi, vi);
        if constexpr (SR) {
          SrKey key;
          key.seed = sr_seed;
          key.step = sr_step;
          key.stream = s.stream;
          const uint16_t bits = f32_bits_to_bf16_sr(__float_as_uint(p), sr_block(key, i >> 2).v[i & 3]);
          reinterpret_cast<uint16_t*>(P)[i] = bits;
        } else {
          P[i] = from_float<T>(p);
        }
        mreg[j] = mi;
        vreg[j] = vi;
        am = fmaxf(am, fabsf(mi));
        av = fmaxf(av, vi);
      }
    }
    am = block_max(am, scratch);
    av = block_max(av, scratch);
    if (threadIdx.x == 0) {
      s.ma[qb] = am;
      s.va[qb] = av;
    }
#pragma unroll
    for (int j = 0; j < kMaxPer; j++) {
      const int64_t e = threadIdx.x + int64_t(j) * kAdam8Threads;
      if (j < per && e < len) {
        const int64_t i = i0 + e;
        s.mq[i] = nearest_code(smap, am > 0.0f ? __fdiv_rn(mreg[j], am) : 0.0f);
        s.vq[i] = nearest_code(umap, av > 0.0f ? __fdiv_rn(vreg[j], av) : 0.0f);
      }
    }
  }
}

struct Adam8Tensor {
  Tensor* param;
  const Tensor* grad;
  Tensor *mq, *ma, *vq, *va;
  uint32_t stream;
};

void adam8_run(const std::vector<Adam8Tensor>& ts, int block, const AdamWParams& p) {
  std::vector<Adam8Seg> segs;
  std::vector<int64_t> blocks;
  for (const Adam8Tensor& t : ts) {
    const int64_t n = t.param->numel();
    if (n == 0) continue;
    segs.push_back(Adam8Seg{t.param->raw(), t.grad->raw(), dptr<uint8_t>(*t.mq), dptr<float>(*t.ma),
                            dptr<uint8_t>(*t.vq), dptr<float>(*t.va), n, 0, t.stream});
    blocks.push_back(ops::adamw8bit_blocks(n, block));
  }
  if (segs.empty()) return;
  upload_maps();
  const std::vector<Launch> launches = plan_launches(segs, blocks, "adamw8bit_update");
  const Tensor table = upload_table(segs, kAdam8Table, "adamw8bit_update");
  const AdamHyper h = make_hyper(p);
  const DType dt = ts[0].param->dtype();
  const int per_cta = block >= 2048 ? 1 : 8;
  for (const Launch& l : launches) {
    const SegRef<Adam8Seg> list = seg_ref(table, segs, l);
    const unsigned grid = unsigned((l.blocks + per_cta - 1) / per_cta);
    if (p.stochastic_rounding) {
      adam8_kernel<__nv_bfloat16, true><<<grid, kAdam8Threads, 0, stream()>>>(list, block, l.blocks, per_cta, h,
                                                                               p.sr_seed, uint64_t(p.step));
    } else {
      DBT_CUDA_FLOAT_SWITCH(dt, "adamw8bit_update", {
        adam8_kernel<T, false><<<grid, kAdam8Threads, 0, stream()>>>(list, block, l.blocks, per_cta, h, 0, 0);
      });
    }
    check_launch("adamw8bit_update", {{"param", ts.size() == 1 ? ts[0].param : nullptr}});
  }
}

// ---- tensor lists for the norm, clipping and overflow kernels ----
constexpr int64_t kListChunk = 16384;  // elements per block
struct Seg {
  void* p;
  int64_t n;
  int64_t first;  // first chunk of this tensor in the launch's grid
};
static_assert(sizeof(Seg) == 24, "no padding: TableCache compares the bytes");

// The non-empty tensors' segments and launches; the table (through `kind`'s cache) when several.
struct SegPlan {
  std::vector<Seg> segs;
  std::vector<Launch> launches;
  Tensor table;
  int64_t chunks = 0;  // over all launches
};
SegPlan plan_list(const std::vector<void*>& ptrs, const std::vector<int64_t>& sizes, TableKind kind, const char* op) {
  SegPlan s;
  std::vector<int64_t> blocks;
  for (size_t i = 0; i < ptrs.size(); i++) {
    if (sizes[i] == 0) continue;
    s.segs.push_back(Seg{ptrs[i], sizes[i], 0});
    blocks.push_back((sizes[i] + kListChunk - 1) / kListChunk);
    s.chunks += blocks.back();
  }
  s.launches = plan_launches(s.segs, blocks, op);
  s.table = upload_table(s.segs, kind, op);
  return s;
}

template <class T> __global__ void sumsq_kernel(SegRef<Seg> l, int64_t base, double* __restrict__ partial) {
  __shared__ double scratch[32];
  const int64_t b = blockIdx.x;
  const Seg s = seg_at(l, find_seg(l, b));
  const T* x = static_cast<const T*>(s.p);
  const int64_t i0 = (b - s.first) * kListChunk, i1 = min(s.n, i0 + kListChunk);
  double acc = 0.0;
  for (int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) {
    const double v = double(to_float(x[i]));
    acc += v * v;
  }
  acc = block_sum_d(acc, scratch);
  if (threadIdx.x == 0) partial[base + b] = acc;
}

template <class T> __global__ void norm_finish_kernel(const double* __restrict__ partial, int64_t n, T* __restrict__ out) {
  __shared__ double scratch[32];
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += partial[i];
  s = block_sum_d(s, scratch);
  if (threadIdx.x == 0) out[0] = from_float<T>(float(sqrt(s)));
}

// x *= c with c = min(1, max_norm / (norm + 1e-6)) (formed in double like the CPU); nothing written when c >= 1.
template <class T> __global__ void clip_kernel(SegRef<Seg> l, const T* __restrict__ norm, float max_norm) {
  const float c = float(fmin(1.0, double(max_norm) / (double(to_float(norm[0])) + 1e-6)));
  if (c >= 1.0f) return;
  const int64_t b = blockIdx.x;
  const Seg s = seg_at(l, find_seg(l, b));
  T* x = static_cast<T*>(s.p);
  const int64_t i0 = (b - s.first) * kListChunk, i1 = min(s.n, i0 + kListChunk);
  for (int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) x[i] = from_float<T>(to_float(x[i]) * c);
}

// found[0] = 1 when any element is inf or NaN (every writer stores the same value: order does not matter).
template <class T> __global__ void finite_kernel(SegRef<Seg> l, float* __restrict__ found) {
  const int64_t b = blockIdx.x;
  const Seg s = seg_at(l, find_seg(l, b));
  const T* x = static_cast<const T*>(s.p);
  const int64_t i0 = (b - s.first) * kListChunk, i1 = min(s.n, i0 + kListChunk);
  bool bad = false;
  for (int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) bad = bad || !isfinite(to_float(x[i]));
  if (__syncthreads_or(bad) && threadIdx.x == 0) found[0] = 1.0f;
}

// ema -= (1 - decay) * (ema - param), k = 1 - decay in f32 as the CPU forms it.
template <class T> __global__ void ema_kernel(T* __restrict__ ema, const T* __restrict__ param, float k, int64_t n) {
  DBT_GRID_STRIDE(i, n) {
    const float e = to_float(ema[i]);
    ema[i] = from_float<T>(__fsub_rn(e, __fmul_rn(k, __fsub_rn(e, to_float(param[i])))));
  }
}

// ---- ops ----
void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWParams& p) {
  const int64_t n = param.numel();
  if (n == 0) return;
  const AdamHyper h = make_hyper(p);
  if (p.stochastic_rounding) {
    adamw_sr_kernel<<<grid_for((n + 3) / 4), kThreads, 0, stream()>>>(
        static_cast<uint16_t*>(param.raw()), dptr<__nv_bfloat16>(grad), dptr<float>(m), dptr<float>(v), h,
        ops::adamw_sr_key(p, p.sr_stream), n);
    return check_launch("adamw_update", {{"param", &param}, {"grad", &grad}, {"m", &m}, {"v", &v}});
  }
  DBT_CUDA_FLOAT_SWITCH(param.dtype(), "adamw_update", {
    adamw_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(dptr<T>(param), dptr<T>(grad), dptr<T>(m), dptr<T>(v), h,
                                                            n);
  });
  check_launch("adamw_update", {{"param", &param}, {"grad", &grad}, {"m", &m}, {"v", &v}});
}

void adamw8bit_update(Tensor& param, const Tensor& grad, Tensor& m_q, Tensor& m_absmax, Tensor& v_q, Tensor& v_absmax,
                      int block, const AdamWParams& p) {
  adam8_run({Adam8Tensor{&param, &grad, &m_q, &m_absmax, &v_q, &v_absmax, p.sr_stream}}, block, p);
}

void adamw8bit_update_multi(const std::vector<ops::AdamW8bitTensor>& ts, int block, const AdamWParams& p) {
  std::vector<Adam8Tensor> list;
  for (const auto& t : ts)
    list.push_back(Adam8Tensor{t.param, t.grad, t.m_q, t.m_absmax, t.v_q, t.v_absmax, t.sr_stream});
  adam8_run(list, block, p);
}

void list_of(const std::vector<Tensor>& ts, std::vector<void*>& ptrs, std::vector<int64_t>& sizes) {
  for (const Tensor& t : ts) {
    ptrs.push_back(const_cast<void*>(t.raw()));  // read-only uses (norm, finite) never write through it
    sizes.push_back(t.numel());
  }
}

void global_norm(const std::vector<Tensor>& tensors, Tensor& out) {
  std::vector<void*> ptrs;
  std::vector<int64_t> sizes;
  list_of(tensors, ptrs, sizes);
  const SegPlan plan = plan_list(ptrs, sizes, kNormTable, "global_norm");
  const int64_t total = plan.chunks;
  Tensor partial = Tensor::empty(Shape{std::max<int64_t>(total, 1)}, DType::f64, Device::cuda);
  cudaStream_t st = stream();
  if (total == 0) check(cudaMemsetAsync(partial.raw(), 0, partial.nbytes(), st), "global_norm");
  DBT_CUDA_FLOAT_SWITCH(out.dtype(), "global_norm", {
    for (const Launch& l : plan.launches) {
      sumsq_kernel<T><<<unsigned(l.blocks), kThreads, 0, st>>>(seg_ref(plan.table, plan.segs, l), l.base,
                                                               dptr<double>(partial));
      check_launch("global_norm", {{"out", &out}});
    }
    norm_finish_kernel<T><<<1, 1024, 0, st>>>(dptr<double>(partial), std::max<int64_t>(total, 1), dptr<T>(out));
  });
  check_launch("global_norm", {{"out", &out}});
}

void clip_by_norm(const std::vector<Tensor*>& tensors, const Tensor& norm, float max_norm) {
  std::vector<void*> ptrs;
  std::vector<int64_t> sizes;
  for (Tensor* t : tensors) {
    ptrs.push_back(t->raw());
    sizes.push_back(t->numel());
  }
  const SegPlan plan = plan_list(ptrs, sizes, kClipTable, "clip_by_norm");
  DBT_CUDA_FLOAT_SWITCH(norm.dtype(), "clip_by_norm", {
    for (const Launch& l : plan.launches) {
      clip_kernel<T><<<unsigned(l.blocks), kThreads, 0, stream()>>>(seg_ref(plan.table, plan.segs, l), dptr<T>(norm),
                                                                     max_norm);
      check_launch("clip_by_norm", {{"norm", &norm}});
    }
  });
}

void ema_update(Tensor& ema, const Tensor& param, float decay) {
  const int64_t n = ema.numel();
  if (n == 0) return;
  DBT_CUDA_FLOAT_SWITCH(ema.dtype(), "ema_update", {
    ema_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(dptr<T>(ema), dptr<T>(param), 1.0f - decay, n);
  });
  check_launch("ema_update", {{"ema", &ema}, {"param", &param}});
}

void check_finite(const std::vector<Tensor>& tensors, Tensor& found) {
  std::vector<void*> ptrs;
  std::vector<int64_t> sizes;
  list_of(tensors, ptrs, sizes);
  cudaStream_t st = stream();
  check(cudaMemsetAsync(found.raw(), 0, sizeof(float), st), "check_finite");  // 0 bits = 0.0f
  const SegPlan plan = plan_list(ptrs, sizes, kFiniteTable, "check_finite");
  DBT_CUDA_FLOAT_SWITCH(tensors[0].dtype(), "check_finite", {
    for (const Launch& l : plan.launches) {
      finite_kernel<T><<<unsigned(l.blocks), kThreads, 0, st>>>(seg_ref(plan.table, plan.segs, l), dptr<float>(found));
      check_launch("check_finite", {{"found", &found}});
    }
  });
}

}  // namespace

void register_optim() {
  ops::adamw_update_table().set(Device::cuda, &adamw_update);
  ops::adamw8bit_update_table().set(Device::cuda, &adamw8bit_update);
  ops::adamw8bit_update_multi_table().set(Device::cuda, &adamw8bit_update_multi);
  ops::global_norm_table().set(Device::cuda, &global_norm);
  ops::clip_by_norm_table().set(Device::cuda, &clip_by_norm);
  ops::ema_update_table().set(Device::cuda, &ema_update);
  ops::check_finite_table().set(Device::cuda, &check_finite);
}

}  // namespace dbt::cuda
