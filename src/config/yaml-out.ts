import { Document, isScalar, isSeq, visit } from 'yaml';

/**
 * YAML for people: small floats as 1e-6 rather than 0.000001, lists of numbers on one line, keys in the order
 * given. `comments` adds a comment after top-level scalar values (key → text).
 */
export function toYaml(value: unknown, comments: Record<string, string> = {}): string {
  const doc = new Document(value);
  for (const [key, text] of Object.entries(comments)) {
    const node = doc.get(key, true);
    if (isScalar(node)) node.comment = ` ${text}`;
  }
  visit(doc, {
    Seq(_, node) {
      if (isSeq(node) && node.items.every((i) => isScalar(i) && typeof i.value !== 'string')) node.flow = true;
    },
    Scalar(_, node) {
      if (isScalar(node) && typeof node.value === 'number' && !Number.isInteger(node.value) && Math.abs(node.value) < 1e-3) node.format = 'EXP';
    },
  });
  return doc.toString({ lineWidth: 0 });
}
