/**
 * Bad inputs and faults, as a user meets them: each case runs the CLI and expects a one-line
 * error on stderr naming the file and the fix, nothing on stdout, a non-zero exit code and no
 * partial output (or, for the cases that are warnings by design, exit 0 with a `warning:` line,
 * and an error with --strict). docs/cli.md ("Errors, exit codes, interrupted runs") lists them.
 */
import {
  promises as fs,
  existsSync,
  symlinkSync,
  writeFileSync,
  readFileSync,
  mkdirSync,
  mkdtempSync,
  copyFileSync,
  readdirSync,
  rmSync,
  statSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { tmpDir, runCli, runCliHere, ROOT, SUNNYBROOK } from './helpers.js';
import { readField, readImage2D, writeImage2D } from '../src/io/image.js';

/** Whether this process can mount a tmpfs (root, and a kernel and container that allow it): probed once, on a scratch directory. */
const CAN_MOUNT_TMPFS = (() => {
  if (process.getuid?.() !== 0) return false;
  const probe = mkdtempSync(path.join(os.tmpdir(), 'r2n2-mount-probe-'));
  try {
    const ok = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe]).status === 0;
    if (ok) spawnSync('umount', [probe]);
    return ok;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
})();

const t = tmpDir('r2n2-reliability-');
const d = (...p: string[]) => path.join(t.dir, ...p);
const FAST = ['--iterations', '2', '--init-iterations', '2', '--no-qc', '--quiet'];
const MODEL = path.join(ROOT, 'fixtures', 'models', 'phantom');

/** A small series in several formats, landmarks, a finished result and a tiny model to break. */
beforeAll(async () => {
  expect(runCli(['phantom', '--out', d('ph'), '--series', '1', '--frames', '5', '--size', '64', '--seed', '4', '--truth', '--quiet']).code).toBe(0);
  const frames = d('ph', 'series-01', 'frames');
  for (const ext of ['nii.gz', 'nii', 'mha', 'nrrd']) {
    mkdirSync(d(`s-${ext}`));
    for (const f of readdirSync(frames)) {
      const img = await readImage2D(path.join(frames, f));
      await writeImage2D(d(`s-${ext}`, f.replace('.nrrd', `.${ext}`)), img);
    }
  }
  expect(runCli(['baseline', 'bspline', frames, '--out', d('res'), ...FAST]).code).toBe(0);
  await fs.cp(MODEL, d('model'), { recursive: true });
}, 120_000);
afterAll(() => t.cleanup());

/** A copy of series `ext` with `edit` applied to it; returns its directory. */
function seriesWith(name: string, ext: string, edit: (dir: string, files: string[]) => void): string {
  const dir = d(`case-${name}`);
  mkdirSync(dir);
  const src = d(`s-${ext}`);
  const files = readdirSync(src).sort();
  for (const f of files) copyFileSync(path.join(src, f), path.join(dir, f));
  edit(dir, files);
  return dir;
}
const truncate = (file: string, keep = 0.5) => writeFileSync(file, readFileSync(file).subarray(0, Math.floor(readFileSync(file).length * keep)));

interface Case {
  name: string;
  /** Builds the inputs; returns the CLI arguments. `out` is a fresh path that must not appear. */
  args: (out: string) => string[] | Promise<string[]>;
  stderr: RegExp;
  /** A warning by design: exit 0 with `warning:`; with --strict an error. */
  warning?: boolean;
  /** The output may exist (an existing file in the way, a finished result): only checked not to change. */
  outMayExist?: boolean;
}

const frames = () => d('ph', 'series-01', 'frames');
const landmarks = () => d('ph', 'series-01', 'landmarks');
const bspline = (series: string, out: string, ...extra: string[]) => ['baseline', 'bspline', series, '--out', out, ...FAST, ...extra];

