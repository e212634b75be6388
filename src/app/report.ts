/**
 * `evaluate report`: one self-contained HTML page (images embedded as data URIs; also kept in
 * img/) with the compare table, TRE box plots per method (vega-lite → SVG), and for chosen
 * frames: fixed / moving / warped, checkerboards and differences before and after, the deformed
 * grid, the det-J map and, for R2N2 results, the Gaussian sequence over the fixed frame.
 */
import { parse } from 'csv-parse/sync';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as vega from 'vega';
import { compile } from 'vega-lite';
import { UserError } from '../errors.js';
import { insideMask } from '../core/transformation/apply.js';
import { jacobianDeterminant } from '../core/metrics/jacobian.js';
import { gaussianOverlay, type Mosaic } from '../core/qc/qc.js';
import { checkerboard, deformationGrid, determinantPicture, greyPicture, percentileWindow } from '../core/qc/render.js';
import { identityFrames, readSummary, readField, readImage2D, resultFile, writeGreyPng, openSeries, resolveFrame, writeTextAtomic } from '../io/index.js';
import { compareResults, type Comparison } from './evaluate-compare.js';
import { TRE_CONVENTION } from './evaluate-tre.js';

export interface ReportOptions {
  results: string[];
  landmarks?: string;
  out: string;
  /** Frame names to picture; default: the frame with the largest identity TRE and the median one. */
  frames?: string[];
  /** Magnification of the deformed grid. */
  magnify?: number;
  onStep?: (what: string) => void;
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);
const num = (v: number | null | undefined, d = 3) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(d));

/** motion.csv of each result (series products), as rows for the motion chart; none when absent. */
async function motionRows(results: { result: string; method: string }[]): Promise<{ method: string; frame: number; what: string; value: number }[]> {
  const rows: { method: string; frame: number; what: string; value: number }[] = [];
  for (const e of results) {
    const text = await fs.readFile(path.join(e.result, 'motion.csv'), 'utf8').catch(() => null);
    if (!text) continue;
    const lines = (parse(text, { relax_column_count: true }) as string[][]).slice(1);
    for (const c of lines) {
      const index = Number(c[1]);
      rows.push({ method: e.method, frame: index, what: 'mean displacement (mm)', value: Number(c[3]) });
      if (c[6] !== '') rows.push({ method: 'none', frame: index, what: 'NCC to the fixed frame', value: Number(c[6]) });
      if (c[7] !== '') rows.push({ method: e.method, frame: index, what: 'NCC to the fixed frame', value: Number(c[7]) });
    }
  }
  return rows;
}

