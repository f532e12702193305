import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileFormatError } from '../../src/errors.js';
import { openCkptStore } from '../../src/model/ckpt.js';
import { createModel } from '../../src/model/create.js';
import { toFloat32 } from '../../src/model/dtype.js';
import { PickleError, unpickle } from '../../src/model/pickle.js';
import { writeSafetensors } from '../../src/model/safetensors.js';
import { openWeights } from '../../src/model/weights.js';
import { tempDir, testRng } from './helpers.js';
import { PickleWriter, torchPickle, torchSave, zipBytes, type TorchTensor } from './torch-writer.js';

const dir = tempDir();
const f32 = (values: number[]) => new Uint8Array(new Float32Array(values).buffer);
const range = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));

async function storeValues(path: string) {
  const s = await openCkptStore(path);
  const out: Record<string, { dtype: string; shape: number[]; values: number[] }> = {};
  try {
    for (const [k, t] of s.tensors) out[k] = { dtype: t.dtype, shape: t.shape, values: [...toFloat32(await t.read(), t.dtype)] };
    return { values: out, pickle: s.pickle! };
  } finally {
    await s.close();
  }
}

describe('.ckpt files written by PyTorch itself (fixture made once by make_golden_ckpt.py)', () => {
  it('loads every dtype, a transposed view, an offset view and a Parameter', async () => {
    const { values, pickle } = await storeValues(new URL('./fixtures/golden.ckpt', import.meta.url).pathname);
    expect(values.f32).toEqual({ dtype: 'F32', shape: [2, 3], values: range(6, (i) => i * 0.25 - 0.5) });
    expect(values.f16).toEqual({ dtype: 'F16', shape: [4], values: range(4, (i) => i * 0.5) });
    expect(values.bf16).toEqual({ dtype: 'BF16', shape: [3], values: range(3, (i) => i - 1.5) });
    expect(values.i64).toEqual({ dtype: 'I64', shape: [1, 5], values: range(5, (i) => i) });
    expect(values.transposed.shape).toEqual([4, 3]);
    expect(values.transposed.values).toEqual(range(12, (i) => (i % 3) * 4 + Math.floor(i / 3))); // base.t()
    expect(values.offset_view.values).toEqual([1.5, 2, 2.5, 3]);
    expect(values.base.values).toEqual(range(12, (i) => i));
    expect(values.param.values).toEqual([0, 2, 4, 6]);
    expect(pickle.topLevelKeys).toEqual(['state_dict', 'global_step', 'epoch']);
    expect(pickle.unknownGlobals).toEqual([]);
  });
});

describe('.ckpt files from the test writer', () => {
  it.each([
    ['f32', false],
    ['f16', true],
  ])('a tiny %s model saved as .ckpt loads to exactly the tensors of its safetensors twin (also zip64 + deflated pickle)', async (name, half) => {
    await createModel({ dir: join(dir, `m-${name}`), arch: 'tiny', seed: 3, half: half as boolean });
    const src = await openWeights(join(dir, `m-${name}`));
    const tensors: TorchTensor[] = [];
    try {
      for (const [key, t] of src.tensors) tensors.push({ key, dtype: t.dtype as 'F32' | 'F16' | 'I64', shape: t.shape, storage: await src.readRaw(key) });
    } finally {
      await src.close();
    }
    await writeSafetensors(join(dir, `twin-${name}.safetensors`), tensors.map((t) => ({ key: t.key, dtype: t.dtype, shape: t.shape, data: t.storage })));
    writeFileSync(join(dir, `twin-${name}.ckpt`), torchSave(tensors));
    writeFileSync(join(dir, `twin64-${name}.ckpt`), torchSave(tensors, { zip64: true, deflatePickle: true, dir: 'twin64' }));
    const a = await openWeights(join(dir, `twin-${name}.safetensors`));
    try {
      for (const file of [`twin-${name}.ckpt`, `twin64-${name}.ckpt`]) {
        const b = await openWeights(join(dir, file));
        try {
          expect(b.format).toBe('ckpt');
          expect(b.arch).toEqual(a.arch);
          expect([...b.tensors.keys()]).toEqual([...a.tensors.keys()]);
          expect(b.tensors.get('model.diffusion_model.out.2.bias')!.dtype).toBe(half ? 'F16' : 'F32');
          for (const key of a.tensors.keys()) expect(Buffer.from(await b.readRaw(key)).equals(Buffer.from(await a.readRaw(key))), key).toBe(true);
        } finally {
          await b.close();
        }
      }
    } finally {
      await a.close();
    }
  });

  it('handles shared storages, storage offsets and non-contiguous strides', async () => {
    const storage = f32(range(12, (i) => i + 0.5));
    const path = join(dir, 'views.ckpt');
    writeFileSync(
      path,
      torchSave([
        { key: 'whole', dtype: 'F32', shape: [3, 4], storage, storageId: 's' },
        { key: 't', dtype: 'F32', shape: [4, 3], stride: [1, 4], storage, storageId: 's' },
        { key: 'row1', dtype: 'F32', shape: [4], offset: 4, storage, storageId: 's' },
        { key: 'col2', dtype: 'F32', shape: [3], offset: 2, stride: [4], storage, storageId: 's' },
        { key: 'bcast', dtype: 'F32', shape: [2, 3], stride: [0, 1], storage, storageId: 's' },
      ]),
    );
    const { values } = await storeValues(path);
    expect(values.t.values).toEqual(range(12, (i) => (i % 3) * 4 + Math.floor(i / 3) + 0.5));
    expect(values.row1.values).toEqual([4.5, 5.5, 6.5, 7.5]);
    expect(values.col2.values).toEqual([2.5, 6.5, 10.5]);
    expect(values.bcast.values).toEqual([0.5, 1.5, 2.5, 0.5, 1.5, 2.5]);
  });

  it('normalises old text-encoder keys without "text_model."', async () => {
    const src = await openWeights(join(dir, 'twin-f32.safetensors'));
    const tensors: TorchTensor[] = [];
    try {
      for (const [key, t] of src.tensors) {
        tensors.push({ key: key.replace('cond_stage_model.transformer.text_model.', 'cond_stage_model.transformer.'), dtype: t.dtype as 'F32', shape: t.shape, storage: await src.readRaw(key) });
      }
    } finally {
      await src.close();
    }
    writeFileSync(join(dir, 'old.ckpt'), torchSave(tensors));
    const w = await openWeights(join(dir, 'old.ckpt'));
    try {
      expect(w.tensors.has('cond_stage_model.transformer.text_model.final_layer_norm.weight')).toBe(true);
      expect(w.notes.join(' ')).toMatch(/old-style text encoder keys .* normalised/);
    } finally {
      await w.close();
    }
  });
});

