/**
 * docs/cli.md against the CLI itself: every option a command's --help lists is documented there,
 * and every option cli.md names exists (no retired or misspelt option is documented).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, runCliHere } from './helpers.js';

const COMMANDS = [
  ['baseline', 'bspline'],
  ['train'],
  ['register', 'series'],
  ['evaluate', 'tre'],
  ['evaluate', 'dice'],
  ['evaluate', 'jacobian'],
  ['evaluate', 'compare'],
  ['evaluate', 'report'],
  ['apply'],
  ['phantom'],
  ['simulate'],
  ['synth'],
  ['models'],
];

/** Commands that hide options from --help (commands/common.ts helpGroups). */
const HIDING = ['train', 'register series'];

/** The long options of a --help text (`--name`, as yargs prints them at the start of a line). */
function helpOptions(help: string): string[] {
  return [...help.matchAll(/^\s+(?:-\w, )?(--[a-z0-9-]+)/gm)].map((m) => m[1]);
}

describe('docs/cli.md is checked against the CLI', () => {
  const doc = readFileSync(path.join(ROOT, 'docs', 'cli.md'), 'utf8');
  const documented = new Set([...doc.matchAll(/--(?:no-)?([a-z][a-z0-9-]*)/g)].map((m) => `--${m[1]}`));
  const helps = new Map<string, string[]>();
  beforeAll(async () => {
    // in this process: the same yargs parser as the spawned CLI, without 11 Node start-ups
    for (const c of COMMANDS) {
      // the options measured and kept off are hidden from --help: --show-hidden lists them too
      const r = await runCliHere([...c, '--help', ...(HIDING.includes(c.join(' ')) ? ['--show-hidden'] : [])]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^r2n2 ${c.join(' ')}`, 'm'));
      expect(r.stdout).toMatch(/--log-level/);
      helps.set(c.join(' '), helpOptions(r.stdout));
    }
  });

  test.each(COMMANDS.map((c) => [c.join(' ')]))('every option of r2n2 %s --help is in docs/cli.md', (cmd) => {
    const options = helps.get(cmd) ?? [];
    expect(options.length).toBeGreaterThan(3);
    expect(options.filter((o) => !documented.has(o))).toEqual([]);
  });

  test('every option docs/cli.md names is an option of some command', () => {
    const all = new Set([...helps.values()].flat());
    expect(all.size).toBeGreaterThan(100);
    expect([...documented].filter((o) => !all.has(o))).toEqual([]);
  });
});
