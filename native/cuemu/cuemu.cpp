// cuemu: the CUDA runtime and kernel execution emulated on the CPU (see include/cuda_runtime.h for the
// model). One emulated device; memory is host memory; streams and events are synchronous.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cuda_runtime.h"

#if !defined(__x86_64__)
#include <ucontext.h>
#endif
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define CUEMU_ASAN 1  // fiber switches are announced to AddressSanitizer (make emu-asan)
#endif

namespace cuemu {

thread_local ThreadState* t_thread = nullptr;

namespace {

// ---- device description (CUEMU_CC picks the compute capability; CUEMU_MEMORY_MB the memory) ----
struct Device {
  int cc = 80;
  size_t total = size_t(8) << 30;
  size_t smem_optin = 166912;
  int sms = 8;
};
const Device& dev() {
  static const Device d = [] {
    Device d;
    if (const char* s = std::getenv("CUEMU_CC"); s && *s) d.cc = std::atoi(s);
    if (const char* s = std::getenv("CUEMU_MEMORY_MB"); s && *s) d.total = size_t(std::atoll(s)) << 20;
    d.smem_optin = d.cc >= 90 ? 232448 : d.cc >= 86 ? 101376 : d.cc >= 80 ? 166912 : 65536;
    return d;
  }();
  return d;
}

// CUEMU_SKIP_KERNELS=1: launches are checked but not run, device memory is not poisoned. Allocation
// sequences stay those of a real run (they do not depend on values), so the caching allocator's peak of a
// full-size case is measured in seconds; every computed value is garbage.
bool skip_kernels() {
  static const bool on = [] {
    const char* s = std::getenv("CUEMU_SKIP_KERNELS");
    const bool v = s && *s && std::strcmp(s, "0") != 0;
    if (v) std::fprintf(stderr, "cuemu: CUEMU_SKIP_KERNELS: kernels are not run; results are garbage, memory figures hold\n");
    return v;
  }();
  return on;
}

// CUEMU_SCHEDULE=reverse: threads start, and leave each barrier, in descending order. A read of another
// thread's shared-memory write without a barrier in between sees the poison or stale data when the writer
// runs later; the default order catches the readers with lower ids than their writers, reverse the others.
bool reverse_order() {
  static const bool on = [] {
    const char* s = std::getenv("CUEMU_SCHEDULE");
    return s && std::strcmp(s, "reverse") == 0;
  }();
  return on;
}

std::mutex g_mu;  // one launch or API call at a time (block-shared statics, error state)
cudaError_t g_last = cudaSuccess;
cudaError_t g_sticky = cudaSuccess;
size_t g_used = 0;
std::map<void*, size_t> g_allocs;
std::map<const void*, int> g_max_dynamic_smem;
constexpr size_t kDefaultSmem = 48 * 1024;

cudaError_t set_error(cudaError_t e) {
  if (e != cudaSuccess && g_last == cudaSuccess) g_last = e;
  return e;
}
void fail_launch(const std::string& why, cudaError_t e) {
  std::fprintf(stderr, "cuemu: %s\n", why.c_str());
  if (e == cudaErrorLaunchFailure || e == cudaErrorIllegalAddress) g_sticky = e;
  set_error(e);
}

// ---- fibers ----
#if defined(__x86_64__)
extern "C" void cuemu_swap(void** save_sp, void* load_sp);
extern "C" void cuemu_fiber_start();
// Saves the callee-saved registers on the current stack, switches stacks, restores them from the new one
// (MXCSR and the x87 control word are not switched: kernels never change rounding modes). A new fiber's
// stack is laid out so that the restore "returns" into cuemu_fiber_start with r12 = argument and r13 =
// entry function.
asm(R"(
.text
.globl cuemu_swap
.type cuemu_swap,@function
cuemu_swap:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size cuemu_swap,.-cuemu_swap
.globl cuemu_fiber_start
.type cuemu_fiber_start,@function
cuemu_fiber_start:
  movq %r12, %rdi
  callq *%r13
  ud2
.size cuemu_fiber_start,.-cuemu_fiber_start
)");
#endif

constexpr size_t kStackBytes = 256 * 1024;

struct Fiber {
  enum State { ready, at_warp, at_block, done };
  ThreadState ts;
  State state = ready;
  int linear = 0, lane = 0, warp = 0;
  int pred = 0;
  int kind = 0;
  unsigned mask = 0;
  char* stack = nullptr;  // kStackBytes + a guard page below
#if defined(__x86_64__)
  void* sp = nullptr;
#else
  ucontext_t uc;
#endif
};

struct Warp {
  int live, waiting;
  unsigned arrived;
  size_t bytes;
  unsigned char in[32][kExchangeBytes], out[32][kExchangeBytes];  // not cleared: only arrived lanes are read
};

struct Block {
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;  // sized once per launch; counters reset per block
  int live = 0, at_block = 0, or_result = 0;
  std::deque<int> queue;
  std::vector<void*> poisoned;  // static shared arrays already filled in this block
  bool failed = false;
  std::string why;
  void (*body)(void*) = nullptr;
  void* ctx = nullptr;
#if defined(__x86_64__)
  void* sched_sp = nullptr;
#else
  ucontext_t sched;
#endif
};

Block* g_block = nullptr;  // the block being run (launches hold g_mu)
Fiber* g_fiber = nullptr;  // the running fiber
std::vector<unsigned char> g_dynamic;

#if defined(CUEMU_ASAN)
const void* g_sched_bottom = nullptr;  // the scheduler's stack, as AddressSanitizer reports it
size_t g_sched_size = 0;
#endif

void to_scheduler() {
  Fiber* f = g_fiber;
#if defined(CUEMU_ASAN)
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(f->state == Fiber::done ? nullptr : &fake, g_sched_bottom, g_sched_size);
#endif
#if defined(__x86_64__)
  cuemu_swap(&f->sp, g_block->sched_sp);
#else
  swapcontext(&f->uc, &g_block->sched);
#endif
#if defined(CUEMU_ASAN)
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
}

void fiber_main(void* arg) {
  Fiber* f = static_cast<Fiber*>(arg);
#if defined(CUEMU_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, &g_sched_bottom, &g_sched_size);
#endif
  g_block->body(g_block->ctx);
  f->state = Fiber::done;
  to_scheduler();
  std::abort();  // a finished fiber is never resumed
}
#if !defined(__x86_64__)
void fiber_main_uc() { fiber_main(g_fiber); }
#endif

char* new_stack() {
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  void* p = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    std::fprintf(stderr, "cuemu: cannot map a fiber stack\n");
    std::abort();
  }
  mprotect(p, page, PROT_NONE);  // overflow faults instead of corrupting the next stack
  return static_cast<char*>(p) + page;
}
std::vector<char*> g_stacks;  // reused by every launch

void start_fiber(Block& b, Fiber& f) {
#if defined(CUEMU_ASAN)
  __asan_unpoison_memory_region(f.stack, kStackBytes);  // frames of fibers abandoned by a failed launch
#endif
#if defined(__x86_64__)
  // Layout restored by cuemu_swap, from low to high: r15, r14, r13, r12, rbx, rbp, return address.
  uint64_t* top = reinterpret_cast<uint64_t*>(f.stack + kStackBytes);
  top -= 2;  // keeps rsp 16-byte aligned at cuemu_fiber_start's call
  uint64_t* s = top - 7;
  s[0] = 0;                                                // r15
  s[1] = 0;                                                // r14
  s[2] = reinterpret_cast<uint64_t>(&fiber_main);          // r13
  s[3] = reinterpret_cast<uint64_t>(&f);                   // r12
  s[4] = 0;                                                // rbx
  s[5] = 0;                                                // rbp
  s[6] = reinterpret_cast<uint64_t>(&cuemu_fiber_start);  // return address
  f.sp = s;
#else
  getcontext(&f.uc);
  f.uc.uc_stack.ss_sp = f.stack;
  f.uc.uc_stack.ss_size = kStackBytes;
  f.uc.uc_link = nullptr;
  makecontext(&f.uc, fiber_main_uc, 0);
#endif
  (void)b;
}

void resume(Block& b, Fiber& f) {
  g_fiber = &f;
  t_thread = &f.ts;
#if defined(CUEMU_ASAN)
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, f.stack, kStackBytes);
#endif
#if defined(__x86_64__)
  cuemu_swap(&b.sched_sp, f.sp);
#else
  swapcontext(&b.sched, &f.uc);
#endif
#if defined(CUEMU_ASAN)
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
  t_thread = nullptr;
  g_fiber = nullptr;
}

