/**
 * ts-jest, plus one line at the top of every transformed module that binds the globals hot loops
 * use to module-scope constants: `const { Math, Float32Array, … } = globalThis;`.
 *
 * Why: jest runs the tests and everything they import inside a Node VM context, where each lookup
 * of a global name goes through the context's interceptor. A loop over a Float32Array calling
 * Math.exp took 342 ms in Node, 8.6 s in jest, and 0.5 s in jest with the globals bound this way
 * (docs/development.md). Applying it to tfjs' bundles as well measured no gain (r2n2.test.ts 60 → 58 s,
 * noise), so node_modules stay untransformed. The bindings are the very objects the names resolved to before (the
 * context's own globals), so nothing the code computes changes; the line is prepended without a
 * newline, so line numbers in stack traces stay right.
 */
const { createHash } = require('node:crypto');
const { readFileSync } = require('node:fs');
const { TsJestTransformer } = require('ts-jest');

/** Cached transforms are keyed on this file too: a change here redoes them. */
const SELF = createHash('sha1').update(readFileSync(__filename)).digest('hex');

const GLOBALS = [
  'Math',
  'Number',
  'Array',
  'Object',
  'Float32Array',
  'Float64Array',
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'isFinite',
  'isNaN',
];
const LINE = `const { ${GLOBALS.join(', ')} } = globalThis;`;

/** The line for one module: without the names it declares itself (a redeclaration would not parse). */
function lineFor(code) {
  const own = GLOBALS.filter((g) => new RegExp(`\\b(?:var|let|const|function|class)\\s+${g}\\b`).test(code));
  return own.length ? `const { ${GLOBALS.filter((g) => !own.includes(g)).join(', ')} } = globalThis;` : LINE;
}

/** The line goes after a leading "use strict" directive (before it, the directive would stop being one). */
function prepend(code) {
  const m = /^\s*(['"])use strict\1;?/.exec(code);
  const line = lineFor(code);
  return m ? code.slice(0, m[0].length) + line + code.slice(m[0].length) : line + code;
}
const hoist = (r) => (typeof r === 'string' ? prepend(r) : { ...r, code: prepend(r.code) });

class HoistingTransformer extends TsJestTransformer {
  process(source, file, options) {
    return hoist(super.process(source, file, options));
  }
  async processAsync(source, file, options) {
    return hoist(await super.processAsync(source, file, options));
  }
  getCacheKey(source, file, options) {
    return super.getCacheKey(source, file, options) + SELF;
  }
  async getCacheKeyAsync(source, file, options) {
    return (await super.getCacheKeyAsync(source, file, options)) + SELF;
  }
}

module.exports = { createTransformer: (config) => new HoistingTransformer(config), prepend };
