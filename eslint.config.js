// eslint (flat config): the recommended rules of eslint and typescript-eslint, formatting left to
// prettier (eslint-config-prettier). `npm run lint` runs both; `npm test` runs it first.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['dist/', 'dist-bench/', 'node_modules/', 'sample/', 'scratch/', 'coverage/', 'bench/results/', 'fixtures/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    languageOptions: {
      // Node's globals (the `globals` package) and the browser ones the backends probe for
      globals: { ...globals.node, navigator: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // CommonJS (the jest transformer: jest loads transformers with require)
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', __filename: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
