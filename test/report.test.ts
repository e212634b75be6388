import { existsSync, promises as fs } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { tmpDir, runCli } from './helpers.js';
import { readImage2D } from '../src/io/image.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

describe('r2n2 evaluate report', () => {
  const t = tmpDir('r2n2-report-');
  afterAll(() => t.cleanup());
  let report: string;
  beforeAll(() => {
    expect(runCli(['phantom', '--out', t.dir, '--series', '1', '--frames', '5', '--size', '64', '--truth']).code).toBe(0);
    const frames = path.join(t.dir, 'series-01', 'frames');
    const bs = path.join(t.dir, 'bspline');
    expect(runCli(['baseline', 'bspline', frames, '--out', bs, '--fixed-frame', 'frame_001', '--iterations', '20', '10', '5', '--quiet', '--no-qc']).code).toBe(
      0,
    );
    report = path.join(t.dir, 'report');
    const r = runCli(['evaluate', 'report', bs, path.join(t.dir, 'series-01', 'truth'), '--out', report, '--frames', 'frame_004', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
  test('one HTML file with the tables, an SVG box plot and embedded pictures', async () => {
    const html = await fs.readFile(path.join(report, 'index.html'), 'utf8');
    expect(html).toMatch(/<h2>Mean TRE per series \(mm\)<\/h2><table>/);
    expect(html).toMatch(/<td>bspline<\/td>/);
    expect(html).toMatch(/<td>ground-truth<\/td>/);
    expect(html).toMatch(/<svg[^>]*class="marks"/);
    const pics = html.match(/<img src="data:image\/png;base64,/g) ?? [];
    // input 4 + bspline (warped, checker, diff, grid, det J) 5 + truth (no warped: grid, det J) 2
    expect(pics.length).toBe(11);
    expect(html).not.toMatch(/src="(?!data:)/); // self-contained: no external sources
  });
  test("an R2N2 result's identity frames (made worse, or no step kept) get their own table; other methods none", async () => {
    expect(await fs.readFile(path.join(report, 'index.html'), 'utf8')).not.toMatch(/Frames left as the identity/);
    // an R2N2-like result: the B-spline's frames, one written as the identity, one without steps
    const r2 = path.join(t.dir, 'r2n2-like');
    await fs.cp(path.join(t.dir, 'bspline'), r2, { recursive: true });
    const file = path.join(r2, 'summary.json');
    const s = JSON.parse(await fs.readFile(file, 'utf8'));
    s.method = 'r2n2';
    s.frames[0] = { ...s.frames[0], fallback: 'identity', parameters: 0 };
    s.frames[1] = { ...s.frames[1], parameters: 0 };
    await fs.writeFile(file, JSON.stringify(s));
    const out = path.join(t.dir, 'report2');
    const r = runCli(['evaluate', 'report', r2, '--out', out, '--frames', 'frame_004', '--json']);
    expect(r.code).toBe(0);
    const html = await fs.readFile(path.join(out, 'index.html'), 'utf8');
    expect(html).toMatch(
      new RegExp(
        `<h2>Frames left as the identity</h2>.*<tr><td>[^<]*</td><td>${s.frames.length}</td><td>1</td><td>1</td><td>${s.frames[0].name}, ${s.frames[1].name}</td></tr>`,
        's',
      ),
    );
  });
  (CHROMIUM ? test : test.skip)('opens in headless Chromium without errors, every picture loads, the screenshot shows the page', async () => {
    const dom = spawnSync(
      CHROMIUM as string,
      [...FLAGS, `--user-data-dir=${path.join(t.dir, 'ud1')}`, '--virtual-time-budget=5000', '--dump-dom', `file://${path.join(report, 'index.html')}`],
      { encoding: 'utf8', timeout: 90_000 },
    );
    expect(dom.stdout).toMatch(/data-images="11\/11"/);
    const shot = path.join(t.dir, 'shot.png');
    spawnSync(
      CHROMIUM as string,
      [...FLAGS, `--user-data-dir=${path.join(t.dir, 'ud2')}`, '--window-size=1200,1600', `--screenshot=${shot}`, `file://${path.join(report, 'index.html')}`],
      { timeout: 90_000 },
    );
    const img = await readImage2D(shot);
    expect(img.geometry.size).toEqual([1200, 1600]);
    // not blank: the page has dark text and pictures on white
    let dark = 0;
    for (const v of img.data) if (v < 100) dark++;
    expect(dark / img.data.length).toBeGreaterThan(0.01);
  });
  if (!CHROMIUM) console.warn('skipping the Chromium report test: /usr/bin/chromium is absent (apt-get install chromium)');
});
