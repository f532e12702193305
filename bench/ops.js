// `npm run bench -- ops [--quick]`: GFLOP/s of the native core's GEMM and 3x3 conv on SD1.5 shapes, next
// to onnxruntime-node's CPU execution of the same op (a one-node ONNX graph built here, weights as
// initializers), both with the same thread count, in one process. Ends with one summary line.
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { coreInfo, ops, scope, tensor } from '../dist/core/index.js';

const quick = process.argv.includes('--quick');
// --cpu-time: time runs by process CPU time (use with DBT_NUM_THREADS=1 on a busy machine: both libraries
// then run on the calling thread and other processes do not inflate the figures).
const cpuTime = process.argv.includes('--cpu-time');
const clock = () => {
  if (!cpuTime) return performance.now();
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const MIN_SECONDS = quick ? 0.3 : 1.5;
const MIN_RUNS = quick ? 3 : 5;
const threads = coreInfo().threads;

// ---- minimal ONNX protobuf encoding (ModelProto with one node) ----
function varint(n) {
  const out = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return out;
}
const key = (field, wire) => varint((field << 3) | wire);
const int = (field, v) => [...key(field, 0), ...varint(v)];
function bytes(field, data) {
  const b = typeof data === 'string' ? [...Buffer.from(data, 'utf8')] : [...data];
  return [...key(field, 2), ...varint(b.length), ...b];
}
const msg = (field, parts) => bytes(field, parts.flat());

function valueInfo(field, name, shape) {
  const dims = shape.map((d) => msg(1, [int(1, d)]));
  const tensorType = msg(1, [int(1, 1), msg(2, dims)]); // elem_type FLOAT, shape
  return msg(field, [bytes(1, name), msg(2, [tensorType])]);
}
function initializer(name, shape, data) {
  return msg(5, [...shape.map((d) => int(1, d)), int(2, 1), bytes(8, name), bytes(9, new Uint8Array(data.buffer))]);
}
const attrInt = (name, v) => msg(5, [bytes(1, name), int(3, v), int(20, 2)]);
const attrInts = (name, vs) => msg(5, [bytes(1, name), ...vs.map((v) => int(8, v)), int(20, 7)]);

function model({ op, inputs, output, attrs, inits, inputInfo, outputInfo }) {
  const node = msg(1, [...inputs.map((i) => bytes(1, i)), bytes(2, output), bytes(3, 'n0'), bytes(4, op), ...attrs]);
  const graph = msg(7, [node, bytes(2, 'g'), ...inits, valueInfo(11, ...inputInfo), valueInfo(12, ...outputInfo)]);
  return Uint8Array.from([...int(1, 8), ...graph, ...msg(8, [bytes(1, ''), int(2, 13)])]);
}

// ---- timing ----
function filled(n, seed) {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 4294967296 - 0.5;
  }
  return a;
}

// Runs a and b alternately (so both see the same machine load) and returns each one's best and
// median time in ms. The best run is the figure least disturbed by other processes.
async function timePair(a, b) {
  for (const f of [a, b, a, b]) await f();
  const ta = [];
  const tb = [];
  const start = performance.now();
  while (ta.length < MIN_RUNS || (performance.now() - start) / 1000 < 2 * MIN_SECONDS) {
    for (const [f, t] of [[a, ta], [b, tb]]) {
      const t0 = clock();
      await f();
      t.push(clock() - t0);
    }
    if (ta.length >= 60) break;
  }
  const stat = (t) => {
    t.sort((x, y) => x - y);
    return { best: t[0], median: t[Math.floor(t.length / 2)] };
  };
  return [stat(ta), stat(tb)];
}

async function ortSession(bytes) {
  return ort.InferenceSession.create(bytes, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // No spin-waiting between runs: spinning onnxruntime threads would take a core from dbt's runs,
    // which alternate with them in this process.
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  });
}

