import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import YAML from 'yaml';
import type { ScoreRecord, SpanRecord } from '../../src/protocol';
import { createLangfuseExporter, toScoreEvents } from '../../src/export/langfuse';

// Checks what the Langfuse exporter sends against Langfuse's own API definitions (Fern files in
// ../shared/reference/langfuse). The field lists come from the spec files, so if our output or
// the spec drifts, these tests fail.

const HERE = path.dirname(fileURLToPath(import.meta.url));
const LF_DIR = path.resolve(HERE, '../../../shared/reference/langfuse');
const OTLP_DIR = path.resolve(HERE, '../../../shared/reference/otlp');

type FernProp = string | { type: string };
interface FernType {
  properties?: Record<string, FernProp>;
  extends?: string | string[];
  enum?: (string | { value: string })[];
  union?: Record<string, FernProp> | FernProp[];
  discriminant?: string;
  discriminated?: boolean;
}
interface FernFile {
  types: Record<string, FernType>;
  service?: { endpoints: Record<string, { request?: { body?: { properties?: Record<string, FernProp> } } }> };
}

const readYaml = (name: string): FernFile => YAML.parse(readFileSync(path.join(LF_DIR, name), 'utf8')) as FernFile;

// --- a small checker for Fern types (only what these files use) ---

interface Spec {
  files: Record<string, FernFile>;
}
type Ref = { file: string; name: string };

const typeOf = (p: FernProp): string => (typeof p === 'string' ? p : p.type);

const resolveRef = (spec: Spec, name: string, file: string): Ref => {
  const dot = name.indexOf('.');
  return dot > 0 ? { file: `${name.slice(0, dot)}.yml`, name: name.slice(dot + 1) } : { file, name };
};

const lookup = (spec: Spec, ref: Ref): FernType => {
  const t = spec.files[ref.file]?.types[ref.name];
  if (!t) throw new Error(`unknown Fern type ${ref.file}:${ref.name}`);
  return t;
};

/** All properties of a type, inherited ones first, each with the file its type names live in. */
const propertiesOf = (spec: Spec, ref: Ref): Map<string, { type: string; file: string }> => {
  const t = lookup(spec, ref);
  const out = new Map<string, { type: string; file: string }>();
  const parents = t.extends === undefined ? [] : Array.isArray(t.extends) ? t.extends : [t.extends];
  for (const p of parents) for (const [k, v] of propertiesOf(spec, resolveRef(spec, p, ref.file))) out.set(k, v);
  for (const [k, v] of Object.entries(t.properties ?? {})) out.set(k, { type: typeOf(v), file: ref.file });
  return out;
};

const isOptional = (type: string) => /^optional<.*>$/.test(type.trim());

const ISO_DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** Returns the problems found checking `value` against the Fern type expression `type`. */
const check = (spec: Spec, type: string, file: string, value: unknown, at: string): string[] => {
  const t = type.trim();
  let m: RegExpMatchArray | null;
  if ((m = t.match(/^optional<(.*)>$/))) return value === undefined ? [] : check(spec, m[1]!, file, value, at);
  if (value === undefined) return [`${at}: required (${t}) but missing`];
  if ((m = t.match(/^list<(.*)>$/))) {
    if (!Array.isArray(value)) return [`${at}: expected a list`];
    return value.flatMap((v, i) => check(spec, m![1]!, file, v, `${at}[${i}]`));
  }
  if ((m = t.match(/^map<\s*string\s*,(.*)>$/))) {
    if (!value || typeof value !== 'object' || Array.isArray(value)) return [`${at}: expected a map`];
    return Object.entries(value).flatMap(([k, v]) => check(spec, m![1]!, file, v, `${at}.${k}`));
  }
  switch (t) {
    case 'string':
      return typeof value === 'string' ? [] : [`${at}: expected string, got ${typeof value}`];
    case 'integer':
    case 'long':
      return Number.isInteger(value) ? [] : [`${at}: expected integer`];
    case 'double':
      return typeof value === 'number' && Number.isFinite(value) ? [] : [`${at}: expected a finite number`];
    case 'boolean':
      return typeof value === 'boolean' ? [] : [`${at}: expected boolean`];
    case 'datetime':
      return typeof value === 'string' && ISO_DATETIME.test(value) ? [] : [`${at}: expected an ISO datetime`];
    case 'unknown':
      return [];
  }
  const ref = resolveRef(spec, t, file);
  const def = lookup(spec, ref);
  if (def.enum) {
    const allowed = def.enum.map((e) => (typeof e === 'string' ? e : e.value));
    return allowed.includes(value as string) ? [] : [`${at}: ${JSON.stringify(value)} is not one of ${allowed.join('|')}`];
  }
  if (def.union && def.discriminant) {
    const members = def.union as Record<string, FernProp>;
    const obj = value as Record<string, unknown>;
    const key = obj?.[def.discriminant];
    const member = typeof key === 'string' ? members[key] : undefined;
    if (!member) return [`${at}.${def.discriminant}: ${JSON.stringify(key)} is not a member of ${ref.name}`];
    const { [def.discriminant]: _d, ...rest } = obj;
    return check(spec, typeOf(member), ref.file, rest, at);
  }
  if (def.union) {
    const members = Array.isArray(def.union) ? def.union : Object.values(def.union);
    const ok = members.some((mem) => check(spec, typeOf(mem), ref.file, value, at).length === 0);
    return ok ? [] : [`${at}: matches no member of ${ref.name}`];
  }
  // An object type: every required property present, no unknown ones, each one checked.
  if (!value || typeof value !== 'object' || Array.isArray(value)) return [`${at}: expected an object (${ref.name})`];
  const props = propertiesOf(spec, ref);
  const problems: string[] = [];
  for (const [k, p] of props) problems.push(...check(spec, p.type, p.file, (value as Record<string, unknown>)[k], `${at}.${k}`));
  for (const k of Object.keys(value)) if (!props.has(k)) problems.push(`${at}.${k}: not a property of ${ref.name}`);
  return problems;
};

