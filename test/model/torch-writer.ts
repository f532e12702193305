/**
 * A minimal torch.save writer for tests: a protocol-2 pickle in PyTorch's layout (OrderedDict of
 * `_rebuild_tensor_v2` calls over BINPERSID storages) inside a zip with stored (or deflated) entries,
 * optionally with zip64 records. It also lets tests splice arbitrary pickle ops (hostile payloads).
 */
import { deflateRawSync, crc32 } from 'node:zlib';

export type TorchDType = 'F32' | 'F16' | 'BF16' | 'I64';
const STORAGE: Record<TorchDType, [string, number]> = { F32: ['FloatStorage', 4], F16: ['HalfStorage', 2], BF16: ['BFloat16Storage', 2], I64: ['LongStorage', 8] };

export interface TorchTensor {
  key: string;
  dtype: TorchDType;
  shape: number[];
  /** Storage contents (the whole storage). */
  storage: Uint8Array;
  /** Share a storage between tensors by giving the same id. */
  storageId?: string;
  offset?: number;
  stride?: number[];
}

export class PickleWriter {
  private parts: number[] = [];
  private memo = 0;
  op(...bytes: number[]): this {
    this.parts.push(...bytes);
    return this;
  }
  raw(b: Uint8Array): this {
    for (const x of b) this.parts.push(x);
    return this;
  }
  put(): this {
    return this.op(0x71, this.memo++ & 0xff); // BINPUT
  }
  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    return this.op(0x58).raw(len).raw(b).put(); // BINUNICODE
  }
  int(n: number): this {
    if (n >= 0 && n < 256) return this.op(0x4b, n); // BININT1
    const b = Buffer.alloc(4);
    b.writeInt32LE(n);
    return this.op(0x4a).raw(b); // BININT
  }
  global(module: string, name: string): this {
    return this.op(0x63).raw(Buffer.from(`${module}\n${name}\n`, 'latin1')).put();
  }
  mark(): this {
    return this.op(0x28);
  }
  tuple(): this {
    return this.op(0x74);
  }
  reduce(): this {
    return this.op(0x52);
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

function contiguousStride(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export interface TorchSaveOptions {
  /** Wrap as {"state_dict": …, "global_step": 5} like SD training checkpoints (default true). */
  nested?: boolean;
  /** Extra (key, value-writer) pairs added to the state dict after the tensors. */
  extra?: ((p: PickleWriter) => void)[];
  /** Emits ops before the top-level dict (e.g. a payload that is built and discarded). */
  prelude?: (p: PickleWriter) => void;
  zip64?: boolean;
  deflatePickle?: boolean;
  dir?: string;
}

export function torchPickle(tensors: TorchTensor[], opts: TorchSaveOptions, storageKeys: Map<string, string>): Uint8Array {
  const p = new PickleWriter().op(0x80, 2);
  opts.prelude?.(p);
  const nested = opts.nested !== false;
  if (nested) p.op(0x7d).put().mark().str('state_dict');
  p.global('collections', 'OrderedDict').op(0x29).reduce().put().mark();
  for (const t of tensors) {
    const [storageName, item] = STORAGE[t.dtype];
    const sid = t.storageId ?? t.key;
    p.str(t.key).global('torch._utils', '_rebuild_tensor_v2').mark();
    p.mark().str('storage').global('torch', storageName).str(storageKeys.get(sid)!).str('cpu').int(t.storage.byteLength / item).tuple().put().op(0x51);
    p.int(t.offset ?? 0);
    p.mark();
    for (const d of t.shape) p.int(d);
    p.tuple().put().mark();
    for (const d of t.stride ?? contiguousStride(t.shape)) p.int(d);
    p.tuple().put();
    p.op(0x89); // requires_grad False
    p.global('collections', 'OrderedDict').op(0x29).reduce().put();
    p.tuple().put().reduce().put();
  }
  for (const e of opts.extra ?? []) e(p);
  p.op(0x75); // SETITEMS (state dict)
  if (nested) p.str('global_step').int(5).op(0x75);
  return p.op(0x2e).bytes();
}

interface ZipFile {
  name: string;
  data: Uint8Array;
  deflate?: boolean;
}

export function zipBytes(files: ZipFile[], zip64 = false): Buffer {
  const chunks: Buffer[] = [];
  const central: Buffer[] = [];
  let pos = 0;
  for (const f of files) {
    const name = Buffer.from(f.name, 'utf8');
    const body = f.deflate ? deflateRawSync(f.data) : Buffer.from(f.data);
    const crc = crc32(f.data) >>> 0;
    // PyTorch pads the local extra field so stored data starts on a 64-byte boundary.
    const padLen = f.deflate ? 0 : (64 - ((pos + 30 + name.length + 4) % 64)) % 64;
    const extra = Buffer.alloc(f.deflate ? 0 : 4 + padLen);
    if (!f.deflate) {
      extra.writeUInt16LE(0x4246, 0);
      extra.writeUInt16LE(padLen, 2);
    }
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(zip64 ? 45 : 20, 4);
    local.writeUInt16LE(f.deflate ? 8 : 0, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(f.data.byteLength, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(extra.length, 28);
    const z64extra = Buffer.alloc(zip64 ? 4 + 24 : 0);
    if (zip64) {
      z64extra.writeUInt16LE(1, 0);
      z64extra.writeUInt16LE(24, 2);
      z64extra.writeBigUInt64LE(BigInt(f.data.byteLength), 4);
      z64extra.writeBigUInt64LE(BigInt(body.length), 12);
      z64extra.writeBigUInt64LE(BigInt(pos), 20);
    }
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(45, 4);
    c.writeUInt16LE(45, 6);
    c.writeUInt16LE(f.deflate ? 8 : 0, 10);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(zip64 ? 0xffffffff : body.length, 20);
    c.writeUInt32LE(zip64 ? 0xffffffff : f.data.byteLength, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt16LE(z64extra.length, 30);
    c.writeUInt32LE(zip64 ? 0xffffffff : pos, 42);
    central.push(c, name, z64extra);
    chunks.push(local, name, extra, body);
    pos += 30 + name.length + extra.length + body.length;
  }
  const cd = Buffer.concat(central);
  const cdOffset = pos;
  const tail: Buffer[] = [];
  if (zip64) {
    const z = Buffer.alloc(56);
    z.writeUInt32LE(0x06064b50, 0);
    z.writeBigUInt64LE(44n, 4);
    z.writeUInt16LE(45, 12);
    z.writeUInt16LE(45, 14);
    z.writeBigUInt64LE(BigInt(files.length), 24);
    z.writeBigUInt64LE(BigInt(files.length), 32);
    z.writeBigUInt64LE(BigInt(cd.length), 40);
    z.writeBigUInt64LE(BigInt(cdOffset), 48);
    const loc = Buffer.alloc(20);
    loc.writeUInt32LE(0x07064b50, 0);
    loc.writeBigUInt64LE(BigInt(cdOffset + cd.length), 8);
    loc.writeUInt32LE(1, 16);
    tail.push(z, loc);
  }
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(zip64 ? 0xffff : files.length, 8);
  eocd.writeUInt16LE(zip64 ? 0xffff : files.length, 10);
  eocd.writeUInt32LE(zip64 ? 0xffffffff : cd.length, 12);
  eocd.writeUInt32LE(zip64 ? 0xffffffff : cdOffset, 16);
  return Buffer.concat([...chunks, cd, ...tail, eocd]);
}

/** The bytes of a torch.save-style file holding `tensors`. */
export function torchSave(tensors: TorchTensor[], opts: TorchSaveOptions = {}): Buffer {
  const storageKeys = new Map<string, string>();
  const storages: Uint8Array[] = [];
  for (const t of tensors) {
    const sid = t.storageId ?? t.key;
    if (!storageKeys.has(sid)) {
      storageKeys.set(sid, String(storages.length));
      storages.push(t.storage);
    }
  }
  const dir = opts.dir ?? 'archive';
  const pkl = torchPickle(tensors, opts, storageKeys);
  return zipBytes(
    [
      { name: `${dir}/data.pkl`, data: pkl, deflate: opts.deflatePickle },
      { name: `${dir}/byteorder`, data: Buffer.from('little') },
      ...storages.map((s, i) => ({ name: `${dir}/data/${i}`, data: s })),
      { name: `${dir}/version`, data: Buffer.from('3\n') },
    ],
    opts.zip64,
  );
}
