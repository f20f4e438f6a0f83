import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import type { Exporter } from '../protocol';
import { createCollector, type Collector } from './collector/createCollector';
import { CollectorError, oneLine } from './collector/collectorError';
import { DEFAULT_DB_PATH, openSqliteStore } from './collector/sqliteStore';
import type { TraceStore } from './collector/store';
import { fromEnv, type EnvExporter } from './fromEnv';
import { EXPORT_TIMEOUT_MS } from '../core/processors';
import { toNodeListener } from './node';
import { isLoopbackHost } from './loopback';
import { DEADLINE_EXCEEDED, errorBody, INVALID_ARGUMENT } from './collector/api';
import { unref } from '../lib/unref';
import { within } from '../lib/within';

/**
 * The `edgetrace` command line (Node only): `edgetrace collect` runs the collector on Node's
 * http server with the SQLite store. bin/edgetrace.js calls {@link runCli} with the process's
 * argv and environment.
 */

/** Where the CLI reads and writes; the process's own by default (see bin/edgetrace.js). */
export interface CliIo {
  argv: readonly string[];
  env: Record<string, string | undefined>;
  out: (line: string) => void;
  err: (line: string) => void;
}

/** A running `collect` command. */
export interface RunningCollector {
  url: string;
  server: Server;
  collector: Collector;
  /**
   * Stops listening, finishes work in flight (for `--drain-seconds` at most, 6 by default) and
   * closes the store.
   */
  close(): Promise<void>;
}

/** The flag each createCollector() option comes from, for its error messages. */
const FLAG_OF = {
  allowedOrigins: '--allow-origin',
  ingestToken: '--ingest-token',
  readToken: '--read-token',
  maxBodyBytes: '--max-body-bytes',
  maxBytesInFlight: '--max-bytes-in-flight',
} as const;

/** A usage or configuration mistake: printed without a stack, exit status 2. */
export class CliError extends Error {}

/** How long a request may take to arrive whole, headers and body. */
const REQUEST_TIMEOUT_MS = 60_000;
/** How long `close()` waits for requests in flight before closing their connections. */
export const CLOSE_GRACE_MS = 3000;
/** How long `close()` waits for requests and forward exports in flight, in all, by default. */
export const DRAIN_MS = 6000;

/** What `edgetrace help` prints. */
export const USAGE = `usage: edgetrace collect [options]

Runs the edgetrace collector: OTLP/HTTP (JSON or protobuf) in at POST /v1/traces (and scores at POST /v1/scores),
stored in SQLite and/or forwarded to Langfuse or an OTLP receiver, queried at GET /api/traces,
/api/traces/<id> and /api/stats.

options:
  --port <n>              port to listen on (default 4318; 0 picks one)
  --host <address>        address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)
  --db <file>             SQLite database file (default ${DEFAULT_DB_PATH})
  --no-db                 keep nothing locally: forward only
  --forward <target>      langfuse or otlp, repeatable; credentials come from LANGFUSE_PUBLIC_KEY,
                          LANGFUSE_SECRET_KEY, LANGFUSE_BASE_URL / OTEL_EXPORTER_OTLP_ENDPOINT,
                          OTEL_EXPORTER_OTLP_HEADERS
  --allow-origin <origin> page origin allowed to send from a browser, repeatable ("*" for any)
  --ingest-token <token>  public token senders must present (or EDGETRACE_INGEST_TOKEN)
  --read-token <token>    token for the query API (or EDGETRACE_READ_TOKEN; default: a new random one)
  --open-read             no token for the query API (local development only)
  --retention-days <n>    prune traces older than this (default 30; 0 keeps everything)
  --max-body-bytes <n>    largest request body after decompression (default 5000000)
  --max-bytes-in-flight <n>
                          body bytes held at once across requests (default 64000000)
  --rate-limit <n>        requests per second per client (default 20; 0 turns the limit off)
  --rate-burst <n>        requests a client may send at once (default 60)
  --drain-seconds <n>     on SIGTERM, how long to wait for requests and forward exports in flight
                          (default 6, inside docker stop's 10)
  --trust-proxy <hops>    reverse proxies in front that set X-Forwarded-For/-Proto/-Host (default 0:
                          none; these headers are any client's to write otherwise)
`;

