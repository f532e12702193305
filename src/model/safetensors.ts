/**
 * safetensors reader and writer (REFERENCE.md §3). The reader validates the whole header before touching
 * data and then reads one tensor at a time, so multi-GB files never sit in memory. The writer streams
 * tensors produced on demand into a temporary file, then renames it into place.
 */
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { copyFileRange, type CopyMethod } from '../core/fs.js';
import { DbtError, FileFormatError } from '../errors.js';
import { dtypeSize, isDType, toFloat32, DTYPE_SIZES, type DType } from './dtype.js';
import { followFileHash, type FileHashes, type FollowingHasher } from './hashes.js';

export const MAX_HEADER_BYTES = 100 * 1024 * 1024;
const METADATA_KEY = '__metadata__';

export interface SafetensorsEntry {
  key: string;
  dtype: DType;
  shape: number[];
  /** Byte offsets relative to the start of the data buffer (after the header). */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  headerLength: number;
  /** Absolute file offset of the data buffer. */
  dataStart: number;
  /** In file order (ascending offsets). */
  entries: SafetensorsEntry[];
  metadata: Record<string, string>;
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Validates a header. `first8` are the file's first bytes, `json` the N header bytes that follow, `fileSize`
 * the whole file's size. Every corruption gets its own message naming the tensor involved.
 */
export function parseSafetensorsHeader(file: string, first8: Uint8Array, json: Uint8Array | undefined, fileSize: number): SafetensorsHeader {
  const fail = (msg: string): never => {
    throw new FileFormatError(file, msg);
  };
  if (fileSize < 8 || first8.byteLength < 8) fail(`file is too small to be safetensors (${fileSize} bytes; it must start with an 8-byte header length)`);
  const n64 = Buffer.from(first8.buffer, first8.byteOffset, 8).readBigUInt64LE(0);
  if (n64 > BigInt(MAX_HEADER_BYTES)) fail(`header length ${n64} exceeds the 100 MB limit (not a safetensors file, or the first 8 bytes are corrupt)`);
  const headerLength = Number(n64);
  if (headerLength < 2) fail(`header length is ${headerLength}: there is no JSON header`);
  if (8 + headerLength > fileSize) fail(`header length ${headerLength} runs past the end of the file (${fileSize} bytes): the file is truncated`);
  if (!json || json.byteLength < headerLength) fail(`could not read the ${headerLength}-byte header`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(json!.subarray(0, headerLength));
  } catch {
    return fail('header is not valid UTF-8');
  }
  if (text[0] !== '{') fail(`header does not start with '{' (found ${JSON.stringify(text.slice(0, 16))}): not a safetensors file`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return fail('header is not a JSON object');

  const metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (key === METADATA_KEY) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('__metadata__ is not an object of strings');
      for (const [mk, mv] of Object.entries(value as Record<string, unknown>)) {
        if (typeof mv !== 'string') fail(`__metadata__ value "${mk}" is not a string (${JSON.stringify(mv)?.slice(0, 40)})`);
        metadata[mk] = mv as string;
      }
      continue;
    }
    const where = `tensor "${key}"`;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${where}: entry is not an object`);
    const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof v.dtype !== 'string') fail(`${where}: missing or non-string "dtype"`);
    if (!isDType(v.dtype as string)) fail(`${where}: unknown dtype "${v.dtype}" (known: ${Object.keys(DTYPE_SIZES).join(' ')})`);
    if (!Array.isArray(v.shape)) fail(`${where}: missing or non-array "shape"`);
    const shape = v.shape as unknown[];
    if (!shape.every(isCount)) fail(`${where}: shape ${JSON.stringify(shape)} must be non-negative integers`);
    if (!Array.isArray(v.data_offsets) || v.data_offsets.length !== 2) fail(`${where}: "data_offsets" must be [begin, end]`);
    const [begin, end] = v.data_offsets as unknown[];
    if (!isCount(begin) || !isCount(end)) fail(`${where}: data_offsets ${JSON.stringify(v.data_offsets)} must be non-negative integers`);
    if ((end as number) < (begin as number)) fail(`${where}: data_offsets end ${end} is before begin ${begin}`);
    const dtype = v.dtype as DType;
    let bytes = BigInt(dtypeSize(dtype));
    for (const d of shape as number[]) bytes *= BigInt(d);
    if (bytes !== BigInt((end as number) - (begin as number))) {
      fail(`${where}: data_offsets [${begin}, ${end}] span ${(end as number) - (begin as number)} bytes but ${dtype} ${JSON.stringify(shape)} needs ${bytes}`);
    }
    entries.push({ key, dtype, shape: shape as number[], begin: begin as number, end: end as number });
  }

  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: SafetensorsEntry | undefined;
  for (const e of entries) {
    if (e.begin < pos) fail(`tensor "${e.key}" [${e.begin}, ${e.end}] overlaps tensor "${prev!.key}" [${prev!.begin}, ${prev!.end}]`);
    if (e.begin > pos) {
      fail(
        prev
          ? `gap of ${e.begin - pos} bytes between tensor "${prev.key}" (ends at ${pos}) and tensor "${e.key}" (begins at ${e.begin})`
          : `gap of ${e.begin} bytes at the start of the data buffer: the first tensor "${e.key}" begins at ${e.begin}, not 0`,
      );
    }
    pos = e.end;
    prev = e;
  }
  const available = fileSize - 8 - headerLength;
  if (pos > available) fail(`file is truncated: the tensors need ${pos} bytes of data after the header but only ${available} are present`);
  if (pos < available) fail(`${available - pos} unexpected bytes after the last tensor (the tensors cover ${pos} of ${available} data bytes)`);
  return { headerLength, dataStart: 8 + headerLength, entries, metadata };
}

/** Fills `buf` from `position`, looping over short reads (single reads are capped near 2 GB). */
export async function readFully(fh: FileHandle, buf: Uint8Array, position: number, file: string): Promise<void> {
  let done = 0;
  while (done < buf.byteLength) {
    const chunk = Math.min(buf.byteLength - done, 1 << 30);
    const { bytesRead } = await fh.read(buf, done, chunk, position + done);
    if (bytesRead === 0) throw new FileFormatError(file, `unexpected end of file at byte ${position + done} (the file shrank while being read?)`);
    done += bytesRead;
  }
}

export class SafetensorsFile {
  readonly byKey: Map<string, SafetensorsEntry>;
  private constructor(
    readonly path: string,
    readonly size: number,
    readonly header: SafetensorsHeader,
    private readonly fh: FileHandle,
  ) {
    this.byKey = new Map(header.entries.map((e) => [e.key, e]));
  }

  static async open(path: string): Promise<SafetensorsFile> {
    const fh = await open(path, 'r');
    try {
      const size = (await fh.stat()).size;
      const first8 = new Uint8Array(8);
      if (size >= 8) await readFully(fh, first8, 0, path);
      let json: Uint8Array | undefined;
      if (size >= 8) {
        const n = Buffer.from(first8).readBigUInt64LE(0);
        if (n <= BigInt(MAX_HEADER_BYTES) && 8n + n <= BigInt(size)) {
          json = new Uint8Array(Number(n));
          await readFully(fh, json, 8, path);
        }
      }
      return new SafetensorsFile(path, size, parseSafetensorsHeader(path, first8, json, size), fh);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  get metadata(): Record<string, string> {
    return this.header.metadata;
  }

  keys(): string[] {
    return this.header.entries.map((e) => e.key);
  }

  entry(key: string): SafetensorsEntry {
    const e = this.byKey.get(key);
    if (!e) throw new DbtError(`${this.path}: no tensor "${key}"`);
    return e;
  }

  /** The tensor's bytes as stored (little-endian, its own dtype), in `into` when it is given and large enough. */
  async readRaw(key: string, into?: Uint8Array): Promise<Uint8Array> {
    const e = this.entry(key);
    const n = e.end - e.begin;
    const buf = into && into.byteLength >= n ? into.subarray(0, n) : Buffer.allocUnsafeSlow(n);
    await readFully(this.fh, buf, this.header.dataStart + e.begin, this.path);
    return buf;
  }

  /** `into.byteLength` bytes of the tensor starting `offset` bytes into it. */
  async readRange(key: string, offset: number, into: Uint8Array): Promise<Uint8Array> {
    const e = this.entry(key);
    if (offset < 0 || offset + into.byteLength > e.end - e.begin) throw new DbtError(`${this.path}: range ${offset}+${into.byteLength} is outside tensor "${key}"`);
    await readFully(this.fh, into, this.header.dataStart + e.begin + offset, this.path);
    return into;
  }

  async readF32(key: string): Promise<Float32Array> {
    const e = this.entry(key);
    return toFloat32(await this.readRaw(key), e.dtype);
  }

  /** Reads `length` bytes at an absolute file offset (for hashing and scans). */
  async readAt(position: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafeSlow(length);
    await readFully(this.fh, buf, position, this.path);
    return buf;
  }

  /** The open descriptor (the writers copy tensors from it in the kernel); valid until close(). */
  get fd(): number {
    return this.fh.fd;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}


/**
 * Hands out `bytes` of writer-owned memory the producer may fill and return. It stays untouched until the
 * writer has written it: the writer alternates two slots and produces only one tensor ahead.
 */
export type Scratch = (bytes: number) => Uint8Array;

/** Where a tensor's bytes lie in a file that stays open while the writer runs. */
export interface TensorSource {
  path: string;
  fd: number;
  /** Absolute file offset of the tensor's first byte. */
  offset: number;
  /**
   * The bytes there are exactly the bytes to write (same dtype, contiguous): the writer copies them in the
   * kernel without calling `data`, neighbouring tensors of one file in one copy. When false the source only
   * orders the output (tensors are then read in file order).
   */
  verbatim: boolean;
}

export interface TensorToWrite {
  key: string;
  dtype: DType;
  shape: number[];
  /**
   * The bytes, or a function producing them when the writer reaches this tensor (keeps memory flat). A
   * producer that fills `scratch` instead of allocating saves the page faults of fresh memory per tensor.
   */
  data: Uint8Array | ((scratch: Scratch) => Uint8Array | Promise<Uint8Array> | AsyncIterable<Uint8Array>);
  source?: TensorSource;
  /** Called with byte counts as a verbatim `source` is copied (progress: `data` is not called then). */
  onCopied?: (bytes: number) => void;
}

function isChunked(d: Uint8Array | AsyncIterable<Uint8Array>): d is AsyncIterable<Uint8Array> {
  return typeof (d as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === 'function';
}

export interface WriteOptions {
  metadata?: Record<string, string>;
  /** fsync before the rename (default true): a crash leaves either the old file or the complete new one. */
  durable?: boolean;
  /** Compute the file's sha256 and A1111 hashes (read back from the page cache, in parallel with writing). */
  hash?: boolean;
  /** Files of at least this many bytes are hashed on a worker thread while they are written (default 64 MB). */
  hashInWorkerFrom?: number;
  /** Copy verbatim sources through a buffer instead of in the kernel (tests of the fallback). */
  copy?: { readWrite?: boolean; js?: boolean };
}

export interface WriteResult {
  bytes: number;
  hashes?: FileHashes;
  /** Bytes copied from verbatim sources, and how (in the kernel or through a buffer). */
  copied: { bytes: number; methods: CopyMethod[] };
}

function byteSize(t: { dtype: DType; shape: number[] }): number {
  let bytes = dtypeSize(t.dtype);
  for (const d of t.shape) bytes *= d;
  return bytes;
}

/**
 * In-kernel copies run at cp's speed only when they start at page-aligned source and 64 KiB-aligned
 * destination offsets (the page cache then uses large folios; measured: 1.5–2× slower otherwise). The
 * header is padded so that the longest copied run sits at the same offset modulo this as in its source,
 * and copies are split at multiples of it in the source.
 */
const COPY_ALIGN = 64 << 10;

/**
 * Builds the padded header for `tensors` in the order they will be written. The JSON is padded with spaces
 * to a multiple of 8 bytes; with `align`, further (by less than 64 KiB) so that the data byte at
 * `align.dataOffset` lands at a file offset equal to `align.fileOffset` modulo 64 KiB.
 */
export function buildSafetensorsHeader(
  tensors: readonly { key: string; dtype: DType; shape: number[] }[],
  metadata?: Record<string, string>,
  align?: { dataOffset: number; fileOffset: number },
): { header: Buffer; dataBytes: number } {
  const obj: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) obj[METADATA_KEY] = metadata;
  let offset = 0;
  for (const t of tensors) {
    if (t.key === METADATA_KEY) throw new DbtError(`a tensor cannot be named ${METADATA_KEY}`);
    if (Object.prototype.hasOwnProperty.call(obj, t.key)) throw new DbtError(`duplicate tensor key "${t.key}"`);
    const bytes = byteSize(t);
    obj[t.key] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(obj), 'utf8');
  let padded = Math.ceil(json.length / 8) * 8;
  if (align) {
    // 8 + padded + dataOffset ≡ fileOffset (mod COPY_ALIGN); reachable in steps of 8 only when the difference is a multiple of 8.
    const want = (((align.fileOffset - 8 - align.dataOffset - padded) % COPY_ALIGN) + COPY_ALIGN) % COPY_ALIGN;
    if (want % 8 === 0) padded += want;
  }
  const header = Buffer.alloc(8 + padded, 0x20);
  header.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(header, 8);
  return { header, dataBytes: offset };
}

/**
 * Data order (the header lists tensors in the same order, as the Python writer does): larger element sizes
 * first, which keeps every tensor aligned to its element size; within a size, tensors with a source in the
 * order of their bytes in the source files (files in order of first appearance), so a same-dtype copy is a
 * few large in-kernel copies and conversions read sequentially; then the rest by name.
 */
export function safetensorsOrder<T extends { key: string; dtype: DType; source?: { path: string; offset: number } }>(tensors: readonly T[]): T[] {
  const fileRank = new Map<string, number>();
  for (const t of tensors) if (t.source && !fileRank.has(t.source.path)) fileRank.set(t.source.path, fileRank.size);
  const bySource = (a: T, b: T): number => {
    if (a.source && b.source) return fileRank.get(a.source.path)! - fileRank.get(b.source.path)! || a.source.offset - b.source.offset;
    return a.source ? -1 : b.source ? 1 : 0;
  };
  return [...tensors].sort((a, b) => dtypeSize(b.dtype) - dtypeSize(a.dtype) || bySource(a, b) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

const isVerbatim = (t: TensorToWrite) => t.source?.verbatim === true;

interface VerbatimRun {
  /** `ordered[first, end)` are verbatim tensors that lie back to back in one source file. */
  first: number;
  end: number;
  fd: number;
  from: number;
  length: number;
  /** Offset of the run in the output's data section. */
  dataOffset: number;
}

/** Neighbouring verbatim tensors whose bytes are contiguous in the same file: each run is one copy. */
function verbatimRuns(ordered: readonly TensorToWrite[]): VerbatimRun[] {
  const runs: VerbatimRun[] = [];
  let dataOffset = 0;
  for (let i = 0; i < ordered.length; ) {
    const t = ordered[i];
    if (!isVerbatim(t)) {
      dataOffset += byteSize(t);
      i++;
      continue;
    }
    const { fd, offset: from } = t.source!;
    let end = i + 1;
    let length = byteSize(t);
    for (; end < ordered.length && isVerbatim(ordered[end]) && ordered[end].source!.fd === fd && ordered[end].source!.offset === from + length; end++) length += byteSize(ordered[end]);
    runs.push({ first: i, end, fd, from, length, dataOffset });
    dataOffset += length;
    i = end;
  }
  return runs;
}

const STAGING_BYTES = 8 << 20;
/** Verbatim runs are copied in pieces of this size (progress, and the hasher follows close behind). */
const COPY_CHUNK = 64 << 20;
/** Runs at least this long get the header padding that aligns them (small files stay compact). */
const ALIGN_RUNS_FROM = 16 << 20;
const HASH_IN_WORKER_FROM = 64 << 20;

const MB = (n: number) => (n / 1e6).toFixed(n < 10e6 ? 2 : 0);

/** A failed write or copy as the user should read it (disk full, file too large, read-only, …). */
function writeFailure(e: unknown, path: string, written: number, total: number): unknown {
  const code = (e as { code?: unknown })?.code;
  if (e instanceof DbtError || typeof code !== 'string') return e;
  const where = `after ${MB(written)} of ${MB(total)} MB; the partial file was removed`;
  const dir = dirname(path);
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new DbtError(`cannot write ${path}: the disk is full (${code}) ${where}`, {
        cause: e,
        details: [`the file needs ${MB(total)} MB; free space on ${dir} or choose another location`],
      });
    case 'EFBIG':
      return new DbtError(`cannot write ${path}: the file is larger than this system allows (EFBIG: a \`ulimit -f\` limit or the file system's maximum file size) ${where}`, {
        cause: e,
        details: [`the file needs ${MB(total)} MB`],
      });
    default:
      return new DbtError(`cannot write ${path}: ${(e as Error).message} ${where}`, { cause: e });
  }
}

