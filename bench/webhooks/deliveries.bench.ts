// Webhook delivery throughput: deliveries per second to a local receiver, with one and with two
// `worker` processes against one Postgres database.
//   DATABASE_URL=postgresql://root@127.0.0.1:5432/postgres npx tsx bench/webhooks/deliveries.bench.ts [events]
// Each phase uses a fresh tenant with one endpoint and `events` message.received events (the
// payload is decrypted and built at send time, as in production). The clock runs from the first
// event committed to the last delivery recorded as delivered.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createCore, type Core } from '../../src/bootstrap/core.js';
import { loadConfig } from '../../src/config/config.js';
import { ENDPOINT_SECRET_AAD } from '../../src/webhooks/webhook-endpoint.service.js';
import { generateWebhookSecret } from '../../src/webhooks/webhook-secret.js';
import { newId } from '../../src/storage/ids.js';
import { createTestDatabase } from '../../test/helpers/postgres.js';
import { emit, seedMailbox, seedMessage, startReceiver } from '../../test/integration/webhooks-seed.js';

const EVENTS = Number(process.argv[2] ?? 1000);
const root = fileURLToPath(new URL('../..', import.meta.url));
if (!process.env.DATABASE_URL) {
  console.error('set DATABASE_URL (a Postgres server; a fresh database is created and dropped)');
  process.exit(1);
}

const db = await createTestDatabase();
const env: Record<string, string> = {
  NODE_ENV: 'test',
  DATABASE_URL: db.url,
  ENCRYPTION_KEYS: `1:${randomBytes(32).toString('base64')}`,
  WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
  LOG_LEVEL: 'info',
  PORT: '0',
  // Tunables pass through (e.g. WEBHOOK_ENDPOINT_CONCURRENCY=16 to make the worker the bottleneck).
  ...Object.fromEntries(Object.entries(process.env).filter(([k, v]) => k.startsWith('WEBHOOK_') && k !== 'WEBHOOK_ALLOWED_HOSTS' && v !== undefined)),
};
const core = await createCore(loadConfig({ ...env, LOG_LEVEL: 'warn' }), { command: 'bench' });
const receiver = await startReceiver(() => 204);

function startWorker(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['bin/mailbox-connector.js', 'worker'], { cwd: root, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('workers started')) resolve(child);
    });
    child.stderr!.on('data', (b: Buffer) => process.stderr.write(b));
    child.once('exit', (code) => reject(new Error(`worker exited with ${code}`)));
  });
}

async function phase(core: Core, workers: number): Promise<number> {
  const tenant = await core.tenants.create({ name: `bench ${workers}` });
  const endpointId = newId('webhookEndpoint');
  const secretEnc = await core.dataKeys.encryptFor({ type: 'tenant', id: tenant.id }, generateWebhookSecret(), ENDPOINT_SECRET_AAD(endpointId));
  await core.prisma.webhookEndpoint.create({ data: { id: endpointId, tenantId: tenant.id, url: receiver.url, secretEnc: new Uint8Array(secretEnc) } });
  const mbx = await seedMailbox(core, tenant.id);
  const msg = await seedMessage(core, tenant.id, mbx.id, { text: 'x'.repeat(4000) });
  const children = await Promise.all(Array.from({ length: workers }, () => startWorker()));
  try {
    const started = performance.now();
    for (let i = 0; i < EVENTS; i += 10) {
      const n = Math.min(10, EVENTS - i);
      await emit(core, Array.from({ length: n }, () => ({ tenantId: tenant.id, mailboxId: mbx.id, type: 'message.received' as const, refs: { messageId: msg.id } })));
    }
    for (;;) {
      const delivered = await core.prisma.webhookDelivery.count({ where: { tenantId: tenant.id, status: 'delivered' } });
      if (delivered >= EVENTS) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const seconds = (performance.now() - started) / 1000;
    return EVENTS / seconds;
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)))));
  }
}

try {
  const cfg = loadConfig(env).webhooks;
  console.log(`webhooks bench: ${EVENTS} message.received events, one endpoint, local receiver (204), per-endpoint limit ${cfg.endpointConcurrency}, ${cfg.workerConcurrency} attempts per worker`);
  const one = await phase(core, 1);
  console.log(`1 worker process : ${one.toFixed(0)} deliveries/s`);
  const two = await phase(core, 2);
  console.log(`2 worker processes: ${two.toFixed(0)} deliveries/s`);
} finally {
  await receiver.close();
  await core.close();
  await db.drop();
}