const number = (name: string, value: string | undefined, dflt: number, min = 0): number => {
  if (value === undefined) return dflt;
  // Decimal digits only: Number('') is 0 and Number('0x10') is 16, neither of which was meant.
  const n = /^\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!Number.isFinite(n) || n < min) throw new CliError(`--${name} must be a number ≥ ${min}, got ${JSON.stringify(value)}`);
  return n;
};

const randomToken = (): string => {
  const bytes = new Uint8Array(18);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
};

/** Starts `edgetrace collect` with `args` (the words after `collect`). */
export const startCollect = async (args: readonly string[], io: CliIo): Promise<RunningCollector> => {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        db: { type: 'string' },
        'no-db': { type: 'boolean' },
        forward: { type: 'string', multiple: true },
        'allow-origin': { type: 'string', multiple: true },
        'ingest-token': { type: 'string' },
        'read-token': { type: 'string' },
        'open-read': { type: 'boolean' },
        'retention-days': { type: 'string' },
        'max-body-bytes': { type: 'string' },
        'max-bytes-in-flight': { type: 'string' },
        'rate-limit': { type: 'string' },
        'rate-burst': { type: 'string' },
        'trust-proxy': { type: 'string' },
        'drain-seconds': { type: 'string' },
      },
      strict: true,
    });
  } catch (error) {
    throw new CliError(error instanceof Error ? error.message : String(error));
  }
  const v = parsed.values;
  const port = number('port', v.port, 4318);
  if (!Number.isInteger(port) || port > 65535) throw new CliError(`--port must be a port number, got ${v.port}`);
  // An empty --host would listen on every interface: refuse it rather than widen the exposure.
  if (v.host !== undefined && !v.host.trim()) throw new CliError('--host must not be empty (default 127.0.0.1)');
  const host = v.host ?? '127.0.0.1';
  const retentionDays = number('retention-days', v['retention-days'], 30);
  const maxBodyBytes = number('max-body-bytes', v['max-body-bytes'], 5_000_000, 1);
  // Absent: the collector's own default, which depends on maxBodyBytes.
  const inFlight = v['max-bytes-in-flight'];
  const maxBytesInFlight = inFlight === undefined ? undefined : number('max-bytes-in-flight', inFlight, 0, 1);
  const rate = number('rate-limit', v['rate-limit'], 20);
  const burst = number('rate-burst', v['rate-burst'], 60, 1);
  const drainMs = number('drain-seconds', v['drain-seconds'], DRAIN_MS / 1000) * 1000;
  const hops = number('trust-proxy', v['trust-proxy'], 0);
  if (!Number.isInteger(hops)) throw new CliError(`--trust-proxy must be a whole number of proxies, got ${v['trust-proxy']}`);
  const ingestToken = v['ingest-token'] ?? io.env.EDGETRACE_INGEST_TOKEN;
  if (v['open-read'] && v['read-token']) throw new CliError('--open-read and --read-token exclude each other');
  const givenRead = v['read-token'] ?? io.env.EDGETRACE_READ_TOKEN;
  const readToken: string | false = v['open-read'] ? false : (givenRead ?? randomToken());

  const forward: EnvExporter[] = [];
  for (const target of (v.forward ?? []).flatMap((f) => f.split(',')).map((f) => f.trim()).filter(Boolean)) {
    if (target !== 'langfuse' && target !== 'otlp') throw new CliError(`--forward must be langfuse or otlp, got ${JSON.stringify(target)}`);
    try {
      // As long as the collector waits for a late answer (30 s): a target that answers after the
      // exporter's default 10 s would be sent the batch again, although it took it.
      // The collector forwards what it gets and samples nothing: a sampler variable meant for the
      // services beside it in the same environment is not read here (nor told of).
      forward.push(fromEnv({ ...io.env, TRACING_MODE: target, OTEL_TRACES_SAMPLER: undefined, LANGFUSE_SAMPLE_RATE: undefined }, { timeoutMs: EXPORT_TIMEOUT_MS }));
    } catch (error) {
      throw new CliError(error instanceof Error ? error.message.replace(/^\[edgetrace\] fromEnv\(\): /, '') : String(error));
    }
  }
  if (v['no-db'] && forward.length === 0) throw new CliError('--no-db needs at least one --forward, or nothing would be kept');

  let store: TraceStore | undefined;
  const dbPath = v.db ?? DEFAULT_DB_PATH;
  if (!v['no-db']) {
    try {
      store = await openSqliteStore({ path: dbPath });
    } catch (error) {
      // Most often better-sqlite3 is not installed: an optional peer dependency.
      const missing = /better-sqlite3 is needed/.test(String(error));
      // The store's message names the path again; its cause is SQLite's own words.
      const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
      const unbuilt = error instanceof Error && /native module did not load/.test(error.message);
      throw new CliError(
        missing
          ? 'the SQLite store needs better-sqlite3: run `npm i better-sqlite3`, or pass --no-db with a --forward target'
          : unbuilt
            ? `${(error as Error).message.replace(/^\[edgetrace\] openSqliteStore\(\): /, '')} Or pass --no-db with a --forward target.`
            : `cannot open the store at ${dbPath}: ${cause instanceof Error ? cause.message : String(cause)}`,
      );
    }
  }
  const origins = v['allow-origin'] ?? [];
  let collector: Collector;
  try {
    collector = createCollector({
      store,
      forward: forward as Exporter[],
      allowedOrigins: origins.includes('*') ? '*' : origins,
      ingestToken,
      readToken,
      maxBodyBytes,
      maxBytesInFlight,
      rateLimit: rate > 0 ? { perSecond: rate, burst } : false,
      trustProxy: hops > 0 ? hops : false,
      retentionMs: retentionDays > 0 ? retentionDays * 86_400_000 : false,
      // What the collector expects to happen (a target or the store failing) in one line; a bug with its stack.
      onError: (error) => io.err(`edgetrace collect: ${error instanceof CollectorError || !(error instanceof Error) ? oneLine(error) : (error.stack ?? error.message)}`),
      onPrune: (r) => {
        if (r.traces + (r.spans ?? 0) + (r.scores ?? 0) === 0) return;
        const before = new Date(r.beforeMs).toISOString();
        io.out(`edgetrace collect: pruned ${r.traces} trace(s), ${r.spans ?? 0} span(s) and ${r.scores ?? 0} score(s) older than ${before} in ${(r.durationMs / 1000).toFixed(1)} s`);
      },
    });
  } catch (error) {
    await store?.close();
    // createCollector() names its options; the person typed flags.
    const text = (error instanceof Error ? error.message.replace(/^\[edgetrace\] /, '') : String(error)).replace(
      new RegExp(`"(${Object.keys(FLAG_OF).join('|')})(\\[\\d+\\])?"`, 'g'),
      (_m, key: keyof typeof FLAG_OF) => FLAG_OF[key],
    );
    throw new CliError(text);
  }

  const listener = toNodeListener(collector.fetch, { onError: (error) => io.err(`edgetrace collect: ${String(error)}`) });
  // A body that stalls holds its share of the collector's bytes in flight: a minute, not Node's
  // default five, is plenty for a sender whose own timeout is 10 s.
  const server = createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS }, listener);
  // Requests being handled, for close(): those whose body is still arriving after the grace are cut.
  const requests = new Map<IncomingMessage, ServerResponse>();
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    requests.set(req, res);
    res.once('close', () => requests.delete(req));
  });
  // A sender that asks before it uploads (`Expect: 100-continue`) and declares a body over the
  // limit gets its 413 without being invited to send it first; Node would say 100 at once.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (!(Number(req.headers['content-length']) > maxBodyBytes)) res.writeContinue();
    server.emit('request', req, res);
  });
  // Requests Node's parser refuses never reach the collector: answer them as it would, with a
  // JSON google.rpc.Status, not an empty 400.
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    if (error.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
    const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const body = JSON.stringify(
      errorBody(status === 408 ? DEADLINE_EXCEEDED : INVALID_ARGUMENT, `the request could not be read as HTTP/1.1 (${error.code ?? 'parse error'}: ${error.message})`),
    );
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
  } catch (error) {
    await collector.close();
    throw new CliError(`cannot listen on ${host}:${port}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${shownHost}:${address.port}`;

  // Prune now and then hourly; the timer must not keep the process alive on its own. A failure
  // was told to onError, and ingest tries again within minutes.
  const pruneOnce = (): void => {
    collector.prune().catch(() => undefined);
  };
  pruneOnce();
  const timer = setInterval(pruneOnce, 3_600_000);
  timer.unref();

  io.out(`edgetrace collector listening on ${url}`);
  io.out(`  ingest  POST ${url}/v1/traces (OTLP/HTTP JSON or protobuf, gzip ok) and ${url}/v1/scores${ingestToken ? ', ingest token required' : ''}`);
  // A token made up here is printed (nobody else knows it); one given is not repeated into logs.
  const readHow = readToken === false ? ' (open)' : givenRead ? ' with the read token given' : ` with Authorization: Bearer ${readToken}`;
  // Without a store there is nothing to query (the API answers 404): no line that says otherwise.
  if (store) io.out(`  query   GET  ${url}/api/traces, /api/traces/<id>, /api/stats${readHow}`);
  // The flag wins over the environment, as flags do; a token set there for this was meant to be used.
  if (readToken === false && io.env.EDGETRACE_READ_TOKEN) io.err('edgetrace collect: --open-read leaves EDGETRACE_READ_TOKEN unused: the query API takes no token');
  // The open API answers loopback peers only: through a container's port mapping or from another
  // machine nobody else gets in. (Behind a proxy on this machine everyone would: it is loopback.)
  if (store && readToken === false && !isLoopbackHost(host)) {
    io.err(`edgetrace collect: --open-read answers this machine only, not clients reaching ${host} from elsewhere (a container's host, a proxy); give them --read-token`);
  }
  io.out(`  store   ${store ? `${dbPath} (retention ${retentionDays > 0 ? `${retentionDays} days` : 'forever'})` : 'none'}`);
  io.out(`  forward ${forward.length ? forward.map((f) => f.target).join(', ') : 'none'}`);
  if (origins.length) io.out(`  origins ${origins.join(', ')}`);

  let closing: Promise<void> | undefined;
  return {
    url,
    server,
    collector,
    close: () =>
      (closing ??= (async () => {
        clearInterval(timer);
        const closed = new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
          // Those answered from now on close their connection after the answer, rather than
          // leave it open for the client's next request, which close() would wait for.
          for (const res of requests.values()) if (!res.headersSent) res.shouldKeepAlive = false;
          // A client that stalls its upload must not hold a deploy's SIGTERM until its request
          // times out: after a grace, requests whose body has not arrived whole are cut. Those
          // received are answered, also when they wait on a forward target: cut, the sender would
          // send again what the target took.
          unref(
            setTimeout(() => {
              for (const req of requests.keys()) if (!req.complete) req.socket.destroy();
            }, CLOSE_GRACE_MS),
          );
        });
        // Within drainMs, well inside the 10 s `docker stop` and most orchestrators give before
        // SIGKILL: a forward target that hangs would hold exports for 30 s. Nothing answered as
        // taken is lost when they are left: it is stored, or every target took it; the rest was
        // not acknowledged, and its senders send it again.
        const drained = await within(
          closed.then(() => listener.drain()).then(() => true),
          drainMs,
          () => false,
          true,
        );
        if (!drained) {
          const sending = (collector.health().forwarding ?? []).flatMap((f, i) => (f.sending ? [`${f.sending} record(s) to ${f.target} (${forward[i]!.target})`] : []));
          const waiting = [...(requests.size ? [`${requests.size} request(s) still being answered`] : []), ...sending].join(', ') || 'work after the answers (a prune)';
          io.err(`edgetrace collect: closing after ${drainMs / 1000} s without waiting longer for ${waiting}; what was not acknowledged is sent again by its senders`);
          server.closeAllConnections();
        }
        await collector.close();
      })()),
  };
};

/**
 * Runs the CLI. Resolves with the running collector for `collect`, or `undefined` after printing
 * help. Mistakes throw {@link CliError}.
 */
export const runCli = async (io: CliIo): Promise<RunningCollector | undefined> => {
  const [command, ...rest] = io.argv;
  const help = ['--help', '-h'];
  if (command === 'collect' && !rest.some((a) => help.includes(a))) return startCollect(rest, io);
  if (command === undefined || command === 'collect' || command === 'help' || help.includes(command)) {
    io.out(USAGE);
    return undefined;
  }
  throw new CliError(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
};
