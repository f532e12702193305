/**
 * The SD1.x networks of the native core (native/src/nn, bound by native/src/api/api_nn.cpp), typed.
 * Parameters are addressed by original LDM checkpoint keys.
 */
import type { ClipTextConfig, UNetConfig, VaeConfig } from '../model/arch.js';
import { call, native, type DeviceName, type NativeTensor } from '../core/native.js';
import { Tensor } from '../core/index.js';

export type NetKind = 'unet' | 'text' | 'vae';

interface NativeNetHandle {
  paramSpecs(): { key: string; shape: number[] }[];
  setParam(key: string, t: NativeTensor): void;
  getParam(key: string): NativeTensor;
  getGrad(key: string): NativeTensor | null;
  enableGrads(on: boolean): void;
  zeroGrads(): void;
  setCheckpointing(on: boolean): void;
  setOptimizer(opts: AdamWOptions | null): void;
  setOptimizerParams(p: AdamWHparams): void;
  optimizerStep(): void;
  unetForward(x: NativeTensor, t: NativeTensor, context: NativeTensor, save: boolean): NativeTensor;
  unetBackward(dy: NativeTensor, dcontext: NativeTensor | null): void;
  textForward(ids: NativeTensor, clipSkip: number, save: boolean): NativeTensor;
  textBackward(dy: NativeTensor): void;
  vaeEncode(img: NativeTensor): [NativeTensor, NativeTensor];
  vaeDecode(z: NativeTensor): NativeTensor;
  dispose(): void;
}

/** AdamW over every parameter of a network (native nn::AdamW). */
export interface AdamWOptions {
  /** 8-bit blockwise moments (docs/native.md) instead of moments in `momentDtype`. */
  eightBit?: boolean;
  /** 8-bit block size, 2048 (default) or 256. */
  block?: number;
  /**
   * Step each parameter inside backward as soon as its gradient is complete, then free the gradient
   * (the full set of gradients is never alive). Every backward is then an optimizer step: no gradient
   * accumulation over micro-batches, no global-norm clipping, no dynamic loss scaling (its overflow check
   * needs every gradient before the step).
   */
  fused?: boolean;
  /** f32 (default; also for bf16 weights with stochastic rounding), else the network's dtype. */
  momentDtype?: NetDType;
}

/** AdamW hyper-parameters (PyTorch's meaning); fields given replace the current ones. */
export interface AdamWHparams {
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** The step number t >= 1 (bias correction). */
  step?: number;
  /** Multiplies every gradient (loss-scale unscaling). */
  gradScale?: number;
  /** bf16 weights: store the update by stochastic rounding (key: srSeed, step, parameter index). */
  stochasticRounding?: boolean;
  srSeed?: number;
}

/** f32 or f64 (tests) on the CPU; f32, f16 or bf16 on CUDA. */
export type NetDType = 'f32' | 'f64' | 'f16' | 'bf16';

type NativeNetCtor = new (kind: NetKind, config: object, dtype: NetDType, device: DeviceName) => NativeNetHandle;

/**
 * One network with its weights in native memory on `device`. Inputs must be on that device in the network's
 * dtype (timesteps f32 and token ids may stay on the CPU); outputs come back there. Tensors returned are the
 * caller's to dispose.
 */
export class NativeNet {
  private handle: NativeNetHandle | null;

  constructor(
    readonly kind: NetKind,
    config: UNetConfig | ClipTextConfig | VaeConfig,
    readonly dtype: NetDType = 'f32',
    readonly device: DeviceName = 'cpu',
  ) {
    const ctor = (native() as unknown as { NativeNet: NativeNetCtor }).NativeNet;
    this.handle = call(() => new ctor(kind, config, dtype, device));
  }

  private get h(): NativeNetHandle {
    if (!this.handle) throw new Error(`the ${this.kind} network was disposed`);
    return this.handle;
  }

  /** Every parameter, by LDM key, in registration order. */
  paramSpecs(): { key: string; shape: number[] }[] {
    return call(() => this.h.paramSpecs());
  }
  /** Copies t into the parameter (converted to the network's dtype, uploaded to its device); shapes must match. */
  setParam(key: string, t: Tensor): void {
    call(() => this.h.setParam(key, t.handle));
  }
  /** The parameter itself (shares memory). */
  param(key: string): Tensor {
    return new Tensor(call(() => this.h.getParam(key)));
  }
  grad(key: string): Tensor | null {
    const g = call(() => this.h.getGrad(key));
    return g ? new Tensor(g) : null;
  }
  enableGrads(on = true): void {
    call(() => this.h.enableGrads(on));
  }
  zeroGrads(): void {
    call(() => this.h.zeroGrads());
  }
  /** Per-block gradient checkpointing (UNet: ResBlocks and SpatialTransformers; text encoder: layers). */
  setCheckpointing(on: boolean): void {
    call(() => this.h.setCheckpointing(on));
  }
  /**
   * AdamW state for every parameter (zero moments), or null to free it and turn gradients off. Not fused:
   * enables full gradients, applied by optimizerStep(). Fused: backward steps every parameter.
   */
  setOptimizer(opts: AdamWOptions | null): void {
    call(() => this.h.setOptimizer(opts));
  }
  setOptimizerParams(p: AdamWHparams): void {
    call(() => this.h.setOptimizerParams(p));
  }
  /** Updates every parameter with its full gradient (not for fused optimizers, which step in backward). */
  optimizerStep(): void {
    call(() => this.h.optimizerStep());
  }
  unetForward(x: Tensor, t: Tensor, context: Tensor, save = false): Tensor {
    return new Tensor(call(() => this.h.unetForward(x.handle, t.handle, context.handle, save)));
  }
  unetBackward(dy: Tensor, dcontext: Tensor | null = null): void {
    call(() => this.h.unetBackward(dy.handle, dcontext ? dcontext.handle : null));
  }
  textForward(ids: Tensor, clipSkip = 1, save = false): Tensor {
    return new Tensor(call(() => this.h.textForward(ids.handle, clipSkip, save)));
  }
  textBackward(dy: Tensor): void {
    call(() => this.h.textBackward(dy.handle));
  }
  vaeEncode(img: Tensor): { mean: Tensor; logvar: Tensor } {
    const [mean, logvar] = call(() => this.h.vaeEncode(img.handle));
    return { mean: new Tensor(mean), logvar: new Tensor(logvar) };
  }
  vaeDecode(z: Tensor): Tensor {
    return new Tensor(call(() => this.h.vaeDecode(z.handle)));
  }
  /** Frees the weights (and gradients) now. */
  dispose(): void {
    this.handle?.dispose();
    this.handle = null;
  }
}
