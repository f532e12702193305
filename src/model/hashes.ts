/** File hashes the web UIs show: sha256, the A1111 "new" short hash and the legacy hash (REFERENCE.md §3). */
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';

export interface FileHashes {
  sha256: string;
  /** First 10 hex characters of the sha256 (AUTOMATIC1111's model hash). */
  a1111: string;
  /** First 8 hex characters of sha256 over 0x10000 bytes at offset 0x100000 (AUTOMATIC1111's old hash). */
  a1111Legacy: string;
}

const CHUNK = 16 << 20;
/** Read-back chunk of the follower: small enough to stay in the CPU cache between the read and the hash. */
const FOLLOW_CHUNK = 1 << 20;
const LEGACY_AT = 0x100000;
const LEGACY_LEN = 0x10000;

function legacyHex(window: Uint8Array): string {
  return createHash('sha256').update(window).digest('hex').slice(0, 8);
}

/** Hashes `length` bytes of an open file from its start. */
async function hashHandle(fh: FileHandle, length: number, path: string): Promise<FileHashes> {
  const whole = createHash('sha256');
  const buf = Buffer.allocUnsafeSlow(CHUNK);
  for (let pos = 0; pos < length; ) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK, length - pos), pos);
    if (bytesRead === 0) throw new Error(`${path}: ended at byte ${pos} while hashing ${length} bytes`);
    whole.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
  const legacyBuf = Buffer.alloc(LEGACY_LEN);
  const { bytesRead } = await fh.read(legacyBuf, 0, LEGACY_LEN, LEGACY_AT);
  const sha256 = whole.digest('hex');
  return { sha256, a1111: sha256.slice(0, 10), a1111Legacy: legacyHex(legacyBuf.subarray(0, bytesRead)) };
}

export async function hashFile(path: string): Promise<FileHashes> {
  const fh = await open(path, 'r');
  try {
    return await hashHandle(fh, (await fh.stat()).size, path);
  } finally {
    await fh.close();
  }
}

/** Hashes a file as it is written: the writer reports how many bytes are final, the hasher reads them back. */
export interface FollowingHasher {
  /** The first `written` bytes of the file are written and will not change. */
  advance(written: number): void;
  /** The hashes once all `total` bytes are written. */
  digest(): Promise<FileHashes>;
  /** Stops hashing (the write failed). */
  abort(): void;
}

// Runs in a worker thread: reads the file behind the writer (SharedArrayBuffer slot 0 holds the bytes
// written so far, -1 on abort) and hashes it, so hashing takes the other core while the main thread and
// libuv's threads write. Plain JS, as workers run it without the TypeScript build.
const FOLLOWER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const { openSync, readSync, closeSync } = require('node:fs');
const { createHash } = require('node:crypto');
(function follow() {
  const { path, total, shared, chunk, legacyAt, legacyLen } = workerData;
  const state = new BigInt64Array(shared);
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafeSlow(chunk);
    const whole = createHash('sha256');
    for (let pos = 0; pos < total; ) {
      let written = Atomics.load(state, 0);
      while (written >= 0n && Number(written) <= pos) {
        Atomics.wait(state, 0, written);
        written = Atomics.load(state, 0);
      }
      if (written < 0n) return;
      const n = readSync(fd, buf, 0, Math.min(chunk, Number(written) - pos), pos);
      if (n === 0) throw new Error(path + ': ended at byte ' + pos + ' while hashing');
      whole.update(buf.subarray(0, n));
      pos += n;
    }
    const legacy = Buffer.alloc(legacyLen);
    const got = readSync(fd, legacy, 0, legacyLen, legacyAt);
    parentPort.postMessage({ sha256: whole.digest('hex'), legacy: createHash('sha256').update(legacy.subarray(0, got)).digest('hex') });
  } finally {
    closeSync(fd);
  }
})();
`;

/** Starts hashing `path` on a worker thread, reading its first `total` bytes as `advance` reports them final. */
function startHashWorker(path: string, total: number): FollowingHasher {
  const shared = new SharedArrayBuffer(8);
  const state = new BigInt64Array(shared);
  const worker = new Worker(FOLLOWER_SOURCE, { eval: true, workerData: { path, total, shared, chunk: FOLLOW_CHUNK, legacyAt: LEGACY_AT, legacyLen: LEGACY_LEN } });
  const result = new Promise<FileHashes>((resolve, reject) => {
    worker.once('message', (m: { sha256: string; legacy: string }) => resolve({ sha256: m.sha256, a1111: m.sha256.slice(0, 10), a1111Legacy: m.legacy.slice(0, 8) }));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the hashing thread for ${path} stopped (exit code ${code}) before it finished`)));
  });
  result.catch(() => undefined); // observed through digest(); an aborted write never asks
  return {
    advance(written) {
      Atomics.store(state, 0, BigInt(written));
      Atomics.notify(state, 0);
    },
    digest: () => result,
    abort() {
      Atomics.store(state, 0, -1n);
      Atomics.notify(state, 0);
      void worker.terminate();
    },
  };
}

/**
 * A hasher for a file being written through `fh` (opened for reading too). `inWorker`: hash on a worker
 * thread while the file is written (large files); otherwise read it back on this thread at the end.
 */
export function followFileHash(path: string, fh: FileHandle, total: number, inWorker: boolean): FollowingHasher {
  if (!inWorker) return { advance: () => undefined, digest: () => hashHandle(fh, total, path), abort: () => undefined };
  return startHashWorker(path, total);
}

/**
 * hashFile on a worker thread: the caller's thread stays free (e.g. to write while a source is hashed).
 * `abort()` stops it (a running worker would keep the process alive).
 */
export function hashFileInWorker(path: string): { digest(): Promise<FileHashes>; abort(): void } {
  const size = statSync(path).size;
  const hasher = startHashWorker(path, size);
  hasher.advance(size);
  return hasher;
}
