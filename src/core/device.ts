/**
 * Which device the core runs on: what the CUDA backend found, and `auto | cpu | cuda | cuda:N` resolved
 * against it. A build with CUDA on a machine without a GPU or driver loads fine and reports CUDA
 * unavailable (with the reason); `auto` then picks the CPU.
 */
import { DbtError, UsageError } from '../errors.js';
import { call, native, type CudaStatus, type DeviceName } from './native.js';

export type { CudaDeviceInfo, CudaStatus } from './native.js';

/** What the CUDA backend of this build found on this machine. */
export function cudaStatus(): CudaStatus {
  return call(() => native().cudaStatus());
}

export function cudaAvailable(): boolean {
  return cudaStatus().available;
}

export interface ResolvedDevice {
  device: DeviceName;
  /** CUDA device index (0 for the CPU). */
  index: number;
  /** Human description, e.g. "cuda:0 (NVIDIA H100 80GB HBM3, sm_90, 79.1 GiB)" or "cpu". */
  description: string;
}

const DEVICE_RE = /^(auto|cpu|cuda)(?::(\d+))?$/;

/**
 * Resolves a device request. `auto` = CUDA when available, else the CPU; `cuda` / `cuda:N` require CUDA
 * and select device N (only possible before the first CUDA operation). Throws UsageError for a malformed
 * request and DbtError when CUDA was asked for but is unavailable.
 */
export function resolveDevice(request: string): ResolvedDevice {
  const m = DEVICE_RE.exec(request.trim().toLowerCase());
  if (!m || (m[1] !== 'cuda' && m[2] !== undefined))
    throw new UsageError(`unknown device "${request}"`, { details: ['use auto, cpu, cuda or cuda:N (e.g. cuda:1)'] });
  const kind = m[1]!;
  if (kind === 'cpu') return { device: 'cpu', index: 0, description: 'cpu' };
  const status = cudaStatus();
  if (!status.available) {
    if (kind === 'auto') return { device: 'cpu', index: 0, description: 'cpu' };
    throw new DbtError(`device ${request} requested but CUDA is unavailable: ${status.reason}`, {
      details: status.built
        ? ['use --device cpu (slow), or run on a machine with an NVIDIA GPU and driver']
        : ['this build has no CUDA backend: reinstall with the CUDA toolkit (nvcc) on PATH, or use --device cpu'],
    });
  }
  const index = m[2] === undefined ? status.device : Number(m[2]);
  const info = status.devices.find((d) => d.index === index);
  if (!info)
    throw new DbtError(`device cuda:${index} does not exist`, {
      details: [`this machine has ${status.devices.length} CUDA device(s): ${status.devices.map((d) => `cuda:${d.index} ${d.name}`).join(', ')}`],
    });
  if (index !== status.device) call(() => native().cudaSelectDevice(index));
  const gib = (info.totalMemory / 2 ** 30).toFixed(1);
  return {
    device: 'cuda',
    index,
    description: `cuda:${index} (${info.name}, sm_${info.computeCapability.replace('.', '')}, ${gib} GiB)`,
  };
}

/**
 * The 16-bit dtype networks compute in on a CUDA device of this compute capability ("8.6"): bf16 from 8.0
 * (Ampere), whose tensor cores have it, else f16.
 */
export function cudaHalfDtype(computeCapability: string): 'bf16' | 'f16' {
  const major = Number(computeCapability.split('.')[0]);
  return Number.isFinite(major) && major >= 8 ? 'bf16' : 'f16';
}
