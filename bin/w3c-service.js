#!/usr/bin/env node
// `npm run w3c-service -- --port 5000 [--host 127.0.0.1]`: the test service for the official W3C
// trace-context suite (see src/server/w3cTestService.ts). It is bundled from the TypeScript
// sources with esbuild on each start, so it needs no build step and always runs the current code.
// Prints one line, `w3c test service listening on http://127.0.0.1:5000/test`, once it listens.

import { mkdirSync, rmSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({
  options: { port: { type: 'string', default: '5000' }, host: { type: 'string', default: '127.0.0.1' }, help: { type: 'boolean' } },
});
if (values.help) {
  console.log('usage: npm run w3c-service -- [--port 5000] [--host 127.0.0.1]\nthen run the W3C suite against http://HOST:PORT/test');
  process.exit(0);
}
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`w3c-service: --port must be a port number, got ${values.port}`);
  process.exit(2);
}

const { build } = await import('esbuild');
const outdir = `${root}node_modules/.cache/edgetrace`;
mkdirSync(outdir, { recursive: true });
const outfile = `${outdir}/w3c-service-${process.pid}.mjs`;
await build({
  entryPoints: [`${root}src/server/w3cTestService.ts`],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outfile,
  logLevel: 'warning',
  external: ['better-sqlite3'],
});
const { startW3cTestService } = await import(pathToFileURL(outfile).href);
rmSync(outfile, { force: true });
const { url, server } = await startW3cTestService({ port, host: values.host, env: process.env });
console.log(`w3c test service listening on ${url}`);

const stop = () => {
  server.closeAllConnections?.();
  server.close(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