describe('hostile pickles never run', () => {
  const marker = join(dir, 'PWNED');
  const system = (p: PickleWriter) => p.global('os', 'system').mark().str(`touch ${marker}`).tuple().reduce();
  const storage = f32([1, 2, 3, 4]);
  const tensor: TorchTensor = { key: 'w', dtype: 'F32', shape: [4], storage };

  it.each<[string, Parameters<typeof torchSave>[1], string[]]>([
    ['os.system as a state-dict value', { extra: [(p) => (p.str('evil'), system(p))] }, ['os.system']],
    ['os.system built and discarded before the dict', { prelude: (p) => (system(p), p.op(0x30)) }, ['os.system']],
    ['builtins.eval and subprocess.Popen via STACK_GLOBAL, with BUILD state', {
      extra: [
        (p) => (p.str('a'), p.global('builtins', 'eval').mark().str(`open('${marker}','w')`).tuple().reduce()),
        (p) => (p.str('b'), p.str('subprocess').str('Popen').op(0x93).mark().str('touch').str(marker).op(0x6c).op(0x85).reduce().op(0x7d).op(0x62)),
      ],
    }, ['builtins.eval', 'subprocess.Popen']],
  ])('%s: tensors load, nothing runs, the globals are reported', async (_name, opts, unknown) => {
    const path = join(dir, 'hostile.ckpt');
    writeFileSync(path, torchSave([tensor], opts));
    const { values, pickle } = await storeValues(path);
    expect(values.w.values).toEqual([1, 2, 3, 4]);
    expect(Object.keys(values)).toEqual(['w']);
    expect(pickle.unknownGlobals).toEqual(unknown);
    expect(existsSync(marker)).toBe(false);
  });

  it('dbt create from a whole model .ckpt that references os.system loads the tensors and warns, naming the global', async () => {
    await createModel({ dir: join(dir, 'clean'), arch: 'tiny', seed: 4 });
    const src = await openWeights(join(dir, 'clean'));
    const tensors: TorchTensor[] = [];
    try {
      for (const [key, t] of src.tensors) tensors.push({ key, dtype: t.dtype as 'F32' | 'I64', shape: t.shape, storage: await src.readRaw(key) });
      expect(src.warnings).toEqual([]);
    } finally {
      await src.close();
    }
    writeFileSync(join(dir, 'model-evil.ckpt'), torchSave(tensors, { extra: [(p) => (p.str('evil'), system(p))] }));
    const r = await createModel({ dir: join(dir, 'from-evil'), from: join(dir, 'model-evil.ckpt') });
    expect(r.warnings.filter((w) => /pickle references code dbt did not run \(os\.system\)/.test(w))).toHaveLength(1);
    expect(existsSync(marker)).toBe(false);
    for (const c of ['unet', 'vae', 'text_encoder']) {
      expect(readFileSync(join(dir, 'from-evil', `${c}.safetensors`)).equals(readFileSync(join(dir, 'clean', `${c}.safetensors`))), c).toBe(true);
    }
  });

  it('a pickle that is only a payload fails cleanly without running', async () => {
    const p = new PickleWriter().op(0x80, 2);
    system(p).op(0x2e);
    const path = join(dir, 'payload.ckpt');
    writeFileSync(path, zipBytes([{ name: 'archive/data.pkl', data: p.bytes() }]));
    await expect(openCkptStore(path)).rejects.toThrow(/the pickled object is not a dict \(found an opaque object\)/);
    expect(existsSync(marker)).toBe(false);
  });

  it('random mutations of a pickle end in a value or a PickleError, never anything else', () => {
    const pkl = torchPickle([tensor], {}, new Map([['w', '0']]));
    expect(unpickle(pkl, { persistentLoad: (pid) => ({ pid }) }).globals).toContain('torch._utils._rebuild_tensor_v2');
    const rnd = testRng(99);
    let errors = 0;
    for (let i = 0; i < 3000; i++) {
      const b = Uint8Array.from(pkl);
      for (let e = 0; e < 1 + Math.floor(rnd() * 3); e++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      try {
        unpickle(b.subarray(0, rnd() < 0.1 ? Math.floor(rnd() * b.length) : b.length), { persistentLoad: (pid) => ({ pid }) });
      } catch (err) {
        expect(err).toBeInstanceOf(PickleError);
        errors++;
      }
    }
    expect(errors).toBeGreaterThan(100);
    expect(existsSync(marker)).toBe(false);
  });
});

describe('corrupt .ckpt files are refused with a specific message', () => {
  const tensor: TorchTensor = { key: 'w', dtype: 'F32', shape: [4], storage: f32([1, 2, 3, 4]) };
  it.each<[string, () => Buffer, RegExp]>([
    ['truncated zip', () => torchSave([tensor]).subarray(0, 200), /no zip end-of-central-directory record/],
    ['legacy (non-zip) torch file', () => Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e, 0, 0, 0, 0, 0, 0, 0, 0, 0]), /legacy \(pre-1.6, non-zip\) PyTorch file/],
    ['tensor past its storage', () => torchSave([{ ...tensor, shape: [8] }]), /tensor "w" .* reaches element 7 of a 4-element storage/],
    ['corrupt pickle entry', () => {
      const b = torchSave([tensor]);
      const at = b.indexOf(Buffer.from('_rebuild_tensor_v2'));
      b[at] ^= 0xff;
      return b;
    }, /data.pkl is corrupt \(CRC-32/],
  ])('%s', async (_name, bytes, message) => {
    const path = join(dir, 'bad.ckpt');
    writeFileSync(path, bytes());
    await expect(openCkptStore(path)).rejects.toThrow(FileFormatError);
    await expect(openCkptStore(path)).rejects.toThrow(message);
  });

  it('a zip without data.pkl is not a checkpoint', async () => {
    const path = join(dir, 'nopkl.ckpt');
    writeFileSync(path, zipBytes([{ name: 'x/readme.txt', data: Buffer.from('hi') }]));
    await expect(openCkptStore(path)).rejects.toThrow(/expected one <dir>\/data.pkl in the zip, found 0/);
    expect(readFileSync(path).length).toBeGreaterThan(0);
  });
});