/**
 * Writes a safetensors file atomically (temporary file, fsync, rename; nothing is left behind on failure).
 * Verbatim sources are copied in the kernel (copy_file_range), a run of neighbouring tensors in one go.
 * Other tensors are produced one ahead, so producing tensor i+1 (read, convert) overlaps writing tensor i;
 * at most two produced tensors' bytes are held at a time. With `hash`, a follower reads back what has been
 * written and hashes it while the rest is still being written.
 */
export async function writeSafetensors(path: string, tensors: readonly TensorToWrite[], opts: WriteOptions = {}): Promise<WriteResult> {
  const ordered = safetensorsOrder(tensors);
  const runs = verbatimRuns(ordered);
  const longest = runs.reduce<VerbatimRun | undefined>((a, r) => (!a || r.length > a.length ? r : a), undefined);
  const align = longest && longest.length >= ALIGN_RUNS_FROM ? { dataOffset: longest.dataOffset, fileOffset: longest.from } : undefined;
  const { header, dataBytes } = buildSafetensorsHeader(ordered, opts.metadata, align);
  const total = header.length + dataBytes;
  const tmp = tempPathFor(path);
  let position = 0;
  const fh = await open(tmp, 'w+').catch((e: unknown) => {
    throw writeFailure(e, path, 0, total);
  });
  let ok = false;
  let hasher: FollowingHasher | undefined;
  const copied = { bytes: 0, methods: [] as CopyMethod[] };
  const durable = opts.durable !== false;
  try {
    if (opts.hash) hasher = followFileHash(tmp, fh, total, total >= (opts.hashInWorkerFrom ?? HASH_IN_WORKER_FROM));
    const staging = Buffer.allocUnsafeSlow(STAGING_BYTES);
    let used = 0;
    /** Writes `bytes` at the current position. */
    const emit = async (bytes: Uint8Array) => {
      try {
        await writeAll(fh, bytes, position);
      } catch (e) {
        throw writeFailure(e, path, position, total);
      }
      position += bytes.byteLength;
      hasher?.advance(position);
    };
    const flush = async () => {
      if (used) await emit(staging.subarray(0, used));
      used = 0;
    };
    const put = async (bytes: Uint8Array) => {
      if (used + bytes.byteLength <= STAGING_BYTES) {
        staging.set(bytes, used);
        used += bytes.byteLength;
        return;
      }
      await flush();
      if (bytes.byteLength >= STAGING_BYTES / 2) {
        await emit(bytes);
      } else {
        staging.set(bytes, 0);
        used = bytes.byteLength;
      }
    };
    /** Copies `length` bytes of `fd` from `from` to the current position; `run`'s tensors hear their progress. */
    const copyRun = async (run: TensorToWrite[], fd: number, from: number, length: number) => {
      let ti = 0;
      let left = byteSize(run[0]);
      const progress = (n: number) => {
        while (ti < run.length) {
          const m = Math.min(n, left);
          if (m) run[ti].onCopied?.(m);
          n -= m;
          left -= m;
          if (left > 0) return;
          if (++ti < run.length) left = byteSize(run[ti]);
        }
      };
      for (let done = 0; done < length; ) {
        // Pieces end at multiples of COPY_CHUNK in the source, so all but the first start aligned.
        const n = Math.min(COPY_CHUNK - ((from + done) % COPY_CHUNK), length - done);
        try {
          const r = await copyFileRange(fd, from + done, fh.fd, position, n, { ...opts.copy, writeback: durable });
          if (!copied.methods.includes(r.method)) copied.methods.push(r.method);
        } catch (e) {
          throw writeFailure(e, path, position + ((e as { bytesCopied?: number }).bytesCopied ?? 0), total);
        }
        position += n;
        done += n;
        copied.bytes += n;
        hasher?.advance(position);
        progress(n);
      }
      progress(0); // zero-byte tensors at the end of the run
    };

    await put(header);
    const slots: (Buffer | undefined)[] = [undefined, undefined];
    const scratchFor =
      (slot: number): Scratch =>
      (bytes) => {
        const have = slots[slot];
        if (have && have.length >= bytes) return have.subarray(0, bytes);
        const fresh = Buffer.allocUnsafeSlow(bytes);
        slots[slot] = fresh;
        return fresh;
      };
    const toProduce = ordered.filter((t) => !isVerbatim(t));
    let produced = 0;
    const produceNext = (): Promise<Uint8Array | AsyncIterable<Uint8Array>> | undefined => {
      if (produced >= toProduce.length) return undefined;
      const t = toProduce[produced];
      const p = Promise.resolve(typeof t.data === 'function' ? t.data(scratchFor(produced % 2)) : t.data);
      produced++;
      // A rejected prefetch must not surface as an unhandled rejection while the previous write is pending.
      p.catch(() => undefined);
      return p;
    };
    let next = produceNext();
    let nextRun = 0;
    for (let i = 0; i < ordered.length; ) {
      const t = ordered[i];
      if (isVerbatim(t)) {
        const run = runs[nextRun++];
        await flush();
        await copyRun(ordered.slice(run.first, run.end), run.fd, run.from, run.length);
        i = run.end;
        continue;
      }
      const data = await next!;
      next = produceNext();
      const expected = byteSize(t);
      let given = 0;
      if (isChunked(data)) {
        // Chunks go straight to the file (the chunk buffer is reused by its producer after each write).
        await flush();
        for await (const chunk of data) {
          given += chunk.byteLength;
          if (given > expected) break;
          await emit(chunk);
        }
      } else {
        given = data.byteLength;
        if (given === expected) await put(data);
      }
      if (given !== expected) throw new DbtError(`tensor "${t.key}": ${given} bytes given, ${t.dtype} ${JSON.stringify(t.shape)} needs ${expected}`);
      i++;
    }
    await flush();
    if (position !== total) throw new DbtError(`internal: wrote ${position} bytes, expected ${total}`);
    // The hash is read back from the page cache while the data goes to the disk.
    const [synced, hashed] = await Promise.allSettled([durable ? fh.sync() : undefined, hasher?.digest()]);
    if (synced.status === 'rejected') throw writeFailure(synced.reason, path, position, total);
    if (hashed.status === 'rejected') throw hashed.reason;
    await fh.close();
    await rename(tmp, path);
    ok = true;
    return { bytes: position, hashes: hashed.value, copied };
  } finally {
    if (!ok) {
      hasher?.abort();
      await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
    }
  }
}

async function writeAll(fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const { bytesWritten } = await fh.write(bytes, done, Math.min(bytes.byteLength - done, 1 << 30), position + done);
    done += bytesWritten;
  }
}
