#include "core/dispatch.h"

#include <cstdlib>
#include <cstring>

namespace dbt {
namespace {
bool initial_reference() {
  const char* s = std::getenv("DBT_REFERENCE");
  return s && std::strcmp(s, "0") != 0 && *s;
}
bool g_use_reference = initial_reference();
}  // namespace

bool use_reference() { return g_use_reference; }
void set_use_reference(bool on) { g_use_reference = on; }

Device common_device(const char* op, std::initializer_list<Operand> operands) {
  bool found = false;
  Device d = Device::cpu;
  for (const Operand& o : operands) {
    if (!o.t || !o.t->defined()) continue;
    if (!found) {
      d = o.t->device();
      found = true;
    } else if (o.t->device() != d) {
      throw_op_error(op, "operands are on different devices", operands);
    }
  }
  return d;
}

}  // namespace dbt