const CASES: Case[] = [
  // ---- series and images ----
  { name: 'series directory missing', args: (o) => bspline(d('nope'), o), stderr: /nope.*(does not exist|not found|no such)/i },
  { name: 'series directory empty', args: (o) => (mkdirSync(d('empty')), bspline(d('empty'), o)), stderr: /empty.*(no image|holds no|empty)/i },
  {
    name: 'a truncated .nii.gz frame',
    args: (o) =>
      bspline(
        seriesWith('trunc-niigz', 'nii.gz', (s, f) => truncate(path.join(s, f[2]))),
        o,
      ),
    stderr: /frame_002\.nii\.gz is truncated \(its compressed data ends early\)/,
  },
  {
    name: 'a truncated .nii frame',
    args: (o) =>
      bspline(
        seriesWith('trunc-nii', 'nii', (s, f) => truncate(path.join(s, f[3]))),
        o,
      ),
    stderr: /frame_003\.nii is incomplete/,
  },
  {
    name: 'a truncated .mha frame',
    args: (o) =>
      bspline(
        seriesWith('trunc-mha', 'mha', (s, f) => truncate(path.join(s, f[1]))),
        o,
      ),
    stderr: /frame_001\.mha.*(not read completely|cannot read)/,
  },
  {
    name: 'a truncated .nrrd frame',
    args: (o) =>
      bspline(
        seriesWith('trunc-nrrd', 'nrrd', (s, f) => truncate(path.join(s, f[4]))),
        o,
      ),
    stderr: /frame_004\.nrrd/,
  },
  {
    name: 'a truncated .jpg frame',
    args: async (o) => {
      mkdirSync(d('s-jpg'));
      for (const f of readdirSync(frames())) await writeImage2D(d('s-jpg', f.replace('.nrrd', '.jpg')), await readImage2D(path.join(frames(), f)));
      truncate(d('s-jpg', 'frame_002.jpg'), 0.6);
      return bspline(d('s-jpg'), o);
    },
    stderr: /frame_002\.jpg is incomplete \(no JPEG end-of-image marker\)/,
  },
  {
    name: 'a truncated .bmp frame',
    args: async (o) => {
      mkdirSync(d('s-bmp'));
      for (const f of readdirSync(frames())) await writeImage2D(d('s-bmp', f.replace('.nrrd', '.bmp')), await readImage2D(path.join(frames(), f)));
      truncate(d('s-bmp', 'frame_001.bmp'), 0.6);
      return bspline(d('s-bmp'), o);
    },
    stderr: /frame_001\.bmp is incomplete/,
  },
  ...(existsSync(path.join(SUNNYBROOK, 'dicom', 'SCD0000101', '1.dcm'))
    ? [
        {
          name: 'a truncated DICOM frame (Sunnybrook)',
          args: (o: string) => {
            mkdirSync(d('s-dcm'));
            // one slice's phases: instances 1..20 of slice 0
            for (let k = 1; k <= 4; k++) copyFileSync(path.join(SUNNYBROOK, 'dicom', 'SCD0000101', `${k}.dcm`), d('s-dcm', `${k}.dcm`));
            truncate(d('s-dcm', '3.dcm'), 0.6);
            return bspline(d('s-dcm'), o);
          },
          stderr: /3\.dcm is incomplete \(pixel data \d+ of 131072 bytes\)/,
        } as Case,
      ]
    : []),
  {
    name: 'a frame of zero bytes',
    args: (o) =>
      bspline(
        seriesWith('zero', 'nii.gz', (s, f) => writeFileSync(path.join(s, f[0]), '')),
        o,
      ),
    stderr: /frame_000\.nii\.gz/,
  },
  {
    name: 'a frame that is not an image',
    args: (o) =>
      bspline(
        seriesWith('garbage', 'nii.gz', (s, f) => writeFileSync(path.join(s, f[1]), 'hello, not an image\n'.repeat(40))),
        o,
      ),
    stderr: /frame_001\.nii\.gz/,
  },
  {
    name: 'a broken symbolic link among the frames',
    args: (o) =>
      bspline(
        seriesWith('link', 'nii.gz', (s) => symlinkSync(d('nowhere.nii.gz'), path.join(s, 'frame_009.nii.gz'))),
        o,
      ),
    stderr: /frame_009\.nii\.gz is a broken symbolic link/,
  },
  {
    name: 'frames of different sizes',
    args: async (o) => {
      const s = seriesWith('sizes', 'nii.gz', () => undefined);
      const img = await readImage2D(path.join(s, 'frame_001.nii.gz'));
      await writeImage2D(path.join(s, 'frame_001.nii.gz'), { geometry: { ...img.geometry, size: [32, 128] }, data: img.data });
      return bspline(s, o);
    },
    stderr: /frame_001\.nii\.gz/,
  },
  {
    name: 'a frame with NaN pixels',
    args: async (o) => {
      const s = seriesWith('nan', 'nii.gz', () => undefined);
      const img = await readImage2D(path.join(s, 'frame_002.nii.gz'));
      img.data[100] = NaN;
      await writeImage2D(path.join(s, 'frame_002.nii.gz'), img);
      return bspline(s, o);
    },
    stderr: /frame_002\.nii\.gz has 1 NaN or infinite pixel/,
  },
  {
    name: 'a series of one frame',
    args: (o) => {
      mkdirSync(d('one-frame'));
      copyFileSync(path.join(frames(), 'frame_000.nrrd'), d('one-frame', 'frame_000.nrrd'));
      return bspline(d('one-frame'), o);
    },
    stderr: /one-frame/,
  },
  { name: '--fixed-frame names no frame', args: (o) => [...bspline(frames(), o), '--fixed-frame', 'frame_777'], stderr: /frame_777/ },
  { name: '--fixed-frame index out of range', args: (o) => [...bspline(frames(), o), '--fixed-frame', '99'], stderr: /99/ },
  {
    name: 'pair mode: --fixed missing',
    args: (o) => ['baseline', 'bspline', '--fixed', d('nope.nii.gz'), '--moving', path.join(frames(), 'frame_001.nrrd'), '--out', o, ...FAST],
    stderr: /nope\.nii\.gz/,
  },
  {
    name: 'pair mode: --moving without --fixed',
    args: (o) => ['baseline', 'bspline', '--moving', path.join(frames(), 'frame_001.nrrd'), '--out', o, ...FAST],
    stderr: /pair mode needs both --fixed/,
  },
  {
    name: 'pair mode: a 2D+t file as --fixed',
    args: (o) => ['baseline', 'bspline', '--fixed', d('res', 'warped.nii.gz'), '--moving', path.join(frames(), 'frame_001.nrrd'), '--out', o, ...FAST],
    stderr: /warped\.nii\.gz is 3D .*not a 2D image/,
  },
  {
    name: 'pair mode: moving on another grid',
    args: (o) => [
      'baseline',
      'bspline',
      '--fixed',
      path.join(frames(), 'frame_000.nrrd'),
      '--moving',
      d('case-sizes', 'frame_001.nii.gz'),
      '--out',
      o,
      ...FAST,
    ],
    stderr: /not on the grid of the fixed image/,
  },
  {
    name: 'a fixed mask on another grid',
    args: (o) => [...bspline(frames(), o), '--fixed-mask', d('case-sizes', 'frame_001.nii.gz')],
    stderr: /mask .*not on the grid/,
  },
  { name: 'a mask file missing', args: (o) => [...bspline(frames(), o), '--fixed-mask', d('nomask.nii.gz')], stderr: /mask .*nomask\.nii\.gz does not exist/ },
  // ---- options ----
  { name: '--iterations not a whole number', args: (o) => ['baseline', 'bspline', frames(), '--out', o, '--iterations', '1.5'], stderr: /integers/ },
  { name: '--levels 0', args: (o) => [...bspline(frames(), o), '--levels', '0'], stderr: /levels must be 1\.\.8/ },
  { name: '--spacing 0', args: (o) => [...bspline(frames(), o), '--spacing', '0'], stderr: /spacing/ },
  { name: '--max-size negative', args: (o) => [...bspline(frames(), o), '--max-size', '-5'], stderr: /max size must be a whole number/ },
  { name: '--jobs 0', args: (o) => [...bspline(frames(), o), '--jobs', '0'], stderr: /--jobs/ },
  { name: '--shard malformed', args: (o) => [...bspline(frames(), o), '--shard', '3'], stderr: /--shard/ },
  { name: 'an unknown option', args: (o) => [...bspline(frames(), o), '--iteratoins', '3'], stderr: /Unknown argument/i },
  {
    name: 'register series without the series',
    args: (o) => ['register', 'series', '--model', MODEL, '--out', o],
    stderr: /r2n2 register series needs the series/,
  },
  { name: 'train without a series', args: (o) => ['train', '--out', o], stderr: /name at least one training series, or train on generated pairs/ },
  { name: 'evaluate without what', args: () => ['evaluate'], stderr: /r2n2 evaluate needs what to evaluate/ },
  {
    name: '--uncertainty 1',
    args: (o) => ['register', 'series', frames(), '--model', MODEL, '--out', o, '--uncertainty', '1'],
    stderr: /--uncertainty takes a whole number of passes ≥ 2/,
  },
  {
    name: '--uncertainty 1 with --adapt: refused before adapting',
    args: (o) => ['register', 'series', frames(), '--model', MODEL, '--out', o, '--adapt', '3', '--uncertainty', '1'],
    stderr: /--uncertainty takes a whole number of passes ≥ 2/,
  },
  {
    name: '--adapt negative',
    args: (o) => ['register', 'series', frames(), '--model', MODEL, '--out', o, '--adapt', '-2'],
    stderr: /--adapt takes a whole number/,
  },
  {
    name: '--steps 0',
    args: (o) => ['register', 'series', frames(), '--model', MODEL, '--out', o, '--steps', '0'],
    stderr: /--steps must be a positive integer/,
  },
  // ---- models ----
  { name: '--model missing', args: (o) => ['register', 'series', frames(), '--model', d('nomodel'), '--out', o], stderr: /nomodel/ },
  {
    name: 'a model with a corrupt model.json',
    args: async (o) => {
      await fs.cp(MODEL, d('m-json'), { recursive: true });
      writeFileSync(d('m-json', 'model.json'), '{"format": "r2n2-model", "con');
      return ['register', 'series', frames(), '--model', d('m-json'), '--out', o];
    },
    stderr: /m-json.*model\.json/,
  },
  {
    name: 'a model with truncated weights',
    args: async (o) => {
      await fs.cp(MODEL, d('m-weights'), { recursive: true });
      truncate(d('m-weights', 'weights.bin'), 0.3);
      return ['register', 'series', frames(), '--model', d('m-weights'), '--out', o];
    },
    stderr: /m-weights.*weights\.bin/,
  },
  { name: 'train --from a missing model', args: (o) => ['train', frames(), '--from', d('nomodel2'), '--out', o, '--iterations', '1'], stderr: /nomodel2/ },
  {
    name: 'train --resume without a checkpoint',
    args: (o) => [
      'train',
      frames(),
      '--out',
      o,
      '--iterations',
      '1',
      '--resume',
      '--net-size',
      '32',
      '--channels',
      '4',
      '4',
      '4',
      '--param-channels',
      '4',
      '--hidden',
      '8',
    ],
    stderr: /--resume: .*holds no checkpoint to continue/,
  },
  // ---- landmarks and results ----
  {
    name: 'evaluate tre: landmark directory missing',
    args: () => ['evaluate', 'tre', '--result', d('res'), '--landmarks', d('nolm')],
    stderr: /landmark directory .*nolm does not exist/,
  },
  {
    name: 'evaluate tre: a frame with another number of landmarks',
    args: async () => {
      await fs.cp(landmarks(), d('lm-count'), { recursive: true });
      const f = d('lm-count', 'frame_003.csv');
      writeFileSync(f, readFileSync(f, 'utf8').trim().split('\n').slice(0, -2).join('\n') + '\n');
      return ['evaluate', 'tre', '--result', d('res'), '--landmarks', d('lm-count')];
    },
    stderr: /frame_003\.csv has 10/,
  },
  {
    name: 'evaluate tre: a landmark that is not a number',
    args: async () => {
      await fs.cp(landmarks(), d('lm-nan'), { recursive: true });
      writeFileSync(d('lm-nan', 'frame_002.csv'), 'x,y\n1,2\nabc,4\n');
      return ['evaluate', 'tre', '--result', d('res'), '--landmarks', d('lm-nan')];
    },
    stderr: /frame_002\.csv:3: .*"abc" is not a finite number/,
  },
  {
    name: 'evaluate tre: no landmarks for the fixed frame',
    args: async () => {
      const s = JSON.parse(readFileSync(d('res', 'summary.json'), 'utf8'));
      await fs.cp(landmarks(), d('lm-nofixed'), { recursive: true });
      await fs.rm(d('lm-nofixed', `${s.fixedFrame}.csv`));
      return ['evaluate', 'tre', '--result', d('res'), '--landmarks', d('lm-nofixed')];
    },
    stderr: /no landmarks for the fixed frame/,
  },
  {
    name: 'evaluate tre: a frame without a landmark file (warning; --strict: error)',
    args: async () => {
      const s = JSON.parse(readFileSync(d('res', 'summary.json'), 'utf8'));
      await fs.cp(landmarks(), d('lm-missing'), { recursive: true });
      const other = s.frames[0].name;
      await fs.rm(d('lm-missing', `${other}.csv`));
      return ['evaluate', 'tre', '--result', d('res'), '--landmarks', d('lm-missing'), '--no-per-frame'];
    },
    stderr: /has no landmark file in .*lm-missing/,
    warning: true,
  },
  {
    name: 'evaluate tre: landmarks far outside the image (warning; --strict: error)',
    args: async () => {
      mkdirSync(d('lm-far'));
      for (const f of readdirSync(landmarks())) {
        const lines = readFileSync(path.join(landmarks(), f), 'utf8').trim().split('\n');
        writeFileSync(
          d('lm-far', f),
          [
            lines[0],
            ...lines.slice(1).map((l) =>
              l
                .split(',')
                .map((v) => Number(v) + 5000)
                .join(','),
            ),
          ].join('\n') + '\n',
        );
      }
      return ['evaluate', 'tre', '--result', d('res'), '--landmarks', d('lm-far'), '--no-per-frame'];
    },
    stderr: /lm-far\/frame_\d+\.csv: 12 of 12 landmark\(s\) lie outside the image/,
    warning: true,
  },
  { name: 'evaluate: result directory missing', args: () => ['evaluate', 'jacobian', '--result', d('nores')], stderr: /nores.*summary\.json not found/ },
  {
    name: 'evaluate: a truncated summary.json',
    args: async () => {
      await fs.cp(d('res'), d('res-sum'), { recursive: true });
      truncate(d('res-sum', 'summary.json'));
      return ['evaluate', 'jacobian', '--result', d('res-sum')];
    },
    stderr: /res-sum\/summary\.json is not valid JSON/,
  },
  {
    name: 'evaluate jacobian: a truncated field',
    args: async () => {
      await fs.cp(d('res'), d('res-field'), { recursive: true });
      const f = readdirSync(d('res-field', 'fields'))[0];
      truncate(d('res-field', 'fields', f));
      return ['evaluate', 'jacobian', '--result', d('res-field')];
    },
    stderr: /fields\/frame_\d+\.nii\.gz is truncated/,
  },
  {
    name: 'evaluate tre: a truncated field',
    args: () => ['evaluate', 'tre', '--result', d('res-field'), '--landmarks', landmarks()],
    stderr: /fields\/frame_\d+\.nii\.gz is truncated/,
  },
  {
    name: 'evaluate tre: a field of another size',
    args: async () => {
      await fs.cp(d('res'), d('res-size'), { recursive: true });
      const f = readdirSync(d('res-size', 'fields'))[0];
      copyFileSync(d('case-sizes', 'frame_001.nii.gz'), d('res-size', 'fields', f));
      return ['evaluate', 'tre', '--result', d('res-size'), '--landmarks', landmarks()];
    },
    stderr: /res-size\/fields\/frame_\d+\.nii\.gz/,
  },
  { name: 'evaluate dice: labels directory missing', args: () => ['evaluate', 'dice', '--result', d('res'), '--labels', d('nolabels')], stderr: /nolabels/ },
  { name: 'apply: nothing to apply', args: (o) => ['apply', '--result', d('res'), '--out', o], stderr: /nothing to apply/ },
  {
    name: 'apply: a result directory missing',
    args: (o) => ['apply', '--result', d('nores'), '--labels', d('ph', 'series-01', 'labels'), '--out', o],
    stderr: /summary\.json not found/,
  },
  {
    name: 'apply: labels that match no frame',
    args: (o) => {
      mkdirSync(d('odd-labels'));
      for (const k of [1, 2]) copyFileSync(path.join(d('ph', 'series-01', 'labels'), 'frame_000.nrrd'), d('odd-labels', `other_${k}.nrrd`));
      return ['apply', '--result', d('res'), '--labels', d('odd-labels'), '--out', o];
    },
    stderr: /odd-labels.*none named as the 5 registered ones/,
  },
  {
    name: 'apply: --points file missing',
    args: (o) => ['apply', '--result', d('res'), '--points', d('nopoints.csv'), '--out', o],
    stderr: /nopoints\.csv does not exist/,
  },
  // ---- output paths ----
  {
    name: '--out is an existing file (bspline)',
    args: () => (writeFileSync(d('afile'), 'x'), bspline(frames(), d('afile'))),
    stderr: /afile: a file is in the way where a directory is needed/,
    outMayExist: true,
  },
  { name: '--out below a file', args: () => bspline(frames(), d('afile', 'sub')), stderr: /afile\/sub: a part of the path is a file/, outMayExist: true },
  {
    name: '--out is a file (phantom)',
    args: () => ['phantom', '--out', d('afile'), '--series', '1', '--frames', '2', '--size', '32'],
    stderr: /afile: a file is in the way/,
    outMayExist: true,
  },
  {
    name: '--out is a file (train)',
    args: () => ['train', frames(), '--out', d('afile'), '--iterations', '1'],
    stderr: /afile.*(a file is in the way|a part of the path is a file)/,
    outMayExist: true,
  },
  {
    name: '--out is a file (report)',
    args: () => ['evaluate', 'report', d('res'), '--landmarks', landmarks(), '--out', d('afile')],
    stderr: /afile.*(a file is in the way|a part of the path is a file)/,
    outMayExist: true,
  },
  {
    name: '--out is a file (apply)',
    args: () => ['apply', '--result', d('res'), '--write-inverse', '--out', d('afile')],
    stderr: /afile: a file is in the way/,
    outMayExist: true,
  },
  {
    name: '--out holds a result of other settings',
    args: () => [...bspline(frames(), d('res')), '--lambda', '0.5'],
    stderr: /already holds a result computed with other settings; pass --force/,
    outMayExist: true,
  },
  {
    name: 'another run is writing into --out',
    args: () => {
      mkdirSync(d('locked'));
      // this test process is alive: its lock is a live one
      writeFileSync(d('locked', '.r2n2-lock'), JSON.stringify({ pid: process.pid, host: hostTag(), hostname: os.hostname() }));
      return bspline(frames(), d('locked'));
    },
    stderr: new RegExp(`another r2n2 run \\(pid ${process.pid}.*is writing into the output directory`),
    outMayExist: true,
  },
];

