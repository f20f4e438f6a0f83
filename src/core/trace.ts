import type { ObservationType, SpanKind } from '../protocol';
import { endWaiting, follows, kNext, kT, markCancelled, Span, type SpanOptions, type TraceShared } from './span';
import { reportInternal } from '../lib/reportInternal';
import { isTime } from '../lib/now';
import { setOwn } from '../lib/setOwn';
import * as A from './semconv';
import { withMembers, type BaggageEntry } from '../propagation/baggage';

/** Longest text value of trace metadata that every span carries; Langfuse drops longer ones. */
const MAX_SHARED_CHARS = 200;

/** Options for `createTrace()`. Every field is optional. */
export interface TraceOptions {
  /** Trace name (`langfuse.trace.name`) and its root span's name. Default `"trace"`. */
  name?: string | undefined;
  /** End user (`user.id`): Langfuse's users view. */
  userId?: string | undefined;
  /** Session that groups traces (`session.id`), e.g. one chat. */
  sessionId?: string | undefined;
  tags?: string[] | undefined;
  /**
   * Trace metadata (`langfuse.trace.metadata.<key>`), on the root and, for entries of at most 200
   * characters, on every span of the trace; on a trace that continues a remote parent, its root
   * span's own (`langfuse.observation.metadata.<key>`), as with `addMetadata()`.
   */
  metadata?: Record<string, unknown> | undefined;
  /** Overrides the tracer's release for this trace. */
  release?: string | undefined;
  /** Overrides the tracer's environment for this trace. */
  environment?: string | undefined;
  /**
   * Makes the trace viewable in Langfuse by anyone with its link (`langfuse.trace.public`), e.g. to
   * share a playground run. Default false. Like the name and metadata, left to the page's root on
   * a trace that continues a remote parent; `update({ public })` sets it there.
   */
  public?: boolean | undefined;
  input?: unknown | undefined;
  /** Continue a remote trace: the parsed incoming `traceparent`/`tracestate`. */
  parent?: import('../propagation/traceparent').SpanContext | undefined;
  /**
   * W3C baggage members, added to the tracer's (`baggage` option); see `setBaggage()`. A handler
   * passes on what came in: `extract(request.headers).baggage`, entries with their properties.
   */
  baggage?: Record<string, string | BaggageEntry> | undefined;
  /** Root span kind; a server handler uses `server`. Default `internal`. */
  kind?: SpanKind | undefined;
  /** Root observation type. Default `span`. */
  type?: ObservationType | undefined;
  attributes?: Record<string, unknown> | undefined;
  startMs?: number | undefined;
  /** Links of the root span to other spans, e.g. the trace that caused this one. */
  links?: SpanOptions['links'] | undefined;
}

/**
 * A trace: the root span of one unit of work (a chat turn, a request), carrying the trace-level
 * fields Langfuse shows (name, user, session, tags, metadata). Spans under it share its trace id.
 */
export class Trace extends Span {
  /** Not for apps: use `tracer.createTrace()`. */
  constructor(t: TraceShared, name: string | undefined, opts: TraceOptions, parent: ConstructorParameters<typeof Span>[3]) {
    // Span's constructor applies kind, type, start time, attributes and input.
    super(t, typeof name === 'string' && name ? name : 'trace', opts, parent);
    if (opts.userId !== undefined) this.setUser(opts.userId);
    if (opts.sessionId !== undefined) this.setSession(opts.sessionId);
    if (Array.isArray(opts.tags)) this.addTag(...opts.tags);
    // Also unsampled: a backend may record a trace the page does not.
    if (opts.baggage) this.setBaggage(opts.baggage);
    if (!this.isRecording) return;
    const root = this.isTraceRoot();
    // The name as the span's constructor cleaned it.
    if (root) {
      this.store(A.TRACE_NAME, this.name);
      this.share(A.TRACE_NAME);
    }
    const cfg = t.core.cfg;
    if (typeof opts.environment === 'string' && opts.environment) t.environment = opts.environment;
    const env = opts.environment ?? cfg.environment;
    const release = opts.release ?? (root ? cfg.release : undefined);
    if (env) this.write(A.ENVIRONMENT, env);
    if (release) this.putShared(A.RELEASE, release);
    if (opts.metadata) this.addMetadata(opts.metadata);
    if (root && opts.public === true) this.putShared(A.TRACE_PUBLIC, true);
  }

