import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashFile } from '../../src/model/hashes.js';
import { SafetensorsFile, writeSafetensors, type TensorToWrite, type WriteOptions } from '../../src/model/safetensors.js';
import { convertFloatBytes, type DType } from '../../src/model/dtype.js';
import { randomF32, tempDir, testRng } from './helpers.js';

const dir = tempDir();

function randomBytes(n: number, seed: number): Uint8Array {
  const r = testRng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 256) | 0;
  return out;
}

interface Spec {
  key: string;
  dtype: DType;
  shape: number[];
  bytes: Uint8Array;
}

const f32 = (key: string, n: number, seed: number): Spec => ({ key, dtype: 'F32', shape: [n], bytes: new Uint8Array(randomF32(n, seed).buffer) });
const f16 = (key: string, n: number, seed: number): Spec => ({ key, dtype: 'F16', shape: [n], bytes: convertFloatBytes(new Uint8Array(randomF32(n, seed).buffer), 'F32', 'F16') });

// Two source files, written in the usual order (element size, then name).
const first: Spec[] = [f32('m.b', 300, 1), f32('m.a', 1000, 2), f16('m.c', 501, 3), { key: 'ids', dtype: 'I64', shape: [5], bytes: new Uint8Array(new BigInt64Array([0n, 1n, 2n, 3n, 4n]).buffer) }];
const second: Spec[] = [f32('n.x', 64, 4), f32('n.y', 777, 5), f16('n.z', 33, 6)];
const firstPath = join(dir, 'first.safetensors');
const secondPath = join(dir, 'second.safetensors');
const plain = (s: Spec): TensorToWrite => ({ key: s.key, dtype: s.dtype, shape: s.shape, data: s.bytes });

/** The tensors of open source files as verbatim sources; reading `data` would fail the test. */
function verbatim(file: SafetensorsFile, specs: Spec[], onCopied?: (key: string, n: number) => void): TensorToWrite[] {
  return specs.map((s) => {
    const e = file.entry(s.key);
    return {
      key: s.key,
      dtype: s.dtype,
      shape: s.shape,
      source: { path: file.path, fd: file.fd, offset: file.header.dataStart + e.begin, verbatim: true },
      onCopied: (n) => onCopied?.(s.key, n),
      data: () => {
        throw new Error(`${s.key}: the writer read a verbatim tensor instead of copying it`);
      },
    };
  });
}

async function expectTensors(path: string, specs: Spec[]): Promise<string[]> {
  const f = await SafetensorsFile.open(path);
  try {
    expect(f.keys().sort()).toEqual(specs.map((s) => s.key).sort());
    for (const s of specs) {
      expect(f.entry(s.key).dtype, s.key).toBe(s.dtype);
      expect(Buffer.from(await f.readRaw(s.key)).equals(Buffer.from(s.bytes)), s.key).toBe(true);
    }
    return f.keys();
  } finally {
    await f.close();
  }
}

async function withSources<T>(fn: (a: SafetensorsFile, b: SafetensorsFile) => Promise<T>): Promise<T> {
  await writeSafetensors(firstPath, first.map(plain));
  await writeSafetensors(secondPath, second.map(plain));
  const a = await SafetensorsFile.open(firstPath);
  const b = await SafetensorsFile.open(secondPath);
  try {
    return await fn(a, b);
  } finally {
    await a.close();
    await b.close();
  }
}

