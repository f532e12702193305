import { describe, expect, it } from 'vitest';
import { devicesReport, formatDevicesReport, cudaVersion, type DevicesReport } from '../../src/cli/devices.js';
import { coreInfo, cudaStatus, planDevice, type CudaStatus } from '../../src/core/index.js';
import { runCli } from '../helpers/cli.js';

/** CUDA is unavailable on every machine with this (no GPU index 99): no backend, no driver, or a bad index. */
const NO_CUDA_ENV = { DBT_CUDA_DEVICE: '99' };

const GIB = 2 ** 30;
const twoGpus: CudaStatus = {
  built: true,
  available: true,
  reason: '',
  archs: '80 86 (+PTX 86)',
  device: 1,
  runtimeVersion: 12040,
  driverVersion: 12080,
  devices: [
    { index: 0, name: 'NVIDIA A100-SXM4-40GB', computeCapability: '8.0', multiprocessors: 108, totalMemory: 40 * GIB },
    { index: 1, name: 'NVIDIA GeForce RTX 3090', computeCapability: '8.6', multiprocessors: 82, totalMemory: 24 * GIB },
  ],
};
const noDriver: CudaStatus = { ...twoGpus, available: false, reason: 'no NVIDIA driver found', device: -1, driverVersion: 0, devices: [] };
const notBuilt: CudaStatus = { built: false, available: false, reason: 'this build has no CUDA backend', archs: '', device: -1, runtimeVersion: 0, driverVersion: 0, devices: [] };

function checkReport(r: DevicesReport): void {
  expect(['avx512', 'avx2', 'portable']).toContain(r.cpu.simd);
  expect(r.cpu.threads).toBeGreaterThanOrEqual(1);
  const c = r.cuda;
  expect(typeof c.built).toBe('boolean');
  if (c.built) expect(c.archs).toMatch(/^\d+( \d+)* \(\+PTX \d+\)$/);
  else {
    expect(c.archs).toBeNull();
    expect(c.available).toBe(false);
    expect(c.devices).toEqual([]);
  }
  for (const d of c.devices) {
    expect(d).toEqual({ index: expect.any(Number), name: expect.any(String), compute_capability: expect.stringMatching(/^\d+\.\d+$/), multiprocessors: expect.any(Number), memory_bytes: expect.any(Number) });
    expect(d.memory_bytes).toBeGreaterThan(0);
  }
  if (c.available) {
    expect(c.reason).toBeNull();
    expect(c.devices.map((d) => d.index)).toContain(c.selected);
    expect(r.auto.device).toBe(`cuda:${c.selected}`);
    expect(r.auto.description).toMatch(new RegExp(`^cuda:${c.selected} \\(.+, sm_\\d+, [\\d.]+ GiB\\)$`));
  } else {
    expect(c.reason!.length).toBeGreaterThan(10);
    expect(c.selected).toBeNull();
    expect(r.auto).toEqual({ device: 'cpu', description: 'cpu' });
  }
}

describe('planDevice (the request against a given CUDA status)', () => {
  it('auto and cuda take the selected device, cuda:N device N, cpu never asks for the status', () => {
    expect(planDevice('auto', twoGpus)).toMatchObject({ ok: true, name: 'cuda:1', device: 'cuda', index: 1, description: 'cuda:1 (NVIDIA GeForce RTX 3090, sm_86, 24.0 GiB)' });
    expect(planDevice('cuda', twoGpus)).toMatchObject({ ok: true, name: 'cuda:1' });
    expect(planDevice('cuda:0', twoGpus)).toMatchObject({ ok: true, name: 'cuda:0', index: 0, description: 'cuda:0 (NVIDIA A100-SXM4-40GB, sm_80, 40.0 GiB)' });
    expect(planDevice('cpu', () => { throw new Error('cpu must not look at CUDA'); })).toMatchObject({ ok: true, name: 'cpu', device: 'cpu' });
  });

  it('says why a CUDA request cannot run here; auto falls back to the CPU', () => {
    expect(planDevice('auto', noDriver)).toMatchObject({ ok: true, name: 'cpu' });
    expect(planDevice('auto', notBuilt)).toMatchObject({ ok: true, name: 'cpu' });
    expect(planDevice('cuda:0', noDriver)).toMatchObject({ ok: false, why: 'unavailable', reason: 'no NVIDIA driver found', message: 'device cuda:0 requested but CUDA is unavailable: no NVIDIA driver found' });
    expect(planDevice('cuda', notBuilt)).toMatchObject({ ok: false, why: 'unavailable', details: [expect.stringMatching(/no CUDA backend/)] });
    expect(planDevice('cuda:2', twoGpus)).toMatchObject({ ok: false, why: 'no-such-device', message: 'device cuda:2 does not exist', reason: expect.stringMatching(/2 CUDA device\(s\): cuda:0 NVIDIA A100.*, cuda:1 NVIDIA GeForce/) });
  });
});

