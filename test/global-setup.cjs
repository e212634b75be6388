// Before any test: the tests that spawn the CLI and the --jobs worker threads run the built dist/,
// the others the TypeScript source. A source file edited after the last build would be tested in
// two versions at once, so this stops the run with the fix when any src/**/*.ts is newer than its
// dist/**/*.js (npm test builds first; a direct `jest` run after an edit needs `npm run build`).
const { readdirSync, statSync, existsSync } = require('node:fs');
const path = require('node:path');

module.exports = async function globalSetup() {
  const root = path.resolve(__dirname, '..');
  const stale = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const p = path.join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) {
        const out = path.join(root, 'dist', path.relative(path.join(root, 'src'), p)).replace(/\.ts$/, '.js');
        if (!existsSync(out) || statSync(out).mtimeMs < statSync(p).mtimeMs) stale.push(path.relative(root, p));
      }
    }
  };
  walk(path.join(root, 'src'));
  if (stale.length)
    throw new Error(
      `dist/ is older than src/ (${stale.slice(0, 3).join(', ')}${stale.length > 3 ? ` and ${stale.length - 3} more` : ''}): the CLI and worker tests run dist/; run \`npm run build\` (npm test does it first)`,
    );
};
