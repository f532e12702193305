/**
 * Model files, the public face of src/model:
 *   openWeights(path, { useEma?, tokenizer? }) → WeightSource   model dir | run checkpoint dir | .safetensors | .ckpt | diffusers folder
 *       { arch, tensors (LDM key → dtype/shape), readF32(key), readRaw(key), tokenizer | null, ema, metadata, close() }
 *   expectedTensors(arch) → the exact LDM key/shape set of a single-file SD1.x checkpoint
 *   createModel / exportModel / inspectModel: the actions behind `dbt create | export | inspect`
 *   ClipTokenizer, findTokenizer, loadTokenizer: the SD1 CLIP tokenizer and where its vocabulary comes from
 *   SafetensorsFile / writeSafetensors: the safetensors reader and writer
 */
export * from './arch.js';
export { expectedTensors, parameterCounts, emaKeyFor, numel, COMPONENTS, COMPONENT_PREFIX, UNET_PREFIX, VAE_PREFIX, TEXT_PREFIX, type Component, type TensorSpec } from './keys.js';
export { openWeights, openStores, type WeightSource, type WeightTensor, type OpenWeightsOptions, type SourceFormat } from './weights.js';
export { detectArch } from './detect.js';
export { ClipTokenizer, CONTEXT_LENGTH, type TokenizedPrompt } from './tokenizer.js';
export { findTokenizer, loadTokenizer, TOKENIZER_HELP } from './tokenizer-files.js';
export { SafetensorsFile, writeSafetensors, type TensorToWrite } from './safetensors.js';
export { toFloat32, fromFloat32, type DType } from './dtype.js';
export { readModelJson, isModelDir, SCHEDULERS, type ModelJson, type SchedulerName } from './modeldir.js';
export { createModel, type CreateModelOptions, type CreateModelResult } from './create.js';
export { hashFile, type FileHashes } from './hashes.js';
export { CounterStream, philox4x32 } from './random.js';
