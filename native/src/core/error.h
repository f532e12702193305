// Errors are values: native code throws these, the binding turns them into JS Errors.
// Nothing in the core calls exit() or abort() on a path a user can reach.
#pragma once
#include <cstddef>
#include <initializer_list>
#include <stdexcept>
#include <string>

namespace dbt {

class Tensor;

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

// A bad argument to an op: message is "<op>: <what> (x [2,3] f32, w [4,3] f32)".
class OpError : public Error {
 public:
  OpError(const std::string& op, const std::string& what, const std::string& operands)
      : Error(op + ": " + what + (operands.empty() ? "" : " (" + operands + ")")), op_(op) {}
  const std::string& op() const { return op_; }

 private:
  std::string op_;
};

// Allocation failure, with the figures a user needs to decide what to change.
class OutOfMemoryError : public Error {
 public:
  OutOfMemoryError(const std::string& device, size_t requested, size_t current, size_t peak);
  size_t requested() const { return requested_; }

 private:
  size_t requested_;
};

// One operand for an error message: its name and the tensor (nullptr = "absent").
struct Operand {
  const char* name;
  const Tensor* t;
};

std::string describe_operands(std::initializer_list<Operand> operands);

// Throws OpError(op, what, operands) when cond is false.
[[noreturn]] void throw_op_error(const char* op, const std::string& what,
                                 std::initializer_list<Operand> operands);
#define DBT_CHECK(cond, op, what, ...)                                \
  do {                                                                \
    if (!(cond)) ::dbt::throw_op_error((op), (what), {__VA_ARGS__}); \
  } while (0)

std::string format_bytes(size_t bytes);

}  // namespace dbt
