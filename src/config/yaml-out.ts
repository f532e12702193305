import { Document, isScalar, isSeq, visit } from 'yaml';

/** YAML for people: small floats as 1e-6 rather than 0.000001, lists of numbers on one line, keys in the order given. */
export function toYaml(value: unknown): string {
  const doc = new Document(value);
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
