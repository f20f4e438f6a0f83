// `npm start`: the prompt playground. It builds the service worker first (see package.json), then
// runs demo/server/playground.ts, which is TypeScript: a small Vite server loads it (and the
// src/server code it imports) the way Vite loads any server-side module, so there is no separate
// build step for the demo. Ctrl-C stops everything and closes the database.
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'vite';

const root = fileURLToPath(new URL('..', import.meta.url));

const portFromEnv = () => {
  const raw = process.env.PORT;
  if (raw === undefined || raw === '') return undefined;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`edgetrace playground: PORT must be a port number, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return port;
};

const main = async () => {
  const port = portFromEnv();
  const loader = await createServer({
    configFile: false,
    root,
    logLevel: 'error',
    appType: 'custom',
    // No HMR and no WebSocket server: `hmr: false` alone still opens Vite's WebSocket port on
    // every interface, and the playground must listen on 127.0.0.1 only.
    server: { middlewareMode: true, hmr: false, ws: false, watch: null },
    optimizeDeps: { noDiscovery: true, include: [] },
  });
  let playground;
  try {
    const { startPlayground, DEFAULT_PLAYGROUND_DB } = await loader.ssrLoadModule('/demo/server/playground.ts');
    // A port the user chose is kept or refused, never swapped: another port is another origin,
    // with another session and service-worker outbox. Only the default gives way.
    playground = await startPlayground({ port, fallbackPort: port === undefined, dbPath: process.env.EDGETRACE_DB || DEFAULT_PLAYGROUND_DB, env: process.env });
  } catch (error) {
    await loader.close();
    if (error?.code === 'EADDRINUSE') throw new Error(`port ${port} (PORT) is taken: stop what uses it, choose another, or unset PORT to take a free one.`);
    throw error;
  }

  const shownDb = relative(root, playground.dbPath);
  const forwarding = playground.forwarding.length
    ? playground.forwarding.join(', ')
    : 'none (set LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY to also send to Langfuse)';
  console.log(`
  edgetrace playground  ${playground.url}

  collector   SQLite at ${shownDb && !shownDb.startsWith('..') ? shownDb : playground.dbPath}; query API open to this machine only
  model       mock model server (mock-mini, mock-pro, mock-deep), traced with edgetrace/server
  forwarding  ${forwarding}

  Ctrl-C stops it.
`);

  let stopping = false;
  const stop = (signal) => {
    if (stopping) {
      console.log(`\n  ${signal} again: exiting now.`);
      process.exit(1);
    }
    stopping = true;
    console.log('\n  stopping…');
    // Should something hang, do not keep the terminal hostage.
    setTimeout(() => {
      console.error('  could not stop within 10 s; exiting.');
      process.exit(1);
    }, 10_000).unref();
    playground
      .close()
      .then(() => loader.close())
      .then(() => {
        console.log('  stopped: servers closed, database closed.');
        process.exit(0);
      })
      .catch((error) => {
        console.error('  error while stopping:', error);
        process.exit(1);
      });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
};

main().catch((error) => {
  console.error(`edgetrace playground: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
