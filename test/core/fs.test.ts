import { describe, expect, it } from 'vitest';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { copyFileRange, type CopyRangeOptions } from '../../src/core/fs.js';

const dir = mkdtempSync(join(tmpdir(), 'dbt-core-fs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** 3 MiB + 5 bytes of non-repeating content (more than the native 1 MiB buffer, not a multiple of it). */
function pattern(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    b[i] = s & 0xff;
  }
  return b;
}
const SRC = pattern((3 << 20) + 5, 7);
const srcPath = join(dir, 'src.bin');
writeFileSync(srcPath, SRC);

const ways: [string, CopyRangeOptions, string][] = [
  ['in the kernel', {}, process.platform === 'linux' ? 'copy_file_range' : 'read/write'],
  ['in the kernel, starting writeback', { writeback: true }, process.platform === 'linux' ? 'copy_file_range' : 'read/write'],
  ['through the native buffer', { readWrite: true }, 'read/write'],
  ['through JS', { js: true }, 'js read/write'],
];

describe('copyFileRange', () => {
  it.each(ways)('copies a range between offsets %s', async (_name, opts, method) => {
    const dst = join(dir, `dst-${_name.replace(/\W/g, '')}.bin`);
    writeFileSync(dst, Buffer.alloc(100, 0xee)); // existing bytes before the target offset stay
    const a = openSync(srcPath, 'r');
    const b = openSync(dst, 'r+');
    try {
      const r = await copyFileRange(a, 13, b, 100, SRC.length - 20, opts);
      expect(r).toEqual({ bytes: SRC.length - 20, method });
      const empty = await copyFileRange(a, 0, b, 0, 0, opts);
      expect(empty.bytes).toBe(0);
    } finally {
      closeSync(a);
      closeSync(b);
    }
    const got = readFileSync(dst);
    expect(got.length).toBe(100 + SRC.length - 20);
    expect(got.subarray(0, 100).every((x) => x === 0xee)).toBe(true);
    expect(got.subarray(100).equals(SRC.subarray(13, SRC.length - 7))).toBe(true);
  });

  it.each(ways)('a full disk rejects with ENOSPC and the bytes copied (%s)', async (_name, opts) => {
    const a = openSync(srcPath, 'r');
    const b = openSync('/dev/full', 'w'); // every write: ENOSPC (copy_file_range refuses a device: buffered fallback)
    try {
      await expect(copyFileRange(a, 0, b, 0, 4096, opts)).rejects.toMatchObject({ code: 'ENOSPC', syscall: 'write', bytesCopied: 0 });
    } finally {
      closeSync(a);
      closeSync(b);
    }
  });

  it.each(ways)('a source shorter than the range is an error naming where it ended (%s)', async (_name, opts) => {
    const a = openSync(srcPath, 'r');
    const b = openSync(join(dir, 'short.bin'), 'w');
    try {
      await expect(copyFileRange(a, SRC.length - 10, b, 0, 20, opts)).rejects.toMatchObject({
        code: 'DBT_SHORT_READ',
        message: expect.stringMatching(new RegExp(`source ended at byte ${SRC.length}, 10 bytes before the end`)),
      });
    } finally {
      closeSync(a);
      closeSync(b);
    }
  });

  it('refuses offsets that are not non-negative integers', async () => {
    await expect(copyFileRange(0, -1, 1, 0, 1)).rejects.toThrow(/source offset must be a non-negative integer/);
    await expect(copyFileRange(0, 0, 1, 0.5, 1)).rejects.toThrow(/destination offset must be a non-negative integer/);
  });
});
