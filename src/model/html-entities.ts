/**
 * A compact equivalent of Python's `html.unescape` for prompt text: numeric character references with
 * Python's replacement rules, and the named entities prompts realistically contain (the full HTML5 table has
 * 2,231 names; an unknown name is left as written, as Python leaves unknown names).
 */
const NAMED: Record<string, string> = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0', copy: '\u00a9', reg: '\u00ae',
  trade: '\u2122', hellip: '\u2026', mdash: '\u2014', ndash: '\u2013', lsquo: '\u2018', rsquo: '\u2019',
  ldquo: '\u201c', rdquo: '\u201d', laquo: '\u00ab', raquo: '\u00bb', middot: '\u00b7', times: '\u00d7',
  divide: '\u00f7', deg: '\u00b0', plusmn: '\u00b1', para: '\u00b6', sect: '\u00a7', cent: '\u00a2',
  pound: '\u00a3', yen: '\u00a5', euro: '\u20ac', bull: '\u2022', star: '\u2606', hearts: '\u2665',
  larr: '\u2190', rarr: '\u2192', uarr: '\u2191', darr: '\u2193', frac12: '\u00bd', frac14: '\u00bc',
  frac34: '\u00be', sup2: '\u00b2', sup3: '\u00b3', micro: '\u00b5', iexcl: '\u00a1', iquest: '\u00bf',
  shy: '\u00ad', acute: '\u00b4', tilde: '\u02dc', circ: '\u02c6', lpar: '(', rpar: ')', colon: ':',
  semi: ';', comma: ',', period: '.', excl: '!', quest: '?', num: '#', percnt: '%', ast: '*', plus: '+',
  equals: '=', sol: '/', bsol: '\\', lowbar: '_', verbar: '|', lbrack: '[', rbrack: ']', lcub: '{',
  rcub: '}', grave: '`', hat: '^', commat: '@', dollar: '$', Tab: '\t', NewLine: '\n',
};
/** Names Python also accepts without the trailing semicolon (HTML5 legacy entities). */
const LEGACY = ['amp', 'lt', 'gt', 'quot', 'nbsp', 'copy', 'reg', 'laquo', 'raquo', 'middot', 'times', 'divide', 'deg', 'plusmn', 'para', 'sect', 'cent', 'pound', 'yen', 'frac12', 'frac14', 'frac34', 'sup2', 'sup3', 'micro', 'iexcl', 'iquest', 'shy', 'acute'];

/** Windows-1252 meanings Python gives to &#128; … &#159; */
const CP1252: Record<number, number> = {
  0x80: 0x20ac, 0x82: 0x201a, 0x83: 0x0192, 0x84: 0x201e, 0x85: 0x2026, 0x86: 0x2020, 0x87: 0x2021,
  0x88: 0x02c6, 0x89: 0x2030, 0x8a: 0x0160, 0x8b: 0x2039, 0x8c: 0x0152, 0x8e: 0x017d, 0x91: 0x2018,
  0x92: 0x2019, 0x93: 0x201c, 0x94: 0x201d, 0x95: 0x2022, 0x96: 0x2013, 0x97: 0x2014, 0x98: 0x02dc,
  0x99: 0x2122, 0x9a: 0x0161, 0x9b: 0x203a, 0x9c: 0x0153, 0x9e: 0x017e, 0x9f: 0x0178,
  0x81: 0x81, 0x8d: 0x8d, 0x8f: 0x8f, 0x90: 0x90, 0x9d: 0x9d,
};

function numeric(num: number): string {
  if (num === 0) return '\ufffd';
  if (num === 0x0d) return '\r';
  if (num in CP1252) return String.fromCodePoint(CP1252[num]);
  if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return '\ufffd';
  const invalid = (num >= 0x1 && num <= 0x8) || (num >= 0xe && num <= 0x1f) || (num >= 0x7f && num <= 0x9f) || (num >= 0xfdd0 && num <= 0xfdef) || num === 0xb || (num & 0xfffe) === 0xfffe;
  return invalid ? '' : String.fromCodePoint(num);
}

export function htmlUnescape(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/g, (all, ref: string) => {
    if (ref[0] === '#') {
      const hex = ref[1] === 'x' || ref[1] === 'X';
      const digits = ref.slice(hex ? 2 : 1).replace(/;$/, '');
      return numeric(parseInt(digits, hex ? 16 : 10));
    }
    if (ref.endsWith(';') && Object.prototype.hasOwnProperty.call(NAMED, ref.slice(0, -1))) return NAMED[ref.slice(0, -1)];
    for (let n = ref.length; n > 1; n--) {
      const name = ref.slice(0, n);
      if (LEGACY.includes(name)) return NAMED[name] + ref.slice(n);
    }
    return all;
  });
}