describe('writer: verbatim sources copied in the kernel', () => {
  it.each<[string, WriteOptions['copy']]>([
    ['copy_file_range', undefined],
    ['native read/write', { readWrite: true }],
    ['JS read/write', { js: true }],
  ])('gives the same tensors as writing the bytes, in source order, one copy per run (%s)', async (_name, copy) => {
    const copiedBy = new Map<string, number>();
    const r = await withSources((a, b) =>
      writeSafetensors(join(dir, 'copied.safetensors'), [...verbatim(b, second, (k, n) => copiedBy.set(k, (copiedBy.get(k) ?? 0) + n)), ...verbatim(a, first, (k, n) => copiedBy.set(k, (copiedBy.get(k) ?? 0) + n))], { copy }),
    );
    const keys = await expectTensors(join(dir, 'copied.safetensors'), [...first, ...second]);
    // Element size first (alignment); within a size, files in order of appearance, tensors as they lie in them.
    expect(keys).toEqual(['ids', 'n.x', 'n.y', 'm.a', 'm.b', 'n.z', 'm.c']);
    const dataBytes = [...first, ...second].reduce((n, s) => n + s.bytes.byteLength, 0);
    expect(r.copied.bytes).toBe(dataBytes);
    expect(r.copied.methods).toEqual([copy?.js ? 'js read/write' : copy?.readWrite || process.platform !== 'linux' ? 'read/write' : 'copy_file_range']);
    for (const s of [...first, ...second]) expect(copiedBy.get(s.key), s.key).toBe(s.bytes.byteLength);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('mixes copied runs with produced tensors (conversions, replacements) in one file', async () => {
    await withSources(async (a, b) => {
      const tensors = [...verbatim(a, first), ...verbatim(b, second)];
      // m.a converted to F16 (ordered by its source, produced), n.y replaced by other bytes (no source).
      const mA = first.find((s) => s.key === 'm.a')!;
      const half = convertFloatBytes(mA.bytes, 'F32', 'F16');
      tensors[tensors.findIndex((t) => t.key === 'm.a')] = { key: 'm.a', dtype: 'F16', shape: mA.shape, source: { ...tensors.find((t) => t.key === 'm.a')!.source!, verbatim: false }, data: half };
      const other = f32('n.y', 777, 99);
      tensors[tensors.findIndex((t) => t.key === 'n.y')] = plain(other);
      const r = await writeSafetensors(join(dir, 'mixed.safetensors'), tensors);
      const keys = await expectTensors(join(dir, 'mixed.safetensors'), [...first.filter((s) => s.key !== 'm.a'), { ...mA, dtype: 'F16', bytes: half }, ...second.filter((s) => s.key !== 'n.y'), other]);
      expect(keys).toEqual(['ids', 'm.b', 'n.x', 'n.y', 'm.a', 'm.c', 'n.z']);
      expect(r.copied.bytes).toBe(8 * 5 + 4 * 300 + 4 * 64 + 2 * 501 + 2 * 33);
    });
  });

  it('pads the header so a long run keeps its source offset modulo 64 KiB (cp-speed copies)', async () => {
    const big: Spec = { key: 'big', dtype: 'U8', shape: [17 << 20], bytes: randomBytes(17 << 20, 8) };
    const small: Spec = f32('small', 3, 9);
    const path = join(dir, 'big-src.safetensors');
    await writeSafetensors(path, [plain(big), plain(small)], { metadata: { note: 'x'.repeat(1234) } });
    const src = await SafetensorsFile.open(path);
    try {
      const out = join(dir, 'big-out.safetensors');
      // `small` (produced) comes first in the output: the run starts 12 bytes into the data.
      const r = await writeSafetensors(out, [...verbatim(src, [big]), plain(small)]);
      expect(r.copied.bytes).toBe(17 << 20);
      const f = await SafetensorsFile.open(out);
      try {
        expect(f.header.headerLength % 8).toBe(0);
        expect((f.header.dataStart + f.entry('big').begin) % 65536).toBe((src.header.dataStart + src.entry('big').begin) % 65536);
      } finally {
        await f.close();
      }
      await expectTensors(out, [big, small]);
    } finally {
      await src.close();
    }
  });

  it('hashes what it wrote, on a worker thread for large files and on this thread for small ones', async () => {
    for (const hashInWorkerFrom of [0, Infinity]) {
      const out = join(dir, `hashed-${hashInWorkerFrom}.safetensors`);
      const r = await withSources((a, b) => writeSafetensors(out, [...verbatim(a, first), ...verbatim(b, second)], { hash: true, hashInWorkerFrom }));
      expect(r.hashes).toEqual(await hashFile(out));
      expect(r.hashes!.sha256).toBe(createHash('sha256').update(readFileSync(out)).digest('hex'));
    }
  });

  it('a source that ends early fails the write, stops the hashing thread and leaves nothing behind', async () => {
    await withSources(async (a) => {
      const [t] = verbatim(a, first);
      const beyond = { ...t, source: { ...t.source!, offset: a.size - 100 } };
      const out = join(dir, 'failed.safetensors');
      await expect(writeSafetensors(out, [beyond], { hash: true, hashInWorkerFrom: 0 })).rejects.toThrow(/cannot write .*failed.safetensors: the source ended at byte \d+, \d+ bytes before the end/);
      expect(readdirSync(dir).filter((f) => f.startsWith('.failed') || f === 'failed.safetensors')).toEqual([]);
    });
  });
});
