#include "allocator.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "core/allocator.h"
#include "runtime.h"

namespace dbt::cuda {

namespace {

// DBT_CUDA_NO_CACHE=1: every tensor gets its own cudaMalloc of exactly its size, freed when the tensor is
// (like PyTorch's PYTORCH_NO_CUDA_MEMORY_CACHING): slow, but out-of-bounds accesses are no longer hidden
// inside a cached block's rounding, for compute-sanitizer on a GPU and AddressSanitizer on the emulator.
bool no_cache() {
  static const bool on = [] {
    const char* s = std::getenv("DBT_CUDA_NO_CACHE");
    return s && *s && std::strcmp(s, "0") != 0;
  }();
  return on;
}

class CachingAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes) override {
    cuda::stream();  // context and current device
    size_t cls = no_cache() ? std::max<size_t>(bytes, 1) : allocation_class(bytes);
    std::lock_guard<std::mutex> lk(mu_);
    auto it = free_.find(cls);
    void* p = nullptr;
    if (it != free_.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
      cached_ -= cls;
    } else {
      p = malloc_device(bytes, cls);
      reserved_ += cls;
    }
    counter_.on_alloc(bytes);
    return p;
  }

  void deallocate(void* p, size_t bytes) noexcept override {
    if (!p) return;
    std::lock_guard<std::mutex> lk(mu_);
    if (no_cache()) {
      cudaFree(p);  // synchronises with the stream's queued work
      cudaGetLastError();
      reserved_ -= std::max<size_t>(bytes, 1);
      counter_.on_free(bytes);
      return;
    }
    size_t cls = allocation_class(bytes);
    free_[cls].push_back(p);
    cached_ += cls;
    counter_.on_free(bytes);
  }

  AllocStats stats() const override {
    AllocStats s = counter_.stats();
    std::lock_guard<std::mutex> lk(mu_);
    s.reserved = reserved_;
    return s;
  }
  void reset_peak() override { counter_.reset_peak(); }

  void release_cached() override {
    std::lock_guard<std::mutex> lk(mu_);
    release_locked();
  }

 private:
  // Frees every cached block (the stream is drained first: a cached block may still be in use by
  // queued kernels that were launched before its tensor was freed).
  void release_locked() {
    if (cached_ == 0) return;
    cudaStreamSynchronize(cuda::stream());
    for (auto& [cls, blocks] : free_) {
      for (void* b : blocks) {
        cudaFree(b);
        reserved_ -= cls;
      }
      blocks.clear();
    }
    cached_ = 0;
    cudaGetLastError();
  }

  void* malloc_device(size_t bytes, size_t cls) {
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, cls);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      release_locked();
      e = cudaMalloc(&p, cls);
    }
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      cudaGetLastError();
      AllocStats s = counter_.stats();
      const DeviceProps& d = device();
      throw OutOfMemoryError("cuda:" + std::to_string(d.index) + " (" + d.name + ", " + format_bytes(free_b) +
                                 " free of " + format_bytes(total_b) + ", dbt holds " + format_bytes(reserved_) + ")",
                             bytes, s.current, s.peak);
    }
    check(e, "cudaMalloc", "allocating " + format_bytes(cls));
    return p;
  }

  mutable std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;
  size_t reserved_ = 0, cached_ = 0;
  AllocCounter counter_;
};

}  // namespace

// Never destroyed: tensors held by static objects may be freed after static destructors ran.
void install_allocator() {
  static CachingAllocator* a = new CachingAllocator();
  set_allocator(Device::cuda, a);
}

}  // namespace dbt::cuda
