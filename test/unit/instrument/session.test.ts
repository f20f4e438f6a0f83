import { afterEach, describe, expect, it, vi } from 'vitest';
import { getSessionId, getUser, instrumentSession, newSession, setUser, touchSession } from '../../../src/instrument/session';

const memoryStorage = () => {
  const map = new Map<string, string>();
  return { map, getItem: (k: string) => map.get(k) ?? null, setItem: (k: string, v: string) => void map.set(k, v) };
};

/** The module as a page loading it again (a reload) gets it: no user, no session in memory. */
const freshModule = async () => {
  vi.resetModules();
  return import('../../../src/instrument/session');
};

describe('session', () => {
  let stop: (() => void) | undefined;
  afterEach(() => {
    stop?.();
    setUser(undefined);
  });

  it("takes up what another copy of the SDK on the page stored (its newSession(), setUser()) instead of writing over it", async () => {
    let t = 1_000_000;
    const storage = memoryStorage();
    const other = await freshModule();
    stop = instrumentSession({ storage, now: () => t });
    const stopOther = other.instrumentSession({ storage, now: () => t });
    const first = touchSession();
    expect(other.touchSession()).toBe(first);
    other.setUser('u-42');
    const renewed = other.newSession();
    expect(renewed).not.toBe(first);
    expect(touchSession()).toBe(renewed);
    expect(getUser()).toBe('u-42');
    // Past the interval at which activity is written: still the other copy's record.
    t += 10_000;
    expect(touchSession()).toBe(renewed);
    expect(JSON.parse(storage.map.get('edgetrace.session')!)).toMatchObject({ id: renewed, userId: 'u-42', lastMs: t });
    stopOther();
    other.setUser(undefined);
  });

  it('keeps its own changes when storage stops taking writes (a full quota)', () => {
    let t = 1_000_000;
    const storage = memoryStorage();
    stop = instrumentSession({ storage, now: () => t });
    setUser('alice');
    const first = touchSession();
    storage.setItem = () => {
      throw new Error('QuotaExceededError');
    };
    // Sign-out, and a new session: neither is stored, and what is stored must not come back.
    setUser(undefined);
    const second = newSession();
    t += 10_000;
    expect(touchSession()).toBe(second);
    expect(second).not.toBe(first);
    expect(getUser()).toBeUndefined();
  });

  it('keeps one id while active and renews it after the inactivity timeout', () => {
    let t = 1_000_000;
    const storage = memoryStorage();
    stop = instrumentSession({ storage, inactivityTimeoutMs: 60_000, now: () => t });
    const first = touchSession();
    expect(first).toMatch(/^[A-Za-z0-9_-]{21}$/);
    t += 59_000;
    expect(touchSession()).toBe(first);
    t += 59_000; // active a minute ago at most: still the same session
    expect(touchSession()).toBe(first);
    t += 60_001;
    const second = touchSession();
    expect(second).not.toBe(first);
    expect(JSON.parse(storage.map.get('edgetrace.session')!).id).toBe(second);
  });

  it('continues the stored session after a reload, unless it has expired', () => {
    let t = 5_000_000;
    const storage = memoryStorage();
    stop = instrumentSession({ storage, now: () => t });
    const id = touchSession();
    stop();
    t += 10 * 60_000;
    stop = instrumentSession({ storage, now: () => t });
    expect(getSessionId()).toBe(id);
    expect(touchSession()).toBe(id);
    stop();
    t += 31 * 60_000;
    stop = instrumentSession({ storage, now: () => t });
    expect(touchSession()).not.toBe(id);
  });

  it('keeps the user with the session and clears it with setUser(undefined)', async () => {
    const storage = memoryStorage();
    stop = instrumentSession({ storage });
    touchSession();
    setUser('u-42');
    expect(getUser()).toBe('u-42');
    expect(JSON.parse(storage.map.get('edgetrace.session')!).userId).toBe('u-42');
    stop();
    setUser(undefined);
    stop = instrumentSession({ storage });
    expect(getUser()).toBeUndefined();
    setUser('u-7');
    stop();
    stop = undefined;
    // A reload: a fresh module, with no user in memory, reads it back from storage.
    const reloaded = await freshModule();
    storage.map.set('edgetrace.session', JSON.stringify({ id: 'abc', lastMs: Date.now(), userId: 'u-7' }));
    reloaded.instrumentSession({ storage })();
    expect(reloaded.getUser()).toBe('u-7');
  });

  it('keeps the user through init(), stop(), init() where nothing can be stored', async () => {
    const session = await freshModule();
    const refusing = { getItem: () => null, setItem: () => { throw new Error('blocked'); } };
    session.setUser('bob');
    session.instrumentSession({ storage: refusing })();
    session.instrumentSession({ storage: refusing })();
    expect(session.getUser()).toBe('bob');
  });

  it('takes a user set or cleared before init() over the stored one, and stores it for the next reload', async () => {
    const storage = memoryStorage();
    storage.map.set('edgetrace.session', JSON.stringify({ id: 'abc', lastMs: Date.now(), userId: 'carol' }));
    // Signed out before the page called init(): carol must not come back.
    const signedOut = await freshModule();
    signedOut.setUser(undefined);
    signedOut.instrumentSession({ storage })();
    expect(signedOut.getUser()).toBeUndefined();
    expect(JSON.parse(storage.map.get('edgetrace.session')!).userId).toBeUndefined();
    // Another user signed in before init(): stored, so a reload that sets none keeps bob.
    const signedIn = await freshModule();
    signedIn.setUser('bob');
    signedIn.instrumentSession({ storage })();
    expect(signedIn.getUser()).toBe('bob');
    const reloaded = await freshModule();
    reloaded.instrumentSession({ storage })();
    expect(reloaded.getUser()).toBe('bob');
  });

  it('works in memory when storage throws, and ignores foreign data under its key', () => {
    const throwing = {
      getItem: () => {
        throw new Error('SecurityError');
      },
      setItem: () => {
        throw new Error('QuotaExceededError');
      },
    };
    stop = instrumentSession({ storage: throwing });
    const id = touchSession();
    expect(id).toBeTruthy();
    expect(touchSession()).toBe(id);
    stop();
    const storage = memoryStorage();
    storage.map.set('edgetrace.session', '{not json');
    stop = instrumentSession({ storage });
    expect(touchSession()).toBeTruthy();
  });

  it('gives no session id when stopped', () => {
    stop = instrumentSession({ storage: memoryStorage() });
    touchSession();
    stop();
    expect(touchSession()).toBeUndefined();
    expect(getSessionId()).toBeUndefined();
  });

  it('newSession() starts another session at once, keeps the user and stores it', () => {
    const storage = memoryStorage();
    expect(newSession()).toBeUndefined(); // tracking off: nothing to renew
    stop = instrumentSession({ storage });
    const first = touchSession();
    setUser('u-9');
    const second = newSession();
    expect(second).toMatch(/^[A-Za-z0-9_-]{21}$/);
    expect(second).not.toBe(first);
    expect(getSessionId()).toBe(second);
    expect(touchSession()).toBe(second);
    expect(JSON.parse(storage.map.get('edgetrace.session')!)).toMatchObject({ id: second, userId: 'u-9' });
  });
});
