/**
 * The TypeScript GPU path end to end on an emulated CUDA device: a child `node` loads the addon linked
 * against the CUDA backend compiled for cuemu (native/out/emu/dbt_native.node, `make -C native emu-addon`,
 * built by `npm test` before vitest) and runs the built library (dist/): openModel(…, { device: 'cuda' }) —
 * UNet, text encoder, VAE encode and decode — and two AdamW steps of NativeNet on 'cuda', against the CPU on
 * the same inputs. Checks logic (uploads, casts, the device-side networks and optimizer, read-back, disposal),
 * not a real GPU.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_ARCH } from '../../src/model/arch.js';
import { writeHashCheckpoint } from './helpers.js';

const root = join(import.meta.dirname, '..', '..');
const addon = join(root, 'native', 'out', 'emu', 'dbt_native.node');
const work = mkdtempSync(join(tmpdir(), 'dbt-cuda-emu-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function runChild(args: string[], env: Record<string, string> = {}): string {
  if (!existsSync(addon)) throw new Error(`${addon} is missing: run \`make -C native emu-addon\` (npm test does)`);
  const r = spawnSync(process.execPath, args, {
    cwd: root,
    env: { ...process.env, DBT_NATIVE_ADDON: addon, DBT_CUDA_DEVICE: '', CUEMU_CC: '80', ...env },
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    timeout: 240_000,
  });
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status ?? r.signal}:\n${r.stderr}`);
  return r.stdout;
}

interface Result {
  status: { built: boolean; available: boolean; device: number; devices: { name: string; computeCapability: string }[] };
  baseline: { current: number; live: number };
  models: Record<string, { device: string; dtype: string; err: Record<string, number>; during: number; after: { current: number; live: number } }>;
  train: Record<string, { y: number; grads: number | null; update: number }>;
  leftAfterStep: Record<string, { current: number; live: number }>;
  fusedEqualsFull: boolean;
  mixedMomentsRefusal: string | null;
  cuda0: { device: string; err: number };
  cuda1: string | null;
  end: { current: number; live: number };
}

describe('the GPU path on cuemu (emulated sm_80)', () => {
  let res: Result;
  let file: string;
  beforeAll(async () => {
    // Hash-generated weights everywhere (a created model's zero-initialised output layers would hide errors).
    file = join(work, 'tiny.safetensors');
    await writeHashCheckpoint(file, TINY_ARCH, 'F32');
    res = JSON.parse(runChild([join('test', 'nets', 'cuda-emu-child.mjs'), file])) as Result;
  }, 300_000);

  it('the emulated device is found and used', () => {
    expect(res.status.built).toBe(true);
    expect(res.status.available).toBe(true);
    expect(res.status.devices.map((d) => [d.name, d.computeCapability])).toEqual([['cuemu (CUDA emulated on the CPU, sm_80)', '8.0']]);
  });

  it('openModel on cuda matches the CPU: bf16 by default, f16, f32 tightly', () => {
    expect(res.models.auto).toMatchObject({ device: 'cuda:0', dtype: 'bf16' });
    expect(res.models.f16).toMatchObject({ device: 'cuda:0', dtype: 'f16' });
    for (const [k, e] of Object.entries(res.models.f16.err)) expect(e, `f16 ${k}`).toBeLessThan(1e-2);
    expect(res.models.f32).toMatchObject({ device: 'cuda:0', dtype: 'f32' });
    for (const [k, e] of Object.entries(res.models.auto.err)) expect(e, `bf16 ${k}`).toBeLessThan(5e-2); // measured ≤ 0.02
    for (const [k, e] of Object.entries(res.models.f32.err)) expect(e, `f32 ${k}`).toBeLessThan(1e-4);
    expect(Object.keys(res.models.f32.err).sort()).toEqual(['ctx', 'ctx2', 'dec', 'eps', 'logvar', 'mean']);
  });

  it('cuda:0 is the device; cuda:1 does not exist', () => {
    expect(res.cuda0).toEqual({ device: 'cuda:0', err: expect.any(Number) });
    expect(res.cuda0.err).toBeLessThan(1e-4);
    expect(res.cuda1).toBe("openModel: device cuda:1 does not exist; use device 'cpu', or 'auto' (the CPU when no GPU is usable)");
  });

  it('out of device memory while loading: a CoreError naming the device, and nothing left allocated', () => {
    const r = JSON.parse(runChild([join('test', 'nets', 'cuda-emu-child.mjs'), file, 'oom'], { CUEMU_MEMORY_MB: '2' })) as {
      status: { devices: { totalMemory: number }[] };
      oom: { name: string; message: string; after: { current: number; live: number } } | null;
    };
    expect(r.status.devices[0].totalMemory).toBe(2 << 20);
    expect(r.oom?.name).toBe('CoreError');
    expect(r.oom?.message).toMatch(/^out of memory on cuda:0 \(cuemu \(CUDA emulated on the CPU, sm_80\), .* free of 2\.0 MiB, .*tried to allocate /);
    expect(r.oom?.after).toMatchObject({ current: 0, live: 0 });
  });

  it('dispose gives the device memory back', () => {
    const base = { current: res.baseline.current, live: res.baseline.live };
    for (const m of Object.values(res.models)) {
      expect(m.during).toBeGreaterThan(res.baseline.current);
      expect(m.after).toMatchObject(base);
    }
    for (const name of ['f32', 'f32-fused', 'bf16']) expect(res.leftAfterStep[name], name).toMatchObject(base);
    // 8-bit AdamW's one-launch update keeps its last segment table (native/cuda/optim.cu, TableCache: reused
    // while a step passes the same tensors); it stays after the network is gone: one small allocation.
    for (const s of [res.leftAfterStep['f32-8bit'], res.end]) {
      expect(s.live).toBe(base.live + 1);
      expect(s.current - base.current).toBeGreaterThan(0);
      expect(s.current - base.current).toBeLessThan(64 << 10);
    }
  });

  it('two AdamW steps of the UNet on cuda match the CPU (full and fused f32, bf16 with stochastic rounding, 8-bit)', () => {
    const { f32, bf16 } = res.train;
    expect(f32.y).toBeLessThan(1e-4);
    expect(f32.grads).toBeLessThan(1e-4);
    expect(f32.update).toBeLessThan(1e-4);
    expect(res.fusedEqualsFull).toBe(true);
    expect(res.train['f32-8bit'].update).toBeLessThan(2e-3);
    expect(bf16.y).toBeLessThan(5e-2);
    expect(bf16.grads).toBeLessThan(1e-1);
    expect(bf16.update).toBeLessThan(0.25);
    expect(res.mixedMomentsRefusal).toMatch(/^AdamW: \S+ is bf16 with f32 moments, which only stochastic rounding \(bf16 parameters\) updates; turn it on, or keep the moments in the parameters' dtype \(momentDtype\)/);
  });

  it('dbt devices --json reports it and auto picks it (DBT_NATIVE_ADDON relative to the working directory)', () => {
    const rel = join('native', 'out', 'emu', 'dbt_native.node');
    const r = JSON.parse(runChild([join('bin', 'dbt.js'), 'devices', '--json'], { DBT_NATIVE_ADDON: rel })) as {
      cuda: { built: boolean; available: boolean; selected: number; devices: { name: string; compute_capability: string }[] };
      auto: { device: string; description: string };
    };
    expect(r.cuda).toMatchObject({ built: true, available: true, selected: 0 });
    expect(r.cuda.devices[0]).toMatchObject({ name: 'cuemu (CUDA emulated on the CPU, sm_80)', compute_capability: '8.0' });
    expect(r.auto.device).toBe('cuda:0');
    expect(r.auto.description).toMatch(/^cuda:0 \(cuemu \(CUDA emulated on the CPU, sm_80\), sm_80, /);
  });
});
