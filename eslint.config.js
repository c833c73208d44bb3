// ESLint 9 flat config: typescript-eslint's type-aware rules on every .ts file (src, test, bench, scripts).
// Formatting is prettier's job (npm run format); eslint-config-prettier turns off the rules that would disagree.
import js from '@eslint/js'
import prettier from 'eslint-config-prettier'
import { defineConfig } from 'eslint/config'
import globals from 'globals'
import tseslint from 'typescript-eslint'

export default defineConfig(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'bench/results/'] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: {
        // files outside tsconfig.json's include (this file, vitest.config.ts, bench/*.mjs) get a default project
        projectService: { allowDefaultProject: ['*.js', '*.ts', 'bench/*.mjs'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // the two that catch real bugs in a server: a promise nobody awaits or catches (an unhandled
      // rejection ends the process), a promise where a callback is expected (its rejection is lost)
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: false }],
      '@typescript-eslint/no-misused-promises': 'error',
      // rethrowing or rejecting with what a catch caught is fine: it is whatever was thrown
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      // style only: Fastify handlers and hooks are async by contract, with or without an await
      '@typescript-eslint/require-await': 'off',
      // style only: a cast the checker finds redundant is harmless (npx eslint --fix removes them all,
      // best done together with the tree-wide prettier run)
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      // a `let` read by a closure made before its one assignment cannot be a const
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // tests, bench and scripts read JSON answers (any) on purpose and assert on them
    files: ['test/**', 'bench/**', 'scripts/**'],
    rules: {
      '@typescript-eslint/restrict-template-expressions': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    // tests fire calls on purpose and look at their outcome later; `void call()` says so (an unhandled
    // rejection still fails the run: vitest reports it)
    files: ['test/**'],
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: true }],
    },
  },
  {
    // the simulator echoes untyped request bodies into its fake records, as the real API does
    files: ['simulator/**'],
    rules: {
      '@typescript-eslint/restrict-template-expressions': 'off',
      '@typescript-eslint/no-base-to-string': 'off',
    },
  },
  prettier,
)
