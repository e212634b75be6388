/** The r2n2 command line: yargs at the edge, everything else in app/, core/ and io/. */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { UserError, fsUserError } from './errors.js';
import { globalOptions } from './commands/common.js';
import { phantomCommand } from './commands/phantom.js';
import { simulateCommand } from './commands/simulate.js';
import { synthCommand } from './commands/synth.js';
import { evaluateCommand } from './commands/evaluate.js';
import { trainCommand, registerCommand, modelsCommand } from './commands/r2n2.js';
import { baselineCommand } from './commands/baseline.js';
import { applyCommand } from './commands/apply.js';

export async function main(args: string[] = hideBin(process.argv)): Promise<number> {
  const parser = globalOptions(yargs(args))
    .scriptName('r2n2')
    .usage('$0 <command> [options]\n\nBatch deformable registration of 2D+t medical image series.')
    .command(trainCommand as never)
    .command(registerCommand as never)
    .command(modelsCommand as never)
    .command(baselineCommand as never)
    .command(applyCommand as never)
    .command(evaluateCommand as never)
    .command(phantomCommand as never)
    .command(simulateCommand as never)
    .command(synthCommand as never)
    .demandCommand(1, 'name a command (see --help)')
    .strict()
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version()
    .wrap(Math.min(110, process.stdout.columns || 100))
    // --help and --version print and return 0 (bin/r2n2.js sets the exit code): main never exits the process
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new UserError(missingArgument(msg, args) ?? `${msg} (see r2n2 --help)`);
    });
  try {
    await parser.parseAsync();
    return 0;
  } catch (err) {
    const known = err instanceof UserError ? err : fsUserError(err);
    if (known) {
      process.stderr.write(`error: ${known.message}\n`);
      return known.exitCode;
    }
    const e = err as Error;
    process.stderr.write(`error: ${e?.message ?? String(err)} (unexpected: please report it with the command that caused it)\n`);
    if (process.env.R2N2_DEBUG) process.stderr.write(`${e?.stack}\n`);
    return 1;
  }
}

/** What each command's positional argument is, for "Not enough non-option arguments". */
const POSITIONALS: [string[], string][] = [
  [['register', 'series'], 'the series to register (a directory of 2D frames, a 3D file whose last axis is time, or a DICOM directory)'],
  [['train'], 'the training series (one or more: directories of frames, 3D files or DICOM directories)'],
  [['simulate'], 'the image to animate (a 2D image, or a series with --frame)'],
  [['evaluate', 'compare'], 'the result directories to compare'],
  [['evaluate', 'report'], 'the result directories to report on'],
  [['evaluate'], 'what to evaluate: tre, dice, jacobian, compare or report'],
  [['register'], 'what to register: series'],
  [['baseline'], 'the baseline method: bspline'],
];

/** yargs' "Not enough non-option arguments" as a message that names the missing argument, or null. */
function missingArgument(msg: string, args: string[]): string | null {
  if (!/^Not enough non-option arguments/.test(msg)) return null;
  const words = args.filter((a) => !a.startsWith('-'));
  for (const [cmd, what] of POSITIONALS) {
    if (cmd.every((c, i) => words[i] === c)) return `r2n2 ${cmd.join(' ')} needs ${what} (see r2n2 ${cmd.join(' ')} --help)`;
  }
  return null;
}
