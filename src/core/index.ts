/** The typed face of the native core: tensors with explicit lifetime, ops, allocator statistics. */
import { call, native, type AllocStats, type CoreInfo, type DeviceName } from './native.js';

export { CoreError, type AllocStats, type CoreInfo, type DeviceName, type DType } from './native.js';
export { Tensor, empty, full, zeros, tensor, scope, keep, type CreateOptions } from './tensor.js';
export * as ops from './ops.js';
export { cudaAvailable, cudaHalfDtype, cudaStatus, parseDeviceRequest, planDevice, resolveDevice, type CudaDeviceInfo, type CudaStatus, type DevicePlan, type ResolvedDevice } from './device.js';

/** Memory statistics of a device's allocator (bytes held by tensors, peak, live allocations). */
export function allocStats(device: DeviceName = 'cpu'): AllocStats {
  return call(() => native().allocStats(device));
}

/** Starts a new peak measurement at the current level. */
export function resetPeak(device: DeviceName = 'cpu'): void {
  call(() => native().resetPeak(device));
}

/** SIMD level, thread count and devices of this build. */
export function coreInfo(): CoreInfo {
  return call(() => native().info());
}

/** Threads used by CPU ops (results do not depend on it). */
export function setNumThreads(n: number): void {
  call(() => native().setNumThreads(n));
}
export { copyFileRange, type CopyMethod, type CopyRangeOptions, type CopyRangeResult } from './fs.js';
