/**
 * A stand-in for isnetis.onnx with the same contract (input `img` float32 [N,3,1024,1024] in [0,1],
 * output `mask` float32 [N,1,1024,1024] in [0,1]) but no learned weights: the mask is a colour key,
 * sigmoid(gain · (Σ_c |img_c − key_c| − threshold)). Pixels of the key colour get ~0, pixels far from it ~1.
 * Six element-wise ops over 3·1024² values: cheap enough for tests and benchmarks, and real onnxruntime work.
 *
 * It is NOT isnetis; it only lets the segmentation path run end to end without downloading a model.
 */
import { encodeOnnxModel, attr, type OnnxModel } from '../helpers/onnx-writer.js';

export const SEG_SIZE = 1024;

export interface ColourKeyOptions {
  /** Background colour the "model" removes, 0–255 per channel. */
  key: [number, number, number];
  /** Summed absolute channel distance (in 0–3 units of pixel/255) at which the mask crosses 0.5. */
  threshold?: number;
  gain?: number;
  /** Override the graph's input/output names or spatial size, to test that prep refuses a wrong model. */
  inputName?: string;
  outputName?: string;
  size?: number;
}

export function colourKeySegModel(o: ColourKeyOptions): OnnxModel {
  const size = o.size ?? SEG_SIZE;
  const input = o.inputName ?? 'img';
  const output = o.outputName ?? 'mask';
  return {
    opset: 17,
    graph: {
      name: 'colour_key_segmentation',
      inputs: [{ name: input, type: 'float32', shape: ['N', 3, size, size] }],
      outputs: [{ name: output, type: 'float32', shape: ['N', 1, size, size] }],
      initializers: [
        { name: 'key', type: 'float32', dims: [1, 3, 1, 1], data: Float32Array.from(o.key, (v) => v / 255) },
        { name: 'axes', type: 'int64', dims: [1], data: BigInt64Array.from([1n]) },
        { name: 'threshold', type: 'float32', dims: [], data: Float32Array.from([o.threshold ?? 0.3]) },
        { name: 'gain', type: 'float32', dims: [], data: Float32Array.from([o.gain ?? 60]) },
      ],
      nodes: [
        { opType: 'Sub', inputs: [input, 'key'], outputs: ['diff'] },
        { opType: 'Abs', inputs: ['diff'], outputs: ['absdiff'] },
        { opType: 'ReduceSum', inputs: ['absdiff', 'axes'], outputs: ['dist'], attributes: { keepdims: attr.int(1) } },
        { opType: 'Sub', inputs: ['dist', 'threshold'], outputs: ['centred'] },
        { opType: 'Mul', inputs: ['centred', 'gain'], outputs: ['logits'] },
        { opType: 'Sigmoid', inputs: ['logits'], outputs: [output] },
      ],
    },
  };
}

export function colourKeySegModelBytes(o: ColourKeyOptions): Uint8Array {
  return encodeOnnxModel(colourKeySegModel(o));
}
