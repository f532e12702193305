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
  unetForward(x: NativeTensor, t: NativeTensor, context: NativeTensor, save: boolean): NativeTensor;
  unetBackward(dy: NativeTensor, dcontext: NativeTensor | null): void;
  textForward(ids: NativeTensor, clipSkip: number, save: boolean): NativeTensor;
  textBackward(dy: NativeTensor): void;
  vaeEncode(img: NativeTensor): [NativeTensor, NativeTensor];
  vaeDecode(z: NativeTensor): NativeTensor;
  dispose(): void;
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
