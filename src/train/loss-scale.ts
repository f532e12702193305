/**
 * Dynamic loss scaling for f16 training (PyTorch GradScaler semantics). The loss is multiplied by `scale`
 * before the backward pass so small f16 gradients do not flush to zero; after it:
 *   - the overflow check (ops.checkFinite over all gradients) found inf/NaN: skip the optimizer step,
 *     scale *= backoffFactor (never below minScale), and restart the count of clean steps;
 *   - otherwise: take the step with the gradients unscaled by 1/scale — folded into the optimizer through
 *     AdamWOptions.gradScale (`gradScale()` below), so no separate pass over the gradients — and after
 *     growthInterval clean steps in a row, scale *= growthFactor (never above maxScale).
 * The whole state is two numbers (`state()`), saved with the run's resumable state: a resumed run continues
 * with the same scale and the same count, so it makes the same decisions as an uninterrupted one.
 */

export interface LossScalerOptions {
  /** Starting scale (default 2^16). */
  initScale?: number;
  /** Multiplier after growthInterval clean steps (default 2). */
  growthFactor?: number;
  /** Multiplier on overflow (default 0.5). */
  backoffFactor?: number;
  /** Clean steps in a row before growing (default 2000). */
  growthInterval?: number;
  /** Lower bound of the scale (default 1). */
  minScale?: number;
  /** Upper bound of the scale (default 2^24: beyond it f16 gradients overflow whatever the model). */
  maxScale?: number;
}

/** Serialisable state: the current scale and the clean steps since the last change of the scale by overflow or growth. */
export interface LossScalerState {
  scale: number;
  growthTracker: number;
}

const DEFAULTS: Required<LossScalerOptions> = {
  initScale: 2 ** 16,
  growthFactor: 2,
  backoffFactor: 0.5,
  growthInterval: 2000,
  minScale: 1,
  maxScale: 2 ** 24,
};

function positive(name: string, v: number): void {
  if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`loss scaler: ${name} must be a positive finite number, got ${v}`);
}

export class LossScaler {
  readonly options: Required<LossScalerOptions>;
  private scale_: number;
  private tracker: number;

  constructor(options: LossScalerOptions = {}, state?: LossScalerState) {
    const o = { ...DEFAULTS, ...options };
    for (const k of ['initScale', 'growthFactor', 'backoffFactor', 'minScale', 'maxScale'] as const) positive(k, o[k]);
    if (!(o.growthFactor > 1)) throw new RangeError(`loss scaler: growthFactor must be > 1, got ${o.growthFactor}`);
    if (!(o.backoffFactor < 1)) throw new RangeError(`loss scaler: backoffFactor must be < 1, got ${o.backoffFactor}`);
    if (!Number.isSafeInteger(o.growthInterval) || o.growthInterval < 1)
      throw new RangeError(`loss scaler: growthInterval must be a positive integer, got ${o.growthInterval}`);
    if (!(o.minScale <= o.initScale && o.initScale <= o.maxScale))
      throw new RangeError(`loss scaler: need minScale <= initScale <= maxScale, got ${o.minScale}, ${o.initScale}, ${o.maxScale}`);
    this.options = o;
    this.scale_ = o.initScale;
    this.tracker = 0;
    if (state) {
      positive('state.scale', state.scale);
      if (!(state.scale >= o.minScale && state.scale <= o.maxScale))
        throw new RangeError(`loss scaler: state.scale ${state.scale} is outside [${o.minScale}, ${o.maxScale}]`);
      if (!Number.isSafeInteger(state.growthTracker) || state.growthTracker < 0 || state.growthTracker >= o.growthInterval)
        throw new RangeError(`loss scaler: state.growthTracker must be an integer in [0, ${o.growthInterval}), got ${state.growthTracker}`);
      this.scale_ = state.scale;
      this.tracker = state.growthTracker;
    }
  }

  /** The factor the loss is multiplied by before the backward pass. */
  get scale(): number {
    return this.scale_;
  }

  /**
   * The optimizer's gradScale for a step with these gradients: 1/scale, times the clipping coefficient when
   * the caller clips (clip: min(1, maxNorm / (trueNorm + 1e-6)), trueNorm = norm of the scaled gradients / scale).
   */
  gradScale(clip = 1): number {
    if (!(clip > 0 && clip <= 1)) throw new RangeError(`loss scaler: clip coefficient must be in (0, 1], got ${clip}`);
    return clip / this.scale_;
  }

  /**
   * Records the overflow check of this step's gradients (true: inf or NaN found) and updates the scale.
   * Returns whether the optimizer step should be taken (false: skip it).
   */
  update(foundOverflow: boolean): boolean {
    const o = this.options;
    if (foundOverflow) {
      this.scale_ = Math.max(o.minScale, this.scale_ * o.backoffFactor);
      this.tracker = 0;
      return false;
    }
    this.tracker++;
    if (this.tracker === o.growthInterval) {
      this.scale_ = Math.min(o.maxScale, this.scale_ * o.growthFactor);
      this.tracker = 0;
    }
    return true;
  }

  state(): LossScalerState {
    return { scale: this.scale_, growthTracker: this.tracker };
  }
}
