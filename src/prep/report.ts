import type { PrepReport } from './prep.js';

/** The report as people read it (stderr). */
export function formatPrepReport(r: PrepReport): string {
  const c = r.counts;
  const lines: string[] = [];
  lines.push(`prep: ${c.sources} source${c.sources === 1 ? '' : 's'} → ${r.out} (manifest ${r.manifest})`);
  const parts = [`processed ${c.processed}`, `skipped ${c.skipped} (unchanged)`, `failed ${c.failed}`];
  if (c.ignored) parts.push(`not images ${c.ignored}`);
  const speed = c.processed ? `, ${r.imagesPerSecond.toFixed(1)} images/s` : '';
  lines.push(`  ${parts.join(', ')} in ${r.seconds.toFixed(1)} s${speed}`);
  if (r.framing) {
    lines.push(`  framing: ${r.framing.fullBody} full body, ${r.framing.bustUp} bust-up or closer, ${r.framing.withoutMask} without a mask`);
  }
  if (r.failures.length) {
    lines.push('failed:');
    for (const f of r.failures) lines.push(`  ${f.source}: ${f.reason}`);
  }
  if (r.warnings.length) {
    lines.push('warnings:');
    for (const w of r.warnings) lines.push(`  ${w.source ? `${w.source}: ` : ''}${w.message}`);
  }
  return lines.join('\n');
}
