// Child process of cuda-emu.test.ts, run with DBT_NATIVE_ADDON=native/out/emu/dbt_native.node (the addon
// linked against the CUDA backend compiled for cuemu, the CPU emulation of a CUDA device). Runs the built
// library (dist/) on the tiny model in argv[2] on 'cuda' and on 'cpu' with the same inputs and prints one
// JSON object of measurements on stdout; the test asserts on them.
import { openModel } from '../../dist/index.js';
import { allocStats, cudaStatus, ops, tensor } from '../../dist/core/index.js';
import { openWeights } from '../../dist/model/weights.js';
import { NativeNet } from '../../dist/nets/native.js';
import { loadNetWeights } from '../../dist/nets/model.js';

const dir = process.argv[2];
const out = { status: cudaStatus(), baseline: allocStats('cuda') };

// `oom` (run with a small CUEMU_MEMORY_MB): openModel fails to allocate; what it says and leaves behind.
if (process.argv[3] === 'oom') {
  try {
    (await openModel(dir, { device: 'cuda' })).dispose();
    out.oom = null;
  } catch (e) {
    out.oom = { name: e.constructor.name, message: e.message, after: allocStats('cuda') };
  }
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
}

/** Deterministic inputs in [-scale, scale) (a hash of key and index; never all zero). */
function values(key, n, scale = 1) {
  const a = new Float32Array(n);
  let h = 2166136261;
  for (const c of key) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
  for (let i = 0; i < n; i++) {
    let x = Math.imul(h ^ i, 2654435761) >>> 0;
    x = Math.imul(x ^ (x >>> 15), 2246822519) >>> 0;
    x = (x ^ (x >>> 13)) >>> 0;
    a[i] = (x / 2 ** 32 * 2 - 1) * scale;
  }
  return a;
}
const host = (key, shape, scale) => ({ data: values(key, shape.reduce((p, q) => p * q, 1), scale), shape });

/** ||a − b|| / ||b||, and whether every value is finite. */
function relL2(a, b) {
  if (a.length !== b.length) throw new Error(`lengths ${a.length} vs ${b.length}`);
  let d = 0;
  let m = 0;
  let finite = true;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) finite = false;
    d += (a[i] - b[i]) ** 2;
    m += b[i] ** 2;
  }
  return finite ? Math.sqrt(d / m) : Infinity;
}

// ---- openModel: the three networks on cuda (default dtype, and f32) against the CPU.
const x = host('x', [2, 4, 8, 8]);
const t = new Float32Array([999, 37.5]);
const img = host('img', [1, 3, 16, 16]);
async function runAll(m) {
  const ids = m.tokenize(['a photo of sks person', 'nanU Unan, 1girl']);
  const ctx = await m.encodeText(ids);
  const ctx2 = await m.encodeText(ids, { clipSkip: 2 });
  const cpuCtx = host('ctx', [2, 77, 32]); // the same context for every device: UNet compared alone
  const eps = await m.unet(x, t, cpuCtx);
  const { mean, logvar } = await m.vaeEncode(img);
  const dec = await m.vaeDecode(host('z', [1, 4, 4, 6]));
  return { ctx, ctx2, eps, mean, logvar, dec };
}
const cpu = await openModel(dir, { device: 'cpu' });
const want = await runAll(cpu);
cpu.dispose();
out.models = {};
for (const dtype of ['auto', 'f16', 'f32']) {
  const m = await openModel(dir, { device: 'cuda', dtype });
  const got = await runAll(m);
  const during = allocStats('cuda');
  m.dispose();
  const err = {};
  for (const k of Object.keys(want)) {
    if (JSON.stringify(got[k].shape) !== JSON.stringify(want[k].shape)) throw new Error(`${k}: shape ${got[k].shape} vs ${want[k].shape}`);
    err[k] = relL2(got[k].data, want[k].data);
  }
  out.models[dtype] = { device: m.device, dtype: m.dtype, err, during: during.current, after: allocStats('cuda') };
}

out.cuda1 = await openModel(dir, { device: 'cuda:1' }).then(() => null, (e) => e.message);
{
  const m = await openModel(dir, { device: 'cuda:0', dtype: 'f32' });
  out.cuda0 = { device: m.device, err: relL2((await m.unet(x, t, host('ctx', [2, 77, 32]))).data, want.eps.data) };
  m.dispose();
}

