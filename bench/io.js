// `npm run bench -- io [--dir DIR] [--reps N] [--only a,b] [--keep]`: checkpoint IO throughput on a 2.13 GB
// SD1.5-size float16 safetensors file, next to `cp` of the same file on the same disk.
//   load raw    openWeights + every tensor's bytes as stored, a fresh buffer per tensor (stream())
//   load reused the same into two reused buffers (stream({ reuse: true }): bytes the caller copies elsewhere)
//   load f32    openWeights + every tensor as Float32Array (readF32: inspect --scan, conversions; f16 → f32 in JS)
//   write       openWeights → writeSafetensors (the create/export path: same-dtype tensors are copied in the
//               kernel, as cp copies), with and without fsync
//   export      `dbt export` as users run it: read, write, fsync, rename; and --hash (+ sha256 / A1111 hashes)
// Each step runs as its own process, as cp does. The file's pages are warm in the page cache for every
// reader, as they are for cp; every step starts after an untimed `sync`, so no step pays for an earlier
// step's writeback. Writers without fsync compare with cp, with fsync with `cp && sync`. Rounds are
// interleaved; best and median of each step are reported (the machine is shared: the worst times are other
// people's builds), with the load average before and after.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SD15_ARCH } from '../dist/model/arch.js';
import { exportModel } from '../dist/model/export.js';
import { expectedTensors } from '../dist/model/keys.js';
import { writeSafetensors } from '../dist/model/safetensors.js';
import { toFloat32 } from '../dist/model/dtype.js';
import { openWeights } from '../dist/model/weights.js';
import { transferTensor } from '../dist/model/transfer.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const dir = arg('--dir', join(tmpdir(), 'dbt-bench-io'));
const keep = process.argv.includes('--keep');
mkdirSync(dir, { recursive: true });
const src = join(dir, 'sd15-f16.safetensors');
const copy = join(dir, 'cp-copy.safetensors');
const out = join(dir, 'written.safetensors');
const exported = join(dir, 'exported.safetensors');

// A deterministic, non-trivial f16 payload (random bits in the exponent range of real weights).
const pattern = new Uint16Array(8 << 20);
let s = 12345;
for (let i = 0; i < pattern.length; i++) {
  s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
  pattern[i] = (s >>> 16) & 0xa7ff; // |x| < 0.25, both signs
}
const patternBytes = new Uint8Array(pattern.buffer);
const specs = expectedTensors(SD15_ARCH);
const sourceTensors = specs.map((t, i) => {
  const dtype = t.dtype === 'I64' ? 'I64' : 'F16';
  const n = t.shape.reduce((a, b) => a * b, 1) * (dtype === 'I64' ? 8 : 2);
  return { key: t.key, dtype, shape: t.shape, data: () => (n <= patternBytes.length ? patternBytes.subarray((i * 64) % 4096, ((i * 64) % 4096) + n) : Buffer.alloc(n, i)) };
});

