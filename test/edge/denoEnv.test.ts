import { describe, it, expect, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundle, cleanUp } from './runtimes';

// What Deno lets edgetrace read of the environment, in a real Deno: the variables it allows by
// name are read, the others are left alone (no error, and in a terminal no prompt per variable).

const DENO = join(fileURLToPath(new URL('../..', import.meta.url)), 'node_modules/.bin/deno');
const ENV = { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9/', OTEL_SERVICE_NAME: 'deno-env-svc' };
const ALLOWED = '--allow-env=OTEL_EXPORTER_OTLP_ENDPOINT,OTEL_SERVICE_NAME';

afterAll(cleanUp);

const lastJson = (out: string): Record<string, unknown> => {
  const line = out.trim().split(/\r?\n/).filter((l) => l.startsWith('{')).pop();
  if (!line) throw new Error(`no result printed: ${out}`);
  return JSON.parse(line) as Record<string, unknown>;
};

const run = (args: string[]): { out: string; status: number | null } => {
  const r = spawnSync(DENO, args, { env: ENV, encoding: 'utf8', timeout: 30_000 });
  return { out: `${r.stdout}${r.stderr}`, status: r.status };
};

/** Whether `script` can give a child a terminal here (util-linux; a container may lack ptys). */
const hasPty = spawnSync('script', ['-qec', 'true', '/dev/null'], { encoding: 'utf8', timeout: 10_000 }).status === 0;

describe('the environment under Deno', { timeout: 60_000 }, () => {
  it('reads the variables Deno allows by name, through process.env and Deno.env alike', async () => {
    const file = await bundle('deno-env', 'esm');
    const { out, status } = run(['run', '--no-prompt', '--no-config', ALLOWED, file]);
    expect(status, out).toBe(0);
    expect(lastJson(out)).toEqual({
      'process.env': 'deno-env-svc',
      'Deno.env': 'deno-env-svc',
      processEnv: ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_SERVICE_NAME'],
    });
  });

  it('says Deno needs --allow-env when it allows none, for process.env too', async () => {
    const file = await bundle('deno-env', 'esm');
    const { out, status } = run(['run', '--no-prompt', '--no-config', file]);
    expect(status, out).toBe(0);
    const got = lastJson(out);
    expect(got['process.env']).toMatch(/"env" must be readable \(Deno needs --allow-env\)/);
    expect(got['Deno.env']).toMatch(/"env" must be readable \(Deno needs --allow-env\)/);
    expect(got.processEnv).toEqual([]);
  });

  it.skipIf(!hasPty)('asks nothing in a terminal, where a read Deno does not allow would wait at a prompt', async () => {
    const file = await bundle('deno-env', 'esm');
    // `script` runs Deno in a pseudo-terminal: a permission prompt there waits for an answer.
    const r = spawnSync('script', ['-qec', `${DENO} run --no-config ${ALLOWED} ${file}`, '/dev/null'], { env: ENV, encoding: 'utf8', timeout: 20_000, input: '' });
    const out = `${r.stdout}${r.stderr}`;
    expect(out).not.toContain('requests env access');
    expect(r.status, out).toBe(0);
    expect(lastJson(out)['process.env']).toBe('deno-env-svc');
  });
});
