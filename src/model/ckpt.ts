/**
 * PyTorch `.ckpt` / `.pt` / `.bin` files (torch.save zip format, REFERENCE.md §3): `<dir>/data.pkl` is
 * unpickled with the inert stack machine; tensors are references into `<dir>/data/<key>` storages and are
 * read lazily, one at a time. Nothing in the pickle is ever executed.
 */
import { open } from 'node:fs/promises';
import { FileFormatError } from '../errors.js';
import { dtypeSize, type DType } from './dtype.js';
import { PickleError, PyCall, PyGlobal, unpickle } from './pickle.js';
import type { StoredTensor, TensorStore } from './store.js';
import { ZipReader } from './zip.js';

const STORAGE_DTYPES: Record<string, DType> = {
  'torch.FloatStorage': 'F32',
  'torch.HalfStorage': 'F16',
  'torch.BFloat16Storage': 'BF16',
  'torch.DoubleStorage': 'F64',
  'torch.LongStorage': 'I64',
  'torch.IntStorage': 'I32',
  'torch.ShortStorage': 'I16',
  'torch.CharStorage': 'I8',
  'torch.ByteStorage': 'U8',
  'torch.BoolStorage': 'BOOL',
};

/** Globals dbt builds or knows to be plain data in training checkpoints; anything else is reported by `inspect`. */
export const KNOWN_GLOBALS = new Set([
  ...Object.keys(STORAGE_DTYPES),
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  'collections.OrderedDict',
  'torch.Size',
  'torch.device',
  'torch.torch_version.TorchVersion',
  'numpy.core.multiarray.scalar',
  'numpy._core.multiarray.scalar',
  'numpy.dtype',
  '_codecs.encode',
  'pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint',
]);

class StorageRef {
  constructor(
    readonly entry: string,
    readonly dtype: DType,
    readonly numel: number,
  ) {}
}

class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly size: number[],
    readonly stride: number[],
  ) {}
}

function isIntArray(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0);
}

function rebuildTensor(args: unknown[]): TensorRef {
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof StorageRef)) throw new PickleError('tensor rebuild without a storage');
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) throw new PickleError(`tensor has a bad storage offset ${String(offset)}`);
  if (!isIntArray(size) || !isIntArray(stride) || size.length !== stride.length) throw new PickleError(`tensor has a bad size/stride (${JSON.stringify(size)}, ${JSON.stringify(stride)})`);
  return new TensorRef(storage, offset, [...size], [...stride]);
}

const BUILDERS = new Map<string, (args: unknown[]) => unknown>([
  ['torch._utils._rebuild_tensor_v2', rebuildTensor],
  ['torch._utils._rebuild_tensor', rebuildTensor],
  ['torch._utils._rebuild_parameter', (a) => a[0]],
  ['torch._utils._rebuild_parameter_with_state', (a) => a[0]],
  [
    'collections.OrderedDict',
    (a) => {
      const m = new Map();
      if (Array.isArray(a[0])) for (const pair of a[0]) if (Array.isArray(pair) && pair.length === 2) m.set(pair[0], pair[1]);
      return m;
    },
  ],
]);

function numelOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function isContiguous(size: number[], stride: number[]): boolean {
  let expected = 1;
  for (let i = size.length - 1; i >= 0; i--) {
    if (size[i] !== 1 && stride[i] !== expected) return false;
    expected *= size[i];
  }
  return true;
}