async function gemmCase(M, N, K) {
  const x = filled(M * K, 1);
  const w = filled(N * K, 2);
  const flops = 2 * M * N * K;
  const xt = tensor(x, [M, K]);
  const wt = tensor(w, [N, K]);
  const sess = await ortSession(
    model({
      op: 'Gemm', inputs: ['X', 'W'], output: 'Y', attrs: [attrInt('transB', 1)],
      inits: [initializer('W', [N, K], w)], inputInfo: ['X', [M, K]], outputInfo: ['Y', [M, N]],
    }),
  );
  const feeds = { X: new ort.Tensor('float32', x, [M, K]) };
  const [ours, theirs] = await timePair(() => scope(() => void ops.linear(xt, wt)), () => sess.run(feeds));
  // same numbers? (guards against timing a wrong graph)
  const a = (await sess.run(feeds)).Y.data;
  const b = scope(() => ops.linear(xt, wt).read());
  let err = 0;
  for (let i = 0; i < a.length; i += 97) err = Math.max(err, Math.abs(a[i] - b[i]));
  xt.dispose();
  wt.dispose();
  await sess.release();
  return { name: `gemm ${M}x${N}x${K}`, flops, ours, theirs, err };
}

async function convCase(C, O, H) {
  const x = filled(C * H * H, 3);
  const w = filled(O * C * 9, 4);
  const bias = filled(O, 5);
  const flops = 2 * O * C * 9 * H * H;
  const xt = tensor(x, [1, C, H, H]);
  const wt = tensor(w, [O, C, 3, 3]);
  const bt = tensor(bias, [O]);
  const sess = await ortSession(
    model({
      op: 'Conv', inputs: ['X', 'W', 'B'], output: 'Y',
      attrs: [attrInts('kernel_shape', [3, 3]), attrInts('pads', [1, 1, 1, 1]), attrInts('strides', [1, 1])],
      inits: [initializer('W', [O, C, 3, 3], w), initializer('B', [O], bias)],
      inputInfo: ['X', [1, C, H, H]], outputInfo: ['Y', [1, O, H, H]],
    }),
  );
  const feeds = { X: new ort.Tensor('float32', x, [1, C, H, H]) };
  const [ours, theirs] = await timePair(() => scope(() => void ops.conv2d(xt, wt, bt, { padding: 1 })), () => sess.run(feeds));
  const a = (await sess.run(feeds)).Y.data;
  const b = scope(() => ops.conv2d(xt, wt, bt, { padding: 1 }).read());
  let err = 0;
  for (let i = 0; i < a.length; i += 97) err = Math.max(err, Math.abs(a[i] - b[i]));
  for (const t of [xt, wt, bt]) t.dispose();
  await sess.release();
  return { name: `conv3x3 ${C}->${O} ${H}x${H}`, flops, ours, theirs, err };
}

const info = coreInfo();
process.stdout.write(`ops benchmark: ${threads} threads, simd ${info.simd}, onnxruntime-node ${ort.env.versions.common}\n`);
process.stdout.write(`runs alternate between dbt and onnxruntime; GFLOP/s from the best run, median time in brackets${cpuTime ? '; CPU time' : ''}\n`);
process.stdout.write(`${'case'.padEnd(26)} ${'dbt GFLOP/s (ms)'.padStart(22)} ${'ort GFLOP/s (ms)'.padStart(22)} ${'ratio'.padStart(6)}  max|diff|\n`);
const results = [];
for (const c of [
  () => gemmCase(4096, 320, 320),
  () => gemmCase(1024, 640, 2560),
  () => convCase(320, 320, 64),
  () => convCase(640, 640, 32),
]) {
  const r = await c();
  results.push(r);
  const g = (t) => `${(r.flops / (t.best / 1000) / 1e9).toFixed(1)} (${t.median.toFixed(1)})`;
  process.stdout.write(
    `${r.name.padEnd(26)} ${g(r.ours).padStart(22)} ${g(r.theirs).padStart(22)} ${(r.theirs.best / r.ours.best).toFixed(2).padStart(6)}  ${r.err.toExponential(1)}\n`,
  );
}
const summary = results.map((r) => `${r.name} ${(r.theirs.best / r.ours.best).toFixed(2)}x`).join(', ');
process.stdout.write(`ops: dbt vs onnxruntime (speed ratio, >1 = dbt faster): ${summary}\n`);
