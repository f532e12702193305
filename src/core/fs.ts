/**
 * Copying byte ranges between open files, for the model writers. With the native core built this is
 * copy_file_range(2) on a libuv worker thread — the in-kernel copy `cp` uses, no user-space buffer — with
 * a read/write fallback where the kernel or file system cannot do it; without the core, a read/write
 * loop in JS. Errors are Node-style (`code` 'ENOSPC', 'EFBIG', …, `syscall`), like node:fs errors.
 */
import { read, write } from 'node:fs';
import { promisify } from 'node:util';
import { nativeIfBuilt } from './native.js';

export type CopyMethod = 'copy_file_range' | 'read/write' | 'js read/write';

export interface CopyRangeResult {
  bytes: number;
  /** How the bytes moved: in the kernel, or through a buffer (native or JS). */
  method: CopyMethod;
}

export interface CopyRangeOptions {
  /** Copy through a buffer even where the kernel could copy (tests of the fallback). */
  readWrite?: boolean;
  /** Use the plain-JS copy even when the native core is built (tests of the fallback). */
  js?: boolean;
  /** Start writing the copied range to the disk at once (Linux, native core): a later fsync waits less. */
  writeback?: boolean;
}

const readAsync = promisify(read);
const writeAsync = promisify(write);
const JS_CHUNK = 1 << 20;

/** Copies `length` bytes from `srcFd` at `srcOffset` to `dstFd` at `dstOffset` (file positions untouched). */
export async function copyFileRange(srcFd: number, srcOffset: number, dstFd: number, dstOffset: number, length: number, opts: CopyRangeOptions = {}): Promise<CopyRangeResult> {
  const core = opts.js ? undefined : nativeIfBuilt();
  if (core) return core.copyFileRange(srcFd, srcOffset, dstFd, dstOffset, length, !!opts.readWrite, !!opts.writeback);
  const buf = Buffer.allocUnsafeSlow(Math.min(JS_CHUNK, Math.max(length, 1)));
  let done = 0;
  while (done < length) {
    const { bytesRead } = await readAsync(srcFd, buf, 0, Math.min(buf.length, length - done), srcOffset + done);
    if (bytesRead === 0) {
      const e = new Error(`the source ended at byte ${srcOffset + done}, ${length - done} bytes before the end of the range (the file shrank while being copied?)`);
      throw Object.assign(e, { code: 'DBT_SHORT_READ', bytesCopied: done });
    }
    for (let put = 0; put < bytesRead; ) {
      try {
        put += (await writeAsync(dstFd, buf, put, bytesRead - put, dstOffset + done + put)).bytesWritten;
      } catch (e) {
        throw Object.assign(e as Error, { bytesCopied: done + put });
      }
    }
    done += bytesRead;
  }
  return { bytes: done, method: 'js read/write' };
}
