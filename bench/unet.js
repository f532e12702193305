// `npm run bench -- unet [tiny|sd15 …]`: UNet forward and forward+backward time and peak memory on the
// CPU for the tiny and SD1.5 architectures (random weights) at 32x32 and 64x64 latents, batch 1, 77-token
// context. Peak = allocator peak above the weights (and gradients, for backward). SD1.5 64x64 backward
// runs with gradient checkpointing only (without it, activations alone exceed what a shared 24 GB machine
// should be asked for). Then one training step per size (checkpointed, 8-bit AdamW) with full gradients
// and with the optimizer step fused into backward. Ends with one summary line.
import { allocStats, coreInfo, resetPeak, tensor } from '../dist/core/index.js';
import { NAMED_ARCHS } from '../dist/model/arch.js';
import { NativeNet } from '../dist/nets/index.js';

const which = process.argv.slice(2).filter((a) => a in NAMED_ARCHS);
const archs = which.length ? which : ['tiny', 'sd15'];
const MB = 1024 * 1024;

function randomArray(n, seed, scale) {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = ((s >>> 8) / 8388608 - 1) * scale;
  }
  return a;
}

function buildUnet(arch) {
  const net = new NativeNet('unet', arch.unet);
  let seed = 1;
  for (const { key, shape } of net.paramSpecs()) {
    const n = shape.reduce((x, y) => x * y, 1);
    const fan = shape.length > 1 ? n / shape[0] : 1;
    const t = tensor(randomArray(n, seed++, shape.length > 1 ? Math.sqrt(3 / fan) : 0.1), shape);
    if (shape.length === 1 && key.endsWith('.weight')) t.write(new Float32Array(n).fill(1));
    net.setParam(key, t);
    t.dispose();
  }
  return net;
}

function peakNote(pass) {
  if (pass === 'forward') return '';
  if (pass.startsWith('step')) return pass === 'step' ? ' incl. 8-bit AdamW state + grads' : ' incl. 8-bit AdamW state';
  return ' + grads';
}

function timeIt(fn) {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const rows = [];
const info = coreInfo();
console.log(`UNet on the CPU: ${info.threads} threads, SIMD ${info.simd}, Node ${process.version}`);
for (const name of archs) {
  const arch = NAMED_ARCHS[name];
  const net = buildUnet(arch);
  const weightsMB = allocStats().current / MB;
  for (const side of [32, 64]) {
    const x = tensor(randomArray(4 * side * side, 7, 1), [1, 4, side, side]);
    const t = tensor(new Float32Array([500]), [1]);
    const c = tensor(randomArray(77 * arch.unet.context_dim, 9, 1), [1, 77, arch.unet.context_dim]);
    const dy = tensor(randomArray(4 * side * side, 11, 1), [1, 4, side, side]);
    const reps = name === 'tiny' ? 5 : 1;
    // forward (inference: intermediates freed as the pass goes)
    net.unetForward(x, t, c).dispose(); // warm-up
    let base = allocStats().current;
    resetPeak();
    let fwd = Infinity;
    for (let r = 0; r < reps; r++) fwd = Math.min(fwd, timeIt(() => net.unetForward(x, t, c).dispose()));
    rows.push({ arch: name, latent: `${side}x${side}`, pass: 'forward', seconds: fwd, peakMB: (allocStats().peak - base) / MB });
    // forward + backward, with and without checkpointing
    net.enableGrads(true);
    for (const ckpt of name === 'sd15' && side === 64 ? [true] : [false, true]) {
      net.setCheckpointing(ckpt);
      base = allocStats().current;
      resetPeak();
      let both = Infinity;
      for (let r = 0; r < reps; r++)
        both = Math.min(both, timeIt(() => {
          net.unetForward(x, t, c, true).dispose();
          net.unetBackward(dy, null);
        }));
      rows.push({ arch: name, latent: `${side}x${side}`, pass: ckpt ? 'fwd+bwd ckpt' : 'fwd+bwd', seconds: both, peakMB: (allocStats().peak - base) / MB });
    }
    net.enableGrads(false);
    // training step, checkpointed, 8-bit AdamW: full gradients + optimizerStep, then the step fused into
    // backward (each parameter stepped and its gradient freed as soon as it is complete). Peak includes the
    // optimizer state and, unfused, the gradients.
    net.setCheckpointing(true);
    for (const fused of [false, true]) {
      base = allocStats().current;
      net.setOptimizer({ eightBit: true, fused });
      net.setOptimizerParams({ lr: 1e-6, step: 1 });
      resetPeak();
      const sec = timeIt(() => {
        net.unetForward(x, t, c, true).dispose();
        net.unetBackward(dy, null);
        if (!fused) net.optimizerStep();
      });
      rows.push({ arch: name, latent: `${side}x${side}`, pass: fused ? 'step fused' : 'step', seconds: sec, peakMB: (allocStats().peak - base) / MB });
      net.setOptimizer(null);
    }
    net.setCheckpointing(false);
    [x, t, c, dy].forEach((v) => v.dispose());
    for (const r of rows.filter((r) => r.arch === name && r.latent === `${side}x${side}`))
      console.log(`${r.arch.padEnd(5)} ${r.latent.padEnd(6)} ${r.pass.padEnd(13)} ${r.seconds.toFixed(3).padStart(8)} s   peak ${r.peakMB.toFixed(1).padStart(9)} MB above weights${peakNote(r.pass)} (weights ${weightsMB.toFixed(0)} MB)`);
  }
  net.dispose();
}
console.log(`unet: ${rows.map((r) => `${r.arch} ${r.latent} ${r.pass} ${r.seconds.toFixed(2)}s/${r.peakMB.toFixed(0)}MB`).join('; ')}`);
