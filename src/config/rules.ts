import { isPlainObject } from './keypath.js';
import type { PathIssue } from './validate.js';

/**
 * Rules that involve more than one key, checked on the spec with defaults filled in (before it is known
 * to be valid, so every access checks its type). Errors stop the run; warnings are printed and kept.
 */
export function crossFieldIssues(spec: Record<string, unknown>): { errors: PathIssue[]; warnings: PathIssue[] } {
  const errors: PathIssue[] = [];
  const warnings: PathIssue[] = [];
  const isNum = (v: unknown): v is number => typeof v === 'number';

  const { steps, epochs } = spec;
  if (steps == null && epochs == null) {
    errors.push({ path: ['steps'], message: 'give steps or epochs: how long to train', hint: 'e.g. steps: 4000; about 500-1000 per image works' });
  } else if (steps != null && epochs != null) {
    errors.push({ path: ['epochs'], message: 'give steps or epochs, not both', hint: 'remove one, or override it with --set epochs=null' });
  }
  if (isNum(steps) && isNum(spec.warmup_steps) && spec.warmup_steps > steps) {
    errors.push({ path: ['warmup_steps'], message: `warmup_steps (${spec.warmup_steps}) is more than steps (${steps})` });
  }
  if (spec.lr_scheduler === 'constant' && isNum(spec.warmup_steps) && spec.warmup_steps > 0) {
    warnings.push({ path: ['warmup_steps'], message: `lr_scheduler "constant" ignores warmup_steps (${spec.warmup_steps})`, hint: 'use lr_scheduler: constant_with_warmup' });
  }
  if (isNum(steps) && isNum(spec.save_every) && spec.save_every > steps) {
    warnings.push({ path: ['save_every'], message: `save_every (${spec.save_every}) is more than steps (${steps}): only the final checkpoint is saved` });
  }

  const model = spec.model;
  if (isPlainObject(model) && model.from != null && model.arch != null) {
    errors.push({ path: ['model', 'arch'], message: 'model.from and model.arch exclude each other', hint: 'give from (convert a checkpoint) or arch (random weights), not both' });
  }

  const concepts = Array.isArray(spec.concepts) ? spec.concepts : [];
  const instanceDirs = new Map<string, number>();
  concepts.forEach((c: unknown, i) => {
    if (!isPlainObject(c)) return;
    if (isNum(c.num_class_images) && c.num_class_images > 0) {
      if (c.class_prompt == null) {
        errors.push({ path: ['concepts', i], message: 'prior preservation (num_class_images > 0) needs class_prompt', hint: 'e.g. class_prompt: Unan, or num_class_images: 0' });
      }
      if (c.class_dir == null) {
        errors.push({ path: ['concepts', i], message: 'prior preservation (num_class_images > 0) needs class_dir, where class images are kept' });
      }
    } else if (c.class_prompt != null || c.class_dir != null) {
      warnings.push({ path: ['concepts', i, 'num_class_images'], message: 'class_prompt/class_dir are unused while num_class_images is 0' });
    }
    if (typeof c.raw_dir === 'string' && c.raw_dir === c.instance_dir) {
      errors.push({ path: ['concepts', i, 'raw_dir'], message: 'raw_dir and instance_dir are the same folder', hint: 'prep writes into instance_dir and never changes the raw images' });
    }
    if (c.shuffle_tags === true && c.caption_source === 'none') {
      warnings.push({ path: ['concepts', i, 'shuffle_tags'], message: 'shuffle_tags has no effect without captions (caption_source: none)' });
    }
    if (typeof c.instance_dir === 'string') {
      const prev = instanceDirs.get(c.instance_dir);
      if (prev !== undefined) warnings.push({ path: ['concepts', i, 'instance_dir'], message: `the same instance_dir as concepts[${prev}]` });
      else instanceDirs.set(c.instance_dir, i);
    }
  });
  const hasPrior = concepts.some((c: unknown) => isPlainObject(c) && isNum(c.num_class_images) && c.num_class_images > 0);
  if (!hasPrior && isNum(spec.prior_loss_weight) && spec.prior_loss_weight !== 1) {
    warnings.push({ path: ['prior_loss_weight'], message: 'prior_loss_weight is unused: no concept has num_class_images > 0' });
  }

  const te = spec.train_text_encoder;
  if (isPlainObject(te) && te.enabled !== true && te.lr != null) {
    warnings.push({ path: ['train_text_encoder', 'lr'], message: 'train_text_encoder.lr is unused while train_text_encoder.enabled is false' });
  }
  return { errors, warnings };
}
