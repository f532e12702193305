#include "core/tensor.h"

#include <cstring>
#include <sstream>

#include "core/allocator.h"

namespace dbt {

// ---- Shape ----

Shape::Shape(std::initializer_list<int64_t> dims) : Shape(std::vector<int64_t>(dims)) {}

Shape::Shape(const std::vector<int64_t>& dims) {
  if (dims.size() > size_t(kMaxDims))
    throw Error("tensor shapes have at most " + std::to_string(kMaxDims) + " dimensions, got " +
                std::to_string(dims.size()));
  ndim_ = int(dims.size());
  for (int i = 0; i < ndim_; i++) {
    if (dims[i] < 0) throw Error("negative dimension " + std::to_string(dims[i]) + " in a shape");
    dims_[i] = dims[i];
  }
}

int64_t Shape::dim(int i) const {
  int j = i < 0 ? i + ndim_ : i;
  if (j < 0 || j >= ndim_)
    throw Error("dimension index " + std::to_string(i) + " out of range for shape " + str());
  return dims_[j];
}

int64_t Shape::numel() const { return prod(0, ndim_); }

int64_t Shape::prod(int begin, int end) const {
  int64_t n = 1;
  for (int i = begin; i < end; i++) n *= dims_[i];
  return n;
}

std::string Shape::str() const {
  std::string s = "[";
  for (int i = 0; i < ndim_; i++) {
    if (i) s += ",";
    s += std::to_string(dims_[i]);
  }
  return s + "]";
}

bool Shape::operator==(const Shape& o) const {
  if (ndim_ != o.ndim_) return false;
  for (int i = 0; i < ndim_; i++)
    if (dims_[i] != o.dims_[i]) return false;
  return true;
}

// ---- Storage ----

Storage::Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
  alloc_ = &allocator(device);
  data_ = alloc_->allocate(bytes);
}

Storage::~Storage() { alloc_->deallocate(data_, bytes_); }

// ---- Tensor ----

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  Tensor t;
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.storage_ = std::make_shared<Storage>(size_t(shape.numel()) * dtype_size(dtype), device);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  if (device != Device::cpu)
    throw Error(std::string("Tensor::zeros on ") + device_name(device) + ": use Tensor::empty and ops::fill");
  Tensor t = empty(shape, dtype, device);
  std::memset(t.raw(), 0, t.nbytes());
  return t;
}

Device Tensor::device() const { return storage_ ? storage_->device() : Device::cpu; }

void* Tensor::raw() {
  if (!storage_) throw Error("access to an undefined tensor");
  return static_cast<char*>(storage_->data()) + offset_;
}

const void* Tensor::raw() const {
  if (!storage_) throw Error("access to an undefined tensor");
  return static_cast<const char*>(storage_->data()) + offset_;
}

void Tensor::check_access(DType want) const {
  if (!storage_) throw Error("access to an undefined tensor");
  if (want != dtype_)
    throw Error(std::string("tensor ") + desc() + " accessed as " + dtype_name(want));
}

Tensor Tensor::view(const Shape& shape) const {
  if (shape.numel() != numel())
    throw Error("cannot view tensor " + desc() + " as " + shape.str() + ": element counts differ");
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

Tensor Tensor::slice(int64_t begin, int64_t end) const {
  if (ndim() == 0 || begin < 0 || end < begin || end > shape_[0])
    throw Error("slice [" + std::to_string(begin) + "," + std::to_string(end) + ") out of range for tensor " +
                desc());
  Tensor t = *this;
  int64_t row = shape_.prod(1, ndim());
  t.offset_ += size_t(begin * row) * dtype_size(dtype_);
  t.shape_[0] = end - begin;
  return t;
}

std::string Tensor::desc() const {
  if (!storage_) return "undefined";
  std::string s = shape_.str() + " " + dtype_name(dtype_);
  if (device() != Device::cpu) s += std::string(" ") + device_name(device());
  return s;
}

}  // namespace dbt
