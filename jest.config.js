/** jest in ESM mode (itk-wasm is ESM-only): run with node --experimental-vm-modules (see package.json). */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  // ts-jest with the hot globals bound per module (test/jest-transform.cjs: jest's VM context makes global lookups slow)
  transform: {
    '^.+\\.ts$': ['<rootDir>/test/jest-transform.cjs', { useESM: true, tsconfig: 'tsconfig.test.json' }],
  },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  setupFiles: ['<rootDir>/test/setup-env.cjs'],
  // dist/ must be built from the current src/ (the CLI and worker tests run it)
  globalSetup: '<rootDir>/test/global-setup.cjs',
  testTimeout: 120000,
  // every core: most suites spawn the CLI or compute; on 2 cores two workers measured 1.4× the
  // throughput of one (jest's default is one worker fewer than the cores)
  maxWorkers: '100%',
};
