// Where a tensor's memory lives. Every op dispatches on it (see dispatch.h).
#pragma once
#include <cstdint>

namespace dbt {

enum class Device : uint8_t { cpu = 0, cuda = 1 };
constexpr int kNumDevices = 2;

inline const char* device_name(Device d) { return d == Device::cpu ? "cpu" : "cuda"; }

}  // namespace dbt