/** Copies a strided view out of `src` (which starts at the view's first element) into contiguous bytes. */
function gather(src: Uint8Array, size: number[], stride: number[], itemSize: number): Uint8Array {
  const n = numelOf(size);
  const out = new Uint8Array(n * itemSize);
  const idx = new Array<number>(size.length).fill(0);
  for (let i = 0; i < n; i++) {
    let off = 0;
    for (let d = 0; d < size.length; d++) off += idx[d] * stride[d];
    out.set(src.subarray(off * itemSize, (off + 1) * itemSize), i * itemSize);
    for (let d = size.length - 1; d >= 0; d--) {
      if (++idx[d] < size[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

async function looksLikeLegacyTorch(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(2);
    await fh.read(b, 0, 2, 0);
    return b[0] === 0x80 && b[1] <= 5;
  } finally {
    await fh.close();
  }
}

export async function openCkptStore(path: string): Promise<TensorStore> {
  let zip: ZipReader;
  try {
    zip = await ZipReader.open(path);
  } catch (e) {
    if (e instanceof FileFormatError && (await looksLikeLegacyTorch(path))) {
      throw new FileFormatError(path, 'this is a legacy (pre-1.6, non-zip) PyTorch file, which dbt does not read; re-save it with a current PyTorch or convert it to .safetensors');
    }
    throw e;
  }
  try {
    const pkls = [...zip.entries.keys()].filter((n) => n === 'data.pkl' || /^[^/]+\/data\.pkl$/.test(n));
    if (pkls.length !== 1) throw new FileFormatError(path, `not a PyTorch checkpoint: expected one <dir>/data.pkl in the zip, found ${pkls.length}`);
    const prefix = pkls[0].slice(0, -'data.pkl'.length);
    const byteorder = zip.entries.has(`${prefix}byteorder`) ? (await zip.read(`${prefix}byteorder`)).toString('latin1').trim() : 'little';
    if (byteorder !== 'little') throw new FileFormatError(path, `tensors are stored ${byteorder}-endian; dbt reads little-endian checkpoints only`);

    const storages = new Map<string, StorageRef>();
    const persistentLoad = (pid: unknown): StorageRef => {
      if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) throw new PickleError(`unexpected persistent id ${JSON.stringify(String(pid)).slice(0, 60)}`);
      const [, type, key, , numel] = pid;
      if (!(type instanceof PyGlobal)) throw new PickleError('storage without a type');
      const dtype = STORAGE_DTYPES[type.qualified];
      if (!dtype) throw new PickleError(`unsupported storage type ${type.qualified}`);
      if (typeof key !== 'string' || !/^[\w.-]+$/.test(key)) throw new PickleError(`bad storage key ${JSON.stringify(key)}`);
      if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) throw new PickleError(`bad storage size for ${key}`);
      const entry = `${prefix}data/${key}`;
      const existing = storages.get(entry);
      if (existing) return existing;
      const ze = zip.entries.get(entry);
      if (!ze) throw new PickleError(`storage ${key} is missing from the archive (${entry})`);
      if (ze.size < numel * dtypeSize(dtype)) throw new PickleError(`storage ${key} holds ${ze.size} bytes but ${numel} ${dtype} elements need ${numel * dtypeSize(dtype)}`);
      const ref = new StorageRef(entry, dtype, numel);
      storages.set(entry, ref);
      return ref;
    };

    let result;
    try {
      result = unpickle(await zip.read(pkls[0]), { persistentLoad, builders: BUILDERS });
    } catch (e) {
      if (e instanceof PickleError) throw new FileFormatError(path, `${pkls[0]}: ${e.message}`);
      throw e;
    }
    const top = result.value;
    if (!(top instanceof Map)) throw new FileFormatError(path, `the pickled object is not a dict (found ${top instanceof PyCall ? 'an opaque object' : typeof top})`);
    const topLevelKeys = [...top.keys()].map(String);
    const sd = top.get('state_dict') instanceof Map ? (top.get('state_dict') as Map<unknown, unknown>) : top;

    const tensors = new Map<string, StoredTensor>();
    for (const [k, v] of sd) {
      if (typeof k !== 'string' || !(v instanceof TensorRef)) continue;
      const { storage, offset, size, stride } = v;
      const item = dtypeSize(storage.dtype);
      const n = numelOf(size);
      const last = n === 0 ? offset : offset + size.reduce((acc, d, i) => acc + (d - 1) * stride[i], 0);
      if (n > 0 && last >= storage.numel) {
        throw new FileFormatError(path, `tensor "${k}" (offset ${offset}, size ${JSON.stringify(size)}, stride ${JSON.stringify(stride)}) reaches element ${last} of a ${storage.numel}-element storage`);
      }
      const contiguous = isContiguous(size, stride);
      tensors.set(k, {
        dtype: storage.dtype,
        shape: size,
        ...(contiguous ? { readRange: (at: number, into: Uint8Array) => zip.readRange(storage.entry, offset * item + at, into.byteLength, into) } : {}),
        read: async (into?: Uint8Array) => {
          if (n === 0) return new Uint8Array(0);
          if (contiguous) return zip.readRange(storage.entry, offset * item, n * item, into);
          const span = await zip.readRange(storage.entry, offset * item, (last - offset + 1) * item);
          return gather(span, size, stride, item);
        },
      });
    }
    return {
      path,
      format: 'ckpt',
      tensors,
      metadata: {},
      pickle: { globals: result.globals, unknownGlobals: result.globals.filter((g) => !KNOWN_GLOBALS.has(g)), topLevelKeys },
      close: () => zip.close(),
    };
  } catch (e) {
    await zip.close();
    throw e;
  }
}
