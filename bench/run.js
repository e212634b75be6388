#!/usr/bin/env node
// Benchmarks, measured side by side in one run and printed as ratios (never timed unit tests).
//   npm run bench -- io        read a 140-frame 256² phantom series in each format
//   npm run bench -- bspline   our B-spline vs elastix (@itk-wasm/elastix): TRE and seconds per pair
//   npm run bench -- bspline-profile   where one 256² B-spline registration spends its time
//   npm run bench -- r2n2      R2N2 (R2N2_MODEL) vs B-spline vs elastix on held-out phantom series
//   npm run bench -- r2n2-models   models or training checkpoints (R2N2_MODELS) side by side on the model-selection seeds (not in the default run)
//   npm run bench -- gaussian-bound   T Gaussians fitted to the true field: what T steps can represent (slow; not in the default run)
// Results are also written as JSON to bench/results/<suite>-<date>.json; a later run on the same
// day never overwrites an earlier one: it writes <suite>-<date>-run2.json, -run3.json, ...
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makePhantomSeries } from '../dist/core/phantom.js';
import { writeImage2D } from '../dist/io/image.js';
import { openSeries } from '../dist/io/series.js';
import { autoFixedFrame } from '../dist/app/fixed-frame.js';
import { bsplineSuite, bsplineProfileSuite } from './bspline.js';
import { r2n2Suite } from './r2n2.js';
import { r2n2ModelsSuite } from './r2n2-models.js';
import { gaussianBoundSuite } from './gaussian-bound.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function io({ frames = 140, size = 256, repeats = 3 } = {}) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'r2n2-bench-io-'));
  const s = makePhantomSeries({ size, frames, seed: 1 });
  const formats = ['nrrd', 'nii.gz', 'nii', 'mha'];
  const rendered = [];
  for (let t = 0; t < frames; t++) rendered.push(s.renderFrame(t));
  for (const ext of formats) {
    for (let t = 0; t < frames; t++) await writeImage2D(path.join(dir, ext, `frame_${String(t).padStart(3, '0')}.${ext}`), { geometry: s.geometry, data: rendered[t] });
  }
  const rows = [];
  for (const ext of formats) {
    const open = [], read = [], fixed = [];
    for (let r = 0; r < repeats; r++) {
      let t0 = performance.now();
      const series = await openSeries(path.join(dir, ext));
      open.push(performance.now() - t0);
      t0 = performance.now();
      for (let i = 0; i < series.frames.length; i++) await series.readFrame(i);
      read.push(performance.now() - t0);
      t0 = performance.now();
      await autoFixedFrame(series);
      fixed.push(performance.now() - t0);
    }
    rows.push({ format: ext, frames, size, openHeadersMs: median(open), readAllMs: median(read), msPerFrame: median(read) / frames, autoFixedFrameMs: median(fixed) });
  }
  await fs.rm(dir, { recursive: true, force: true });
  const base = rows[0].readAllMs;
  console.log(`read a ${frames}-frame ${size}² series (median of ${repeats}; open = header check of every frame)`);
  console.log('format    open ms   read ms   ms/frame   fixed-frame ms   read ratio vs nrrd');
  for (const r of rows) {
    console.log(`${r.format.padEnd(8)} ${r.openHeadersMs.toFixed(0).padStart(8)} ${r.readAllMs.toFixed(0).padStart(9)} ${r.msPerFrame.toFixed(1).padStart(10)} ${r.autoFixedFrameMs.toFixed(0).padStart(16)} ${(r.readAllMs / base).toFixed(2).padStart(20)}`);
  }
  return rows;
}

const suites = { io, bspline: bsplineSuite, 'bspline-profile': bsplineProfileSuite, r2n2: r2n2Suite, 'r2n2-models': r2n2ModelsSuite, 'gaussian-bound': gaussianBoundSuite };
const which = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const names = which.length ? which : Object.keys(suites).filter((n) => n !== 'gaussian-bound' && n !== 'r2n2-models');
for (const name of names) {
  if (!suites[name]) {
    console.error(`error: unknown benchmark "${name}"; choose from: ${Object.keys(suites).join(', ')}`);
    process.exit(1);
  }
  const rows = await suites[name]();
  const stem = path.join(here, 'results', `${name}-${new Date().toISOString().slice(0, 10)}`);
  await fs.mkdir(path.dirname(stem), { recursive: true });
  const body = JSON.stringify({ suite: name, node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model, rows }, null, 2) + '\n';
  let out;
  for (let run = 1; ; run++) {
    out = run === 1 ? `${stem}.json` : `${stem}-run${run}.json`;
    try {
      await fs.writeFile(out, body, { flag: 'wx' }); // wx: fails if the file exists
      break;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
    }
  }
  console.log(`written ${path.relative(process.cwd(), out)}`);
}