/** Motion traces (mean displacement and NCC per frame, per method) as one SVG; '' without motion.csv. */
async function motionSvg(rows: { method: string; frame: number; what: string; value: number }[]): Promise<string> {
  if (rows.length === 0) return '';
  const unique = [...new Map(rows.map((r) => [`${r.method}|${r.frame}|${r.what}`, r])).values()];
  const chart = (what: string) => ({
    width: 360,
    height: 200,
    title: what,
    transform: [{ filter: { field: 'what', equal: what } }],
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'frame', type: 'quantitative', title: 'frame (series order)' },
      y: { field: 'value', type: 'quantitative', title: what, scale: { zero: false } },
      color: { field: 'method', type: 'nominal' },
    },
  });
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { values: unique },
    hconcat: [chart('mean displacement (mm)'), chart('NCC to the fixed frame')],
  };
  const view = new vega.View(vega.parse(compile(spec as never).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

async function boxPlotSvg(c: Comparison): Promise<string> {
  const values: { method: string; tre: number }[] = [];
  for (const [method, vs] of Object.entries(c.treValues)) for (const v of vs) values.push({ method, tre: v });
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 120 * Object.keys(c.treValues).length,
    height: 260,
    data: { values },
    mark: { type: 'boxplot', extent: 1.5 },
    encoding: {
      x: { field: 'method', type: 'nominal', title: 'method', sort: Object.keys(c.treValues), axis: { labelAngle: 0 } },
      y: { field: 'tre', type: 'quantitative', title: 'TRE per landmark (mm)' },
    },
  };
  const view = new vega.View(vega.parse(compile(spec as never).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

export async function writeReport(o: ReportOptions): Promise<{ file: string; images: number; frames: string[] }> {
  const c = await compareResults(o.results, o.landmarks, (r) => o.onStep?.(`evaluated ${r}`));
  const svg = await boxPlotSvg(c);
  const motion = await motionSvg(await motionRows(c.entries));
  const uncertainty = await uncertaintySection(c);
  const identity = await identitySection(c);
  const imgDir = path.join(o.out, 'img');
  await fs.mkdir(imgDir, { recursive: true });
  let count = 0;
  const png = async (name: string, m: Mosaic): Promise<string> => {
    const file = path.join(imgDir, `${name}.png`);
    await writeGreyPng(file, m, [0, 255]);
    count++;
    return `data:image/png;base64,${(await fs.readFile(file)).toString('base64')}`;
  };

  // frames to picture, from the first result's series
  const first = c.entries[0];
  const summary = await readSummary(first.result);
  const tre = first.treFrames;
  let frames = o.frames;
  if (!frames || frames.length === 0) {
    const byBefore = [...tre].sort((a, b) => mean(b.beforeMm) - mean(a.beforeMm));
    frames = [...new Set([byBefore[0]?.name, byBefore[Math.floor(byBefore.length / 2)]?.name].filter(Boolean) as string[])];
  }
  if (!first.series) throw new UserError(`${first.result}/summary.json names no series; the report needs the frames to picture them`);
  const series = await openSeries(first.series, { checkAll: false });
  const names = series.frames.map((f) => f.name);
  const fixed = await series.readFrame(resolveFrame(names, summary.fixedFrame, series.source));
  const [W, H] = fixed.geometry.size;
  const window = percentileWindow(fixed.data);
  const sections: string[] = [];
  for (const frame of frames) {
    const moving = await series.readFrame(resolveFrame(names, frame, series.source));
    o.onStep?.(`pictures of ${frame}`);
    const fig = (src: string, caption: string) => `<figure><img src="${src}" alt="${esc(caption)}"><figcaption>${esc(caption)}</figcaption></figure>`;
    const diff = (a: Float32Array, b: Float32Array) => Float32Array.from(a, (v, i) => Math.abs(v - b[i]));
    const span = window[1] - window[0];
    const rows: string[] = [];
    rows.push(
      `<div class="row"><h4>input</h4>` +
        fig(await png(`${frame}-fixed`, greyPicture(fixed.data, H, W, window)), `fixed (${summary.fixedFrame})`) +
        fig(await png(`${frame}-moving`, greyPicture(moving.data, H, W, window)), `moving (${frame})`) +
        fig(await png(`${frame}-checker-before`, greyPicture(checkerboard(fixed.data, moving.data, H, W), H, W, window)), 'checkerboard fixed / moving') +
        fig(await png(`${frame}-diff-before`, greyPicture(diff(fixed.data, moving.data), H, W, [0, span / 2])), '|fixed − moving|') +
        `</div>`,
    );
    for (const e of c.entries.filter((x) => x.series === first.series)) {
      const html = await methodPictures(e.result, e.method, frame, { fixed: fixed.data, H, W, window, magnify: o.magnify ?? 5 }, png, fig, diff);
      if (html === null) continue;
      rows.push(html);
    }
    const ft = tre.find((f) => f.name === frame);
    sections.push(`<section><h3>${esc(frame)}${ft ? ` — identity TRE ${num(mean(ft.beforeMm), 2)} mm` : ''}</h3>${rows.join('\n')}</section>`);
  }

  const { seriesTable, methodTable } = summaryTables(c);
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>r2n2 report</title>
<style>
body{font-family:system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
.row{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start;margin-bottom:8px}.row h4{width:110px;margin:0}
figure{margin:0}figure img{width:200px;image-rendering:pixelated;border:1px solid #999}figcaption{font-size:12px;width:200px}
</style></head>
<body>
<h1>Registration report</h1>
<p>Generated ${esc(new Date().toISOString())} by r2n2 from ${c.entries.map((e) => `<code>${esc(e.result)}</code>`).join(', ')}. TRE convention: ${esc(TRE_CONVENTION)}.</p>
<h2>Mean TRE per series (mm)</h2>${seriesTable}
<h2>Per method</h2>${methodTable}
<h2>TRE per landmark</h2><div id="boxplot">${svg}</div>
${motion ? `<h2>Motion traces</h2><p>From each result's motion.csv: the mean displacement the registration applies to each frame, and each frame's normalised cross-correlation to the fixed frame before (none) and after.</p><div id="motion">${motion}</div>` : ''}
${identity}
${uncertainty}
<h2>Frames</h2>${sections.join('\n')}
<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const ok = imgs.filter((i) => i.complete && i.naturalWidth > 0).length;
  document.body.setAttribute('data-images', ok + '/' + imgs.length);
});
</script>
</body></html>
`;
  const file = path.join(o.out, 'index.html');
  await writeTextAtomic(file, html);
  return { file, images: count, frames };
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/**
 * The frames an R2N2 result left as the identity (its never-worse guard): written as the identity
 * because the registration made them worse (`fallback`), or no step kept because the first one
 * already raised the image loss (`parameters` 0); empty when no result has any.
 */
async function identitySection(c: Comparison): Promise<string> {
  const rows: string[] = [];
  for (const e of c.entries) {
    const s = await readSummary(e.result);
    if (!s.method.startsWith('r2n2')) continue;
    const { fallback: fell, noStep: idle } = identityFrames(s.frames);
    if (!fell.length && !idle.length) continue;
    const names = (xs: string[]) => esc(xs.slice(0, 5).join(', ') + (xs.length > 5 ? ', …' : ''));
    rows.push(
      `<tr><td>${esc(e.method)}</td><td>${s.frames.length}</td><td>${fell.length}</td><td>${idle.length}</td><td>${names([...fell, ...idle])}</td></tr>`,
    );
  }
  return rows.length
    ? `<h2>Frames left as the identity</h2><p>R2N2 is never worse than no registration: a frame the registration made worse is written as the identity, and a frame whose first Gaussian already raised the image loss keeps none. Many such frames mean the model does not suit these images (<code>--refine N</code>, <code>--adapt N</code>, or a model trained on such series).</p><table><tr><th>method</th><th>frames</th><th>made worse: identity written</th><th>no step kept</th><th>frames (first 5)</th></tr>${rows.join('')}</table>`
    : '';
}

/** The uncertainty section (R2N2 --uncertainty): per result, the mean and the largest per-frame displacement std; empty without. */
async function uncertaintySection(c: Comparison): Promise<string> {
  const spreads: string[] = [];
  for (const e of c.entries) {
    const u = (await readSummary(e.result)).frames.map((f) => f.uncertaintyMm).filter((v): v is number => typeof v === 'number');
    if (u.length)
      spreads.push(
        `<tr><td>${esc(e.method)}</td><td>${u.length}</td><td>${num(u.reduce((a, b) => a + b, 0) / u.length, 4)}</td><td>${num(Math.max(...u), 4)}</td></tr>`,
      );
  }
  return spreads.length
    ? `<h2>Uncertainty</h2><p>From <code>register series --uncertainty K</code>: the per-pixel standard deviation of the displacement over K passes with weight noise, averaged over the pixels of each frame (mm); the images are in each result's uncertainty/.</p><table><tr><th>method</th><th>frames</th><th>mean std (mm)</th><th>largest frame (mm)</th></tr>${spreads.join('')}</table>`
    : '';
}

/** The mean TRE per series and the per-method figures as HTML tables. */
function summaryTables(c: Comparison): { seriesTable: string; methodTable: string } {
  const seriesTable =
    `<table><tr><th>method</th>${c.labels.map((l) => `<th>${esc(l)}</th>`).join('')}<th>all</th></tr>` +
    `<tr><td>identity</td>${c.identity.map((v) => `<td>${num(v)}</td>`).join('')}<td></td></tr>` +
    c.rows.map((r) => `<tr><td>${esc(r.method)}</td>${r.perSeries.map((v) => `<td>${num(v)}</td>`).join('')}<td>${num(r.meanMm)}</td></tr>`).join('') +
    `</table>`;
  const methodTable =
    `<table><tr><th>method</th><th>TRE mean ± std (mm)</th><th>median</th><th>p90</th><th>max</th><th>folding %</th><th>SDlogJ</th><th>s / frame</th><th>parameters</th><th>TRE ratio</th><th>time ratio</th><th>parameter ratio</th></tr>` +
    c.rows
      .map(
        (r) =>
          `<tr><td>${esc(r.method)}</td><td>${num(r.meanMm)} ± ${num(r.stdMm)}</td><td>${num(r.medianMm)}</td><td>${num(r.p90Mm)}</td><td>${num(r.maxMm)}</td><td>${num(100 * r.folding, 3)}</td><td>${num(r.sdLogJ, 4)}</td><td>${num(r.secondsPerFrame)}</td><td>${num(r.parameters, 0)}</td><td>${num(r.ratio.tre, 2)}</td><td>${num(r.ratio.seconds, 2)}</td><td>${num(r.ratio.parameters, 3)}</td></tr>`,
      )
      .join('') +
    `</table>`;
  return { seriesTable, methodTable };
}

/** One method's pictures of a frame (warped, checkerboard, difference, grid, det J, its Gaussians): an HTML row, or null where the result lacks the frame. */
async function methodPictures(
  result: string,
  method: string,
  frame: string,
  { fixed: F, H, W, window, magnify }: { fixed: Float32Array; H: number; W: number; window: [number, number]; magnify: number },
  png: (name: string, m: Mosaic) => Promise<string>,
  fig: (src: string, caption: string) => string,
  diff: (a: Float32Array, b: Float32Array) => Float32Array,
): Promise<string | null> {
  const span = window[1] - window[0];
  const s = await readSummary(result);
  const rf = s.frames.find((f) => f.name === frame);
  if (!rf) return null;
  const field = await readField(resultFile(result, rf.field));
  const warped = rf.warped ? (await readImage2D(resultFile(result, rf.warped))).data : null;
  const tag = `${frame}-${method.replace(/[^a-zA-Z0-9_-]+/g, '_')}`;
  let html = `<div class="row"><h4>${esc(method)}</h4>`;
  if (warped) {
    // where T(p) left the moving frame the warped image is 0 by convention: no difference shown there
    const inside = insideMask(field);
    const d = diff(F, warped).map((v, k) => (inside[k] ? v : 0));
    html += fig(await png(`${tag}-warped`, greyPicture(warped, H, W, window)), 'warped moving');
    html += fig(await png(`${tag}-checker`, greyPicture(checkerboard(F, warped, H, W), H, W, window)), 'checkerboard fixed / warped');
    html += fig(await png(`${tag}-diff`, greyPicture(d, H, W, [0, span / 2])), '|fixed − warped| (0 where T(p) leaves the moving frame)');
  }
  const mag = magnify;
  html += fig(await png(`${tag}-grid`, deformationGrid(F, field, Math.max(6, Math.round(Math.min(W, H) / 16)), mag)), `deformed grid (displacement ×${mag})`);
  html += fig(await png(`${tag}-detj`, determinantPicture(jacobianDeterminant(field), H, W)), 'det J (black 0, grey 1, white ≥ 2)');
  if (rf.params) {
    try {
      const p = JSON.parse(await fs.readFile(resultFile(result, rf.params), 'utf8'));
      if (Array.isArray(p.sequence))
        html += fig(await png(`${tag}-gaussians`, gaussianOverlay(F, H, W, p.sequence)), `Gaussian sequence (${p.sequence.length} steps; weights ×10)`);
    } catch {
      /* no params: no overlay */
    }
  }
  return html + `</div>`;
}
