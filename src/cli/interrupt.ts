import { existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { InterruptedError } from '../errors.js';
import { reportError } from './output.js';

/**
 * This process's temporaries for `target`: the model writers (src/model) write `<dir>/.<name>.tmp-<pid>-<hex>`
 * (a file or a folder) and rename it onto `<dir>/<name>` when complete; a replaced model folder is first
 * moved aside to the same name plus `-old`.
 */
function temporariesOf(target: string, pid: number): string[] {
  const dir = dirname(target);
  const prefix = `.${basename(target)}.tmp-${pid}-`;
  try {
    return readdirSync(dir).filter((n) => n.startsWith(prefix)).map((n) => join(dir, n));
  } catch {
    return [];
  }
}

/**
 * Removes what an interrupted write of `targets` left behind. A target moved aside for replacement (`-old`)
 * while the new one was not yet in place is moved back, so an interrupted `--force` never loses the old
 * model. Returns the paths removed.
 */
export function removeTemporaries(targets: string[], pid = process.pid): string[] {
  const removed: string[] = [];
  for (const target of targets) {
    for (const tmp of temporariesOf(target, pid)) {
      if (tmp.endsWith('-old') && !existsSync(target)) {
        renameSync(tmp, target);
        continue;
      }
      rmSync(tmp, { recursive: true, force: true });
      removed.push(tmp);
    }
  }
  return removed;
}

/**
 * For commands that write multi-gigabyte files (create, export): on Ctrl-C or SIGTERM, remove the unfinished
 * temporaries of `targets` (they are hidden and would otherwise stay), report the interruption like any error
 * (one JSON document with `--json`) and exit 130. Complete outputs are never touched. Returns the function that
 * uninstalls the handlers.
 */
export function onInterruptRemoveTemporaries(targets: () => string[], json: boolean): () => void {
  const handler = () => {
    const removed = removeTemporaries(targets());
    const what = removed.length ? `; removed the unfinished ${removed.map((p) => basename(p)).join(', ')}` : '';
    process.exit(reportError(new InterruptedError(`interrupted${what}; nothing else was changed`), undefined, json));
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}
