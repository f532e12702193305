/** SD1.x networks on the native core: openModel (library API), NativeNet (trainer/sampler building block). */
export { openModel, createNets, loadNetWeights, type Model, type OpenModelOptions, type Tensor } from './model.js';
export { NativeNet, type AdamWHparams, type AdamWOptions, type NetKind } from './native.js';
