/**
 * A file's tensors as stored, before any renaming: the common face of the safetensors and .ckpt readers.
 * Reading is lazy and per tensor.
 */
import type { DType } from './dtype.js';
import { SafetensorsFile } from './safetensors.js';

export interface StoredTensor {
  dtype: DType;
  shape: number[];
  /** The tensor's bytes, little-endian, contiguous, in its own dtype; in `into` when the store can. */
  read(into?: Uint8Array): Promise<Uint8Array>;
  /** `into.byteLength` bytes starting `offset` bytes into the tensor, when the format can read ranges. */
  readRange?(offset: number, into: Uint8Array): Promise<Uint8Array>;
  /** Where the bytes lie, contiguous and as stored, in a file the store keeps open (copied without reading). */
  location?: TensorLocation;
}

export interface TensorLocation {
  path: string;
  fd: number;
  /** Absolute file offset of the first byte. */
  offset: number;
}

export type StoreFormat = 'safetensors' | 'ckpt';

export interface TensorStore {
  path: string;
  format: StoreFormat;
  tensors: Map<string, StoredTensor>;
  metadata: Record<string, string>;
  /** Python globals a pickle referenced (only for .ckpt), and those dbt did not recognise. */
  pickle?: { globals: string[]; unknownGlobals: string[]; topLevelKeys: string[] };
  close(): Promise<void>;
}

export async function openSafetensorsStore(path: string): Promise<TensorStore> {
  const f = await SafetensorsFile.open(path);
  const tensors = new Map<string, StoredTensor>();
  for (const e of f.header.entries) {
    tensors.set(e.key, {
      dtype: e.dtype,
      shape: e.shape,
      read: (into) => f.readRaw(e.key, into),
      readRange: (offset, into) => f.readRange(e.key, offset, into),
      location: { path, fd: f.fd, offset: f.header.dataStart + e.begin },
    });
  }
  return { path, format: 'safetensors', tensors, metadata: f.metadata, close: () => f.close() };
}
