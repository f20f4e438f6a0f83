import { newId } from '../lib/ids';
import { now as defaultNow } from '../lib/now';
import { reportInternal } from '../lib/reportInternal';
import { DEFAULT_SESSION_TIMEOUT_MS } from './options';
import type { Stop } from './index';

/**
 * The part of `Storage` the session uses, by shape: these declarations then compile in projects
 * without the DOM lib (Node, Workers), which import the same entry.
 */
export interface SessionStorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/** Options for {@link instrumentSession}. */
export interface SessionOptions {
  /** A new session starts after this long without any trace. Default 30 minutes. */
  inactivityTimeoutMs?: number | undefined;
  /** sessionStorage key. Default `"edgetrace.session"`. */
  storageKey?: string | undefined;
  /** Where the session lives. Default `sessionStorage`; memory only when that is missing or refuses. */
  storage?: SessionStorageLike | undefined;
  /** Clock in epoch ms. */
  now?: (() => number) | undefined;
}

/** What is kept in storage: plain data, one small JSON string. */
interface SessionRecord {
  id: string;
  lastMs: number;
  userId?: string;
}

// Storage writes are synchronous; within this much of the last one, activity is only noted in
// memory. An inactivity timeout of minutes does not notice a few seconds.
const WRITE_EVERY_MS = 5_000;

const state: {
  on: boolean;
  record?: SessionRecord;
  userId?: string;
  /** `setUser()` was called since the last `instrumentSession()`: its user (or none) wins over the stored one. */
  userGiven?: boolean;
  timeoutMs: number;
  key: string;
  storage?: SessionStorageLike;
  now: () => number;
  writtenMs: number;
  /** The stored text this copy last read or wrote: another text there is another copy's. */
  seen?: string | null;
} = { on: false, timeoutMs: DEFAULT_SESSION_TIMEOUT_MS, key: 'edgetrace.session', now: defaultNow, writtenMs: 0 };

const pageStorage = (): SessionStorageLike | undefined => {
  try {
    // Reading the property itself throws in sandboxed frames and with storage blocked.
    const s = (globalThis as { sessionStorage?: Storage }).sessionStorage;
    return s && typeof s.getItem === 'function' ? s : undefined;
  } catch {
    return undefined;
  }
};

const write = (t: number): void => {
  state.writtenMs = t;
  try {
    const text = JSON.stringify(state.record);
    state.storage?.setItem(state.key, text);
    state.seen = text;
  } catch {
    // Quota or blocked storage: the session lives on in memory for this page.
  }
};

/** The stored session record; with `changed`, only when another copy stored it since this one looked. */
const read = (changed?: boolean): SessionRecord | undefined => {
  try {
    const text = state.storage?.getItem(state.key);
    if (changed && text === state.seen) return undefined;
    state.seen = text;
    if (!text) return undefined;
    const r = JSON.parse(text) as Partial<SessionRecord> | null;
    if (r && typeof r.id === 'string' && r.id && typeof r.lastMs === 'number') {
      return { id: r.id, lastMs: r.lastMs, ...(typeof r.userId === 'string' && r.userId ? { userId: r.userId } : {}) };
    }
  } catch {
    // Unreadable or foreign data under our key: start afresh.
  }
  return undefined;
};

/**
 * Keeps a session id (`session.id` on every trace, Langfuse's sessions view) in sessionStorage:
 * one per tab, surviving reloads, renewed after `inactivityTimeoutMs` without a trace. The user
 * set with {@link setUser} is kept with it. Call the returned function to stop adding them.
 */
export const instrumentSession = (opts: SessionOptions = {}): Stop => {
  try {
    state.timeoutMs = opts.inactivityTimeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS;
    state.key = opts.storageKey ?? 'edgetrace.session';
    state.now = opts.now ?? defaultNow;
    state.storage = opts.storage ?? pageStorage();
    const r = (state.record = read());
    state.writtenMs = 0;
    // A user set (or cleared, at sign-out) before init() is the page's word; else the session's
    // stored user carries over the reload.
    if (!state.userGiven) {
      // Without storage (a sandboxed frame), nothing comes back: the user in memory stays.
      if (r?.userId) state.userId = r.userId;
    } else if (r && r.userId !== state.userId) storeUser(r);
    state.userGiven = false;
    state.on = true;
  } catch (error) {
    reportInternal(error);
  }
  return () => {
    state.on = false;
  };
};

/** Puts the user in memory (or none) on the session record `r`, and stores it. */
const storeUser = (r: SessionRecord): void => {
  if (state.userId) r.userId = state.userId;
  else delete r.userId;
  write(state.now());
};

/** Starts a new session at `t`, keeping the user, stores it, and returns its id. */
const renew = (t: number): string => {
  const r: SessionRecord = (state.record = { id: newId(), lastMs: t });
  if (state.userId) r.userId = state.userId;
  write(t);
  return r.id;
};

/**
 * The current session id, renewed when the session was inactive too long, and notes activity.
 * `undefined` when session tracking is off.
 */
export const touchSession = (): string | undefined => {
  if (!state.on) return undefined;
  const t = state.now();
  // Another copy of edgetrace on the page (a script tag beside the app's bundle) keeps the same
  // record: its newSession() or setUser() is taken up here, not written over with ours. Only a
  // text this copy did not read or write counts: storage that refuses writes (a full quota)
  // would otherwise undo this copy's own changes with what it holds.
  const stored = read(true);
  if (stored) {
    state.record = stored;
    state.userId = stored.userId;
  }
  const r = state.record;
  if (!r || t - r.lastMs > state.timeoutMs) return renew(t);
  r.lastMs = t;
  if (t - state.writtenMs >= WRITE_EVERY_MS) write(t);
  return r.id;
};

/**
 * Starts a new session now, keeping the user, and returns its id: for a "new chat" button, or
 * after sign-in when the old session should not continue. `undefined` when session tracking is off.
 */
export const newSession = (): string | undefined => {
  try {
    return state.on ? renew(state.now()) : undefined;
  } catch (error) {
    reportInternal(error);
    return undefined;
  }
};

/** The current session id without noting activity, or `undefined` when session tracking is off. */
export const getSessionId = (): string | undefined => (state.on ? state.record?.id : undefined);

/**
 * Sets the end user (`user.id`, Langfuse's users view) for every trace the page starts from now
 * on; `undefined` clears it (sign-out). Kept with the session, so a reload keeps it too.
 */
export const setUser = (userId: string | undefined): void => {
  try {
    state.userId = typeof userId === 'string' && userId ? userId : undefined;
    state.userGiven = true;
    if (state.record) storeUser(state.record);
    if (state.userId) for (const fn of userListeners) fn(state.userId);
  } catch (error) {
    reportInternal(error);
  }
};

const userListeners = new Set<(userId: string) => void>();

/** Calls `fn` with each user {@link setUser} sets (not a sign-out); returns the unsubscribe. */
export const onUser = (fn: (userId: string) => void): (() => void) => {
  userListeners.add(fn);
  return () => void userListeners.delete(fn);
};

/** The user set with {@link setUser}, if any. */
export const getUser = (): string | undefined => state.userId;
