import { describe, expect, it } from 'vitest';
import { closeSync, openSync, readFileSync, writeFileSync, writeSync, ftruncateSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { FileFormatError } from '../../src/errors.js';
import { buildSafetensorsHeader, parseSafetensorsHeader, SafetensorsFile, writeSafetensors } from '../../src/model/safetensors.js';
import { randomF32, tempDir, testRng } from './helpers.js';

const dir = tempDir();

/** The bytes of a valid file: header JSON text as given, then `data` bytes. */
function fileBytes(header: unknown, dataBytes: number, pad = true): Buffer {
  let json = typeof header === 'string' ? header : JSON.stringify(header);
  if (pad) while (Buffer.byteLength(json) % 8) json += ' ';
  const h = Buffer.from(json);
  const out = Buffer.alloc(8 + h.length + dataBytes, 7);
  out.writeBigUInt64LE(BigInt(h.length), 0);
  h.copy(out, 8);
  return out;
}

function parse(bytes: Buffer) {
  const n = bytes.length >= 8 ? Number(bytes.readBigUInt64LE(0)) : 0;
  const json = bytes.length >= 8 && n <= bytes.length - 8 ? bytes.subarray(8, 8 + n) : undefined;
  return parseSafetensorsHeader('f.safetensors', bytes.subarray(0, 8), json, bytes.length);
}

const good = {
  __metadata__: { format: 'pt' },
  a: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
  b: { dtype: 'F16', shape: [4], data_offsets: [24, 32] },
};

describe('safetensors header validation', () => {
  it('accepts a valid header and reports entries in file order', () => {
    const h = parse(fileBytes(good, 32));
    expect(h.entries.map((e) => e.key)).toEqual(['a', 'b']);
    expect(h.metadata).toEqual({ format: 'pt' });
  });

  const header = (over: Record<string, unknown>) => ({ ...good, ...over });
  it.each<[string, Buffer, RegExp]>([
    ['too small', Buffer.alloc(5), /too small to be safetensors \(5 bytes/],
    ['header over 100 MB', (() => { const b = Buffer.alloc(16); b.writeBigUInt64LE(200_000_000n); return b; })(), /exceeds the 100 MB limit/],
    ['header length 0', Buffer.alloc(8), /header length is 0/],
    ['header past end of file', (() => { const b = fileBytes(good, 32); b.writeBigUInt64LE(BigInt(b.length)); return b; })(), /runs past the end of the file/],
    ['not UTF-8', (() => { const b = fileBytes('{"a":"\u00e9"}', 0); b[8 + 7] = 0xff; b[8 + 8] = 0xfe; return b; })(), /not valid UTF-8/],
    ['not JSON', fileBytes('{"a": [1,2', 0), /not valid JSON/],
    ['not an object', fileBytes('[1,2,3]', 0), /does not start with '\{'/],
    ['entry not an object', fileBytes(header({ a: 5 }), 32), /tensor "a": entry is not an object/],
    ['missing dtype', fileBytes(header({ a: { shape: [2, 3], data_offsets: [0, 24] } }), 32), /tensor "a": missing or non-string "dtype"/],
    ['unknown dtype', fileBytes(header({ a: { dtype: 'F33', shape: [2, 3], data_offsets: [0, 24] } }), 32), /tensor "a": unknown dtype "F33"/],
    ['bad shape', fileBytes(header({ a: { dtype: 'F32', shape: [2, -3], data_offsets: [0, 24] } }), 32), /tensor "a": shape \[2,-3\] must be non-negative integers/],
    ['missing offsets', fileBytes(header({ a: { dtype: 'F32', shape: [2, 3] } }), 32), /tensor "a": "data_offsets" must be \[begin, end\]/],
    ['reversed offsets', fileBytes(header({ a: { dtype: 'F32', shape: [2, 3], data_offsets: [24, 0] } }), 32), /end 0 is before begin 24/],
    ['size mismatch', fileBytes(header({ a: { dtype: 'F32', shape: [2, 4], data_offsets: [0, 24] } }), 32), /span 24 bytes but F32 \[2,4\] needs 32/],
    ['overlap', fileBytes(header({ b: { dtype: 'F16', shape: [4], data_offsets: [20, 28] } }), 28), /tensor "b" \[20, 28\] overlaps tensor "a" \[0, 24\]/],
    ['gap between tensors', fileBytes(header({ b: { dtype: 'F16', shape: [4], data_offsets: [28, 36] } }), 36), /gap of 4 bytes between tensor "a" \(ends at 24\) and tensor "b"/],
    ['gap at start', fileBytes({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8), /gap of 4 bytes at the start .* "a" begins at 4/],
    ['truncated data', fileBytes(good, 30), /truncated: the tensors need 32 bytes .* only 30/],
    ['trailing bytes', fileBytes(good, 40), /8 unexpected bytes after the last tensor/],
    ['metadata not strings', fileBytes(header({ __metadata__: { steps: 5 } }), 32), /__metadata__ value "steps" is not a string/],
    ['metadata not object', fileBytes(header({ __metadata__: 'x' }), 32), /__metadata__ is not an object/],
  ])('rejects %s', (_name, bytes, message) => {
    expect(() => parse(bytes)).toThrow(FileFormatError);
    expect(() => parse(bytes)).toThrow(message);
  });

  it('survives random header mutations: every outcome is a parsed header or a FileFormatError', () => {
    const base = fileBytes(good, 32);
    const rnd = testRng(1234);
    let rejected = 0;
    for (let i = 0; i < 3000; i++) {
      const b = Buffer.from(base);
      const edits = 1 + Math.floor(rnd() * 4);
      for (let e = 0; e < edits; e++) {
        const kind = rnd();
        const at = Math.floor(rnd() * b.length);
        if (kind < 0.6) b[at] = Math.floor(rnd() * 256);
        else if (kind < 0.8) b[at] = '{}[]",:0123456789-e.'.charCodeAt(Math.floor(rnd() * 20));
        else b.writeUInt8(Math.floor(rnd() * 256), Math.floor(rnd() * 8)); // length field
      }
      const cut = rnd() < 0.1 ? b.subarray(0, Math.floor(rnd() * b.length)) : b;
      try {
        parse(cut);
      } catch (err) {
        expect(err).toBeInstanceOf(FileFormatError);
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(2000);
  });
});

describe('safetensors writer and lazy reader', () => {
  it('round-trips tensors and metadata, pads the header to 8 bytes, writes through a temp file', async () => {
    const a = randomF32(6, 1);
    const h = new Uint16Array([1, 2, 3]);
    const ids = new BigInt64Array([0n, 1n, 2n]);
    const path = join(dir, 'rt.safetensors');
    await writeSafetensors(
      path,
      [
        { key: 'z.half', dtype: 'F16', shape: [3], data: new Uint8Array(h.buffer) },
        { key: 'a.weight', dtype: 'F32', shape: [2, 3], data: () => new Uint8Array(a.buffer) },
        { key: 'ids', dtype: 'I64', shape: [1, 3], data: new Uint8Array(ids.buffer) },
      ],
      { metadata: { 'modelspec.title': 'x' } },
    );
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    const raw = readFileSync(path);
    expect(Number(raw.readBigUInt64LE(0)) % 8).toBe(0);
    const f = await SafetensorsFile.open(path);
    try {
      expect(f.metadata).toEqual({ 'modelspec.title': 'x' });
      expect(f.keys()).toEqual(['ids', 'a.weight', 'z.half']); // 8-byte types first, then by name
      expect(await f.readF32('a.weight')).toEqual(a);
      expect([...new Uint16Array(new Uint8Array(await f.readRaw('z.half')).buffer)].slice(0, 3)).toEqual([1, 2, 3]);
    } finally {
      await f.close();
    }
  });

  it('refuses data of the wrong size and leaves no file behind', async () => {
    const path = join(dir, 'bad.safetensors');
    await expect(writeSafetensors(path, [{ key: 'a', dtype: 'F32', shape: [4], data: new Uint8Array(8) }])).rejects.toThrow(/8 bytes given, F32 \[4\] needs 16/);
    expect(readdirSync(dir).filter((f) => f.startsWith('.bad') || f === 'bad.safetensors')).toEqual([]);
  });

  it('reads a tensor that lies beyond 4 GB in a sparse file', async () => {
    const big = 4_400_000_000;
    const entries = [
      { key: 'big', dtype: 'U8' as const, shape: [big] },
      { key: 'tail', dtype: 'F32' as const, shape: [4] },
    ];
    const { header, dataBytes } = buildSafetensorsHeader(entries);
    const path = join(dir, 'sparse.safetensors');
    const fd = openSync(path, 'w');
    try {
      writeSync(fd, header, 0, header.length, 0);
      ftruncateSync(fd, header.length + dataBytes);
      const tail = new Float32Array([1.5, -2, 3.25, 4]);
      writeSync(fd, new Uint8Array(tail.buffer), 0, 16, header.length + big);
    } finally {
      closeSync(fd);
    }
    const f = await SafetensorsFile.open(path);
    try {
      expect(f.size).toBe(header.length + big + 16);
      expect([...(await f.readF32('tail'))]).toEqual([1.5, -2, 3.25, 4]);
    } finally {
      await f.close();
    }
  });

  it('opening a corrupt file reports the file name', async () => {
    const path = join(dir, 'corrupt.safetensors');
    writeFileSync(path, fileBytes(good, 30));
    await expect(SafetensorsFile.open(path)).rejects.toThrow(`${path}: file is truncated`);
  });
});

describe('chunked transfer', () => {
  it('the writer accepts a tensor as chunks and checks their total', async () => {
    const values = randomF32(1000, 5);
    const bytes = new Uint8Array(values.buffer);
    async function* chunks(size: number, total = bytes.byteLength) {
      for (let o = 0; o < total; o += size) yield bytes.subarray(o, Math.min(o + size, total));
    }
    const path = join(dir, 'chunked.safetensors');
    await writeSafetensors(path, [
      { key: 'small', dtype: 'F32', shape: [2], data: new Uint8Array(new Float32Array([1, 2]).buffer) },
      { key: 'big', dtype: 'F32', shape: [1000], data: () => chunks(333) },
    ]);
    const f = await SafetensorsFile.open(path);
    try {
      expect(await f.readF32('big')).toEqual(values);
      expect([...(await f.readF32('small'))]).toEqual([1, 2]);
      const part = new Uint8Array(12);
      expect(new Float32Array((await f.readRange('big', 40, part)).slice().buffer)).toEqual(values.subarray(10, 13));
    } finally {
      await f.close();
    }
    await expect(writeSafetensors(join(dir, 'short.safetensors'), [{ key: 'big', dtype: 'F32', shape: [1000], data: () => chunks(333, 3996) }])).rejects.toThrow(/3996 bytes given, F32 \[1000\] needs 4000/);
  });
});