/** The machine tag of io/atomic.ts (sha256 of the host name, 8 hex digits). */
function hostTag(): string {
  return createHash('sha256').update(os.hostname()).digest('hex').slice(0, 8);
}

describe('bad inputs: a one-line error naming the file, exit code 1, nothing on stdout, no partial output', () => {
  test(`at least 60 cases (${CASES.length} here plus the fault tests below)`, () => {
    expect(CASES.length + FAULT_TESTS).toBeGreaterThanOrEqual(60);
  });
  // in this process (runCliHere: the same main, parsing and messages without a Node start-up
  // per case), except these, run as a user's process: a live lock of another process, and a few
  // where native code (itk-wasm) could print on stdout
  const SPAWNED = new Set([
    'another run is writing into --out',
    'series directory missing',
    'a truncated .nii.gz frame',
    'a truncated .mha frame',
    'a truncated DICOM frame (Sunnybrook)',
  ]);
  test.each(CASES.map((c, i) => [i + 1, c.name, c] as const))('%i. %s', async (_i, _name, c) => {
    const out = d(`out-${_i}`);
    const args = await c.args(out);
    const before = c.outMayExist ? snapshot(args) : null;
    const run = (a: string[]) => (SPAWNED.has(c.name) ? Promise.resolve(runCli(a)) : runCliHere(a));
    const r = await run(args);
    if (c.warning) {
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/^warning: /m);
      expect(r.stderr).toMatch(c.stderr);
      const strict = await run([...args, '--strict']);
      expect(strict.code).toBe(1);
      expect(strict.stdout).toBe('');
      expect(strict.stderr.trim().split('\n')).toHaveLength(1);
      expect(strict.stderr).toMatch(c.stderr);
      return;
    }
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 1, stderr: expect.stringMatching(c.stderr) });
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^error: /);
    expect(r.stderr).not.toMatch(/unexpected/);
    expect(r.stdout).toBe('');
    if (!c.outMayExist) expect(existsSync(out)).toBe(false);
    else expect(snapshot(args)).toEqual(before);
  });
});

