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

  it('finds no violation in the real src tree', async () => {
    const violations = await checkImports(repoSrc);
    expect(violations.map(formatViolation)).toEqual([]);
  });
});