void block_fail(Block& b, const std::string& why) {
  if (!b.failed) {
    b.failed = true;
    b.why = why;
  }
}

void release_warp(Block& b, int w) {
  Warp& wp = b.warps[size_t(w)];
  int kind = -1;
  bool mixed = false;
  unsigned mask = 0;
  for (int l = 0; l < 32; l++) {
    const int i = w * 32 + l;
    if (i >= int(b.fibers.size()) || b.fibers[size_t(i)].state != Fiber::at_warp) continue;
    const Fiber& f = b.fibers[size_t(i)];
    if (kind >= 0 && (f.kind != kind || f.mask != mask)) mixed = true;
    kind = f.kind;
    mask = f.mask;
  }
  if (mixed) return block_fail(b, "lanes of warp " + std::to_string(w) + " wait at different warp collectives");
  if ((mask & wp.arrived) != mask) {
    char m[64];
    std::snprintf(m, sizeof m, "mask 0x%08x, arrived 0x%08x", mask, wp.arrived);
    return block_fail(b, "a warp collective in warp " + std::to_string(w) + " names lanes that have exited or do not exist (" + m + ")");
  }
  for (int l = 0; l < 32; l++) {
    if (wp.arrived & (1u << l)) std::memcpy(wp.out[l], wp.in[l], wp.bytes);
    else std::memset(wp.out[l], 0xff, wp.bytes);
  }
  wp.arrived = 0;
  wp.waiting = 0;
  for (int k = 0; k < 32; k++) {
    const int i = w * 32 + (reverse_order() ? 31 - k : k);
    if (i < int(b.fibers.size()) && b.fibers[size_t(i)].state == Fiber::at_warp) {
      b.fibers[size_t(i)].state = Fiber::ready;
      b.queue.push_back(i);
    }
  }
}

