import { createRequire } from 'node:module';
import type { SqliteDatabase } from '../../../src/server/collector/sqliteStore';

// better-sqlite3 ships no types; the store only needs the small SqliteDatabase interface.
const require = createRequire(import.meta.url);

/** A better-sqlite3 connection (in memory by default) typed as the store sees it. */
export const openDatabase = (path = ':memory:'): SqliteDatabase => {
  const Database = require('better-sqlite3') as new (path: string) => SqliteDatabase;
  return new Database(path);
};
