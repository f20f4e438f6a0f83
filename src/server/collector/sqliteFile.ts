import { builtin } from '../builtin';

/**
 * The SQLite store's file and the disk it lives on: room left for writes, whether the path still
 * names the open file, and SQLite's errors in words that say what to do about them.
 */

interface Fs {
  statSync(path: string, options?: { throwIfNoEntry: false }): { ino: number | bigint; dev: number | bigint } | undefined;
  statfsSync?(path: string): { bsize: number | bigint; blocks: number | bigint; bavail: number | bigint };
}

/**
 * Room the store leaves on its disk, at most: what a prune needs to free space (its chunks' WAL
 * frames, and a checkpoint that may first grow the file by the pages the WAL holds). A store that
 * filled its disk to the last byte could never prune again. A tenth of a smaller disk.
 */
export const RESERVE_BYTES = 64 * 1024 * 1024;

/** The file of an open database, watched. */
export interface DbFile {
  /**
   * Why a write should not go ahead, or undefined: less than the reserve is free on the disk,
   * counting `freeInFileBytes`, the pages a prune freed inside the file, which writes reuse first.
   */
  noRoom(freeInFileBytes: number): string | undefined;
  /** Why the path no longer names the file that is open (deleted, replaced), or undefined. */
  moved(): string | undefined;
}

const MB = 1024 * 1024;

/** Watches `path`, the file behind an open connection; undefined where there is no `node:fs`. */
export const watchDbFile = (path: string): DbFile | undefined => {
  const fs = builtin<Fs>('node:fs');
  const opened = fs?.statSync(path, { throwIfNoEntry: false });
  if (!fs || !opened) return undefined;
  const folder = path.replace(/[/\\][^/\\]*$/, '') || '.';
  return {
    noRoom(freeInFileBytes) {
      let s: ReturnType<NonNullable<Fs['statfsSync']>> | undefined;
      try {
        s = fs.statfsSync?.(folder);
      } catch {
        // The folder gone (its file too, which /health says): SQLite's own write error tells the rest.
        return undefined;
      }
      if (!s) return undefined;
      const reserve = Math.min(RESERVE_BYTES, (Number(s.blocks) * Number(s.bsize)) / 10);
      const room = Number(s.bavail) * Number(s.bsize) + freeInFileBytes;
      if (room >= reserve) return undefined;
      return `the disk holding ${path} has ${(room / MB).toFixed(1)} MB free (counting free pages in the file); the store stops writing below ${(reserve / MB).toFixed(0)} MB, which pruning needs: free some space, lower the retention, or move the database`;
    },
    moved() {
      const now = fs.statSync(path, { throwIfNoEntry: false });
      if (now && now.ino === opened.ino && now.dev === opened.dev) return undefined;
      return `the database file ${path} was ${now ? 'replaced' : 'deleted'} while open: what is stored now goes to the old file and is lost when the collector stops; restart it to open ${now ? 'the new file' : 'a new one'}`;
    },
  };
};

/**
 * `error` (from SQLite) with a hint where its own words leave the cause open, keeping its `code`
 * (and the original as `cause`); `error` itself otherwise.
 */
export const explainSqliteError = (error: unknown, path: string): unknown => {
  const e = error as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : '';
  const where = path ? ` ${path}` : ' the database';
  let hint: string | undefined;
  if (code.startsWith('SQLITE_BUSY') || /database is locked/i.test(message)) {
    hint = `another process may be using${where} (a second collector on the same file?)`;
  } else if (code === 'SQLITE_READONLY_DIRECTORY' || (code.startsWith('SQLITE_READONLY') && /directory/i.test(message))) {
    hint = `its folder is not writable: SQLite's WAL mode creates${where}-wal and${where}-shm beside the file`;
  } else if (code.startsWith('SQLITE_READONLY') || /readonly database/i.test(message)) {
    hint = `${where.trim()} or its folder is not writable (WAL mode also creates the -wal and -shm files beside it)`;
  } else if (code === 'SQLITE_FULL' || /disk is full/i.test(message)) {
    hint = `the disk holding${where} is full`;
  }
  if (!hint || !message) return error;
  return Object.assign(new Error(`${message}: ${hint}`, { cause: error }), { code });
};
