// Tensor: a handle to reference-counted storage plus dtype, shape (<= 5 dims, contiguous, row-major)
// and a byte offset. Copying a Tensor shares the storage (like a torch tensor); memory is freed when the
// last handle goes. Views (reshape, slice along dim 0) share storage too.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"

namespace dbt {

class Allocator;

class Storage {
 public:
  Storage(size_t bytes, Device device);  // allocates from allocator(device)
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
  Allocator* alloc_ = nullptr;
};

class Tensor {
 public:
  Tensor() = default;  // undefined tensor (no storage)

  // Uninitialised memory. CPU memory from zeros() is zero-filled; for other devices use ops::fill.
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return shape_.ndim(); }
  int64_t dim(int i) const { return shape_.dim(i); }
  int64_t numel() const { return shape_.numel(); }
  DType dtype() const { return dtype_; }
  Device device() const;
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype_); }
  bool is_cpu() const { return device() == Device::cpu; }

  // Typed pointer to the first element; throws Error if T does not match dtype().
  template <class T> T* data() {
    check_access(DTypeOf<T>::value);
    return static_cast<T*>(raw());
  }
  template <class T> const T* data() const {
    check_access(DTypeOf<T>::value);
    return static_cast<const T*>(raw());
  }
  void* raw();
  const void* raw() const;

  // Same storage, new shape with the same numel.
  Tensor view(const Shape& shape) const;
  // Rows [begin, end) of dim 0, sharing storage.
  Tensor slice(int64_t begin, int64_t end) const;

  std::string desc() const;  // "[2,3] f32" (+ " cuda" off the CPU), "undefined"
  long use_count() const { return storage_ ? storage_.use_count() : 0; }
  const std::shared_ptr<Storage>& storage() const { return storage_; }

 private:
  void check_access(DType want) const;

  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;  // bytes
  Shape shape_;
  DType dtype_ = DType::f32;
};

}  // namespace dbt
