import { defineConfig, type Plugin } from 'vitest/config';
import { minify } from 'terser';

/**
 * Minifies the service worker with terser (two compress passes) on the chunk as rolldown wrote
 * it, keeping the source map: about 70 bytes of min+brotli under vite's own minifier, for the one
 * file with a hard size budget (6 kB). Library builds stay unminified for the app's bundler.
 */
const terserChunk = (): Plugin => ({
  name: 'edgetrace:terser-sw',
  async generateBundle(_options, bundle) {
    for (const chunk of Object.values(bundle)) {
      if (chunk.type !== 'chunk') continue;
      const mapName = `${chunk.fileName}.map`;
      const mapAsset = bundle[mapName];
      const out = await minify(chunk.code, {
        compress: { passes: 2 },
        // As the other builds (ASCII_OUTPUT below): a script served without a charset still reads right.
        format: { ascii_only: true },
        sourceMap: chunk.map ? { content: JSON.stringify(chunk.map), url: mapName } : false,
      });
      chunk.code = out.code!;
      if (mapAsset?.type === 'asset' && typeof out.map === 'string') mapAsset.source = out.map;
    }
  },
});

// The ready-made service worker (`vite build --mode sw`): `dist/edgetrace-sw.js`, one classic
// script with idb inside, since a service worker cannot resolve bare imports.
const SERVICE_WORKER_BUILD = {
  emptyOutDir: false,
  sourcemap: true,
  target: 'es2022',
  // terserChunk() below minifies.
  minify: false,
  lib: { entry: 'worker/sw.ts', name: 'edgetraceSw', formats: ['iife' as const], fileName: () => 'edgetrace-sw.js' },
  rolldownOptions: {
    // idb installs its optional extras (`db.get()`-style shortcuts and async cursor iteration)
    // by calling its internal `replaceTraps()` at module level, which a bundler must keep as a
    // side effect. worker/Outbox.ts uses neither, so calls to it count as pure here and the extras
    // go: about 1.3 kB minified of the worker's 6 kB budget. If Outbox.ts ever needs them, drop
    // this line; the delivery e2e specs run against this build.
    treeshake: { manualPureFunctions: ['replaceTraps'] },
    // terserChunk() is most of this build's time, by design; rolldown's note that a plugin took
    // most of the build would greet every `npm start` and tell nothing.
    checks: { bundlerTimings: false },
  },
};

const IIFE_TARGET = ['chrome94', 'edge94', 'firefox102', 'safari15.4'];

// Every build escapes non-ASCII characters in strings (the `…` of a cut value, `≥` in a message,
// U+FFFD): a script served without a charset, on a page without <meta charset>, is read as
// Latin-1 by browsers, and they would otherwise turn into mojibake in messages and span data.
const ASCII_OUTPUT = { charset: 'ascii' as const };

// Two builds from one file: the ESM library entries (default) and the self-initialising IIFE
// for the `<script>` tag (`vite build --mode iife`), which must be one file with no imports.
// A third, `--mode sw`, is the service worker above.
export default defineConfig(({ mode }) => ({
  plugins: mode === 'sw' ? [terserChunk()] : [],
  build:
    mode === 'sw'
      ? SERVICE_WORKER_BUILD
      : mode === 'iife'
      ? {
          emptyOutDir: false,
          sourcemap: true,
          // The page is the app's, not ours to compile for: the oldest browsers we support
          // (README, "Where it runs"), not vite's default of recent ones.
          target: IIFE_TARGET,
          // `var edgetrace` is a global only in a classic script; loaded as a module, the API
          // would be out of reach without this.
          rolldownOptions: { output: { ...ASCII_OUTPUT, footer: 'globalThis.edgetrace = edgetrace;' } },
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
              otlp: 'src/otlp.ts',
              otel: 'src/otel.ts',
              server: 'src/server/index.ts',
              // The `edgetrace` CLI (bin/edgetrace.js imports it); Node only.
              cli: 'src/server/cli.ts',
              worker: 'worker/index.ts',
            },
            formats: ['es'],
          },
          rollupOptions: {
            // Runtime dependencies stay imports for the consumer's bundler; node built-ins are
            // only reached by the server entry.
            external: [/^node:/, 'idb', 'comlink', 'nanoid', 'web-vitals'],
            output: {
              ...ASCII_OUTPUT,
              // The keepalive sender, loaded on demand, needs only this of the modules a page
              // loads at start-up. In a chunk of its own, it keeps the on-demand code from
              // reaching into the start-up chunks, so a bundler keeps those in one file rather than
              // splitting them between what the page needs first and what it shares with the
              // on-demand code (two files compress worse than one: about 1.4 kB here).
              manualChunks: (id: string) => (id.endsWith('/src/lib/utf8Bytes.ts') ? 'utf8Bytes' : undefined),
            },
          },
        },
  test: {
    include: ['test/unit/**/*.test.ts', 'test/conformance/**/*.test.ts', 'test/edge/**/*.test.ts'],
    environment: 'node',
  },
}));
