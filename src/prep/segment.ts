/**
 * Background removal with the anime-segmentation model (isnetis.onnx) through onnxruntime-node.
 * Contract (REFERENCE.md §5): input `img` float32 [N,3,1024,1024], RGB, pixel/255, the image resized so its
 * long side is 1024 and centred on a black canvas; output `mask` float32 [N,1,1024,1024] in [0,1].
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import ort from 'onnxruntime-node';
import { FileFormatError, UsageError } from '../errors.js';

export const SEG_INPUT_SIZE = 1024;
export const SEG_INPUT_NAME = 'img';
export const SEG_OUTPUT_NAME = 'mask';
export const SEG_MODEL_URL = 'https://huggingface.co/skytnt/anime-seg (file isnetis.onnx)';
export const SEG_MODEL_SHA256 = 'f15622d853e8260172812b657053460e20806f04b9e05147d49af7bed31a6e99';

/** `$XDG_CACHE_HOME/dbt/isnetis.onnx`, else `~/.cache/dbt/isnetis.onnx`. */
export function defaultSegModelPath(env: NodeJS.ProcessEnv = process.env): string {
  const cache = env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache');
  return join(cache, 'dbt', 'isnetis.onnx');
}

/** The model file to use: the option, else $DBT_SEG_MODEL, else the default location. Must exist. */
export function resolveSegModel(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const candidates: { path: string; from: string }[] = [];
  if (explicit) candidates.push({ path: resolve(explicit), from: '--seg-model' });
  else if (env.DBT_SEG_MODEL) candidates.push({ path: resolve(env.DBT_SEG_MODEL), from: 'DBT_SEG_MODEL' });
  else candidates.push({ path: defaultSegModelPath(env), from: 'default location' });
  const c = candidates[0];
  if (existsSync(c.path) && statSync(c.path).isFile()) return c.path;
  throw new UsageError(`--white-bg needs the segmentation model isnetis.onnx, but ${c.path} (${c.from}) does not exist`, {
    details: [
      `get isnetis.onnx from ${SEG_MODEL_URL} (anime-segmentation by SkyTNT, Apache-2.0, 176 MB, sha256 ${SEG_MODEL_SHA256.slice(0, 16)}…)`,
      `and put it at ${defaultSegModelPath(env)}, or set DBT_SEG_MODEL=<file>, or pass --seg-model <file>`,
    ],
  });
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

function describeShape(shape: readonly (number | string)[]): string {
  return `[${shape.join(',')}]`;
}

/** Numeric dimensions must match; symbolic ones (batch, or fully dynamic exports) are accepted. */
function shapeMatches(shape: readonly (number | string)[], want: number[]): boolean {
  if (shape.length === 0) return true;
  if (shape.length !== want.length) return false;
  return shape.every((d, i) => i === 0 || typeof d !== 'number' || d < 0 || d === want[i]);
}

export class Segmenter {
  private constructor(
    readonly path: string,
    private readonly session: ort.InferenceSession,
  ) {}

  /** Loads and checks the model. `threads`: onnxruntime intra-op threads for each run. */
  static async open(path: string, threads = 1): Promise<Segmenter> {
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(path, { intraOpNumThreads: threads, interOpNumThreads: 1 });
    } catch (err) {
      const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0];
      throw new FileFormatError(path, `onnxruntime could not load this model: ${reason}`, {
        details: [`expected the anime-segmentation isnetis.onnx from ${SEG_MODEL_URL}`],
      });
    }
    const problems: string[] = [];
    const s = SEG_INPUT_SIZE;
    const input = session.inputMetadata.find((m) => m.name === SEG_INPUT_NAME);
    const output = session.outputMetadata.find((m) => m.name === SEG_OUTPUT_NAME);
    if (!input) problems.push(`no input named '${SEG_INPUT_NAME}' (inputs: ${session.inputNames.join(', ') || 'none'})`);
    else if (input.isTensor && !shapeMatches(input.shape, [1, 3, s, s])) {
      problems.push(`input '${SEG_INPUT_NAME}' has shape ${describeShape(input.shape)}, expected [N,3,${s},${s}]`);
    }
    if (!output) problems.push(`no output named '${SEG_OUTPUT_NAME}' (outputs: ${session.outputNames.join(', ') || 'none'})`);
    else if (output.isTensor && !shapeMatches(output.shape, [1, 1, s, s])) {
      problems.push(`output '${SEG_OUTPUT_NAME}' has shape ${describeShape(output.shape)}, expected [N,1,${s},${s}]`);
    }
    if (problems.length) {
      await session.release();
      throw new FileFormatError(path, 'is not an isnetis-compatible segmentation model', {
        details: [...problems, `expected the anime-segmentation isnetis.onnx from ${SEG_MODEL_URL}`],
      });
    }
    return new Segmenter(path, session);
  }

  /**
   * The subject mask of an upright RGB image already resized so its long side is 1024 (`width`×`height`,
   * 3 channels): 8-bit, same size, 255 = subject.
   */
  async mask(rgb: Buffer, width: number, height: number): Promise<Uint8Array> {
    const s = SEG_INPUT_SIZE;
    if (Math.max(width, height) !== s || rgb.length !== width * height * 3) {
      throw new Error(`segmentation input must be ${s} on its long side, RGB (got ${width}×${height}, ${rgb.length} bytes)`);
    }
    const ox = (s - width) >> 1;
    const oy = (s - height) >> 1;
    const plane = s * s;
    const input = new Float32Array(3 * plane); // black canvas
    for (let y = 0; y < height; y++) {
      let src = y * width * 3;
      let dst = (y + oy) * s + ox;
      for (let x = 0; x < width; x++, src += 3, dst++) {
        input[dst] = rgb[src] / 255;
        input[dst + plane] = rgb[src + 1] / 255;
        input[dst + 2 * plane] = rgb[src + 2] / 255;
      }
    }
    const result = await this.session.run({ [SEG_INPUT_NAME]: new ort.Tensor('float32', input, [1, 3, s, s]) });
    const out = result[SEG_OUTPUT_NAME];
    if (!out || out.type !== 'float32' || out.dims.join(',') !== `1,1,${s},${s}`) {
      throw new FileFormatError(this.path, `output '${SEG_OUTPUT_NAME}' is ${out ? `${out.type} [${out.dims.join(',')}]` : 'missing'}, expected float32 [1,1,${s},${s}]`);
    }
    const m = out.data as Float32Array;
    const mask = new Uint8Array(width * height);
    for (let y = 0; y < height; y++) {
      let src = (y + oy) * s + ox;
      let dst = y * width;
      for (let x = 0; x < width; x++, src++, dst++) {
        const v = m[src];
        // NaN compares false both ways and ends as 0 (background).
        mask[dst] = v >= 1 ? 255 : v > 0 ? Math.round(v * 255) : 0;
      }
    }
    out.dispose?.();
    return mask;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
