/** CSV outputs (motion.csv, evaluate tre --csv) stay one record a line when a frame name holds a comma or a quote. */
import { parse } from 'csv-parse/sync';
import { motionCsv } from '../src/core/metrics/motion.js';
import { formatTreCsv } from '../src/commands/evaluate.js';
import type { TreEvaluation } from '../src/app/evaluate-tre.js';

const NAMES = ['frame_000', 'scan 3, phase 1', 'the "ED" frame'];

test('motion.csv quotes frame names with commas and quotes; parsed back, every row has its 9 fields', () => {
  const text = motionCsv(
    NAMES.map((frame, index) => ({ frame, index, fixed: index === 0, meanMm: 1.5, maxMm: 2, changeMm: NaN, nccBefore: 0.5, nccAfter: 0.9, fallback: false })),
  );
  const rows = parse(text) as string[][];
  expect(rows).toHaveLength(4);
  expect(rows.every((r) => r.length === 9)).toBe(true);
  expect(rows.slice(1).map((r) => r[0])).toEqual(NAMES);
  expect(rows[1][5]).toBe(''); // NaN written empty
  expect(text.split('\n')[0]).toBe('frame,index,fixed,mean_displacement_mm,max_displacement_mm,change_from_previous_mm,ncc_before,ncc_after,fallback');
});

test('evaluate tre --csv quotes frame names alike', () => {
  const ev = { frames: NAMES.map((name) => ({ name, beforeMm: [1, 2], afterMm: [0.5, 0.25], beforePx: null, afterPx: null })) } as unknown as TreEvaluation;
  const rows = parse(formatTreCsv(ev)) as string[][];
  expect(rows).toHaveLength(1 + 2 * NAMES.length);
  expect(rows.every((r) => r.length === 6)).toBe(true);
  expect(rows.slice(1).map((r) => r[0])).toEqual(NAMES.flatMap((n) => [n, n]));
  expect(rows[2]).toEqual([NAMES[0], '2', '2', '0.25', '', '']);
});