void release_block(Block& b) {
  int any = 0;
  for (Fiber& f : b.fibers)
    if (f.state == Fiber::at_block) any |= f.pred != 0;
  b.or_result = any;
  b.at_block = 0;
  const size_t n = b.fibers.size();
  for (size_t k = 0; k < n; k++) {
    const size_t i = reverse_order() ? n - 1 - k : k;
    if (b.fibers[i].state == Fiber::at_block) {
      b.fibers[i].state = Fiber::ready;
      b.queue.push_back(int(i));
    }
  }
}

std::string describe_deadlock(const Block& b) {
  int at_block = 0, at_warp = 0;
  for (const Fiber& f : b.fibers) {
    at_block += f.state == Fiber::at_block;
    at_warp += f.state == Fiber::at_warp;
  }
  return "deadlock: " + std::to_string(at_block) + " thread(s) wait at __syncthreads and " + std::to_string(at_warp) +
         " at a warp collective (a barrier in divergent code)";
}

void run_block(Block& b, const LaunchConfig& cfg, dim3 bidx) {
  const int nthreads = int(cfg.block.x * cfg.block.y * cfg.block.z);
  const int nwarps = (nthreads + 31) / 32;
  b.fibers.resize(size_t(nthreads));
  if (b.warps.size() < size_t(nwarps)) b.warps.resize(size_t(nwarps));
  for (int w = 0; w < nwarps; w++) {
    Warp& wp = b.warps[size_t(w)];
    wp.live = wp.waiting = 0;
    wp.arrived = 0;
    wp.bytes = 0;
  }
  b.queue.clear();
  b.poisoned.clear();
  b.live = nthreads;
  b.at_block = 0;
  while (int(g_stacks.size()) < nthreads) g_stacks.push_back(new_stack());
  for (int i = 0; i < nthreads; i++) {
    Fiber& f = b.fibers[size_t(i)];
    f.state = Fiber::ready;
    f.linear = i;
    f.lane = i % 32;
    f.warp = i / 32;
    f.ts.thread_idx = dim3(unsigned(i) % cfg.block.x, (unsigned(i) / cfg.block.x) % cfg.block.y,
                           unsigned(i) / (cfg.block.x * cfg.block.y));
    f.ts.block_idx = bidx;
    f.ts.block_dim = cfg.block;
    f.ts.grid_dim = cfg.grid;
    f.stack = g_stacks[size_t(i)];
    start_fiber(b, f);
    b.warps[size_t(f.warp)].live++;
    if (reverse_order()) b.queue.push_front(i);
    else b.queue.push_back(i);
  }
  if (!g_dynamic.empty()) std::memset(g_dynamic.data(), 0xff, g_dynamic.size());  // uninitialised shared memory
  while (!b.queue.empty() && !b.failed) {
    const int i = b.queue.front();
    b.queue.pop_front();
    Fiber& f = b.fibers[size_t(i)];
    resume(b, f);
    if (b.failed) break;
    Warp& w = b.warps[size_t(f.warp)];
    switch (f.state) {
      case Fiber::at_warp:
        if (++w.waiting == w.live) release_warp(b, f.warp);
        break;
      case Fiber::at_block:
        if (++b.at_block == b.live) release_block(b);
        break;
      case Fiber::done:
        w.live--;
        b.live--;
        if (w.live > 0 && w.waiting == w.live) release_warp(b, f.warp);
        if (b.live > 0 && b.at_block == b.live) release_block(b);
        break;
      case Fiber::ready:
        block_fail(b, "a fiber yielded without waiting");
        break;
    }
  }
  if (!b.failed && b.live > 0) block_fail(b, describe_deadlock(b));
}

}  // namespace

