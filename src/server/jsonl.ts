import type { Exporter, ExportResult } from '../protocol';
import { builtin } from './builtin';
import { checkOptions, fail } from '../config';
import type { AllKeys } from '../lib/checkKeys';

/** Options for {@link createJsonlExporter}. */
export interface JsonlExporterOptions {
  /** File to append to; its folder is created. Default `.edgetrace/spans.jsonl`. */
  path?: string | undefined;
}

const JSONL_LIST = ['path'] as const;
const JSONL_KEYS: AllKeys<JsonlExporterOptions, typeof JSONL_LIST> = JSONL_LIST;

/** The part of `node:fs/promises` this exporter uses. */
interface FsPromises {
  appendFile(path: string, data: string, encoding: 'utf8'): Promise<void>;
  mkdir(path: string, opts: { recursive: true }): Promise<unknown>;
}

/** Default file of the `jsonl` mode. */
export const DEFAULT_JSONL_PATH = '.edgetrace/spans.jsonl';

// Runtimes without node:fs only fail when this exporter is used, not when the entry is loaded.
const loadFs = async (): Promise<FsPromises> => {
  const fs = builtin<FsPromises>('node:fs/promises');
  if (!fs) throw new Error('no process.getBuiltinModule("node:fs/promises")');
  return fs;
};

const folderOf = (path: string): string => {
  const i = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
  return i > 0 ? path.slice(0, i) : '';
};

/**
 * Creates an exporter that appends each record as one line of JSON (the plain `SpanRecord` or
 * `ScoreRecord`) to a file, in Node, Deno and Bun. Batches are written in order, one at a time.
 * A runtime without `node:fs` gets a permanent failure; a write error is retryable.
 */
export const createJsonlExporter = (opts: JsonlExporterOptions = {}): Exporter => {
  const call = 'createJsonlExporter()';
  checkOptions(call, opts, JSONL_KEYS);
  if (opts.path !== undefined && (typeof opts.path !== 'string' || !opts.path)) fail(call, 'path', 'a non-empty file path', opts.path);
  const path = opts.path ?? DEFAULT_JSONL_PATH;
  let fs: Promise<FsPromises> | undefined;
  let ready: Promise<unknown> | undefined;
  let last: Promise<unknown> = Promise.resolve();

  const write = async (text: string): Promise<ExportResult> => {
    let mod: FsPromises;
    try {
      mod = await (fs ??= loadFs());
    } catch (error) {
      fs = undefined;
      return { ok: false, retryable: false, reason: `jsonl: node:fs is not available in this runtime (${String(error)})` };
    }
    try {
      const folder = folderOf(path);
      await (ready ??= folder ? mod.mkdir(folder, { recursive: true }) : Promise.resolve());
      await mod.appendFile(path, text, 'utf8');
      return { ok: true };
    } catch (error) {
      ready = undefined;
      return { ok: false, retryable: true, reason: `jsonl: cannot write ${path}: ${error instanceof Error ? error.message : String(error)}` };
    }
  };

  return {
    export(records) {
      if (records.length === 0) return Promise.resolve({ ok: true });
      let text = '';
      try {
        for (const r of records) text += JSON.stringify(r) + '\n';
      } catch (error) {
        return Promise.resolve({ ok: false, retryable: false, reason: `jsonl: cannot encode: ${String(error)}` });
      }
      // One write at a time keeps lines of concurrent batches whole and in order.
      const result = last.then(() => write(text));
      last = result;
      return result;
    },
    async shutdown() {
      await last;
    },
  };
};
