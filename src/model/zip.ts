/**
 * A read-only zip reader for PyTorch checkpoints: end-of-central-directory (with zip64), central
 * directory, stored and deflated entries, ranged reads of stored entries (tensors are read lazily).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { inflateRawSync } from 'node:zlib';
import * as zlib from 'node:zlib';
import { FileFormatError } from '../errors.js';
import { readFully } from './safetensors.js';

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;

export interface ZipEntry {
  name: string;
  method: number; // 0 stored, 8 deflate
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
  flags: number;
}

function u64(buf: Buffer, at: number, file: string, what: string): number {
  const v = buf.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FileFormatError(file, `zip ${what} ${v} is too large`);
  return Number(v);
}

export class ZipReader {
  readonly entries = new Map<string, ZipEntry>();
  private readonly dataOffsets = new Map<string, number>();

  private constructor(
    readonly path: string,
    readonly size: number,
    private readonly fh: FileHandle,
  ) {}

  static async open(path: string): Promise<ZipReader> {
    const fh = await open(path, 'r');
    try {
      const z = new ZipReader(path, (await fh.stat()).size, fh);
      await z.readDirectory();
      return z;
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  private async readAt(position: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    if (position < 0 || position + length > this.size) throw new FileFormatError(this.path, `zip structure points outside the file (bytes ${position}..${position + length} of ${this.size})`);
    const buf = into && into.byteLength >= length ? into.subarray(0, length) : Buffer.allocUnsafeSlow(length);
    await readFully(this.fh, buf, position, this.path);
    return buf;
  }

  private async readBuffer(position: number, length: number): Promise<Buffer> {
    const b = await this.readAt(position, length);
    return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  }

  private async readDirectory(): Promise<void> {
    const file = this.path;
    if (this.size < 22) throw new FileFormatError(file, 'file is too small to be a zip archive');
    const tailLen = Math.min(this.size, 22 + 0xffff);
    const tail = await this.readBuffer(this.size - tailLen, tailLen);
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === SIG_EOCD) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw new FileFormatError(file, 'no zip end-of-central-directory record found (not a zip archive, or truncated)');
    let count = tail.readUInt16LE(eocd + 10);
    let cdSize = tail.readUInt32LE(eocd + 12);
    let cdOffset = tail.readUInt32LE(eocd + 16);
    const eocdAbs = this.size - tailLen + eocd;
    if (eocdAbs >= 20) {
      const loc = await this.readBuffer(eocdAbs - 20, 20);
      if (loc.readUInt32LE(0) === SIG_ZIP64_LOCATOR) {
        const z64At = u64(loc, 8, file, 'zip64 record offset');
        const z64 = await this.readBuffer(z64At, 56);
        if (z64.readUInt32LE(0) !== SIG_ZIP64_EOCD) throw new FileFormatError(file, 'zip64 locator does not point at a zip64 end-of-central-directory record');
        count = u64(z64, 32, file, 'entry count');
        cdSize = u64(z64, 40, file, 'central directory size');
        cdOffset = u64(z64, 48, file, 'central directory offset');
      }
    }
    if (cdOffset + cdSize > this.size) throw new FileFormatError(file, `zip central directory (${cdSize} bytes at ${cdOffset}) runs past the end of the file: truncated download?`);
    const cd = await this.readBuffer(cdOffset, cdSize);
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cd.length || cd.readUInt32LE(p) !== SIG_CENTRAL) throw new FileFormatError(file, `zip central directory entry ${i} is corrupt`);
      const flags = cd.readUInt16LE(p + 8);
      const method = cd.readUInt16LE(p + 10);
      const crc32 = cd.readUInt32LE(p + 16);
      let compressedSize = cd.readUInt32LE(p + 20);
      let size = cd.readUInt32LE(p + 24);
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      let localHeaderOffset = cd.readUInt32LE(p + 42);
      if (p + 46 + nameLen + extraLen + commentLen > cd.length) throw new FileFormatError(file, `zip central directory entry ${i} runs past the directory`);
      const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
      // zip64 extended information: only the fields whose 32-bit value is saturated are present, in order.
      let e = p + 46 + nameLen;
      const extraEnd = e + extraLen;
      while (e + 4 <= extraEnd) {
        const id = cd.readUInt16LE(e);
        const len = cd.readUInt16LE(e + 2);
        if (id === 0x0001) {
          let q = e + 4;
          if (size === 0xffffffff) (size = u64(cd, q, file, 'entry size')), (q += 8);
          if (compressedSize === 0xffffffff) (compressedSize = u64(cd, q, file, 'entry size')), (q += 8);
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = u64(cd, q, file, 'entry offset');
        }
        e += 4 + len;
      }
      this.entries.set(name, { name, method, crc32, compressedSize, size, localHeaderOffset, flags });
      p += 46 + nameLen + extraLen + commentLen;
    }
  }

  /** Absolute offset of an entry's data (after its local header, whose extra field may differ from the central one). */
  async dataOffset(entry: ZipEntry): Promise<number> {
    const cached = this.dataOffsets.get(entry.name);
    if (cached !== undefined) return cached;
    const h = await this.readBuffer(entry.localHeaderOffset, 30);
    if (h.readUInt32LE(0) !== SIG_LOCAL) throw new FileFormatError(this.path, `zip entry ${entry.name}: local header not found at ${entry.localHeaderOffset}`);
    const at = entry.localHeaderOffset + 30 + h.readUInt16LE(26) + h.readUInt16LE(28);
    if (at + entry.compressedSize > this.size) throw new FileFormatError(this.path, `zip entry ${entry.name} runs past the end of the file (truncated?)`);
    this.dataOffsets.set(entry.name, at);
    return at;
  }

  private check(entry: ZipEntry): void {
    if (entry.flags & 1) throw new FileFormatError(this.path, `zip entry ${entry.name} is encrypted`);
    if (entry.method !== 0 && entry.method !== 8) throw new FileFormatError(this.path, `zip entry ${entry.name} uses compression method ${entry.method}; only stored (0) and deflate (8) are supported`);
  }

  /** The whole (decompressed) entry; `verify` checks its CRC-32. */
  async read(name: string, verify = true): Promise<Buffer> {
    const entry = this.entries.get(name);
    if (!entry) throw new FileFormatError(this.path, `zip entry ${name} not found`);
    this.check(entry);
    const raw = await this.readBuffer(await this.dataOffset(entry), entry.compressedSize);
    let data: Buffer;
    try {
      data = entry.method === 8 ? inflateRawSync(raw) : raw;
    } catch (e) {
      throw new FileFormatError(this.path, `zip entry ${name} does not inflate (${(e as Error).message})`);
    }
    if (data.length !== entry.size) throw new FileFormatError(this.path, `zip entry ${name} has ${data.length} bytes, the directory says ${entry.size}`);
    if (verify && typeof (zlib as { crc32?: unknown }).crc32 === 'function') {
      const crc = (zlib as unknown as { crc32(d: Uint8Array): number }).crc32(data) >>> 0;
      if (crc !== entry.crc32) throw new FileFormatError(this.path, `zip entry ${name} is corrupt (CRC-32 ${crc.toString(16)}, expected ${entry.crc32.toString(16)})`);
    }
    return data;
  }

  /** Bytes [offset, offset+length) of an entry's contents (into `into` when given); ranged for stored entries, via inflate otherwise. */
  async readRange(name: string, offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const entry = this.entries.get(name);
    if (!entry) throw new FileFormatError(this.path, `zip entry ${name} not found`);
    this.check(entry);
    if (offset + length > entry.size) throw new FileFormatError(this.path, `read of bytes ${offset}..${offset + length} is past the end of zip entry ${name} (${entry.size} bytes)`);
    if (entry.method === 0) return this.readAt((await this.dataOffset(entry)) + offset, length, into);
    const part = (await this.read(name, false)).subarray(offset, offset + length);
    if (!into || into.byteLength < length) return part;
    into.set(part);
    return into.subarray(0, length);
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
