import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PGlite, types } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it, vi, type MockInstance } from 'vitest';
import { openDatabase, type Database } from './database.js';
import { parseBytea, PGLITE_TYPE_OPTIONS, serializeBytea } from './pglite-bytea.js';

// The embedded database's bytea conversion (pglite-bytea.ts) replaces PGlite's per-byte one: the
// same wire format both ways, values that own their buffer, and clear errors for what is not bytea.

const sizes = [0, 1, 255, 4096, 1024 * 1024 + 3];

describe('bytea for PGlite', () => {
  it("writes and reads what PGlite's own conversion does", () => {
    const pgliteSerialize = types.serializers[types.BYTEA]!;
    const pgliteParse = types.parsers[types.BYTEA]!;
    for (const n of [0, 1, 2, 17, 300]) {
      const bytes = randomBytes(n);
      const text = serializeBytea(bytes);
      expect(text).toBe(pgliteSerialize(bytes));
      expect(parseBytea(text)).toEqual(pgliteParse(text, types.BYTEA));
    }
  });

  it('serialises only the bytes of a view (a small Buffer sits in a shared pool)', () => {
    const pooled = Buffer.from('0123456789abcdef', 'utf8');
    expect(pooled.buffer.byteLength).toBeGreaterThan(pooled.length);
    expect(serializeBytea(pooled.subarray(2, 5))).toBe('\\x323334');
  });

  it('parses into a Uint8Array that owns its ArrayBuffer (transferable to a worker thread)', () => {
    const parsed = parseBytea('\\x00ff10');
    expect(parsed).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(parsed)).toBe(false);
    expect([...parsed]).toEqual([0, 255, 16]);
    expect(parsed.byteOffset).toBe(0);
    expect(parsed.buffer.byteLength).toBe(3);
  });

  it('rejects what is not bytea with a clear error', () => {
    expect(() => serializeBytea('abc')).toThrow('Invalid input for bytea type');
    expect(() => serializeBytea([1, 2, 3])).toThrow('Invalid input for bytea type');
    expect(() => parseBytea('abc\\000')).toThrow('bytea value is not in hex format');
    expect(() => parseBytea('\\x0g')).toThrow('bytea value is not valid hex');
  });

  describe('through a real PGlite', () => {
    let lite: PGlite;
    beforeAll(async () => {
      lite = await PGlite.create(PGLITE_TYPE_OPTIONS);
    }, 60_000);
    afterAll(async () => {
      await lite?.close();
    });

    it('round-trips values of every size, as a parameter and as a stored column', async () => {
      await lite.exec('CREATE TABLE b (n int, v bytea)');
      for (const n of sizes) {
        const bytes = randomBytes(n);
        const echoed = await lite.query<{ v: Uint8Array; len: number }>('SELECT $1::bytea AS v, length($1::bytea) AS len', [bytes]);
        expect(echoed.rows[0]!.len).toBe(n);
        expect(Buffer.from(echoed.rows[0]!.v).equals(bytes)).toBe(true);
        await lite.query('INSERT INTO b (n, v) VALUES ($1, $2)', [n, bytes.subarray(0)]);
        const stored = await lite.query<{ v: Uint8Array }>('SELECT v FROM b WHERE n = $1', [n]);
        expect(Buffer.from(stored.rows[0]!.v).equals(bytes)).toBe(true);
      }
    });
  });

  describe('the embedded database', () => {
    let dir: string;
    let db: Database;
    let serialize: MockInstance;
    let parse: MockInstance;
    beforeAll(async () => {
      // Watched before the database opens: PGlite copies the functions it is given at creation.
      serialize = vi.spyOn(PGLITE_TYPE_OPTIONS.serializers, types.BYTEA);
      parse = vi.spyOn(PGLITE_TYPE_OPTIONS.parsers, types.BYTEA);
      dir = mkdtempSync(path.join(tmpdir(), 'mbc-bytea-'));
      db = await openDatabase({ databaseUrl: undefined, dataDir: dir });
    }, 60_000);
    afterAll(async () => {
      vi.restoreAllMocks();
      await db?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('is opened with this conversion: a bytea parameter and result go through it', async () => {
      const bytes = randomBytes(70_000);
      const view = bytes.subarray(5, 60_005);
      const { rows } = await db.sql.query<{ v: Uint8Array }>('SELECT $1::bytea AS v', [view]);
      expect(Buffer.from(rows[0]!.v).equals(view)).toBe(true);
      expect(serialize).toHaveBeenCalledWith(view);
      expect(parse).toHaveBeenCalled();
    });

    it("Prisma reads bytea with it too, in and out of a transaction (its adapter passes a per-byte parser of its own)", async () => {
      const bytes = randomBytes(50_000);
      parse.mockClear();
      const [outside] = await db.prisma.$queryRaw<Array<{ v: Uint8Array }>>`SELECT ${bytes}::bytea AS v`;
      expect(Buffer.from(outside!.v).equals(bytes)).toBe(true);
      expect(parse).toHaveBeenCalledTimes(1);
      const [inside] = await db.prisma.$transaction((tx) => tx.$queryRaw<Array<{ v: Uint8Array }>>`SELECT ${bytes}::bytea AS v`);
      expect(Buffer.from(inside!.v).equals(bytes)).toBe(true);
      expect(parse).toHaveBeenCalledTimes(2);
    });
  });
});
