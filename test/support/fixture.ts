import { after, before } from 'node:test';
import { createTestDatabase, type TestDatabase } from './database.js';
import { startTestInstance, type TestInstance } from './instance.js';

/** A test file's world: one fresh database and its instances, ready inside the tests. */
export interface Fixture {
  db: TestDatabase;
  /** The first instance. */
  app: TestInstance;
  /** The first and second instance, for tests across instances. */
  a: TestInstance;
  b: TestInstance;
  apps: TestInstance[];
}

/**
 * Register before/after hooks that give the file a fresh database and `count` instances on it
 * (with `env` settings), and tear them down at the end.
 */
export function useInstances(options: { count?: number; env?: Record<string, string> } = {}): Fixture {
  const fixture = {} as Fixture;
  before(async () => {
    fixture.db = await createTestDatabase();
    fixture.apps = await Promise.all(Array.from({ length: options.count ?? 1 }, () => startTestInstance(fixture.db.url, options.env)));
    [fixture.a, fixture.b] = fixture.apps as [TestInstance, TestInstance];
    fixture.app = fixture.a;
  });
  after(async () => {
    await Promise.all(fixture.apps.map((instance) => instance.stop()));
    await fixture.db.drop();
  });
  return fixture;
}
