// Tensor shapes: up to 5 dimensions, row-major (the last dimension is contiguous).
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace dbt {

constexpr int kMaxDims = 5;

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);  // throws dbt::Error on > kMaxDims or negative dims
  explicit Shape(const std::vector<int64_t>& dims);

  int ndim() const { return ndim_; }
  int64_t operator[](int i) const { return dims_[i]; }
  int64_t& operator[](int i) { return dims_[i]; }
  // Dimension i, negative i counts from the end (-1 = last). Throws on out-of-range i.
  int64_t dim(int i) const;
  int64_t numel() const;
  // Product of dims [begin, end).
  int64_t prod(int begin, int end) const;
  const int64_t* data() const { return dims_; }
  std::vector<int64_t> vec() const { return std::vector<int64_t>(dims_, dims_ + ndim_); }
  std::string str() const;  // "[2,3,4]"

  bool operator==(const Shape& o) const;
  bool operator!=(const Shape& o) const { return !(*this == o); }

 private:
  int64_t dims_[kMaxDims] = {0, 0, 0, 0, 0};
  int ndim_ = 0;
};

}  // namespace dbt