// ---- device side ----
void syncthreads() {
  g_fiber->pred = 0;
  g_fiber->state = Fiber::at_block;
  to_scheduler();
}
int syncthreads_or(int pred) {
  g_fiber->pred = pred;
  g_fiber->state = Fiber::at_block;
  to_scheduler();
  return g_block->or_result;
}
const unsigned char* warp_exchange(unsigned mask, int kind, const void* mine, size_t bytes) {
  Fiber* f = g_fiber;
  Warp& w = g_block->warps[size_t(f->warp)];
  if (bytes > kExchangeBytes) trap("warp exchange of more than 64 bytes");
  if ((mask & (1u << f->lane)) == 0) trap("a warp collective called by a lane outside its mask");
  if (bytes) std::memcpy(w.in[f->lane], mine, bytes);
  w.bytes = bytes;
  w.arrived |= 1u << f->lane;
  f->kind = kind;
  f->mask = mask;
  f->state = Fiber::at_warp;
  to_scheduler();
  return &w.out[0][0];
}
void trap(const char* what) {
  block_fail(*g_block, std::string(what) + " in thread (" + std::to_string(g_fiber->ts.thread_idx.x) + "," +
                           std::to_string(g_fiber->ts.thread_idx.y) + ") of block (" +
                           std::to_string(g_fiber->ts.block_idx.x) + "," + std::to_string(g_fiber->ts.block_idx.y) +
                           "," + std::to_string(g_fiber->ts.block_idx.z) + ")");
  to_scheduler();
  std::abort();  // a failed block's fibers are never resumed
}
void* dynamic_smem() { return g_dynamic.data(); }
void poison_shared(void* p, size_t bytes) {
  std::vector<void*>& done = g_block->poisoned;
  if (std::find(done.begin(), done.end(), p) != done.end()) return;
  std::memset(p, 0xff, bytes);
  done.push_back(p);
}
int lane_id() { return g_fiber->lane; }

