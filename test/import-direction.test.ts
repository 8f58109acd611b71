import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { checkImports, formatViolation } from '../scripts/import-rules.mjs';

const repoSrc = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src');
const tempDirs: string[] = [];

/** Writes `files` (path under src/ → content) into a fresh temp tree and returns its src dir. */
async function tree(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'import-rules-'));
  tempDirs.push(root);
  const src = path.join(root, 'src');
  for (const [rel, content] of Object.entries(files)) {
    const full = path.join(src, rel);
    await mkdir(path.dirname(full), { recursive: true });
    await writeFile(full, content);
  }
  return src;
}

afterEach(async () => {
  await Promise.all(tempDirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

describe('import direction (ARCHITECTURE.md)', () => {
  it('passes a tree whose arrows point down', async () => {
    const src = await tree({
      'http/app.ts': "import { sync } from '../sync/sync.service.js';\nexport const app = sync;\n",
      'sync/sync.service.ts':
        "import type { MailProvider } from '../providers/mail-provider.port.js';\nimport { repo } from '../storage/repo.js';\nexport const sync = repo;\n",
      'providers/mail-provider.port.ts': 'export interface MailProvider { id: string }\n',
      'storage/repo.ts': "import { PrismaClient } from '../generated/prisma/client.js';\nimport pg from 'pg';\nexport const repo = [PrismaClient, pg];\n",
      'generated/prisma/client.ts': "import * as runtime from '@prisma/client/runtime/client';\nexport const PrismaClient = runtime;\n",
      'bootstrap/container.ts': "import pg from 'pg';\nimport { app } from '../http/app.js';\nexport const c = [pg, app];\n",
      'cli/main.ts': "import { c } from '../bootstrap/container.js';\nexport default c;\n",
      'sandbox/google.ts': "import type { MailProvider } from '../providers/mail-provider.port.js';\nexport type X = MailProvider;\n",
    });
    expect(await checkImports(src)).toEqual([]);
  });

  it('reports each violation with file, line, specifier and rule', async () => {
    const src = await tree({
      'providers/google/gmail.adapter.ts': [
        "import { z } from 'zod';",
        '// import { ignored } from "../../http/app.js" — comments are not imports',
        "import { repo } from '../../storage/repo.js';",
        "export { app } from '../../http/app.js';",
        "export const later = () => import('../../sync/sync.service.js');",
      ].join('\n'),
      'http/app.ts': "import { run } from '../cli/main.js';\nexport const app = run;\n",
      'storage/repo.ts': 'export const repo = 1;\n',
      'sync/sync.service.ts': "import { PrismaClient } from '@prisma/client';\nexport const s = PrismaClient;\n",
      'cli/main.ts': 'export const run = 1;\n',
      'sandbox/graph.ts': "import { repo } from '../storage/repo.js';\nexport const g = repo;\n",
      'crypto/keyring.ts': "import { audit } from '../audit/audit-log.js';\nexport const k = audit;\n",
      'audit/audit-log.ts': 'export const audit = 1;\n',
      'send/reply.service.ts': "import { app } from '../http/app.js';\nexport const r = app;\n",
    });
    const lines = (await checkImports(src)).map(formatViolation);
    expect(lines).toEqual([
      'src/crypto/keyring.ts:1 imports ../audit/audit-log.js (base room crypto may import only base rooms (providers, storage, crypto, scan, observability, config, retry))',
      'src/http/app.ts:1 imports ../cli/main.js (nothing imports src/cli)',
      'src/providers/google/gmail.adapter.ts:3 imports ../../storage/repo.js (providers never import storage)',
      'src/providers/google/gmail.adapter.ts:4 imports ../../http/app.js (base room providers must not import upper room http)',
      'src/providers/google/gmail.adapter.ts:4 imports ../../http/app.js (http is the top layer: only bootstrap, cli import it)',
      'src/providers/google/gmail.adapter.ts:4 imports ../../http/app.js (providers never import http)',
      'src/providers/google/gmail.adapter.ts:5 imports ../../sync/sync.service.js (base room providers must not import upper room sync)',
      'src/sandbox/graph.ts:1 imports ../storage/repo.js (sandbox is standalone (may import only sandbox, observability, config, providers))',
      'src/send/reply.service.ts:1 imports ../http/app.js (http is the top layer: only bootstrap, cli import it)',
      'src/sync/sync.service.ts:1 imports @prisma/client (only src/storage imports @prisma/client)',
    ]);
  });

  it('allows provider SDKs in the provider rooms and the sandbox, and nowhere else (tests included)', async () => {
    const sdkImports = [
      "import { OAuth2Client } from 'google-auth-library';",
      "import { gmail } from '@googleapis/gmail';",
      "import { ConfidentialClientApplication } from '@azure/msal-node';",
      "import { Client } from '@microsoft/microsoft-graph-client';",
      "import type { Message } from '@microsoft/microsoft-graph-types';",
      "import { GaxiosError } from 'gaxios';",
    ].join('\n');
    const src = await tree({
      'providers/google/gmail.adapter.ts': sdkImports,
      'sandbox/google/server.ts': sdkImports,
      'sync/push-intake.service.ts': "import { OAuth2Client } from 'google-auth-library';\nimport { z } from 'zod';\n",
      'lifecycle/teardown.test.ts': "import { GaxiosError } from 'gaxios';\n",
      'oauth/msal.ts': "import type { ICachePlugin } from '@azure/msal-node';\n",
      'bootstrap/wire.ts': "import { gmail } from '@googleapis/gmail';\nimport type { Message } from '@microsoft/microsoft-graph-types';\n",
    });
    expect((await checkImports(src)).map(formatViolation)).toEqual([
      'src/bootstrap/wire.ts:1 imports @googleapis/gmail (only src/providers and src/sandbox import provider SDK @googleapis/gmail)',
      'src/bootstrap/wire.ts:2 imports @microsoft/microsoft-graph-types (only src/providers and src/sandbox import provider SDK @microsoft/microsoft-graph-types)',
      'src/lifecycle/teardown.test.ts:1 imports gaxios (only src/providers and src/sandbox import provider SDK gaxios)',
      'src/oauth/msal.ts:1 imports @azure/msal-node (only src/providers and src/sandbox import provider SDK @azure/msal-node)',
      'src/sync/push-intake.service.ts:1 imports google-auth-library (only src/providers and src/sandbox import provider SDK google-auth-library)',
    ]);
  });

  it('keeps Prisma types in storage: a storage re-export of a Prisma name is refused outside storage, a storage-declared type is not', async () => {
    const src = await tree({
      'generated/prisma/client.ts': 'export const Prisma = {};\nexport class PrismaClient {}\n',
      'storage/database.ts': [
        "import type { Prisma } from '../generated/prisma/client.js';",
        "export type { PrismaClient } from '../generated/prisma/client.js';",
        "export { Prisma } from '../generated/prisma/client.js';",
        'export type DbTransaction = Prisma;',
      ].join('\n'),
      // Re-exported again by a second storage module: still a Prisma name.
      'storage/types.ts': "export { Prisma as P } from './database.js';\nimport { PrismaClient } from './database.js';\nexport { PrismaClient as Client };\n",
      'storage/everything.ts': "export * from '../generated/prisma/client.js';\n",
      'storage/repo.ts': "import type { Prisma } from './database.js';\nexport type Row = Prisma;\n",
      'audit/audit.service.ts': "import type { Prisma } from '../storage/database.js';\nexport type T = Prisma;\n",
      'events/outbox.service.ts': "import type { DbTransaction } from '../storage/database.js';\nimport type { Row } from '../storage/repo.js';\nexport type T = [DbTransaction, Row];\n",
      'send/sender.ts': "import type { P, Client } from '../storage/types.js';\nexport type T = [P, Client];\n",
      'webhooks/all.ts': "import * as db from '../storage/everything.js';\nexport type T = typeof db;\n",
      'oauth/port.ts': "export type { Prisma } from '../storage/database.js';\n",
      'bootstrap/core.ts': "import type { Prisma, PrismaClient } from '../storage/database.js';\nexport type T = [Prisma, PrismaClient];\n",
      'sync/sync.test.ts': "import type { Prisma } from '../storage/database.js';\nexport type T = Prisma;\n",
    });
    expect((await checkImports(src)).map(formatViolation)).toEqual([
      'src/audit/audit.service.ts:1 imports ../storage/database.js (Prisma is a Prisma type re-exported by storage: only src/storage uses Prisma types (declare a storage type instead))',
      'src/oauth/port.ts:1 imports ../storage/database.js (Prisma is a Prisma type re-exported by storage: only src/storage uses Prisma types (declare a storage type instead))',
      'src/send/sender.ts:1 imports ../storage/types.js (P is a Prisma type re-exported by storage: only src/storage uses Prisma types (declare a storage type instead))',
      'src/send/sender.ts:1 imports ../storage/types.js (Client is a Prisma type re-exported by storage: only src/storage uses Prisma types (declare a storage type instead))',
      'src/webhooks/all.ts:1 imports ../storage/everything.js (everything is a Prisma type re-exported by storage: only src/storage uses Prisma types (declare a storage type instead))',
    ]);
  });

  it('enforces the middle layers: composition root, sandbox and one-way arrows between rooms', async () => {
    const src = await tree({
      'bootstrap/core.ts': "import { s } from '../sandbox/google.js';\nimport { x } from '../sync/sync.service.js';\nexport const core = [s, x];\n",
      'cli/main.ts': "import { core } from '../bootstrap/core.js';\nimport { s } from '../sandbox/google.js';\nexport default [core, s];\n",
      'sandbox/google.ts': 'export const s = 1;\n',
      'sync/sync.service.ts': "import { core } from '../bootstrap/core.js';\nimport { ingest } from '../ingest/ingest.service.js';\nexport const x = [core, ingest];\n",
      'ingest/ingest.service.ts': "import { s } from '../sandbox/google.js';\nimport { later } from '../sync/later.js';\nexport const ingest = [s, later];\n",
      'ingest/ingest.test.ts': "import { s } from '../sandbox/google.js';\nimport { x } from '../sync/sync.service.js';\nexport const t = [s, x];\n",
      'sync/later.ts': 'export const later = 1;\n',
    });
    expect((await checkImports(src)).map(formatViolation)).toEqual([
      'src/ingest/ingest.service.ts:1 imports ../sandbox/google.js (only bootstrap and cli start the sandbox (other rooms reach it through the provider ports))',
      'src/ingest/ingest.service.ts:2 imports ../sync/later.js (rooms ingest, sync import each other: arrows point one way)',
      'src/sync/sync.service.ts:1 imports ../bootstrap/core.js (only src/cli starts the composition root (bootstrap))',
      'src/sync/sync.service.ts:2 imports ../ingest/ingest.service.js (rooms ingest, sync import each other: arrows point one way)',
    ]);
  });

  it('each rule fails when broken, one at a time, in an otherwise clean tree', async () => {
    const clean = {
      'providers/google/a.adapter.ts': "import { OAuth2Client } from 'google-auth-library';\nexport const a = OAuth2Client;\n",
      'storage/database.ts': "import type { Prisma } from '../generated/prisma/client.js';\nexport { Prisma } from '../generated/prisma/client.js';\nexport type DbTransaction = Prisma;\n",
      'generated/prisma/client.ts': 'export const Prisma = {};\n',
      'sync/s.service.ts': "import type { DbTransaction } from '../storage/database.js';\nimport { a } from '../providers/google/a.adapter.js';\nexport const s = a as unknown as DbTransaction;\n",
      'bootstrap/core.ts': "import { s } from '../sync/s.service.js';\nexport const core = s;\n",
    };
    expect(await checkImports(await tree(clean))).toEqual([]);
    const cases: Array<[Record<string, string>, string]> = [
      [{ 'sync/s.service.ts': "import { OAuth2Client } from 'google-auth-library';\nexport const s = OAuth2Client;\n" }, 'only src/providers and src/sandbox import provider SDK google-auth-library'],
      [{ 'sync/s.service.ts': "import type { Prisma } from '../storage/database.js';\nexport const s = 1 as unknown as Prisma;\n" }, 'Prisma is a Prisma type re-exported by storage: only src/storage uses Prisma types (declare a storage type instead)'],
      [{ 'sync/s.service.ts': "import { core } from '../bootstrap/core.js';\nexport const s = core;\n" }, 'only src/cli starts the composition root (bootstrap)'],
      [
        { 'ingest/i.ts': "import { s } from '../sync/s.service.js';\nexport const i = s;\n", 'sync/s.service.ts': "import { i } from '../ingest/i.js';\nexport const s = i;\n" },
        'rooms ingest, sync import each other: arrows point one way',
      ],
      [{ 'sandbox/x.ts': 'export const x = 1;\n', 'sync/s.service.ts': "import { x } from '../sandbox/x.js';\nexport const s = x;\n" }, 'only bootstrap and cli start the sandbox (other rooms reach it through the provider ports)'],
    ];
    for (const [change, rule] of cases) {
      expect([...new Set((await checkImports(await tree({ ...clean, ...change }))).map((v) => v.rule))]).toEqual([rule]);
    }
  });

  it('finds no violation in the real src tree', async () => {
    const violations = await checkImports(repoSrc);
    expect(violations.map(formatViolation)).toEqual([]);
  });
});