describe('chunked reads', () => {
  it('WeightSource.chunks() of safetensors and .ckpt sources equal readRaw for any chunk size', async () => {
    for (const file of ['twin-f32.safetensors', 'twin-f32.ckpt', 'twin64-f32.ckpt']) {
      const w = await openWeights(join(dir, file));
      try {
        for (const key of ['model.diffusion_model.input_blocks.1.1.proj_in.weight', 'cond_stage_model.transformer.text_model.embeddings.position_ids']) {
          for (const size of [7, 1000, 1 << 20]) {
            const parts: Buffer[] = [];
            for await (const c of w.chunks(key, size)) parts.push(Buffer.from(c));
            expect(Buffer.concat(parts).equals(Buffer.from(await w.readRaw(key))), `${file} ${key} ${size}`).toBe(true);
          }
        }
      } finally {
        await w.close();
      }
    }
  });

  it('WeightSource.stream() yields every tensor in order, read ahead or in reused buffers, as readRaw reads it', async () => {
    for (const file of ['twin-f32.safetensors', 'twin-f32.ckpt']) {
      const w = await openWeights(join(dir, file));
      try {
        const keys = [...w.tensors.keys()].reverse(); // any order the caller asks for
        for (const opts of [{}, { aheadBytes: 1 }, { reuse: true }]) {
          const seen: string[] = [];
          for await (const { key, tensor, bytes } of w.stream(keys, opts)) {
            seen.push(key);
            expect(tensor.key).toBe(key);
            // Checked before asking for the next tensor: reused bytes are valid until then.
            expect(Buffer.from(bytes).equals(Buffer.from(await w.readRaw(key))), `${file} ${key} ${JSON.stringify(opts)}`).toBe(true);
          }
          expect(seen).toEqual(keys);
        }
        await expect(w.stream(['no.such.key'], { reuse: true }).next()).rejects.toThrow(/no tensor "no.such.key"/);
      } finally {
        await w.close();
      }
    }
  });
});