  /** @internal Sets a trace-level attribute on the root (while it runs) and for every span to copy. */
  putShared(key: string, value: unknown): void {
    this.put(key, value);
    this.share(key);
  }

  /**
   * @internal Keeps `key`, a trace-level attribute, for every span of the trace to copy when it
   * ends (see `finalAttrs()`): as this span now stores it, when that is a number, a boolean or
   * text of at most {@link MAX_SHARED_CHARS} characters (an object is stored as its JSON text).
   * Langfuse's own SDKs propagate metadata with the same bound; longer values stay on the root,
   * so a trace's payload does not repeat on every span.
   */
  share(key: string): void {
    const kept = this.attrs[key];
    const shared = (this[kT].shared ??= {});
    if (kept === undefined || Array.isArray(kept) || (typeof kept === 'string' && kept.length > MAX_SHARED_CHARS)) delete shared[key];
    else setOwn(shared, key, kept);
  }

  /** @internal Trace metadata is also kept for every span (see `share()`). */
  override putMetadata(prefix: string, metadata: Record<string, unknown> | string, value?: unknown): this {
    return super.putMetadata(prefix, metadata, value, prefix === A.TRACE_METADATA && this.isRecording ? (key, v) => this.putShared(key, v) : undefined);
  }

  /**
   * @internal Whether this is the trace's root: not when it continues a remote parent (a server
   * handling a page's request). Langfuse takes trace-level attributes (name, release, input,
   * output) from whichever span carries them, so a continued trace leaves them to the root, in the
   * process that started the trace, unless `update()` sets them; its scores name its span.
   */
  override isTraceRoot(): boolean {
    return !this.remoteParent;
  }

  /**
   * @internal A continued trace's metadata is its root's, in the process that started it (the
   * page's), as its name and input are: here `addMetadata()` adds to this span, and `update()` to
   * the trace.
   */
  override metadataPrefix(): string {
    return this.isTraceRoot() ? A.TRACE_METADATA : A.OBSERVATION_METADATA;
  }

  /** Sets the end user (`user.id`) on every span of this trace that has not ended yet. */
  setUser(userId: string): this {
    if (typeof userId === 'string' && userId) this[kT].userId = userId;
    return this;
  }

  /** Sets the session (`session.id`) on every span of this trace that has not ended yet. */
  setSession(sessionId: string): this {
    if (typeof sessionId === 'string' && sessionId) this[kT].sessionId = sessionId;
    return this;
  }