void launch(const LaunchConfig& cfg, void (*body)(void*), void* ctx) {
  std::lock_guard<std::mutex> lk(g_mu);
  if (g_sticky != cudaSuccess) return (void)set_error(g_sticky);
  const uint64_t threads = uint64_t(cfg.block.x) * cfg.block.y * cfg.block.z;
  if (threads == 0 || threads > 1024 || cfg.block.z > 64 || cfg.grid.x == 0 || cfg.grid.y == 0 || cfg.grid.z == 0 ||
      cfg.grid.y > 65535 || cfg.grid.z > 65535 || cfg.grid.x > 2147483647u) {
    set_error(cudaErrorInvalidConfiguration);
    return;
  }
  auto it = g_max_dynamic_smem.find(cfg.func);
  const size_t allowed = it == g_max_dynamic_smem.end() ? kDefaultSmem : size_t(it->second);
  if (cfg.smem > allowed) {
    set_error(cudaErrorInvalidValue);
    return;
  }
  static const bool trace = [] {
    const char* s = std::getenv("CUEMU_TRACE");
    return s && *s && std::strcmp(s, "0") != 0;
  }();
  if (trace)
    std::fprintf(stderr, "cuemu: launch %p grid (%u,%u,%u) block (%u,%u,%u) dynamic shared %zu B\n", cfg.func,
                 cfg.grid.x, cfg.grid.y, cfg.grid.z, cfg.block.x, cfg.block.y, cfg.block.z, cfg.smem);
  if (skip_kernels()) return;
  g_dynamic.assign(cfg.smem, 0xff);
  Block b;
  b.body = body;
  b.ctx = ctx;
  Block* saved = g_block;
  g_block = &b;
  for (unsigned z = 0; z < cfg.grid.z && !b.failed; z++)
    for (unsigned y = 0; y < cfg.grid.y && !b.failed; y++)
      for (unsigned x = 0; x < cfg.grid.x && !b.failed; x++) run_block(b, cfg, dim3(x, y, z));
  g_block = saved;
  if (b.failed) fail_launch("kernel failed: " + b.why, cudaErrorLaunchFailure);
}

cudaError_t func_set_attribute(const void* func, cudaFuncAttribute attr, int value) {
  std::lock_guard<std::mutex> lk(g_mu);
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaSuccess;
  if (value < 0 || size_t(value) > dev().smem_optin) return set_error(cudaErrorInvalidValue);
  g_max_dynamic_smem[func] = value;
  return cudaSuccess;
}
cudaError_t memcpy_to_symbol(void* symbol, size_t symbol_bytes, const void* src, size_t n, size_t offset) {
  if (offset + n > symbol_bytes) return set_error(cudaErrorInvalidValue);
  std::memcpy(static_cast<char*>(symbol) + offset, src, n);
  return cudaSuccess;
}

}  // namespace cuemu

using namespace cuemu;

