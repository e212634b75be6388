#!/usr/bin/env node
// The r2n2 entry point: run `npm run build` first (npm start and npm test do).
import { main } from '../dist/cli.js';

// `r2n2 … | head` closes stdout early: that is not an error.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});
process.exitCode = await main();