/** Names and sizes of everything under the --out of `args` (to see that a refused run changed nothing). */
function snapshot(args: string[]): string[] {
  const i = args.indexOf('--out');
  const out = i >= 0 ? args[i + 1] : '';
  const walk = (p: string): string[] => {
    if (!existsSync(p)) return [];
    const st = statSync(p);
    if (!st.isDirectory()) return [`${p}:${st.size}`];
    return readdirSync(p).flatMap((n) => walk(path.join(p, n)));
  };
  return walk(out).sort();
}

const FAULT_TESTS = 6;

describe('faults: killed runs, stale temporaries, locks, full disks', () => {
  test('a temporary left by a killed run (dead pid, this machine) is removed by the next run at once', async () => {
    const res = d('res-temps');
    await fs.cp(d('res'), res, { recursive: true });
    const stale = path.join(res, 'fields', `.r2n2-tmp-999999-${hostTag()}-abcd1234-frame_001.nii.gz`);
    const foreign = path.join(res, 'fields', '.r2n2-tmp-999999-00000000-abcd1234-frame_001.nii.gz');
    writeFileSync(stale, 'partial');
    writeFileSync(foreign, 'partial');
    expect(runCli(bspline(frames(), res)).code).toBe(0);
    expect(existsSync(stale)).toBe(false);
    // another machine's in-flight file (a shard over NFS) is kept until it is 10 minutes old
    expect(existsSync(foreign)).toBe(true);
  });

  test('a lock left by a dead run is taken over', () => {
    const out = d('dead-lock');
    mkdirSync(out);
    writeFileSync(path.join(out, '.r2n2-lock'), JSON.stringify({ pid: 999999, host: hostTag() }));
    const r = runCli(bspline(frames(), out));
    expect(r.code).toBe(0);
    expect(existsSync(path.join(out, '.r2n2-lock'))).toBe(false);
  });

  test('SIGKILL at random moments of a registration: every file under its final name is whole, and a rerun finishes the same result', async () => {
    const out = d('killed');
    const reference = d('res');
    for (const delay of [900, 1400, 2100]) {
      await killAfter(['baseline', 'bspline', frames(), '--out', out, ...FAST, '--jobs', '1'], delay);
      for (const f of existsSync(path.join(out, 'fields')) ? readdirSync(path.join(out, 'fields')).filter((n) => !n.startsWith('.')) : [])
        await readField(path.join(out, 'fields', f));
      for (const f of existsSync(path.join(out, 'warped')) ? readdirSync(path.join(out, 'warped')).filter((n) => !n.startsWith('.')) : [])
        await readImage2D(path.join(out, 'warped', f));
    }
    const r = runCli(bspline(frames(), out));
    expect(r.code).toBe(0);
    for (const f of readdirSync(path.join(reference, 'fields'))) {
      expect(readFileSync(path.join(out, 'fields', f)).equals(readFileSync(path.join(reference, 'fields', f)))).toBe(true);
    }
    expect(readdirSync(path.join(out, 'fields')).filter((n) => n.startsWith('.r2n2-tmp-'))).toEqual([]);
  }, 120_000);

  test('train: a checkpoint swap cut short by a kill resumes from the complete checkpoint; --resume works from another directory', async () => {
    const tiny = [
      '--net-size',
      '32',
      '--channels',
      '4',
      '4',
      '4',
      '--param-channels',
      '4',
      '--hidden',
      '8',
      '--steps',
      '2',
      '--checkpoint-every',
      '2',
      '--quiet',
    ];
    const out = d('tr');
    expect(runCli(['train', frames(), '--out', out, '--iterations', '2', ...tiny]).code).toBe(0);
    // a kill between the two renames of a swap: no checkpoint/, the complete one beside it
    await fs.rename(path.join(out, 'checkpoint'), path.join(out, 'checkpoint.old-999999'));
    await fs.mkdir(path.join(out, 'checkpoint.new-999999'));
    const rel = path.relative(d(), frames());
    const r = runCli(['train', rel, '--out', 'tr', '--iterations', '4', '--resume', ...tiny], { cwd: d() });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/resumed at 2/);
    expect(readdirSync(out).filter((n) => n.startsWith('checkpoint.'))).toEqual([]);
    // the same series named from elsewhere (another working directory, a relative path)
    const again = runCli(['train', frames(), '--out', out, '--iterations', '6', '--resume', ...tiny], { cwd: os.tmpdir() });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/resumed at 4/);
  }, 120_000);

  // a 1 MB tmpfs needs root and a kernel that lets this process mount: where it cannot, the test shows as skipped
  (CAN_MOUNT_TMPFS ? test : test.skip)(
    'a full disk: a one-line error naming the path, and no partial file under a final name (a 1 MB tmpfs; root only)',
    async () => {
      const mnt = d('tiny-disk');
      mkdirSync(mnt);
      const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
      expect(m.status).toBe(0);
      try {
        const r = runCli(['phantom', '--out', mnt, '--series', '1', '--frames', '40', '--size', '128']);
        expect(r.code).toBe(1);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).toMatch(/disk is full|no space left/i);
        expect(r.stderr).not.toMatch(/unexpected/);
        const r2 = runCli(['baseline', 'bspline', frames(), '--out', path.join(mnt, 'res'), ...FAST, '--jobs', '1']);
        if (r2.code !== 0) {
          expect(r2.stderr).toMatch(/disk is full|no space left/i);
          expect(r2.stderr).not.toMatch(/unexpected/);
        }
        // whatever was written under a final name is whole
        const walk = (p: string): string[] => (statSync(p).isDirectory() ? readdirSync(p).flatMap((n) => walk(path.join(p, n))) : [p]);
        for (const f of walk(mnt).filter((p) => /\.(nii\.gz|nrrd)$/.test(p) && !path.basename(p).startsWith('.'))) await readImage2D(f);
      } finally {
        spawnSync('umount', [mnt]);
      }
    },
    120_000,
  );

  test('two runs into one --out at once: the second refuses while the first runs', async () => {
    const out = d('concurrent');
    // the same command twice (a double-submitted job)
    const args = ['baseline', 'bspline', frames(), '--out', out, '--iterations', '1000', '--convergence', '0', '--no-qc', '--quiet', '--jobs', '1'];
    const first = spawn(process.execPath, [path.join(ROOT, 'bin', 'r2n2.js'), ...args], { env: { ...process.env, NODE_OPTIONS: '' } });
    const done = new Promise((resolve) => first.on('exit', resolve));
    // wait for its lock
    for (let i = 0; i < 100 && !existsSync(path.join(out, '.r2n2-lock')); i++) await new Promise((r) => setTimeout(r, 100));
    const second = runCli(args);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/another r2n2 run \(pid \d+.*is writing into the output directory/);
    // the first stops cleanly on SIGTERM (after its frame in hand) and releases the lock
    first.kill('SIGTERM');
    await done;
    expect(existsSync(path.join(out, '.r2n2-lock'))).toBe(false);
  }, 120_000);
});

/** Starts the CLI and SIGKILLs it after `ms` (or lets it finish first). */
function killAfter(args: string[], ms: number): Promise<void> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [path.join(ROOT, 'bin', 'r2n2.js'), ...args], { env: { ...process.env, NODE_OPTIONS: '' }, stdio: 'ignore' });
    const timer = setTimeout(() => p.kill('SIGKILL'), ms);
    p.on('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
