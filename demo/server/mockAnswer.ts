/**
 * What the mock model says: a short answer assembled from canned sentences that fit the prompt,
 * split into token-sized pieces. No model, no network: the point is the timing and the trace.
 */

/** A seeded random source in [0, 1) (mulberry32), so temperature 0 gives the same answer each time. */
export const seededRandom = (seed: number): (() => number) => {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};

/** A 32-bit hash of a string (FNV-1a). */
export const hashText = (text: string): number => {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
};

const TOPICS: { match: RegExp; sentences: string[] }[] = [
  {
    match: /trace|span|waterfall|tree/i,
    sentences: [
      'A trace is one unit of work, and each span inside it is a timed step with a parent.',
      'Here the click, the generation, the fetch and the server handler all share one trace id, so they land in one tree.',
      'The W3C traceparent header carries that id from the page to the server.',
      'Open the waterfall to see page spans and server spans on one timeline.',
    ],
  },
  {
    match: /latenc|slow|fast|first token|ttft|speed|time/i,
    sentences: [
      'Time to first token is what a person feels: it is the gap before anything appears.',
      'The page marks it on the generation the moment the first server-sent event arrives.',
      'After that, decoding speed decides how long the rest takes.',
      'The stats panel keeps p50 and p95 per span name, so one slow run does not hide in an average.',
    ],
  },
  {
    match: /cost|price|token|usage|budget/i,
    sentences: [
      'Cost comes from usage: the final event of the stream reports input and output tokens.',
      'The page multiplies them by the price table it was given, per model.',
      'Output tokens usually cost several times more than input tokens.',
      'Per-model totals in the stats panel show where the money goes.',
    ],
  },
  {
    match: /offline|network|service worker|outbox|deliver|retry|lost|lose/i,
    sentences: [
      'Finished spans go to a service worker, which keeps them in IndexedDB until the collector says yes.',
      'When the network is down, it retries with backoff and jitter instead of dropping anything.',
      'Switch the link off in the delivery panel, send a prompt, and watch the queue grow.',
      'Switch it back on and the backlog goes out in one or two requests.',
    ],
  },
  {
    match: /langfuse|otel|opentelemetry|collector|jaeger|tempo|export/i,
    sentences: [
      'Everything leaves as OTLP/HTTP JSON, so any OpenTelemetry receiver can take it.',
      'The local collector stores spans in SQLite and can relay them to Langfuse with a key that stays on the server.',
      'A page never needs a secret key: it only talks to your own collector.',
    ],
  },
];

const GENERIC = [
  'This answer comes from a mock model that streams tokens at a realistic pace.',
  'Each word you see arrived as its own server-sent event.',
  'Try another model to compare first-token latency and cost.',
  'Make the model fail on purpose and see how errors show up in the trace.',
  'Give it a thumbs up or down: that becomes a score on this trace.',
  'Every run in this tab shares one session id, so the viewer can group them.',
];

const pick = <T>(items: readonly T[], n: number, random: () => number): T[] => {
  const pool = [...items];
  const out: T[] = [];
  while (out.length < n && pool.length) out.push(pool.splice(Math.floor(random() * pool.length), 1)[0]!);
  return out;
};

/** Options of {@link composeAnswer}. */
export interface AnswerInput {
  prompt: string;
  system: string;
  /** 0 gives the same answer for the same prompt; higher values vary it more. */
  temperature: number;
}

/** A short answer that fits the prompt, shaped a little by the system prompt. */
export const composeAnswer = ({ prompt, system, temperature }: AnswerInput): string => {
  const seed = hashText(`${system}\n${prompt}`);
  const random = temperature <= 0 ? seededRandom(seed) : seededRandom(seed ^ Math.floor(Math.random() * 0xffffffff));
  const topics = TOPICS.filter((t) => t.match.test(prompt));
  const detailed = /detail|thorough|elaborate|long/i.test(system);
  const brief = !detailed && /brief|concise|short|terse/i.test(system);
  const count = brief ? 2 : detailed ? 12 : 3 + Math.min(2, Math.floor(random() * (1 + temperature)));
  const fitting = topics.flatMap((t) => t.sentences);
  const sentences = detailed
    ? [...pick(fitting, count, random), ...pick(GENERIC, count, random)].slice(0, count)
    : topics.length
      ? topics.flatMap((t) => pick(t.sentences, Math.ceil(count / topics.length), random)).slice(0, count)
      : pick(GENERIC, count, random);
  const quoted = prompt.trim().replace(/\s+/g, ' ');
  const opener = quoted ? `You asked: "${quoted.length > 60 ? `${quoted.slice(0, 57)}..."` : `${quoted}"`}` : 'You sent an empty prompt.';
  if (/bullet|list/i.test(system)) return `${opener}\n\n${sentences.map((s) => `- ${s}`).join('\n')}`;
  return `${opener} ${sentences.join(' ')}`;
};

/**
 * Splits text into token-sized pieces the way a tokenizer roughly does: a word with its leading
 * space, long words in chunks of up to six characters. Joining the pieces gives the text back.
 */
export const toTokens = (text: string): string[] => text.match(/\s*[^\s]{1,6}|\s+$/g) ?? [];

/** Roughly how many tokens a prompt costs (four characters a token, plus a little per message). */
export const countPromptTokens = (messages: readonly { content: string }[]): number =>
  messages.reduce((n, m) => n + 4 + Math.ceil(m.content.length / 4), 2);
