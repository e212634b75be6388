/**
 * Commands whose issue has not landed yet: their usage is documented (so --help tells what is
 * coming) and running them exits with code 2 and "not implemented yet", never fake output.
 */
import type { CommandModule } from 'yargs';
import { UserError, EXIT_NOT_IMPLEMENTED } from '../errors.js';
import type { GlobalArgs } from './common.js';

const pending = (what: string, issue: number) => () => {
  throw new UserError(`${what} is not implemented yet (issue #${issue})`, EXIT_NOT_IMPLEMENTED);
};

export const trainCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'train [series..]',
  describe: 'train the R2N2 network unsupervised on series (not implemented yet)',
  builder: (y) => y.option('out', { type: 'string', describe: 'model directory' }) as never,
  handler: pending('r2n2 train', 4),
};

const registerSeries: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'series [series]',
  describe: 'register every frame of a series to its fixed frame with a trained model (not implemented yet)',
  builder: (y) => y.option('model', { type: 'string' }).option('out', { type: 'string' }) as never,
  handler: pending('r2n2 register series', 4),
};

export const registerCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'register <what>',
  describe: 'register with a trained R2N2 model (series)',
  builder: (y) => y.command(registerSeries as never).demandCommand(1, 'name what to register: series') as never,
  handler: () => undefined,
};