// --- fixtures ---

const score = (over: Partial<ScoreRecord> = {}): ScoreRecord => ({
  v: 1,
  rec: 'score',
  id: 'score-0b7c8a3e',
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  name: 'helpfulness',
  value: 0.9,
  timeMs: 1732140000123.4567,
  ...over,
});

const SCORES: ScoreRecord[] = [
  score(),
  score({ id: 's-bool', value: 1, dataType: 'BOOLEAN' }),
  score({ id: 's-num', value: -2.5, dataType: 'NUMERIC', comment: 'too long' }),
  score({ id: 's-cat', value: 'partially correct', dataType: 'CATEGORICAL', observationId: '00f067aa0ba902b7' }),
  score({ id: 's-text', value: 'free text answer', dataType: 'TEXT', sessionId: 'sess-1', environment: 'staging' }),
  score({ id: 's-env', value: 0 }),
  score({ id: 's-config', value: 'good', dataType: 'CATEGORICAL', configId: '9203-4567-89ab-cdef', metadata: { model: 'gpt-4o', rubric: ['a', 'b'], k: 3 } }),
];

describe('score-create events against ingestion.yml and commons.yml', () => {
  let spec: Spec;
  let events: unknown[];

  beforeAll(() => {
    spec = { files: { 'ingestion.yml': readYaml('ingestion.yml'), 'commons.yml': readYaml('commons.yml') } };
    events = JSON.parse(JSON.stringify(toScoreEvents(SCORES, 'production'))).batch as unknown[];
  });

  it('reads the definitions it checks against from the spec files', () => {
    const score = propertiesOf(spec, { file: 'ingestion.yml', name: 'ScoreEvent' });
    expect([...score.keys()]).toEqual(expect.arrayContaining(['id', 'timestamp', 'body']));
    const body = propertiesOf(spec, { file: 'ingestion.yml', name: 'ScoreBody' });
    expect(body.get('name')?.type).toBe('string');
    expect(body.get('value')?.type).toBe('commons.CreateScoreValue');
    expect(body.get('dataType')?.type).toBe('optional<commons.ScoreDataType>');
    const union = lookup(spec, { file: 'ingestion.yml', name: 'IngestionEvent' });
    expect(union.discriminant).toBe('type');
    expect(typeOf((union.union as Record<string, FernProp>)['score-create']!)).toBe('ScoreEvent');
  });

  it('produces events that are valid IngestionEvents of type score-create', () => {
    expect(events).toHaveLength(SCORES.length);
    for (const [i, ev] of events.entries()) {
      expect((ev as { type: string }).type).toBe('score-create');
      expect(check(spec, 'IngestionEvent', 'ingestion.yml', ev, `batch[${i}]`)).toEqual([]);
    }
  });

  it('produces a request body that is a valid IngestionRequest', () => {
    const body = spec.files['ingestion.yml']!.service!.endpoints.batch!.request!.body!.properties!;
    const req = JSON.parse(JSON.stringify(toScoreEvents(SCORES)));
    for (const [k, p] of Object.entries(body)) expect(check(spec, typeOf(p), 'ingestion.yml', req[k], k)).toEqual([]);
    for (const k of Object.keys(req)) expect(Object.keys(body)).toContain(k);
  });

  it('sets every required field of ScoreEvent and ScoreBody', () => {
    const required = (name: string) =>
      [...propertiesOf(spec, { file: 'ingestion.yml', name })].filter(([, p]) => !isOptional(p.type)).map(([k]) => k);
    expect(required('ScoreBody')).toEqual(expect.arrayContaining(['name', 'value']));
    for (const ev of events as { body: Record<string, unknown> }[]) {
      for (const k of required('ScoreEvent')) expect(ev).toHaveProperty(k);
      for (const k of required('ScoreBody')) expect(ev.body).toHaveProperty(k);
    }
  });

  it('uses only dataType values listed in commons.yml', () => {
    const allowed = lookup(spec, { file: 'commons.yml', name: 'ScoreDataType' }).enum!.map((e) => (typeof e === 'string' ? e : e.value));
    const used = (events as { body: { dataType?: string } }[]).map((e) => e.body.dataType).filter(Boolean);
    expect(used.length).toBeGreaterThan(0);
    for (const d of used) expect(allowed).toContain(d);
  });

  it('follows the server-side rules: ISO timestamp with offset, ids of 1 to 800 characters', () => {
    for (const ev of events as { id: string; timestamp: string; body: { id?: string } }[]) {
      expect(ev.timestamp).toMatch(ISO_DATETIME);
      expect(ev.timestamp).toMatch(/\.\d{3}Z$/);
      expect(ev.id.length).toBeGreaterThanOrEqual(1);
      expect(ev.id.length).toBeLessThanOrEqual(800);
      expect(ev.id).not.toContain('\r');
      if (ev.body.id !== undefined) expect(ev.body.id.length).toBeGreaterThanOrEqual(1);
      if (ev.body.id !== undefined) expect(ev.body.id.length).toBeLessThanOrEqual(800);
    }
    expect((events[0] as { timestamp: string }).timestamp).toBe('2024-11-20T22:00:00.123Z');
  });

  it('sends environments Langfuse keeps as they are', () => {
    for (const ev of events as { body: { environment?: string } }[]) {
      if (ev.body.environment !== undefined) expect(ev.body.environment).toMatch(/^(?!langfuse)[a-z0-9-_]{1,40}$/);
    }
  });

  it('fails events that drift from the spec (checker self-test)', () => {
    const good = events[0] as { id: string; timestamp: string; type: string; body: Record<string, unknown> };
    const bad = (mut: (e: typeof good) => void) => {
      const copy = structuredClone(good);
      mut(copy);
      return check(spec, 'IngestionEvent', 'ingestion.yml', copy, 'ev');
    };
    expect(bad((e) => (e.body.extra = 1))).not.toEqual([]);
    expect(bad((e) => delete e.body.name)).not.toEqual([]);
    expect(bad((e) => (e.body.value = true))).not.toEqual([]);
    expect(bad((e) => (e.body.dataType = 'PERCENT'))).not.toEqual([]);
    expect(bad((e) => (e.body.traceId = 5))).not.toEqual([]);
    expect(bad((e) => delete (e as Partial<typeof e>).timestamp)).not.toEqual([]);
    expect(bad((e) => (e.type = 'score-update'))).not.toEqual([]);
    expect(bad((e) => ((e as Record<string, unknown>).unknownEnvelopeField = 'x'))).not.toEqual([]);
  });
});

