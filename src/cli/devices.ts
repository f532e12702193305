import type { Command } from 'commander';
import { coreInfo, cudaStatus, planDevice, type CoreInfo, type CudaStatus } from '../core/index.js';
import { createOutput } from './output.js';
import { globalOptions } from './options.js';

export interface DevicesCommandOptions {
  json: boolean;
}

export interface DevicesReport {
  cpu: { simd: CoreInfo['simd']; threads: number };
  cuda: {
    /** This build has the CUDA backend. */
    built: boolean;
    /** Architectures compiled in, e.g. "80 86 (+PTX 86)"; null without the backend. */
    archs: string | null;
    available: boolean;
    /** Why CUDA is unavailable; null when available. */
    reason: string | null;
    /** CUDA runtime and driver versions as "12.4"; null when absent (no backend, no driver). */
    runtime_version: string | null;
    driver_version: string | null;
    /** The device `cuda` and `auto` use; null when unavailable. */
    selected: number | null;
    devices: {
      index: number;
      name: string;
      /** "8.6" */
      compute_capability: string;
      multiprocessors: number;
      memory_bytes: number;
    }[];
  };
  /** What `device: auto` resolves to here: "cpu" or "cuda:N", and the description. */
  auto: { device: string; description: string };
}

/** 12040 → "12.4"; 0 → null. */
export function cudaVersion(v: number): string | null {
  return v > 0 ? `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}` : null;
}

export function devicesReport(info: CoreInfo, status: CudaStatus): DevicesReport {
  const auto = planDevice('auto', status);
  if (!auto.ok) throw new Error(`device auto did not resolve: ${auto.message}`); // planDevice: auto always resolves
  return {
    cpu: { simd: info.simd, threads: info.threads },
    cuda: {
      built: status.built,
      archs: status.built && status.archs ? status.archs : null,
      available: status.available,
      reason: status.available ? null : status.reason,
      runtime_version: cudaVersion(status.runtimeVersion),
      driver_version: cudaVersion(status.driverVersion),
      selected: status.available ? status.device : null,
      devices: status.devices.map((d) => ({
        index: d.index,
        name: d.name,
        compute_capability: d.computeCapability,
        multiprocessors: d.multiprocessors,
        memory_bytes: d.totalMemory,
      })),
    },
    auto: { device: auto.name, description: auto.description },
  };
}

export function formatDevicesReport(r: DevicesReport): string {
  const row = (label: string, text: string) => `${label.padEnd(8)}${text}`;
  const lines = [row('cpu', `${r.cpu.simd}, ${r.cpu.threads} thread${r.cpu.threads === 1 ? '' : 's'}`)];
  const c = r.cuda;
  if (!c.built) lines.push(row('cuda', 'not built into this install'));
  else {
    const versions = [`runtime ${c.runtime_version ?? '?'}`, `driver ${c.driver_version ?? 'none'}`].join(', ');
    lines.push(row('cuda', `built for ${c.archs}; ${versions}`));
  }
  lines.push(row('', c.available ? 'available' : `unavailable: ${c.reason}`));
  for (const d of c.devices) {
    const gib = (d.memory_bytes / 2 ** 30).toFixed(1);
    const mark = d.index === c.selected ? '  (selected)' : '';
    lines.push(row(`cuda:${d.index}`, `${d.name}, sm_${d.compute_capability.replace('.', '')}, ${d.multiprocessors} SMs, ${gib} GiB${mark}`));
  }
  lines.push(row('auto', `→ ${r.auto.description}`));
  return lines.join('\n');
}

/** `dbt devices`: the CPU and CUDA devices of this build on this machine. Unavailable CUDA is not an error. */
export function devicesAction(o: DevicesCommandOptions): void {
  const report = devicesReport(coreInfo(), cudaStatus());
  const out = createOutput(o.json);
  if (o.json) out.result({ ok: true, command: 'devices', ...report });
  else out.data(formatDevicesReport(report));
}

export function registerDevices(program: Command, action: (o: DevicesCommandOptions) => void | Promise<void> = devicesAction): void {
  program
    .command('devices')
    .description('show the CPU and CUDA devices of this build, why CUDA is unavailable, and what device: auto picks')
    .action(async (_opts: object, cmd: Command) => {
      await action({ json: globalOptions(cmd).json });
    });
}

export const register = (program: Command) => registerDevices(program);
