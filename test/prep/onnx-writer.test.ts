import { describe, expect, it } from 'vitest';
import ort from 'onnxruntime-node';
import { attr, encodeOnnxModel, singleNodeModel } from '../helpers/onnx-writer.js';
import { colourKeySegModelBytes } from './seg-model.js';
import { prng } from '../helpers/images.js';

function randomArray(n: number, seed: number): Float32Array {
  const r = prng(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}

async function session(bytes: Uint8Array) {
  return ort.InferenceSession.create(bytes);
}

describe('hand-written ONNX encoder, run by onnxruntime', () => {
  it('MatMul with an initializer matches a plain reference', async () => {
    const [m, k, n] = [3, 5, 4];
    const a = randomArray(m * k, 1);
    const b = randomArray(k * n, 2);
    const s = await session(
      singleNodeModel({
        opType: 'MatMul',
        inputs: [{ name: 'a', type: 'float32', shape: ['M', k] }],
        initializers: [{ name: 'b', type: 'float32', dims: [k, n], data: b }],
        output: { name: 'y', type: 'float32', shape: ['M', n] },
      }),
    );
    expect(s.inputNames).toEqual(['a']);
    expect(s.outputNames).toEqual(['y']);
    const y = (await s.run({ a: new ort.Tensor('float32', a, [m, k]) })).y;
    expect(y.dims).toEqual([m, n]);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let ref = 0;
        for (let p = 0; p < k; p++) ref += a[i * k + p] * b[p * n + j];
        expect(Math.abs((y.data as Float32Array)[i * n + j] - ref)).toBeLessThanOrEqual(1e-5 + Math.abs(ref) * 1e-5);
      }
    }
  });

  it('Conv with ints attributes (pads, strides) and a bias matches a plain reference', async () => {
    const [c, h, w, oc, kh] = [2, 5, 6, 3, 3];
    const x = randomArray(c * h * w, 3);
    const wt = randomArray(oc * c * kh * kh, 4);
    const bias = randomArray(oc, 5);
    const s = await session(
      singleNodeModel({
        opType: 'Conv',
        inputs: [{ name: 'x', type: 'float32', shape: [1, c, h, w] }],
        initializers: [
          { name: 'w', type: 'float32', dims: [oc, c, kh, kh], data: wt },
          { name: 'b', type: 'float32', dims: [oc], data: bias },
        ],
        output: { name: 'y', type: 'float32', shape: [1, oc, 'H', 'W'] },
        attributes: { pads: attr.ints([1, 1, 1, 1]), strides: attr.ints([2, 2]), kernel_shape: attr.ints([kh, kh]) },
      }),
    );
    const y = (await s.run({ x: new ort.Tensor('float32', x, [1, c, h, w]) })).y;
    const [oh, ow] = [Math.floor((h + 2 - kh) / 2) + 1, Math.floor((w + 2 - kh) / 2) + 1];
    expect(y.dims).toEqual([1, oc, oh, ow]);
    for (let o = 0; o < oc; o++) {
      for (let i = 0; i < oh; i++) {
        for (let j = 0; j < ow; j++) {
          let ref = bias[o];
          for (let ci = 0; ci < c; ci++) {
            for (let u = 0; u < kh; u++) {
              for (let v = 0; v < kh; v++) {
                const yy = i * 2 - 1 + u;
                const xx = j * 2 - 1 + v;
                if (yy < 0 || xx < 0 || yy >= h || xx >= w) continue;
                ref += x[(ci * h + yy) * w + xx] * wt[((o * c + ci) * kh + u) * kh + v];
              }
            }
          }
          const got = (y.data as Float32Array)[(o * oh + i) * ow + j];
          expect(Math.abs(got - ref)).toBeLessThanOrEqual(1e-5 + Math.abs(ref) * 1e-5);
        }
      }
    }
  });

  it('encodes negative int64 attributes and float attributes (Gemm transB, alpha; ReduceSum axes -1)', async () => {
    const bytes = encodeOnnxModel({
      graph: {
        inputs: [{ name: 'a', type: 'float32', shape: [2, 3] }],
        outputs: [{ name: 'y', type: 'float32', shape: [2, 1] }],
        initializers: [
          { name: 'b', type: 'float32', dims: [4, 3], data: randomArray(12, 7) },
          { name: 'axes', type: 'int64', dims: [1], data: BigInt64Array.from([-1n]) },
        ],
        nodes: [
          { opType: 'Gemm', inputs: ['a', 'b'], outputs: ['g'], attributes: { transB: attr.int(1), alpha: attr.float(0.5) } },
          { opType: 'ReduceSum', inputs: ['g', 'axes'], outputs: ['y'], attributes: { keepdims: attr.int(1) } },
        ],
      },
    });
    const s = await session(bytes);
    const a = randomArray(6, 8);
    const b = randomArray(12, 7);
    const y = (await s.run({ a: new ort.Tensor('float32', a, [2, 3]) })).y.data as Float32Array;
    for (let i = 0; i < 2; i++) {
      let ref = 0;
      for (let j = 0; j < 4; j++) for (let p = 0; p < 3; p++) ref += 0.5 * a[i * 3 + p] * b[j * 3 + p];
      expect(Math.abs(y[i] - ref)).toBeLessThanOrEqual(1e-5 + Math.abs(ref) * 1e-5);
    }
  });

  it('the colour-key stand-in has the isnetis names and shapes and keys out its colour', async () => {
    const s = await session(colourKeySegModelBytes({ key: [0, 255, 0], size: 8 }));
    expect(s.inputNames).toEqual(['img']);
    expect(s.outputNames).toEqual(['mask']);
    const img = new Float32Array(3 * 64);
    // pixel 0: pure key green; pixel 1: red; rest: black
    img[64] = 1; // G of pixel 0
    img[1] = 1; // R of pixel 1
    const m = (await s.run({ img: new ort.Tensor('float32', img, [1, 3, 8, 8]) })).mask;
    expect(m.dims).toEqual([1, 1, 8, 8]);
    const d = m.data as Float32Array;
    expect(d[0]).toBeLessThan(1e-5);
    expect(d[1]).toBeGreaterThan(1 - 1e-5);
  });
});
