/** The version of r2n2 that is running (package.json's), recorded in every result, params file and model. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/version.js (or src/version.ts under jest) → ../package.json. */
export const R2N2_VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
})();