// ---- runtime API ----
cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (device != 0) return cudaErrorInvalidDevice;
  std::memset(p, 0, sizeof *p);
  std::snprintf(p->name, sizeof p->name, "cuemu (CUDA emulated on the CPU, sm_%d)", dev().cc);
  p->totalGlobalMem = dev().total;
  p->sharedMemPerBlock = kDefaultSmem;
  p->sharedMemPerBlockOptin = dev().smem_optin;
  p->major = dev().cc / 10;
  p->minor = dev().cc % 10;
  p->multiProcessorCount = dev().sms;
  p->maxThreadsPerBlock = 1024;
  p->warpSize = 32;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : cudaErrorInvalidDevice; }
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* v) {
  *v = 13000;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* v) {
  *v = 13000;
  return cudaSuccess;
}
cudaError_t cudaGetLastError() {
  std::lock_guard<std::mutex> lk(g_mu);
  cudaError_t e = g_last;
  g_last = g_sticky;
  return e;
}
cudaError_t cudaPeekAtLastError() {
  std::lock_guard<std::mutex> lk(g_mu);
  return g_last;
}
const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
#define CUEMU_NAME(x) \
  case x:             \
    return #x;
    CUEMU_NAME(cudaSuccess)
    CUEMU_NAME(cudaErrorInvalidValue)
    CUEMU_NAME(cudaErrorMemoryAllocation)
    CUEMU_NAME(cudaErrorInitializationError)
    CUEMU_NAME(cudaErrorLaunchFailure)
    CUEMU_NAME(cudaErrorLaunchTimeout)
    CUEMU_NAME(cudaErrorLaunchOutOfResources)
    CUEMU_NAME(cudaErrorInvalidConfiguration)
    CUEMU_NAME(cudaErrorInvalidPc)
    CUEMU_NAME(cudaErrorInvalidDevice)
    CUEMU_NAME(cudaErrorNoDevice)
    CUEMU_NAME(cudaErrorInvalidResourceHandle)
    CUEMU_NAME(cudaErrorECCUncorrectable)
    CUEMU_NAME(cudaErrorIllegalAddress)
    CUEMU_NAME(cudaErrorHardwareStackError)
    CUEMU_NAME(cudaErrorIllegalInstruction)
    CUEMU_NAME(cudaErrorMisalignedAddress)
    CUEMU_NAME(cudaErrorInvalidAddressSpace)
    CUEMU_NAME(cudaErrorAssert)
    CUEMU_NAME(cudaErrorUnknown)
#undef CUEMU_NAME
  }
  return "cudaErrorUnknown";
}
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    default: return "error (emulated)";
  }
}

cudaError_t cudaMalloc(void** p, size_t bytes) {
  std::lock_guard<std::mutex> lk(g_mu);
  *p = nullptr;
  if (g_sticky != cudaSuccess) return set_error(g_sticky);
  if (bytes > dev().total - g_used) return set_error(cudaErrorMemoryAllocation);
  void* q = nullptr;
  if (posix_memalign(&q, 256, std::max<size_t>(bytes, 1)) != 0) return set_error(cudaErrorMemoryAllocation);
  if (!skip_kernels()) std::memset(q, 0xff, bytes);  // device memory starts as garbage: all-ones is NaN in every float type
  g_allocs[q] = bytes;
  g_used += bytes;
  *p = q;
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  std::lock_guard<std::mutex> lk(g_mu);
  if (!p) return cudaSuccess;
  auto it = g_allocs.find(p);
  if (it == g_allocs.end()) return set_error(cudaErrorInvalidValue);
  g_used -= it->second;
  g_allocs.erase(it);
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  std::lock_guard<std::mutex> lk(g_mu);
  *free_bytes = dev().total - g_used;
  *total_bytes = dev().total;
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind) {
  if (g_sticky != cudaSuccess) return set_error(g_sticky);
  if (n) std::memcpy(dst, src, n);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(dst, src, n, kind);
}
cudaError_t cudaMemset(void* p, int v, size_t n) {
  if (g_sticky != cudaSuccess) return set_error(g_sticky);
  if (n) std::memset(p, v, n);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int v, size_t n, cudaStream_t) { return cudaMemset(p, v, n); }

struct CUstream_st {
  int unused;
};
struct CUevent_st {
  std::chrono::steady_clock::time_point t;
};
cudaError_t cudaStreamCreate(cudaStream_t* s) {
  *s = new CUstream_st{0};
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) { return cudaStreamCreate(s); }
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete s;
  return cudaSuccess;
}
// Work runs when it is queued: waiting only reports what the launches left (sticky errors stay).
cudaError_t cudaStreamSynchronize(cudaStream_t) {
  std::lock_guard<std::mutex> lk(g_mu);
  return g_sticky;
}
cudaError_t cudaDeviceSynchronize() { return cudaStreamSynchronize(nullptr); }
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = new CUevent_st{std::chrono::steady_clock::now()};
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  e->t = std::chrono::steady_clock::now();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  *ms = std::chrono::duration<float, std::milli>(b->t - a->t).count();
  return cudaSuccess;
}
