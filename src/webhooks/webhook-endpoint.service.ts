import type { DataKeyService } from '../crypto/data-key.service.js';
import type { EventType } from '../events/event-types.js';
import { newId } from '../storage/ids.js';
import type { WebhookEndpointRecord, WebhookRepository } from '../storage/webhook.repository.js';
import { checkWebhookUrl, EgressDeniedError, type EgressPolicy } from './egress-guard.js';
import { generateWebhookSecret } from './webhook-secret.js';

/** How long the previous secret keeps signing after a rotation (both signatures are sent). */
export const SECRET_ROTATION_OVERLAP_MS = 24 * 3_600_000;
/** Endpoints per tenant; a ticket service needs one or two, this only stops runaway scripts. */
export const MAX_ENDPOINTS_PER_TENANT = 20;

export const ENDPOINT_SECRET_AAD = (endpointId: string) => ({ table: 'webhook_endpoints', column: 'secretEnc', rowId: endpointId }) as const;
export const ENDPOINT_PREVIOUS_SECRET_AAD = (endpointId: string) => ({ table: 'webhook_endpoints', column: 'previousSecretEnc', rowId: endpointId }) as const;

export interface EndpointView {
  id: string;
  object: 'webhook_endpoint';
  url: string;
  description: string | null;
  /** Event types delivered; empty = all. */
  events: string[];
  enabled: boolean;
  disabledReason: string | null;
  /** Until when the previous secret still signs (after a rotation). */
  previousSecretExpiresAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export type EndpointError =
  | { kind: 'url_not_allowed'; reason: string; message: string; category?: string }
  | { kind: 'limit_reached' };

export class EndpointRejectedError extends Error {
  override readonly name = 'EndpointRejectedError';
  constructor(readonly detail: EndpointError) {
    super(detail.kind === 'url_not_allowed' ? detail.message : `at most ${MAX_ENDPOINTS_PER_TENANT} webhook endpoints per tenant`);
  }
}

/**
 * Endpoint registration and secrets. Secrets are generated here, returned once, and stored only
 * encrypted with the tenant key (they must outlive any one mailbox).
 */
export class WebhookEndpointService {
  constructor(
    private readonly deps: {
      repo: WebhookRepository;
      dataKeys: DataKeyService;
      egress: EgressPolicy;
      clock: () => Date;
    },
  ) {}

  async create(tenantId: string, input: { url: string; events?: EventType[]; description?: string }): Promise<{ endpoint: EndpointView; secret: string }> {
    await this.checkUrl(input.url);
    if ((await this.deps.repo.countEndpoints(tenantId)) >= MAX_ENDPOINTS_PER_TENANT) throw new EndpointRejectedError({ kind: 'limit_reached' });
    const id = newId('webhookEndpoint');
    const secret = generateWebhookSecret();
    const secretEnc = await this.deps.dataKeys.encryptFor({ type: 'tenant', id: tenantId }, secret, ENDPOINT_SECRET_AAD(id));
    const row = await this.deps.repo.createEndpoint({ id, tenantId, url: input.url, description: input.description ?? null, events: uniq(input.events ?? []), secretEnc });
    return { endpoint: view(row), secret };
  }

  async list(tenantId: string, opts: { afterId?: string; limit: number }): Promise<EndpointView[]> {
    return (await this.deps.repo.listEndpoints(tenantId, { ...opts, limit: opts.limit + 1 })).map(view);
  }

  async get(tenantId: string, endpointId: string): Promise<EndpointView | null> {
    const row = await this.deps.repo.findEndpoint(tenantId, endpointId);
    return row ? view(row) : null;
  }

  async update(
    tenantId: string,
    endpointId: string,
    patch: { url?: string; events?: EventType[]; enabled?: boolean; description?: string | null },
  ): Promise<EndpointView | null> {
    const current = await this.deps.repo.findEndpoint(tenantId, endpointId);
    if (!current) return null;
    const url = patch.url ?? current.url;
    // Re-check on a new URL and when re-enabling: DNS may have moved since registration.
    if (patch.url !== undefined || (patch.enabled === true && !current.enabled)) await this.checkUrl(url);
    const row = await this.deps.repo.updateEndpoint(tenantId, endpointId, {
      ...(patch.url !== undefined ? { url: patch.url } : {}),
      ...(patch.events !== undefined ? { events: uniq(patch.events) } : {}),
      ...(patch.description !== undefined ? { description: patch.description } : {}),
      ...(patch.enabled !== undefined ? { enabled: patch.enabled, disabledReason: patch.enabled ? null : 'disabled_by_tenant' } : {}),
    });
    return row ? view(row) : null;
  }

  async delete(tenantId: string, endpointId: string): Promise<boolean> {
    return this.deps.repo.deleteEndpoint(tenantId, endpointId, this.deps.clock());
  }

  /** New secret (returned once); the old one keeps signing for 24 h so receivers can switch over. */
  async rotateSecret(tenantId: string, endpointId: string): Promise<{ endpoint: EndpointView; secret: string } | null> {
    const current = await this.deps.repo.findEndpoint(tenantId, endpointId);
    if (!current) return null;
    const owner = { type: 'tenant', id: tenantId } as const;
    const oldSecret = await this.deps.dataKeys.decryptFor(owner, current.secretEnc, ENDPOINT_SECRET_AAD(endpointId));
    const secret = generateWebhookSecret();
    const row = await this.deps.repo.updateEndpoint(tenantId, endpointId, {
      secretEnc: await this.deps.dataKeys.encryptFor(owner, secret, ENDPOINT_SECRET_AAD(endpointId)),
      previousSecretEnc: await this.deps.dataKeys.encryptFor(owner, oldSecret, ENDPOINT_PREVIOUS_SECRET_AAD(endpointId)),
      previousSecretExpiresAt: new Date(this.deps.clock().getTime() + SECRET_ROTATION_OVERLAP_MS),
    });
    oldSecret.fill(0);
    return row ? { endpoint: view(row), secret } : null;
  }

  /** Secrets that sign a delivery now: the current one first, the previous one during the overlap. */
  async signingSecrets(endpoint: WebhookEndpointRecord, now: Date): Promise<string[]> {
    const owner = { type: 'tenant', id: endpoint.tenantId } as const;
    const secrets = [(await this.deps.dataKeys.decryptFor(owner, endpoint.secretEnc, ENDPOINT_SECRET_AAD(endpoint.id))).toString('utf8')];
    if (endpoint.previousSecretEnc && endpoint.previousSecretExpiresAt && endpoint.previousSecretExpiresAt > now) {
      secrets.push((await this.deps.dataKeys.decryptFor(owner, endpoint.previousSecretEnc, ENDPOINT_PREVIOUS_SECRET_AAD(endpoint.id))).toString('utf8'));
    }
    return secrets;
  }

  private async checkUrl(url: string): Promise<void> {
    try {
      await checkWebhookUrl(url, this.deps.egress);
    } catch (err) {
      if (err instanceof EgressDeniedError) {
        throw new EndpointRejectedError({ kind: 'url_not_allowed', reason: err.code, message: err.message, ...(err.category ? { category: err.category } : {}) });
      }
      throw err;
    }
  }
}

function uniq(values: readonly string[]): string[] {
  return [...new Set(values)];
}

export function view(row: WebhookEndpointRecord): EndpointView {
  return {
    id: row.id,
    object: 'webhook_endpoint',
    url: row.url,
    description: row.description,
    events: row.events,
    enabled: row.enabled,
    disabledReason: row.disabledReason,
    previousSecretExpiresAt: row.previousSecretExpiresAt?.toISOString() ?? null,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}