describe('scores API bodies against openapi.yml (where the ingestion endpoint is gone)', () => {
  interface Schema {
    type?: string;
    properties?: Record<string, { type?: string; $ref?: string; nullable?: boolean }>;
    required?: string[];
  }
  let schema: Schema;
  let bodies: Record<string, unknown>[];

  beforeAll(async () => {
    const openapi = YAML.parse(readFileSync(path.join(LF_DIR, 'openapi.yml'), 'utf8'), { maxAliasCount: -1 }) as {
      paths: Record<string, { post?: { requestBody?: { content: Record<string, { schema: { $ref: string } }> } } }>;
      components: { schemas: Record<string, Schema> };
    };
    const ref = openapi.paths['/api/public/scores']!.post!.requestBody!.content['application/json']!.schema.$ref;
    schema = openapi.components.schemas[ref.split('/').pop()!]!;
    // What the exporter sends when the ingestion endpoint answers 404: one body per request.
    bodies = [];
    const fake = (async (input: RequestInfo | URL, init?: RequestInit) => {
      const url = String(input);
      if (url.endsWith('/api/public/ingestion')) return new Response('', { status: 404 });
      if (url.endsWith('/api/public/scores')) bodies.push(JSON.parse(String(init?.body)) as Record<string, unknown>);
      return new Response('{"id":"x"}');
    }) as typeof fetch;
    const result = await createLangfuseExporter({ publicKey: 'pk', secretKey: 'sk', environment: 'production', fetch: fake }).export(SCORES);
    expect(result).toEqual({ ok: true });
  });

  it('sends one CreateScoreRequest per score', () => {
    expect(schema.type).toBe('object');
    expect(schema.required).toEqual(expect.arrayContaining(['name', 'value']));
    expect(bodies.map((b) => b.id)).toEqual(SCORES.map((s) => s.id));
  });

  it('uses only the request properties, each of its type, and sets the required ones', () => {
    const props = schema.properties!;
    for (const b of bodies) {
      for (const k of schema.required ?? []) expect(b).toHaveProperty(k);
      for (const [k, v] of Object.entries(b)) {
        expect(Object.keys(props)).toContain(k);
        const p = props[k]!;
        if (p.type === 'string') expect(typeof v).toBe('string');
        if (k === 'value') expect(['number', 'string']).toContain(typeof v);
      }
    }
  });
});