  /**
   * Sets W3C baggage members, or removes them with `undefined`: the trace's outgoing requests
   * carry them in a `baggage` header to the same origins that get `traceparent` (same-origin and
   * `propagateTo` in a page), for the app's backends to read with `extract()`; `withTracing`
   * passes what came in on to the handler's own calls. Members are not recorded on spans. At
   * most 64 members; the header keeps those that fit in 8,192 bytes.
   */
  setBaggage(members: Record<string, string | BaggageEntry | undefined>): this {
    try {
      // A new object each time: the tracer's own is shared by every trace.
      const t = this[kT];
      t.baggage = withMembers(t.baggage, members);
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  /** The trace's baggage members (values only): the tracer's, what came in, and what was set. */
  get baggage(): Record<string, string> {
    const out: Record<string, string> = Object.create(null);
    for (const [key, entry] of Object.entries(this[kT].baggage ?? {})) out[key] = entry.value;
    return out;
  }

  /**
   * Updates trace-level fields; fields left out are unchanged. Spans of the trace that end later
   * carry the new name, tags, `public` flag, release, environment and short metadata too (and
   * later scores the environment); those already ended keep what they had.
   * After the root span has ended, only the user, session, tags and environment still change (for
   * spans still open, and scores still to come).
   */
  update(fields: Omit<TraceOptions, 'parent' | 'kind' | 'type' | 'startMs' | 'attributes'> & { output?: unknown }): this {
    try {
      if (fields.name) {
        this.updateName(fields.name);
        // The name as updateName() cleaned it, as the constructor writes it.
        this.putShared(A.TRACE_NAME, this.name);
      }
      if (fields.userId !== undefined) this.setUser(fields.userId);
      if (fields.sessionId !== undefined) this.setSession(fields.sessionId);
      if (Array.isArray(fields.tags)) this.addTag(...fields.tags);
      if (fields.baggage) this.setBaggage(fields.baggage);
      if (fields.metadata) this.putMetadata(A.TRACE_METADATA, fields.metadata);
      if (typeof fields.public === 'boolean') this.putShared(A.TRACE_PUBLIC, fields.public);
      // A request's own release or environment (a canary), chosen once the handler knows it.
      if (typeof fields.release === 'string' && fields.release) this.putShared(A.RELEASE, fields.release);
      const env = fields.environment;
      if (typeof env === 'string' && env) {
        this[kT].environment = env;
        this.put(A.ENVIRONMENT, env);
      }
      // Trace-level, asked for by name: also on a trace that continues a remote parent.
      if (fields.input !== undefined) this.io(A.OBSERVATION_INPUT, fields.input, 'input', A.TRACE_INPUT);
      if (fields.output !== undefined) this.io(A.OBSERVATION_OUTPUT, fields.output, 'output', A.TRACE_OUTPUT);
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  /** Records the trace's input (shown on the trace and its root observation; only the observation's when it continues a remote parent). */
  override setInput(input: unknown): this {
    this.io(A.OBSERVATION_INPUT, input, 'input', this.isTraceRoot() ? A.TRACE_INPUT : undefined);
    return this;
  }

  /** Records the trace's output (as `setInput()`). */
  override setOutput(output: unknown): this {
    this.io(A.OBSERVATION_OUTPUT, output, 'output', this.isTraceRoot() ? A.TRACE_OUTPUT : undefined);
    return this;
  }

  /**
   * Ends the trace: spans of it still open are ended now and marked `edgetrace.unfinished`, then
   * the root. Safe to call more than once.
   */
  finish(endMs?: number): void {
    this.end(endMs);
  }

  /** Same as `finish()`. */
  override end(endMs?: number): void {
    if (this.isEnded) return;
    try {
      const end = isTime(endMs) ? endMs : this[kT].core.now();
      this.endOpen(end);
      this.endRoot(end);
    } catch (error) {
      reportInternal(error);
    }
  }

  /**
   * @internal Ends the root span only, leaving spans of the trace that are still open to end on
   * their own. Returns whether any are open; `endOpen()` ends them later.
   */
  endRoot(endMs?: number): boolean {
    if (this.isEnded) return false;
    super.end(endMs);
    return this[kT].head !== undefined;
  }

  /**
   * @internal Ends the spans of the trace still open, at `end`, marked `edgetrace.unfinished`;
   * also as cancelled (`cancelled`: the client went away and took their work with it).
   */
  endOpen(end: number, cancelled?: boolean): void {
    // Taken first: ending one span may end others (a request's follow, the generation it holds),
    // which leave the list as this goes through it.
    const open: Span[] = [];
    for (let span = this[kT].head; span; span = span[kNext]) open.push(span);
    for (const span of open) {
      // A request whose body is still followed ends through that follow: complete, when its
      // stream gave its last event (an app that stopped reading there), else unfinished.
      // A generation that only waited for a stream object's request to start ends at its callback's end.
      if (span === this || span.isEnded || follows.settle?.(span) || endWaiting(span)) continue;
      span.put(A.UNFINISHED, true);
      if (cancelled) markCancelled(span);
      span.end(end);
    }
  }
}
