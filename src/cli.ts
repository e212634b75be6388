/** The r2n2 command line: yargs at the edge, everything else in app/, core/ and io/. */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { UserError } from './errors.js';
import { globalOptions } from './commands/common.js';
import { phantomCommand } from './commands/phantom.js';
import { simulateCommand } from './commands/simulate.js';
import { evaluateCommand } from './commands/evaluate.js';
import { trainCommand, registerCommand } from './commands/r2n2.js';
import { baselineCommand } from './commands/baseline.js';
import { applyCommand } from './commands/apply.js';

export async function main(args: string[] = hideBin(process.argv)): Promise<number> {
  const parser = globalOptions(yargs(args))
    .scriptName('r2n2')
    .usage('$0 <command> [options]\n\nBatch deformable registration of 2D+t medical image series.')
    .command(trainCommand as never)
    .command(registerCommand as never)
    .command(baselineCommand as never)
    .command(applyCommand as never)
    .command(evaluateCommand as never)
    .command(phantomCommand as never)
    .command(simulateCommand as never)
    .demandCommand(1, 'name a command (see --help)')
    .strict()
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      throw err ?? new UserError(`${msg} (see r2n2 --help)`);
    });
  try {
    await parser.parseAsync();
    return 0;
  } catch (err) {
    if (err instanceof UserError) {
      process.stderr.write(`error: ${err.message}\n`);
      return err.exitCode;
    }
    const e = err as Error;
    process.stderr.write(`error: ${e?.message ?? String(err)} (unexpected: please report it with the command that caused it)\n`);
    if (process.env.R2N2_DEBUG) process.stderr.write(`${e?.stack}\n`);
    return 1;
  }
}
