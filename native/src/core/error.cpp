#include "core/error.h"

#include <cstdio>

#include "core/tensor.h"

namespace dbt {

std::string format_bytes(size_t bytes) {
  char buf[64];
  double b = double(bytes);
  if (b >= 1024.0 * 1024 * 1024)
    std::snprintf(buf, sizeof buf, "%.2f GiB", b / (1024.0 * 1024 * 1024));
  else if (b >= 1024.0 * 1024)
    std::snprintf(buf, sizeof buf, "%.1f MiB", b / (1024.0 * 1024));
  else if (b >= 1024.0)
    std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  else
    std::snprintf(buf, sizeof buf, "%zu B", bytes);
  return buf;
}

OutOfMemoryError::OutOfMemoryError(const std::string& device, size_t requested, size_t current, size_t peak)
    : Error("out of memory on " + device + ": tried to allocate " + format_bytes(requested) + " with " +
            format_bytes(current) + " in use (peak " + format_bytes(peak) +
            "); reduce the batch size or resolution, or enable gradient checkpointing"),
      requested_(requested) {}

std::string describe_operands(std::initializer_list<Operand> operands) {
  std::string s;
  for (const Operand& o : operands) {
    if (!s.empty()) s += ", ";
    s += o.name;
    s += " ";
    s += o.t ? o.t->desc() : "absent";
  }
  return s;
}

void throw_op_error(const char* op, const std::string& what, std::initializer_list<Operand> operands) {
  throw OpError(op, what, describe_operands(operands));
}

}  // namespace dbt
