/**
 * The models that ship with r2n2 (fixtures/models/<name>, each with its card README.md), reachable
 * by name wherever a model directory is asked for (`register series --model cine-mr`, `train
 * --from phantom`), and the default model of `register series`.
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MODEL_FILE } from './model-files.js';

/** fixtures/models of the installed package (dist/io → ../../fixtures/models). */
export const BUNDLED_MODELS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'models');

/** The model `register series` uses without --model: the best bundled model on real images, by measurement (docs/experiments.md). */
export const DEFAULT_MODEL = 'cine-mr';

/**
 * A model directory from what the user gave: an existing directory as it is; else a bundled
 * model's name (no path separator) → its directory; anything else unchanged (the loader then
 * reports what is missing).
 */
export function resolveModelDir(spec: string): string {
  if (existsSync(spec)) return spec;
  if (!/[/\\]/.test(spec) && existsSync(path.join(BUNDLED_MODELS_DIR, spec, MODEL_FILE))) return path.join(BUNDLED_MODELS_DIR, spec);
  return spec;
}

export interface BundledModel {
  name: string;
  dir: string;
  /** The card's title line, without its Markdown. */
  title: string;
  /** The card's first paragraph, on one line. */
  summary: string;
}

/** The bundled models, by name. */
export async function bundledModels(): Promise<BundledModel[]> {
  const names = (await fs.readdir(BUNDLED_MODELS_DIR).catch(() => [] as string[])).sort();
  const out: BundledModel[] = [];
  for (const name of names) {
    const dir = path.join(BUNDLED_MODELS_DIR, name);
    if (!existsSync(path.join(dir, MODEL_FILE))) continue;
    const card = await fs.readFile(path.join(dir, 'README.md'), 'utf8').catch(() => '');
    const lines = card.split('\n');
    const title = (lines.find((l) => l.startsWith('# ')) ?? name).replace(/^#\s*/, '').replace(/`/g, '');
    const start = lines.findIndex((l, i) => i > 0 && l.trim() !== '' && !l.startsWith('#'));
    const para: string[] = [];
    for (let i = Math.max(start, 0); start >= 0 && i < lines.length && lines[i].trim() !== ''; i++) para.push(lines[i].trim());
    out.push({ name, dir, title, summary: para.join(' ') });
  }
  return out;
}