describe('the Langfuse OTLP body against opentelemetry.yml', () => {
  // opentelemetry.yml describes only part of OTLP. These standard OTLP fields (checked below
  // against the official Span proto) are what we send beyond it; receivers read them per OTLP.
  const EXTRA_SPAN_KEYS = [
    'traceState',
    'flags',
    'events',
    'links',
    'droppedAttributesCount',
    'droppedEventsCount',
    'droppedLinksCount',
  ];
  // OtelAttributeValue lists string, int, double and bool; arrays are standard OTLP AnyValue.
  const EXTRA_VALUE_KEYS = ['arrayValue'];

  let otel: FernFile;
  let body: Record<string, unknown>;
  let spanProto: protobuf.Type;

  const span = (over: Partial<SpanRecord>): SpanRecord => ({
    v: 1,
    rec: 'span',
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    flags: 1,
    name: 'chat-turn',
    kind: 'server',
    startMs: 1732140000000.25,
    endMs: 1732140000900.5,
    attrs: {},
    events: [],
    links: [],
    status: { code: 'unset' },
    resource: { attrs: { 'service.name': 'chat-web' }, scope: { name: 'edgetrace', version: '0.1.0' } },
    ...over,
  });

  beforeAll(async () => {
    otel = readYaml('opentelemetry.yml');
    const root = new protobuf.Root();
    root.resolvePath = (_o, target) => (path.isAbsolute(target) ? target : path.join(OTLP_DIR, target));
    root.loadSync('opentelemetry/proto/trace/v1/trace.proto');
    spanProto = root.lookupType('opentelemetry.proto.trace.v1.Span');

    let sent = '';
    const fake = (async (input: RequestInfo | URL, init?: RequestInit) => {
      if (String(input).endsWith('/otel/v1/traces')) sent = String(init?.body);
      return new Response('{}');
    }) as typeof fetch;
    const exporter = createLangfuseExporter({ publicKey: 'pk', secretKey: 'sk', fetch: fake, environment: 'production' });
    await exporter.export([
      span({
        remoteParent: true,
        parentId: 'a000000000000001',
        traceState: 'rojo=00f067aa0ba902b7',
        attrs: {
          'langfuse.trace.name': 'chat-turn',
          'langfuse.trace.tags': ['prod', 'web'],
          'user.id': 'u1',
          'session.id': 's1',
          'langfuse.observation.type': 'generation',
          'gen_ai.usage.input_tokens': 812,
          'gen_ai.usage.cost': 0.0123,
          'langfuse.observation.model.parameters': '{"temperature":0.7}',
        },
        events: [{ name: 'exception', timeMs: 1732140000500, attrs: { 'exception.message': 'x' }, droppedAttrs: 1 }],
        links: [{ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', flags: 1 }],
        status: { code: 'error', message: 'boom' },
        dropped: { attrs: 1, events: 2, links: 3 },
      }),
      span({ spanId: '00f067aa0ba902b8', parentId: '00f067aa0ba902b7', kind: 'client', status: { code: 'ok' } }),
    ]);
    body = JSON.parse(sent) as Record<string, unknown>;
  });

  const props = (name: string) => Object.keys(otel.types[name]!.properties ?? {});

  it('uses only keys from the request definition, OtelResourceSpan, OtelResource, OtelScopeSpan and OtelScope', () => {
    const reqProps = Object.keys(otel.service!.endpoints.exportTraces!.request!.body!.properties!);
    expect(reqProps).toContain('resourceSpans');
    for (const k of Object.keys(body)) expect(reqProps).toContain(k);
    for (const rs of body.resourceSpans as Record<string, unknown>[]) {
      for (const k of Object.keys(rs)) expect(props('OtelResourceSpan')).toContain(k);
      for (const k of Object.keys(rs.resource as object)) expect(props('OtelResource')).toContain(k);
      for (const ss of rs.scopeSpans as Record<string, unknown>[]) {
        for (const k of Object.keys(ss)) expect(props('OtelScopeSpan')).toContain(k);
        for (const k of Object.keys(ss.scope as object)) expect(props('OtelScope')).toContain(k);
      }
    }
  });

  it('uses only OtelSpan keys plus the listed standard OTLP fields on spans', () => {
    const allowed = new Set([...props('OtelSpan'), ...EXTRA_SPAN_KEYS]);
    const seen = new Set<string>();
    for (const rs of body.resourceSpans as { scopeSpans: { spans: Record<string, unknown>[] }[] }[])
      for (const ss of rs.scopeSpans)
        for (const s of ss.spans)
          for (const k of Object.keys(s)) {
            seen.add(k);
            expect(allowed.has(k), `span key ${k}`).toBe(true);
          }
    // The fixture exercises every extra, so the list stays honest.
    for (const k of EXTRA_SPAN_KEYS) expect(seen.has(k), `fixture emits ${k}`).toBe(true);
  });

  it('lists as extras only real OTLP Span fields that opentelemetry.yml leaves out', () => {
    for (const k of EXTRA_SPAN_KEYS) {
      expect(spanProto.fields[k], `Span.${k} in trace.proto`).toBeDefined();
      expect(props('OtelSpan')).not.toContain(k);
    }
  });

  it('writes attributes as OtelAttribute with OtelAttributeValue keys (plus arrays)', () => {
    const allowedValue = new Set([...props('OtelAttributeValue'), ...EXTRA_VALUE_KEYS]);
    const attrLists: { key: string; value: Record<string, unknown> }[][] = [];
    for (const rs of body.resourceSpans as Record<string, unknown>[]) {
      attrLists.push((rs.resource as { attributes: never }).attributes);
      for (const ss of rs.scopeSpans as { spans: { attributes: never }[] }[]) for (const s of ss.spans) attrLists.push(s.attributes);
    }
    for (const list of attrLists)
      for (const kv of list) {
        for (const k of Object.keys(kv)) expect(props('OtelAttribute')).toContain(k);
        for (const k of Object.keys(kv.value)) expect(allowedValue.has(k), `value key ${k}`).toBe(true);
      }
  });

  it('matches the types opentelemetry.yml gives for span fields', () => {
    const spans = (body.resourceSpans as { scopeSpans: { spans: Record<string, unknown>[] }[] }[])[0]!.scopeSpans[0]!.spans;
    const types = otel.types.OtelSpan!.properties!;
    for (const s of spans)
      for (const [k, v] of Object.entries(s)) {
        const t = types[k];
        if (!t) continue;
        const inner = typeOf(t).replace(/^optional<(.*)>$/, '$1');
        if (inner === 'string') expect(typeof v, k).toBe('string');
        if (inner === 'integer') expect(Number.isInteger(v), k).toBe(true);
        if (inner.startsWith('list<')) expect(Array.isArray(v), k).toBe(true);
      }
    const first = spans[0]!;
    expect(first.kind).toBe(2);
    expect(first.status).toEqual({ code: 2, message: 'boom' });
    expect(first.startTimeUnixNano).toBe('1732140000000250000');
    const env = (first.attributes as { key: string; value: { stringValue?: string } }[]).find((a) => a.key === 'langfuse.environment');
    expect(env?.value.stringValue).toBe('production');
  });
});
