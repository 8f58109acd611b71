import { z } from 'zod';
import type { AuditService } from '../../audit/audit.service.js';
import type { TenantRecord, TenantRepository } from '../../storage/tenant.repository.js';
import { brandingFieldSchema, brandingPatchShape, normalizeBranding, type BrandingPolicy } from '../../tenancy/tenant-branding.js';
import { NotFoundError } from '../api-error.js';
import { commonErrors, type RouteRegistry } from '../route-registry.js';

export const tenantSettingsSchema = z
  .object({
    object: z.literal('settings'),
    blockRemoteImages: z.boolean().meta({ description: 'Serve `safeHtml` with remote (http/https) images turned off: `<img data-blocked-src="…">` (tracking pixels)' }),
    // The output side of the branding fields: the same descriptions, as stored (normalized).
    displayName: brandingFieldSchema('displayName', { production: true }),
    logoUrl: brandingFieldSchema('logoUrl', { production: true }),
    supportUrl: brandingFieldSchema('supportUrl', { production: true }),
  })
  .meta({ id: 'TenantSettings' });

function settingsBody(tenant: TenantRecord) {
  return { object: 'settings' as const, blockRemoteImages: tenant.blockRemoteImages, displayName: tenant.displayName, logoUrl: tenant.logoUrl, supportUrl: tenant.supportUrl };
}

/**
 * The tenant's own settings, for its API key (ops can set the same through `tenants update`).
 * Only display settings live here: retention and return origins are an operator's decision.
 */
export function registerSettingsRoutes(routes: RouteRegistry, deps: { tenants: Pick<TenantRepository, 'find' | 'update'>; audit: Pick<AuditService, 'record'>; branding: BrandingPolicy }): void {
  routes.add({
    method: 'get',
    path: '/v1/settings',
    operationId: 'getSettings',
    summary: 'The tenant’s settings',
    description:
      '`blockRemoteImages`: whether `safeHtml` is served with remote images turned off (tracking pixels). `displayName`, `logoUrl`, `supportUrl`: the branding of the hosted connect pages your customers see (null = not set). Change them with `PATCH /v1/settings`.',
    tags: ['Settings'],
    auth: 'tenant',
    responses: { 200: { description: 'The settings', schema: tenantSettingsSchema }, ...commonErrors },
    async handler({ principal }) {
      const tenant = await deps.tenants.find(principal.tenantId);
      if (!tenant) throw new NotFoundError('settings');
      return { status: 200, body: settingsBody(tenant) };
    },
  });

  routes.add({
    method: 'patch',
    path: '/v1/settings',
    operationId: 'updateSettings',
    summary: 'Change the tenant’s settings',
    description:
      'Send only the fields to change. `blockRemoteImages` applies to mail already stored: reads follow at once, webhook bodies built within 5 seconds. The branding fields (`displayName`, `logoUrl`, `supportUrl`; null removes one) apply to the next hosted page shown; a value that breaks a rule is `400 validation_error` with `details.field` naming it, and nothing is changed. Audited.',
    tags: ['Settings'],
    auth: 'tenant',
    body: z.strictObject({ blockRemoteImages: z.boolean().optional(), ...brandingPatchShape(deps.branding) }),
    responses: { 200: { description: 'The updated settings', schema: tenantSettingsSchema }, ...commonErrors },
    async handler({ body, principal }) {
      const patch = { ...(body.blockRemoteImages !== undefined ? { blockRemoteImages: body.blockRemoteImages } : {}), ...normalizeBranding(body, deps.branding) };
      const tenant = Object.keys(patch).length > 0 ? await deps.tenants.update(principal.tenantId, patch) : await deps.tenants.find(principal.tenantId);
      if (!tenant) throw new NotFoundError('settings');
      await deps.audit.record({
        tenantId: principal.tenantId,
        actorType: 'api_key',
        actorId: principal.apiKeyId,
        action: 'tenant.settings_updated',
        targetType: 'tenant',
        targetId: principal.tenantId,
        metadata: { fields: Object.keys(patch), blockRemoteImages: tenant.blockRemoteImages },
      });
      return { status: 200, body: settingsBody(tenant) };
    },
  });
}