const MB = 1e6;
const REPS = Number(arg('--reps', '3'));
const step = arg('--step', undefined);
const only = arg('--only', undefined)?.split(',');
function sh(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed`);
}

// ---- the steps, each run in a fresh process (as cp is) ----
const STEPS = {
  async 'load raw'() {
    const w = await openWeights(src);
    try {
      for await (const _ of w.stream());
    } finally {
      await w.close();
    }
  },
  async 'load reused'() {
    const w = await openWeights(src);
    try {
      for await (const _ of w.stream(undefined, { reuse: true }));
    } finally {
      await w.close();
    }
  },
  async 'load f32'() {
    const w = await openWeights(src);
    try {
      for await (const { tensor, bytes } of w.stream()) toFloat32(bytes, tensor.dtype);
    } finally {
      await w.close();
    }
  },
  'read + write': () => copyThrough(false),
  'read + write + fsync': () => copyThrough(true),
  async 'dbt export'() {
    await exportModel({ source: src, out: exported, force: true });
  },
  async 'dbt export --hash'() {
    await exportModel({ source: src, out: exported, force: true, hash: true });
  },
};
/** openWeights → writeSafetensors, the path of create/export without metadata and hashing. */
async function copyThrough(durable) {
  const w = await openWeights(src);
  try {
    await writeSafetensors(out, [...w.tensors.keys()].map((k) => transferTensor(w, k, 'F16')), { durable });
  } finally {
    await w.close();
  }
}
if (step) {
  const t0 = performance.now();
  const c0 = process.cpuUsage(); // every thread of the process: main, libuv's (in-kernel copies), the hasher
  await STEPS[step]();
  const c = process.cpuUsage(c0);
  // The step's own time, without Node's start-up, and its CPU seconds.
  process.stdout.write(`${(performance.now() - t0) / 1000}\n${(c.user + c.system) / 1e6}\n`);
  process.exit(0);
}

// ---- the driver ----
if (!existsSync(src)) {
  process.stderr.write(`writing the 2.1 GB source file ${src} …\n`);
  await writeSafetensors(src, sourceTensors, { metadata: { 'modelspec.title': 'bench' }, durable: false });
}
const size = statSync(src).size;
process.stderr.write(`source: ${src} (${(size / MB).toFixed(0)} MB, ${specs.length} tensors, f16); ${REPS} rounds, best and median reported\n`);
const loadBefore = loadavg()[0];
sh('cat', [src]); // warm the page cache once, for cp and dbt alike

const results = new Map();
const cpuSeconds = new Map();
const startup = [];
const TIME = '/usr/bin/time'; // CPU seconds of cp steps, where GNU time is installed
const cpuLog = join(dir, 'time.txt');
function timed(name, cmd, args) {
  if (only && !only.includes(name)) return;
  sh('sync', []); // every step starts with no dirty pages of an earlier step waiting for writeback (untimed)
  const isNode = cmd === process.execPath;
  const [run, runArgs] = !isNode && existsSync(TIME) ? [TIME, ['-f', '%U %S', '-o', cpuLog, cmd, ...args]] : [cmd, args];
  const t0 = performance.now();
  const r = spawnSync(run, runArgs, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  const wall = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed`);
  // dbt steps report their own time (start-up and module loading excluded: ~0.2 s, listed separately).
  const [own, cpu] = isNode ? r.stdout.trim().split('\n').map(Number) : [wall, run === TIME ? readFileSync(cpuLog, 'utf8').trim().split(/\s+/).map(Number).reduce((a, b) => a + b, 0) : NaN];
  if (isNode) startup.push(wall - own);
  (results.get(name) ?? results.set(name, []).get(name)).push(own);
  (cpuSeconds.get(name) ?? cpuSeconds.set(name, []).get(name)).push(cpu);
  for (const f of [copy, out, exported]) rmSync(f, { force: true });
}
const self = fileURLToPath(import.meta.url);
const node = (name) => [process.execPath, [self, '--step', name, '--dir', dir]];
for (let rep = 0; rep < REPS; rep++) {
  timed('cp', 'cp', [src, copy]);
  timed('load raw', ...node('load raw'));
  timed('load reused', ...node('load reused'));
  timed('read + write', ...node('read + write'));
  timed('cp && sync', 'sh', ['-c', `cp '${src}' '${copy}' && sync '${copy}'`]);
  timed('read + write + fsync', ...node('read + write + fsync'));
  timed('dbt export', ...node('dbt export'));
  timed('dbt export --hash', ...node('dbt export --hash'));
  // Last: the 4.3 GB of Float32Arrays it leaves to the kernel slowed whichever step came next.
  timed('load f32', ...node('load f32'));
}
const loadAfter = loadavg()[0];
const best = (name) => size / MB / Math.min(...results.get(name));
const median = (name) => {
  const t = [...results.get(name)].sort((a, b) => a - b);
  return size / MB / (t.length % 2 ? t[(t.length - 1) / 2] : (t[t.length / 2 - 1] + t[t.length / 2]) / 2);
};
const labels = {
  cp: 'cp (page cache warm)',
  'load raw': 'load: stream(), fresh buffers',
  'load reused': 'load: stream({ reuse }), 2 buffers',
  'load f32': 'load + f16→f32 (readF32 path)',
  'read + write': 'read + write, no fsync',
  'cp && sync': 'cp && sync',
  'read + write + fsync': 'read + write + fsync + rename',
  'dbt export': 'dbt export (+fsync)',
  'dbt export --hash': 'dbt export --hash (+fsync, +sha256)',
};
const medianCpu = (name) => {
  const c = [...cpuSeconds.get(name)].sort((a, b) => a - b);
  return c.length % 2 ? c[(c.length - 1) / 2] : (c[c.length / 2 - 1] + c[c.length / 2]) / 2;
};
process.stderr.write(`${''.padEnd(36)}   best median MB/s   CPU s (median)\n`);
for (const [name, times] of results) {
  const cpu = Number.isNaN(medianCpu(name)) ? '   –' : medianCpu(name).toFixed(2).padStart(5);
  process.stderr.write(`${labels[name].padEnd(36)} ${best(name).toFixed(0).padStart(6)} ${median(name).toFixed(0).padStart(6)}   ${cpu}   (${times.map((t) => t.toFixed(2)).join(' / ')} s)\n`);
}
process.stderr.write(`load average (1 min) ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after, on ${cpus().length} cores\n`);
process.stderr.write(`node start-up + module loading per dbt step (not in the figures above): ${Math.min(...startup).toFixed(2)}–${Math.max(...startup).toFixed(2)} s\n`);
if (!keep) rmSync(dir, { recursive: true, force: true });
const pct = (a, b) => `${((100 * a) / b).toFixed(0)}%`;
const have = (name) => results.has(name);
const fig = (name, ref) => `${best(name).toFixed(0)}/${median(name).toFixed(0)} MB/s${ref && have(ref) ? ` (${pct(best(name), best(ref))}/${pct(median(name), median(ref))} of ${ref})` : ''}`;
const parts = [
  ['cp', 'cp'],
  ['load raw', 'load', 'cp'],
  ['load reused', 'load reused', 'cp'],
  ['load f32', 'load+f32', 'cp'],
  ['read + write', 'write', 'cp'],
  ['cp && sync', 'cp&&sync'],
  ['read + write + fsync', 'write+fsync', 'cp && sync'],
  ['dbt export', 'dbt export', 'cp && sync'],
  ['dbt export --hash', 'export --hash', 'cp && sync'],
]
  .filter(([name]) => have(name))
  .map(([name, label, ref]) => `${label} ${fig(name, ref)}`);
console.log(`io: ${(size / MB).toFixed(0)} MB f16, best/median of ${REPS}, each step a fresh process, load ${loadBefore.toFixed(1)}–${loadAfter.toFixed(1)} — ${parts.join('; ')}`);
