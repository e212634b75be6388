/**
 * The source's structure: no import cycle anywhere in src/ (value or type imports, static), and
 * core/ (backend-blind functions over tensors and arrays) never imports backend/, app/, commands/
 * or io/. Read from the TypeScript text, as `import … from './x.js'` / `export … from`.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './helpers.js';

const SRC = path.join(ROOT, 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Each source file → the source files it imports (relative specifiers, static imports and re-exports). */
function importGraph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const f of files(SRC)) {
    const text = readFileSync(f, 'utf8');
    const deps = [...text.matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gms)].map((m) => path.resolve(path.dirname(f), m[1]).replace(/\.js$/, '.ts'));
    g.set(f, deps);
  }
  return g;
}

/** The strongly connected components of more than one file (Tarjan). */
function cycles(g: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  let n = 0;
  const visit = (v: string) => {
    index.set(v, n);
    low.set(v, n++);
    stack.push(v);
    on.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      for (let w = stack.pop()!; ; w = stack.pop()!) {
        on.delete(w);
        comp.push(path.relative(ROOT, w));
        if (w === v) break;
      }
      if (comp.length > 1) out.push(comp.sort());
    }
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
  return out;
}

test('no import cycle in src/ (type imports included)', () => {
  const g = importGraph();
  expect(g.size).toBeGreaterThan(50);
  expect(cycles(g)).toEqual([]);
  // the check finds a cycle where there is one
  const withCycle = new Map(g);
  const a = path.join(SRC, 'core', 'random.ts');
  const b = path.join(SRC, 'core', 'tensors.ts');
  withCycle.set(a, [...(g.get(a) ?? []), b]);
  withCycle.set(b, [...(g.get(b) ?? []), a]);
  expect(cycles(withCycle)).toEqual([['src/core/random.ts', 'src/core/tensors.ts']]);
});

test('core/ never imports backend/, app/, commands/ or io/', () => {
  const offenders: string[] = [];
  for (const [f, deps] of importGraph())
    if (f.startsWith(path.join(SRC, 'core') + path.sep))
      for (const d of deps)
        if (['backend', 'app', 'commands', 'io'].some((dir) => d.startsWith(path.join(SRC, dir) + path.sep)))
          offenders.push(`${path.relative(ROOT, f)} → ${path.relative(ROOT, d)}`);
  expect(offenders).toEqual([]);
});
