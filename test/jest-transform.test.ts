/** test/jest-transform.cjs: the globals line it adds keeps modules valid and their meaning unchanged. */
import { createRequire } from 'node:module';
import vm from 'node:vm';

const require = createRequire(import.meta.url);
const { createTransformer, prepend } = require('./jest-transform.cjs') as {
  createTransformer: (c: object) => { process(src: string, file: string, o: object): { code: string } | string };
  prepend: (code: string) => string;
};

describe('the jest transformer binds the hot globals per module', () => {
  test("ts-jest's output gets the line on its first line; the module computes the same in a VM context", () => {
    const t = createTransformer({ tsconfig: 'tsconfig.test.json' });
    const src = 'const a = new Float32Array(4).map((_, i) => Math.exp(i));\n(globalThis as any).out = [Array.from(a), isFinite(a[3])];\n';
    const out = t.process(src, 'x.ts', { config: { cwd: process.cwd() }, cacheFS: new Map(), transformerConfig: {} } as never);
    const code = typeof out === 'string' ? out : out.code;
    expect(code.split('\n')[0]).toMatch(/const \{ Math, Number, Array, Object, Float32Array, .*isFinite, isNaN \} = globalThis;/);
    const ctx = vm.createContext({});
    // as a script: without the module syntax ts-jest adds to a file with no imports
    vm.runInContext(code.replace(/^export \{\};?$/m, '').replace(/Object\.defineProperty\(exports[^;]*;/, ''), ctx);
    const [values, finite] = (ctx as { out: [number[], boolean] }).out;
    expect(values).toEqual(Array.from(new Float32Array(4).map((_, i) => Math.exp(i))));
    expect(finite).toBe(true);
  });
  test('"use strict" stays the first statement; a name the module declares itself is left out', () => {
    const strict = prepend('"use strict";\nvar isFinite = 1;\nthis;');
    expect(strict.startsWith('"use strict";const {')).toBe(true);
    expect(strict).not.toMatch(/isFinite, isNaN \} = globalThis/);
    expect(strict).toMatch(/Uint32Array, isNaN \} = globalThis;/);
    // strict mode kept: `this` at the top of a function is undefined
    expect(vm.runInNewContext(prepend('"use strict"; (function () { return this; })()'))).toBeUndefined();
    expect(() => new vm.Script(strict)).not.toThrow();
  });
});
