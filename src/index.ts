/** The library API of dbt, for scripting from JavaScript. */
export { VERSION } from './version.js';
export * from './errors.js';
export { loadRunSpec, resolveRunSpecText, runSpecSchema, type RunSpec, type LoadedRunSpec } from './config/index.js';
export { openWeights, expectedTensors, ClipTokenizer, type WeightSource, type ModelArch } from './model/index.js';
export { openModel, type Model, type OpenModelOptions, type Tensor } from './nets/index.js';
export { prepImages, withPrepDefaults, formatPrepReport, type PrepOptions, type PrepReport, type PrepHooks, type PrepEvent } from './prep/index.js';
