#!/usr/bin/env node
// `edgetrace collect --port 4318 --db .edgetrace/traces.db [--forward langfuse|otlp]`
// (`npx edgetrace help` lists every option). The code lives in src/server/cli.ts, built to dist/cli.js.

import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  console.error('edgetrace: dist/cli.js is missing; run `npm run build` first.');
  process.exit(1);
}
const { runCli, CliError } = await import(cli.href);

try {
  const running = await runCli({
    argv: process.argv.slice(2),
    env: process.env,
    out: (line) => console.log(line),
    err: (line) => console.error(line),
  });
  if (running) {
    const stop = (signal) => {
      console.log(`edgetrace: ${signal}, closing`);
      running.close().then(
        () => process.exit(0),
        (error) => {
          console.error(error);
          process.exit(1);
        },
      );
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  }
} catch (error) {
  if (error instanceof CliError) {
    console.error(`edgetrace: ${error.message}`);
    process.exit(2);
  }
  throw error;
}