// ---- One AdamW step of the tiny UNet through NativeNet on cuda (full and fused) against the CPU.
const src = await openWeights(dir);
async function unetNet(device, dtype) {
  const net = new NativeNet('unet', src.arch.unet, dtype, device);
  await loadNetWeights(net, src);
  return net;
}
function onDevice(net, key, shape, scale) {
  const h = tensor(values(key, shape.reduce((p, q) => p * q, 1), scale), shape, { device: net.device });
  if (net.dtype === 'f32') return h;
  const c = ops.cast(h, net.dtype);
  h.dispose();
  return c;
}
/** f32 host copy of tn; disposes tn (a parameter or gradient handle shares the network's memory). */
const f32 = (tn) => {
  try {
    if (tn.dtype === 'f32') return tn.read();
    const c = ops.cast(tn, 'f32');
    try {
      return c.read();
    } finally {
      c.dispose();
    }
  } finally {
    tn.dispose();
  }
};
// Two AdamW steps (8-bit moments differ from f32 ones only from the second step: the first update uses the
// moments before they are quantised). eps 1e-3 keeps the update g/(|g|+eps) smooth where |g| is tiny, so
// gradients that differ by rounding give updates that differ by about as much; lr 1e-2 is well above a bf16
// weight's rounding step (stochastic rounding's noise).
function step(net, opts) {
  net.setOptimizer(opts);
  let yHost;
  let grads = null;
  for (const n of [1, 2]) {
    // bf16 weights keep f32 moments and store the update by stochastic rounding (no f32 master copy).
    net.setOptimizerParams({ lr: 1e-2, eps: 1e-3, weightDecay: 1e-2, step: n, stochasticRounding: net.dtype === 'bf16', srSeed: 5 });
    if (!opts.fused) net.zeroGrads();
    const xs = onDevice(net, `tx${n}`, [2, 4, 8, 8]);
    const ts = tensor(new Float32Array([10 * n, 700]), [2]);
    const cs = onDevice(net, `tc${n}`, [2, 9, 32]);
    const dy = onDevice(net, `tdy${n}`, [2, 4, 8, 8], 0.1);
    const y = net.unetForward(xs, ts, cs, true);
    if (n === 1) yHost = f32(y);
    else y.dispose();
    net.unetBackward(dy, null);
    if (!opts.fused) {
      if (n === 1) grads = net.paramSpecs().map((s) => f32(net.grad(s.key)));
      net.optimizerStep();
    }
    [xs, ts, cs, dy].forEach((v) => v.dispose());
  }
  const params = net.paramSpecs().map((s) => f32(net.param(s.key)));
  net.setOptimizer(null);
  return { y: yHost, grads, params };
}
const cat = (arrs) => {
  const n = arrs.reduce((s, a) => s + a.length, 0);
  const r = new Float32Array(n);
  let o = 0;
  for (const a of arrs) (r.set(a, o), (o += a.length));
  return r;
};
const cpuNet = await unetNet('cpu', 'f32');
const before = cat(cpuNet.paramSpecs().map((s) => f32(cpuNet.param(s.key))));
const refs = { adamw: step(cpuNet, {}) };
await loadNetWeights(cpuNet, src);
refs.adamw8bit = step(cpuNet, { eightBit: true, block: 256 });
cpuNet.dispose();
out.train = {};
out.leftAfterStep = {};
for (const [name, dtype, opts, r0] of [
  ['f32', 'f32', {}, refs.adamw],
  ['f32-fused', 'f32', { fused: true }, refs.adamw],
  ['bf16', 'bf16', {}, refs.adamw],
  ['f32-8bit', 'f32', { eightBit: true, block: 256 }, refs.adamw8bit],
]) {
  const net = await unetNet('cuda', dtype);
  const r = step(net, opts);
  net.dispose();
  out.leftAfterStep[name] = allocStats('cuda');
  const refDelta = cat(r0.params).map((v, i) => v - before[i]);
  out.train[name] = {
    y: relL2(r.y, r0.y),
    grads: r.grads ? relL2(cat(r.grads), cat(r0.grads)) : null,
    update: relL2(cat(r.params).map((v, i) => v - before[i]), refDelta),
    params: r.params,
  };
}
// Fused and full steps leave the same bits on the device too.
out.fusedEqualsFull = out.train['f32-fused'].params.every((p, i) => Buffer.from(p.buffer).equals(Buffer.from(out.train.f32.params[i].buffer)));
for (const v of Object.values(out.train)) delete v.params;
// bf16 weights with f32 moments (the default) but without stochastic rounding: refused with what to change.
{
  const net = await unetNet('cuda', 'bf16');
  net.setOptimizer({});
  net.setOptimizerParams({ lr: 1e-2, step: 1 });
  const xs = onDevice(net, 'rx', [1, 4, 8, 8]);
  const ts = tensor(new Float32Array([10]), [1]);
  const cs = onDevice(net, 'rc', [1, 9, 32]);
  const dy = onDevice(net, 'rdy', [1, 4, 8, 8]);
  net.unetForward(xs, ts, cs, true).dispose();
  net.unetBackward(dy, null);
  try {
    net.optimizerStep();
    out.mixedMomentsRefusal = null;
  } catch (e) {
    out.mixedMomentsRefusal = e.message;
  }
  [xs, ts, cs, dy].forEach((v) => v.dispose());
  net.dispose();
}
await src.close();
out.end = allocStats('cuda');
process.stdout.write(JSON.stringify(out));
