/** File hashes the web UIs show: sha256, the A1111 "new" short hash and the legacy hash (REFERENCE.md §3). */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';

export interface FileHashes {
  sha256: string;
  /** First 10 hex characters of the sha256 (AUTOMATIC1111's model hash). */
  a1111: string;
  /** First 8 hex characters of sha256 over 0x10000 bytes at offset 0x100000 (AUTOMATIC1111's old hash). */
  a1111Legacy: string;
}

const CHUNK = 16 << 20;
const LEGACY_AT = 0x100000;
const LEGACY_LEN = 0x10000;

/** The same hashes computed incrementally over a file's bytes in order (used while writing one). */
export class FileHasher {
  private readonly whole = createHash('sha256');
  private readonly legacy = Buffer.alloc(LEGACY_LEN);
  private legacyLen = 0;
  private position = 0;

  update(bytes: Uint8Array): void {
    this.whole.update(bytes);
    const start = this.position;
    const end = start + bytes.byteLength;
    const from = Math.max(start, LEGACY_AT);
    const to = Math.min(end, LEGACY_AT + LEGACY_LEN);
    if (from < to) {
      this.legacy.set(bytes.subarray(from - start, to - start), from - LEGACY_AT);
      this.legacyLen = Math.max(this.legacyLen, to - LEGACY_AT);
    }
    this.position = end;
  }

  digest(): FileHashes {
    const sha256 = this.whole.digest('hex');
    const legacy = createHash('sha256').update(this.legacy.subarray(0, this.legacyLen)).digest('hex');
    return { sha256, a1111: sha256.slice(0, 10), a1111Legacy: legacy.slice(0, 8) };
  }
}

export async function hashFile(path: string): Promise<FileHashes> {
  const fh = await open(path, 'r');
  try {
    const whole = createHash('sha256');
    const buf = Buffer.allocUnsafeSlow(CHUNK);
    let pos = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, pos);
      if (bytesRead === 0) break;
      whole.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    const legacyBuf = Buffer.alloc(0x10000);
    const { bytesRead } = await fh.read(legacyBuf, 0, 0x10000, 0x100000);
    const legacy = createHash('sha256').update(legacyBuf.subarray(0, bytesRead)).digest('hex');
    const sha256 = whole.digest('hex');
    return { sha256, a1111: sha256.slice(0, 10), a1111Legacy: legacy.slice(0, 8) };
  } finally {
    await fh.close();
  }
}
