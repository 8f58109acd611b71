import { z } from 'zod';
import type { AuditService } from '../audit/audit.service.js';
import type { DataKeyService } from '../crypto/data-key.service.js';
import type { Keyring } from '../crypto/keyring.js';
import { defineOps, OpsNotFoundError, type OpsCommand } from '../ops/ops-command.js';
import type { ApiKeyRepository } from '../storage/api-key.repository.js';
import type { MailboxRepository } from '../storage/mailbox.repository.js';
import type { TenantRepository } from '../storage/tenant.repository.js';
import type { ApiKeyService } from './api-key.service.js';
import { brandingPatchShape, normalizeBranding, type BrandingPolicy } from './tenant-branding.js';
import type { TenantService } from './tenant.service.js';

export interface TenancyOpsDeps {
  tenants: TenantRepository;
  tenantService: TenantService;
  apiKeys: ApiKeyService;
  apiKeyRepo: ApiKeyRepository;
  mailboxes: MailboxRepository;
  dataKeys: DataKeyService;
  keyring: Pick<Keyring, 'activeVersion'>;
  audit: AuditService;
  /** AUDIT_ANCHOR_FILE, reported by `audit.anchor`. */
  anchorFile: string;
  branding: BrandingPolicy;
}

/** Tenants, API keys, the ops mailbox list, key rotation and the audit chain's anchor and verification. */
export function tenancyOps(deps: TenancyOpsDeps): OpsCommand[] {
  return [
    defineOps({
      name: 'tenants.create',
      summary: 'create a tenant and its first API key',
      input: z.strictObject({
        name: z.string().trim().min(1).max(200),
        allowedReturnOrigins: z.array(z.url()).max(50).optional(),
        retentionDays: z.number().int().min(1).max(3650).nullable().optional(),
        blockRemoteImages: z.boolean().optional(),
        ...brandingPatchShape(deps.branding),
      }),
      async run(input, ctx) {
        const tenant = await deps.tenantService.create({ ...input, ...normalizeBranding(input, deps.branding) });
        const issued = await deps.apiKeys.issue({ tenantId: tenant.id, name: 'default' });
        await deps.audit.record({
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
        const tenants = await deps.tenants.list();
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
        ...brandingPatchShape(deps.branding),
      }),
      async run({ tenantId, ...input }, ctx) {
        const patch = { ...input, ...normalizeBranding(input, deps.branding) };
        const tenant = await deps.tenants.update(tenantId, patch);
        if (!tenant) throw new OpsNotFoundError('tenant');
        await deps.audit.record({ tenantId, actorType: 'ops', actorId: ctx.actorId, action: 'tenant.updated', targetType: 'tenant', targetId: tenantId, metadata: { fields: Object.keys(patch) } });
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
        if ('tenantId' in input && !(await deps.tenants.find(input.tenantId))) throw new OpsNotFoundError('tenant');
        const issued = await deps.apiKeys.issue(input);
        await deps.audit.record({
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
        const record = await deps.apiKeyRepo.find(apiKeyId);
        if (!record || record.revokedAt) throw new OpsNotFoundError('API key', 'no active API key with that id');
        await deps.apiKeys.revoke(apiKeyId, 'any');
        await deps.audit.record({ tenantId: record.tenantId, actorType: 'ops', actorId: ctx.actorId, action: 'api_key.revoked', targetType: 'api_key', targetId: apiKeyId });
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
            ? await deps.mailboxes.listForTenant(input.tenantId, { limit: 500, ...(afterId ? { afterId } : {}), ...(input.status ? { status: input.status } : {}) })
            : await deps.mailboxes.listAllUnscoped({ limit: 500, ...(afterId ? { afterId } : {}), ...(input.status ? { status: [input.status] } : {}) });
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
        const result = await deps.dataKeys.rotate((p) => ctx.progress(`scanned ${p.scanned}, re-wrapped ${p.rewrapped}`));
        await deps.audit.record({
          actorType: 'ops',
          actorId: ctx.actorId,
          action: 'keys.rotated',
          metadata: { activeKekVersion: deps.keyring.activeVersion, rewrapped: result.rewrapped, alreadyCurrent: result.alreadyCurrent, skipped: result.skipped },
        });
        return { activeKekVersion: deps.keyring.activeVersion, ...result };
      },
    }),
    defineOps({
      name: 'audit.anchor',
      summary: 'append the current audit head, signed, to the anchor file (AUDIT_ANCHOR_FILE)',
      auditInvocation: false,
      input: z.strictObject({}),
      async run() {
        const head = await deps.audit.anchor();
        return { anchored: head !== null, head, file: deps.anchorFile };
      },
    }),
    defineOps({
      name: 'audit.verify',
      summary: 'verify the audit log hash chain',
      auditInvocation: false,
      input: z.strictObject({ expectedHead: z.strictObject({ seq: z.number().int().positive(), hash: z.string().regex(/^[0-9a-f]{64}$/) }).optional() }),
      async run(input) {
        const result = await deps.audit.verify(input.expectedHead ? { expectedHead: input.expectedHead } : {});
        // `anchor` is the head as `seq:hash`: keep it outside the database and pass it back as
        // `audit verify --head` to detect removal of trailing entries too.
        return result.ok ? { ...result, anchor: result.head ? `${result.head.seq}:${result.head.hash}` : null } : result;
      },
    }),
  ];
}
