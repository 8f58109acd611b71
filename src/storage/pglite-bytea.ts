import { types, type PGlite, type ParserOptions, type QueryOptions, type SerializerOptions, type Transaction } from '@electric-sql/pglite';

/**
 * bytea to and from PGlite's text protocol without a JavaScript loop per byte.
 *
 * The embedded database runs in this process, on the event loop. PGlite 0.4's own bytea
 * serialiser builds one string per byte (`Array.from(bytes).map(b => b.toString(16)…).join('')`)
 * and its parser calls `parseInt` per byte pair: for the blob chunks, encrypted contents and
 * participant rows of a large message that is hundreds of milliseconds of event-loop time per
 * megabyte (plus the garbage), which held `/healthz` for over a second while ingesting the
 * pathological messages of test/integration/ingest-event-loop.test.ts. Node's hex codec does the
 * same conversion natively. Same wire format: `\x` followed by two lowercase hex digits per byte.
 * Writes through Prisma use the serialiser too. Prisma's PGlite adapter (pglite-prisma-adapter)
 * passes its own per-byte bytea parser with every query, which would win over these:
 * `forPrismaAdapter` hands it a PGlite whose queries use `parseBytea` instead.
 */
export function serializeBytea(value: unknown): string {
  if (!(value instanceof Uint8Array)) throw new Error('Invalid input for bytea type');
  return `\\x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}`;
}

/**
 * A bytea column's text (`\x` + hex, Postgres' default `bytea_output`) as a Uint8Array that owns
 * its ArrayBuffer (never a view into Node's shared pool, so it can be transferred to a worker).
 */
export function parseBytea(text: string): Uint8Array {
  if (!text.startsWith('\\x')) throw new Error('bytea value is not in hex format (bytea_output must be hex)');
  const bytes = new Uint8Array((text.length - 2) >>> 1);
  const written = Buffer.from(bytes.buffer).write(text.slice(2), 'hex');
  if (written !== bytes.length) throw new Error('bytea value is not valid hex');
  return bytes;
}

/** PGlite options for every embedded database the service opens (PGlite.create(dir, options)). */
export const PGLITE_TYPE_OPTIONS: { serializers: SerializerOptions; parsers: ParserOptions } = {
  serializers: { [types.BYTEA]: serializeBytea },
  parsers: { [types.BYTEA]: parseBytea },
};

/**
 * `q` with its `query` (and, for a PGlite, the `query` of its transactions) reading bytea columns
 * with the embedded database's parser (`parseBytea`), whatever parsers the caller passes;
 * everything else as it is.
 */
function withByteaParser<T extends Pick<Transaction, 'query'>>(q: T): T {
  const parse = PGLITE_TYPE_OPTIONS.parsers[types.BYTEA]!;
  return new Proxy(q, {
    get(target, prop) {
      if (prop === 'query') {
        return (text: string, params?: unknown[], options?: QueryOptions) =>
          target.query(text, params, { ...options, parsers: { ...options?.parsers, [types.BYTEA]: parse } });
      }
      if (prop === 'transaction' && 'transaction' in target) {
        const lite = target as unknown as PGlite;
        return <R>(fn: (tx: Transaction) => Promise<R>) => lite.transaction((tx) => fn(withByteaParser(tx)));
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/**
 * The PGlite to give Prisma's adapter: the same database and connection, its queries and those of
 * its transactions reading bytea with `parseBytea` (the adapter's own parser goes byte by byte).
 */
export function forPrismaAdapter(lite: PGlite): PGlite {
  return withByteaParser(lite);
}