describe('devices report and its text', () => {
  it('two GPUs: every device, the selected one marked, auto → it', () => {
    const r = devicesReport({ simd: 'avx2', threads: 16, devices: ['cpu', 'cuda'] }, twoGpus);
    checkReport(r);
    expect(r.cuda).toMatchObject({ runtime_version: '12.4', driver_version: '12.8', selected: 1, reason: null, archs: '80 86 (+PTX 86)' });
    expect(formatDevicesReport(r).split('\n')).toEqual([
      'cpu     avx2, 16 threads',
      'cuda    built for 80 86 (+PTX 86); runtime 12.4, driver 12.8',
      '        available',
      'cuda:0  NVIDIA A100-SXM4-40GB, sm_80, 108 SMs, 40.0 GiB',
      'cuda:1  NVIDIA GeForce RTX 3090, sm_86, 82 SMs, 24.0 GiB  (selected)',
      'auto    → cuda:1 (NVIDIA GeForce RTX 3090, sm_86, 24.0 GiB)',
    ]);
  });

  it('no driver, and no CUDA backend: the reason, auto → cpu', () => {
    const a = devicesReport({ simd: 'portable', threads: 1, devices: ['cpu'] }, noDriver);
    checkReport(a);
    expect(formatDevicesReport(a).split('\n')).toEqual([
      'cpu     portable, 1 thread',
      'cuda    built for 80 86 (+PTX 86); runtime 12.4, driver none',
      '        unavailable: no NVIDIA driver found',
      'auto    → cpu',
    ]);
    const b = devicesReport({ simd: 'avx512', threads: 4, devices: ['cpu'] }, notBuilt);
    checkReport(b);
    expect(b.cuda).toMatchObject({ built: false, archs: null, runtime_version: null, driver_version: null });
    expect(formatDevicesReport(b).split('\n').slice(1, 3)).toEqual(['cuda    not built into this install', '        unavailable: this build has no CUDA backend']);
  });

  it('an unusable GPU is listed with the reason', () => {
    const old: CudaStatus = { ...twoGpus, available: false, device: -1, reason: 'device 0 (Tesla P100) has compute capability 6.0; dbt needs 7.5 or newer', devices: [{ index: 0, name: 'Tesla P100', computeCapability: '6.0', multiprocessors: 56, totalMemory: 16 * GIB }] };
    const r = devicesReport({ simd: 'avx2', threads: 8, devices: ['cpu'] }, old);
    checkReport(r);
    expect(formatDevicesReport(r)).toContain('        unavailable: device 0 (Tesla P100) has compute capability 6.0; dbt needs 7.5 or newer\ncuda:0  Tesla P100, sm_60, 56 SMs, 16.0 GiB\nauto    → cpu');
  });

  it('CUDA versions', () => {
    expect([cudaVersion(12040), cudaVersion(13000), cudaVersion(11080), cudaVersion(0)]).toEqual(['12.4', '13.0', '11.8', null]);
  });
});

describe('dbt devices (the built CLI, on this machine)', () => {
  it('--json: one result, consistent, and what the core reports', () => {
    const r = runCli(['devices', '--json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as DevicesReport & { ok: boolean; command: string };
    expect(out).toMatchObject({ ok: true, command: 'devices' });
    checkReport(out);
    const here = devicesReport(coreInfo(), cudaStatus());
    expect(out.cuda).toEqual(here.cuda);
    expect(out.auto).toEqual(here.auto);
    expect(out.cpu.simd).toBe(here.cpu.simd);
  });

  it('human: the same facts as text on stdout, exit 0', () => {
    const json = JSON.parse(runCli(['--json', 'devices']).stdout) as DevicesReport;
    const r = runCli(['devices']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^cpu {5}${json.cpu.simd}, \\d+ threads?$`));
    expect(lines[1]).toBe(json.cuda.built ? `cuda    built for ${json.cuda.archs}; runtime ${json.cuda.runtime_version ?? '?'}, driver ${json.cuda.driver_version ?? 'none'}` : 'cuda    not built into this install');
    expect(lines[2]).toBe(json.cuda.available ? '        available' : `        unavailable: ${json.cuda.reason}`);
    expect(lines.slice(3, -1).map((l) => l.slice(0, 8).trim())).toEqual(json.cuda.devices.map((d) => `cuda:${d.index}`));
    expect(lines.at(-1)).toBe(`auto    → ${json.auto.description}`);
  });

  it('CUDA unavailable (DBT_CUDA_DEVICE=99): the reason, auto → cpu, still exit 0', () => {
    const r = runCli(['devices', '--json'], { env: NO_CUDA_ENV });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as DevicesReport;
    checkReport(out);
    expect(out.cuda.available).toBe(false);
    expect(out.auto.device).toBe('cpu');
    const h = runCli(['devices'], { env: NO_CUDA_ENV });
    expect(h.code).toBe(0);
    expect(h.stdout).toContain(`        unavailable: ${out.cuda.reason}\n`);
    expect(h.stdout).toMatch(/\nauto {4}→ cpu\n$/);
  });

  it('is listed in --help', () => {
    expect(runCli(['--help']).stdout).toMatch(/\n {2}devices +show the CPU and CUDA devices/);
  });
});
