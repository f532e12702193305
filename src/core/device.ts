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

/** A device request, parsed: `kind` and, for `cuda:N`, the index. Throws UsageError when malformed. */
export function parseDeviceRequest(request: string): { kind: 'auto' | 'cpu' | 'cuda'; index?: number } {
  const m = DEVICE_RE.exec(request.trim().toLowerCase());
  if (!m || (m[1] !== 'cuda' && m[2] !== undefined))
    throw new UsageError(`unknown device "${request}"`, { details: ['use auto, cpu, cuda or cuda:N (e.g. cuda:1)'] });
  return { kind: m[1] as 'auto' | 'cpu' | 'cuda', index: m[2] === undefined ? undefined : Number(m[2]) };
}

/** What a request would run on, given a CUDA status: a device, or why it cannot run here. */
export type DevicePlan =
  | ({ ok: true; /** "cpu" or "cuda:N" */ name: string } & ResolvedDevice)
  | { ok: false; /** CUDA is unavailable here, or it has no device of that index. */ why: 'unavailable' | 'no-such-device'; /** CUDA's reason, or which devices exist. */ reason: string; message: string; details: string[] };

const CPU_PLAN: DevicePlan = { ok: true, name: 'cpu', device: 'cpu', index: 0, description: 'cpu' };

/**
 * Resolves a request against a CUDA status without touching the device (resolveDevice applies it). `auto` =
 * the selected CUDA device when available, else the CPU; `cuda` = the selected device; `cuda:N` = device N.
 * `status` may be a function, called only when the request is not `cpu`. Throws UsageError for a malformed
 * request.
 */
export function planDevice(request: string, getStatus: CudaStatus | (() => CudaStatus)): DevicePlan {
  const { kind, index: asked } = parseDeviceRequest(request);
  if (kind === 'cpu') return { ...CPU_PLAN };
  const status = typeof getStatus === 'function' ? getStatus() : getStatus;
  if (kind === 'auto' && !status.available) return { ...CPU_PLAN };
  if (!status.available)
    return {
      ok: false,
      why: 'unavailable',
      reason: status.reason,
      message: `device ${request} requested but CUDA is unavailable: ${status.reason}`,
      details: status.built
        ? ['use --device cpu (slow), or run on a machine with an NVIDIA GPU and driver']
        : ['this build has no CUDA backend: reinstall with the CUDA toolkit (nvcc) on PATH, or use --device cpu'],
    };
  const index = asked ?? status.device;
  const info = status.devices.find((d) => d.index === index);
  if (!info) {
    const have = `this machine has ${status.devices.length} CUDA device(s): ${status.devices.map((d) => `cuda:${d.index} ${d.name}`).join(', ')}`;
    return { ok: false, why: 'no-such-device', reason: have, message: `device cuda:${index} does not exist`, details: [have] };
  }
  const gib = (info.totalMemory / 2 ** 30).toFixed(1);
  return {
    ok: true,
    name: `cuda:${index}`,
    device: 'cuda',
    index,
    description: `cuda:${index} (${info.name}, sm_${info.computeCapability.replace('.', '')}, ${gib} GiB)`,
  };
}

/**
 * Resolves a device request (see planDevice) and selects the CUDA device (only possible before the first
 * CUDA operation). Throws UsageError for a malformed request and DbtError when CUDA was asked for but is
 * unavailable or the device does not exist.
 */
export function resolveDevice(request: string): ResolvedDevice {
  const plan = planDevice(request, cudaStatus);
  if (!plan.ok) throw new DbtError(plan.message, { details: plan.details });
  if (plan.device === 'cuda' && plan.index !== cudaStatus().device) call(() => native().cudaSelectDevice(plan.index));
  return { device: plan.device, index: plan.index, description: plan.description };
}

/**
 * The 16-bit dtype networks compute in on a CUDA device of this compute capability ("8.6"): bf16 from 8.0
 * (Ampere), whose tensor cores have it, else f16.
 */
export function cudaHalfDtype(computeCapability: string): 'bf16' | 'f16' {
  const major = Number(computeCapability.split('.')[0]);
  return Number.isFinite(major) && major >= 8 ? 'bf16' : 'f16';
}
