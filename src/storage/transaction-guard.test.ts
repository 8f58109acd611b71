import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from './database.js';
import { QueryOutsideTransactionError } from './transaction-guard.js';

// The real embedded database (PGlite, one connection), where the mistake this guard catches
// used to hang until Prisma's transaction timeout.
let dir: string;
let db: Database;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'tx-guard-'));
  db = await openDatabase({ databaseUrl: undefined, dataDir: dir, guardTransactions: true });
  await db.sql.exec('CREATE TABLE guard_t (id int PRIMARY KEY)');
}, 60_000);

afterAll(async () => {
  await db?.close();
  rmSync(dir, { recursive: true, force: true });
});

const count = async () => Number((await db.sql.query<{ n: string }>('SELECT count(*) AS n FROM guard_t')).rows[0]!.n);

describe('transaction guard (embedded database)', () => {
  it('refuses at once a main-client, raw or job-queue query made from inside an open transaction, and the transaction rolls back', async () => {
    const started = Date.now();
    const conn = db.jobQueueConnection as { db: { executeSql(text: string, values: unknown[]): Promise<unknown> } };
    const attempts: Array<[string, () => Promise<unknown>]> = [
      ['prisma.$queryRaw', () => db.prisma.$queryRaw`SELECT 1`],
      ['prisma.tenant', () => db.prisma.tenant.findMany()],
      ['prisma.$transaction', () => db.prisma.$transaction(async () => 1)],
      ['sql.query', () => db.sql.query('SELECT 1')],
      ['job queue', () => conn.db.executeSql('SELECT $1::int', [1])],
      ['session.query', async () => (await db.session()).query('SELECT 1')],
    ];
    for (const [name, attempt] of attempts) {
      const outcome = db.prisma.$transaction(async (tx) => {
        await tx.$executeRaw`INSERT INTO guard_t VALUES (1)`;
        await attempt();
      });
      await expect(outcome, name).rejects.toBeInstanceOf(QueryOutsideTransactionError);
      await expect(outcome).rejects.toThrow(/inside an open transaction: use the transaction client \(tx\)/);
    }
    expect(await count()).toBe(0);
    // Fail fast: nothing waited for Prisma's 5 s transaction timeout.
    expect(Date.now() - started).toBeLessThan(4_000);
  });

  it('lets queries from other requests wait their turn, and work continuing after the commit run', async () => {
    let afterCommit: Promise<number> | undefined;
    let release!: () => void;
    let opened!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const open = new Promise<void>((r) => (opened = r));
    const tx = db.prisma.$transaction(async (t) => {
      await t.$executeRaw`INSERT INTO guard_t VALUES (2)`;
      // Scheduled inside the callback, runs once the transaction has committed.
      afterCommit = tx.then(() => count());
      opened();
      await gate;
    });
    await open;
    // Another request, started outside the transaction while it is open: it waits for the
    // connection and then sees the committed row; no error.
    const other = db.prisma.$queryRaw<Array<{ n: bigint }>>`SELECT count(*) AS n FROM guard_t`.then((rows) => Number(rows[0]!.n));
    await new Promise((r) => setTimeout(r, 50));
    release();
    await tx;
    expect(await other).toBe(1);
    expect(await afterCommit).toBe(1);
    await db.sql.query('DELETE FROM guard_t');
  });
});
