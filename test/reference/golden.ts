/** Loads the PyTorch golden fixtures (scripts/golden/make_golden.py) and rebuilds their inputs. */
import { readFileSync } from 'node:fs';
import { type T, tensor } from './f64.js';
import { hashUniform } from './params.js';

export interface EncodedTensor {
  shape: number[];
  f64: string;
}
interface InputRef {
  key: string;
  shape: number[];
}
export interface GoldenCase {
  inputs: Record<string, InputRef | number[] | number[][]>;
  overrides?: Record<string, number[]>;
  outputs: Record<string, EncodedTensor>;
}
export interface GoldenDoc {
  torch: string;
  param_shapes: Record<string, number[]>;
  cases: Record<string, GoldenCase>;
}

export function loadGolden(): GoldenDoc {
  return JSON.parse(readFileSync(new URL('./fixtures/golden-tiny.json', import.meta.url), 'utf8')) as GoldenDoc;
}

export function decode(e: EncodedTensor): T {
  const b = Buffer.from(e.f64, 'base64');
  const data = new Float64Array(b.length / 8);
  for (let i = 0; i < data.length; i++) data[i] = b.readDoubleLE(i * 8);
  return tensor(e.shape, data);
}

/** An input the fixture names by generator key (values u ∈ [-1, 1) from the hash generator). */
export function hashInput(ref: unknown): T {
  const r = ref as InputRef;
  return tensor(r.shape, hashUniform(r.key, r.shape.reduce((a, b) => a * b, 1)));
}

/** max |a − b| / max(1, max |b|): relative to the output's scale. */
export function relErr(a: T, b: T): number {
  if (a.shape.join() !== b.shape.join()) throw new Error(`shape [${a.shape}] vs [${b.shape}]`);
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.data.length; i++) {
    d = Math.max(d, Math.abs(a.data[i] - b.data[i]));
    m = Math.max(m, Math.abs(b.data[i]));
  }
  return d / Math.max(1, m);
}
