import { z } from 'zod';
import { registerMailboxReadRoutes } from '../http/routes/mailboxes.route.js';
import { registerSettingsRoutes } from '../http/routes/settings.route.js';
import { MailboxQueryService } from '../mailboxes/mailbox-query.service.js';
import { defineOps, OpsNotFoundError } from '../ops/ops-command.js';
import { PurgeRepository } from '../storage/purge.repository.js';
import { brandingPatchShape, normalizeBranding } from '../tenancy/tenant-branding.js';
import type { Core } from './core.js';
import type { ServiceModule } from './module.js';

/** Tenants, API keys, key rotation, audit verification and the mailbox read routes. */
export function tenancyModule(core: Core): ServiceModule {
  const mailboxQuery = new MailboxQueryService(core.mailboxes, core.dataKeys);
  const purgeReceipts = new PurgeRepository(core.prisma);
  const brandingPolicy = { production: core.config.production };
  return {
    name: 'tenancy',
    routes(registry) {
      registerSettingsRoutes(registry, { tenants: core.tenants, audit: core.audit, branding: { production: core.config.production } });
      registerMailboxReadRoutes(registry, {
        mailboxes: mailboxQuery,
        purges: {
          async forMailbox(tenantId, mailboxId) {
            const r = await purgeReceipts.latestReceiptForMailbox(tenantId, mailboxId);
            return r ? { purgeId: r.id, status: r.status, completedAt: r.completedAt?.toISOString() ?? null } : null;
          },
        },
      });
    },
    readiness: [
      {
        name: 'database',
        required: true,
        async check() {
          await core.db.sql.query('SELECT 1');
          return { status: 'ok' };
        },
      },
      {
        // The data keys (docs/security.md): without them nothing can be sealed or opened.
        name: 'keystore',
        required: true,
        async check() {
          await core.keystore.sql.query('SELECT 1');
          return { status: 'ok' };
        },
      },
      {
        name: 'queue',
        required: true,
        async check() {
          return (await core.jobs.ping()) ? { status: 'ok' } : { status: 'error', detail: 'job queue unreachable' };
        },
      },
    ],
    ops: [
      defineOps({
        name: 'tenants.create',
        summary: 'create a tenant and its first API key',
        input: z.strictObject({
          name: z.string().trim().min(1).max(200),
          allowedReturnOrigins: z.array(z.url()).max(50).optional(),
          retentionDays: z.number().int().min(1).max(3650).nullable().optional(),
          blockRemoteImages: z.boolean().optional(),
          ...brandingPatchShape(brandingPolicy),
        }),
        async run(input, ctx) {
          const tenant = await core.tenantService.create({ ...input, ...normalizeBranding(input, brandingPolicy) });
          const issued = await core.apiKeys.issue({ tenantId: tenant.id, name: 'default' });
          await core.audit.record({
            tenantId: tenant.id,
            actorType: 'ops',
            actorId: ctx.actorId,
            action: 'tenant.created',
            targetType: 'tenant',
            targetId: tenant.id,
            metadata: { apiKeyId: issued.record.id },
          });
          return { tenantId: tenant.id, name: tenant.name, displayName: tenant.displayName, apiKeyId: issued.record.id, apiKey: issued.key };
        },
      }),
      defineOps({
        name: 'tenants.list',
        summary: 'list tenants',
        input: z.strictObject({}),
        async run() {
          const tenants = await core.tenants.list();
          return tenants.map((t) => ({ tenantId: t.id, name: t.name, retentionDays: t.retentionDays, allowedReturnOrigins: t.allowedReturnOrigins, blockRemoteImages: t.blockRemoteImages, displayName: t.displayName, logoUrl: t.logoUrl, supportUrl: t.supportUrl, createdAt: t.createdAt.toISOString() }));
        },
      }),
      defineOps({
        name: 'tenants.update',
        summary: 'change a tenant’s allowed return origins, retention, remote-image blocking or hosted-page branding',
        input: z.strictObject({
          tenantId: z.string().min(1),
          allowedReturnOrigins: z.array(z.url()).max(50).optional(),
          retentionDays: z.number().int().min(1).max(3650).nullable().optional(),
          blockRemoteImages: z.boolean().optional(),
          ...brandingPatchShape(brandingPolicy),
        }),
        async run({ tenantId, ...input }, ctx) {
          const patch = { ...input, ...normalizeBranding(input, brandingPolicy) };
          const tenant = await core.tenants.update(tenantId, patch);
          if (!tenant) throw new OpsNotFoundError('tenant');
          await core.audit.record({ tenantId, actorType: 'ops', actorId: ctx.actorId, action: 'tenant.updated', targetType: 'tenant', targetId: tenantId, metadata: { fields: Object.keys(patch) } });
          return {
            tenantId: tenant.id,
            allowedReturnOrigins: tenant.allowedReturnOrigins,
            retentionDays: tenant.retentionDays,
            blockRemoteImages: tenant.blockRemoteImages,
            displayName: tenant.displayName,
            logoUrl: tenant.logoUrl,
            supportUrl: tenant.supportUrl,
          };
        },
      }),
      defineOps({
        name: 'apiKeys.create',
        summary: 'issue an API key for a tenant (or an admin key)',
        input: z.union([
          z.strictObject({ tenantId: z.string().min(1), name: z.string().trim().min(1).max(200).optional() }),
          z.strictObject({ admin: z.literal(true), name: z.string().trim().min(1).max(200).optional() }),
        ]),
        async run(input, ctx) {
          if ('tenantId' in input && !(await core.tenants.find(input.tenantId))) throw new OpsNotFoundError('tenant');
          const issued = await core.apiKeys.issue(input);
          await core.audit.record({
            tenantId: issued.record.tenantId,
            actorType: 'ops',
            actorId: ctx.actorId,
            action: 'api_key.created',
            targetType: 'api_key',
            targetId: issued.record.id,
            metadata: { scope: issued.record.scope },
          });
          return { apiKeyId: issued.record.id, tenantId: issued.record.tenantId, scope: issued.record.scope, apiKey: issued.key };
        },
      }),
      defineOps({
        name: 'apiKeys.revoke',
        summary: 'revoke an API key',
        input: z.strictObject({ apiKeyId: z.string().min(1) }),
        async run({ apiKeyId }, ctx) {
          const record = await core.apiKeyRepo.find(apiKeyId);
          if (!record || record.revokedAt) throw new OpsNotFoundError('API key', 'no active API key with that id');
          await core.apiKeys.revoke(apiKeyId, 'any');
          await core.audit.record({ tenantId: record.tenantId, actorType: 'ops', actorId: ctx.actorId, action: 'api_key.revoked', targetType: 'api_key', targetId: apiKeyId });
          return { apiKeyId, revoked: true };
        },
      }),
      defineOps({
        name: 'mailboxes.list',
        summary: 'list mailboxes across tenants (ops view: no addresses)',
        input: z.strictObject({
          tenantId: z.string().min(1).optional(),
          status: z.enum(['active', 'reauth_required', 'disconnecting', 'purged']).optional(),
        }),
        async run(input) {
          const out: Array<Record<string, unknown>> = [];
          let afterId: string | undefined;
          for (;;) {
            const rows = input.tenantId
              ? await core.mailboxes.listForTenant(input.tenantId, { limit: 500, ...(afterId ? { afterId } : {}), ...(input.status ? { status: input.status } : {}) })
              : await core.mailboxes.listAllUnscoped({ limit: 500, ...(afterId ? { afterId } : {}), ...(input.status ? { status: [input.status] } : {}) });
            // Addresses stay encrypted here: identifying a person is not needed to operate a mailbox.
            for (const m of rows) {
              out.push({ mailboxId: m.id, tenantId: m.tenantId, provider: m.provider, status: m.status, syncState: m.syncState, lastSyncedAt: m.lastSyncedAt?.toISOString() ?? null });
            }
            if (rows.length < 500) return out;
            afterId = rows[rows.length - 1]!.id;
          }
        },
      }),
      defineOps({
        name: 'keys.rotate',
        summary: 're-wrap every data key under the active master key',
        input: z.strictObject({}),
        async run(_input, ctx) {
          const result = await core.dataKeys.rotate((p) => ctx.progress(`scanned ${p.scanned}, re-wrapped ${p.rewrapped}`));
          await core.audit.record({
            actorType: 'ops',
            actorId: ctx.actorId,
            action: 'keys.rotated',
            metadata: { activeKekVersion: core.keyring.activeVersion, rewrapped: result.rewrapped, alreadyCurrent: result.alreadyCurrent, skipped: result.skipped },
          });
          return { activeKekVersion: core.keyring.activeVersion, ...result };
        },
      }),
      defineOps({
        name: 'audit.anchor',
        summary: 'append the current audit head, signed, to the anchor file (AUDIT_ANCHOR_FILE)',
        auditInvocation: false,
        input: z.strictObject({}),
        async run() {
          const head = await core.audit.anchor();
          return { anchored: head !== null, head, file: core.config.audit.anchorFile };
        },
      }),
      defineOps({
        name: 'audit.verify',
        summary: 'verify the audit log hash chain',
        auditInvocation: false,
        input: z.strictObject({ expectedHead: z.strictObject({ seq: z.number().int().positive(), hash: z.string().regex(/^[0-9a-f]{64}$/) }).optional() }),
        async run(input) {
          const result = await core.audit.verify(input.expectedHead ? { expectedHead: input.expectedHead } : {});
          // `anchor` is the head as `seq:hash`: keep it outside the database and pass it back as
          // `audit verify --head` to detect removal of trailing entries too.
          return result.ok ? { ...result, anchor: result.head ? `${result.head.seq}:${result.head.hash}` : null } : result;
        },
      }),
    ],
  };
}
