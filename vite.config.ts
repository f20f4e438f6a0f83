import { defineConfig } from 'vitest/config';

// Two builds from one file: the ESM library entries (default) and the self-initialising IIFE
// for the `<script>` tag (`vite build --mode iife`), which must be one file with no imports.
export default defineConfig(({ mode }) => ({
  build:
    mode === 'iife'
      ? {
          emptyOutDir: false,
          sourcemap: true,
          lib: {
            entry: 'src/iife.ts',
            name: 'edgetrace',
            formats: ['iife'],
            fileName: () => 'edgetrace.iife.js',
          },
        }
      : {
          sourcemap: true,
          target: 'es2022',
          minify: false,
          lib: {
            entry: {
              index: 'src/index.ts',
              vitals: 'src/vitals.ts',
              server: 'src/server/index.ts',
              worker: 'worker/index.ts',
            },
            formats: ['es'],
          },
          rollupOptions: {
            // Runtime dependencies stay imports for the consumer's bundler; node built-ins are
            // only reached by the server entry.
            external: [/^node:/, 'idb', 'comlink', 'nanoid', 'web-vitals'],
          },
        },
  test: {
    include: ['test/unit/**/*.test.ts', 'test/conformance/**/*.test.ts'],
    environment: 'node',
  },
}));
