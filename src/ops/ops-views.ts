import { z } from 'zod';
import { pushHealth, syncLagSeconds } from '../mailboxes/mailbox-health.js';
import type { MailboxRepository } from '../storage/mailbox.repository.js';
import type { OpsOverviewRepository, SyncJobRow } from '../storage/ops-overview.repository.js';
import type { TenantRepository } from '../storage/tenant.repository.js';
import { defineOps, OpsNotFoundError, type OpsCommand } from './ops-command.js';

const MAILBOX_STATUSES = ['active', 'reauth_required', 'disconnecting', 'purged'] as const;

export interface OpsViewDeps {
  overview: OpsOverviewRepository;
  /** A purge receipt as the API shows it, with its tenant (the lifecycle room's view). */
  receipt(purgeId: string): Promise<{ tenantId: string; view: object } | null>;
  tenants: Pick<TenantRepository, 'list' | 'find'>;
  mailboxes: Pick<MailboxRepository, 'listForTenant' | 'listAllUnscoped' | 'findByIdUnscoped'>;
  clock: () => Date;
}

/**
 * Read-only ops views (the ops console's pages; also `mailbox-connector ops <name>` and
 * `POST /v1/admin/ops/:name`): tenants, mailbox health, one mailbox's history and errors, a
 * tenant's webhook endpoints. Ids, states, times, counts and error codes — no mailbox address, no
 * correspondent, no subject: operating a mailbox does not need to know whose it is
 * (docs/security.md). Every run is audited by the ops runner like any other command.
 */
export function opsViews(deps: OpsViewDeps): OpsCommand[] {
  const repo = deps.overview;
  const iso = (d: Date | null | undefined): string | null => (d ? new Date(d).toISOString() : null);

  return [
  defineOps({
    name: 'tenants.overview',
    summary: 'tenants with their mailbox counts by status',
    input: z.strictObject({}),
    async run() {
      const [tenants, counts] = await Promise.all([deps.tenants.list(), repo.mailboxCountsByTenant()]);
      return tenants.map((t) => {
        const mine = counts.filter((c) => c.tenantId === t.id);
        return {
          tenantId: t.id,
          name: t.name,
          retentionDays: t.retentionDays,
          // Hosted-page branding (docs/connect.md), shown as text on the console's tenant page.
          displayName: t.displayName,
          logoUrl: t.logoUrl,
          supportUrl: t.supportUrl,
          createdAt: t.createdAt.toISOString(),
          mailboxes: Object.fromEntries(MAILBOX_STATUSES.map((s) => [s, mine.find((c) => c.status === s)?.count ?? 0])),
        };
      });
    },
  }),
  defineOps({
    name: 'mailboxes.health',
    summary: 'mailboxes with status, last sync, sync lag, push health and pending/dead webhook deliveries (no addresses)',
    input: z.strictObject({
      tenantId: z.string().min(1).max(64).optional(),
      status: z.enum(MAILBOX_STATUSES).optional(),
      afterId: z.string().min(1).max(64).optional(),
      limit: z.number().int().min(1).max(500).default(100),
    }),
    async run(input) {
      const page = { limit: input.limit + 1, ...(input.afterId ? { afterId: input.afterId } : {}) };
      const rows = input.tenantId
        ? await deps.mailboxes.listForTenant(input.tenantId, { ...page, ...(input.status ? { status: input.status } : {}) })
        : await deps.mailboxes.listAllUnscoped({ ...page, ...(input.status ? { status: [input.status] } : {}) });
      const shown = rows.slice(0, input.limit);
      const counts = await repo.eventCounts(shown.map((m) => m.id));
      const now = deps.clock();
      return {
        mailboxes: shown.map((m) => ({
          mailboxId: m.id,
          tenantId: m.tenantId,
          provider: m.provider,
          status: m.status,
          statusReason: m.statusReason,
          syncState: m.syncState,
          syncError: m.syncError,
          lastSyncedAt: iso(m.lastSyncedAt),
          syncLagSeconds: syncLagSeconds(m, now),
          push: { health: pushHealth(m, now), lastPushAt: iso(m.lastPushAt), expiresAt: iso(m.watchExpiresAt ?? m.subscriptionExpiresAt) },
          events: counts.get(m.id) ?? { pending: 0, dead: 0 },
        })),
        nextAfterId: rows.length > input.limit ? shown[shown.length - 1]!.id : null,
      };
    },
  }),
  defineOps({
    name: 'mailboxes.inspect',
    summary: 'one mailbox: state, sync history, recent errors (codes only) and purge receipts',
    input: z.strictObject({ mailboxId: z.string().min(1).max(64) }),
    async run({ mailboxId }) {
      const m = await deps.mailboxes.findByIdUnscoped(mailboxId);
      const purgeIds = await repo.purgesOfMailbox(mailboxId, 5);
      // A purged mailbox's row is gone; its receipt is what is left to show.
      if (!m && purgeIds.length === 0) throw new OpsNotFoundError('mailbox');
      const receipts = (await Promise.all(purgeIds.map((id) => deps.receipt(id)))).filter((r) => r !== null);
      const now = deps.clock();
      const [jobs, attempts, sends, scan, counts] = await Promise.all([
        repo.syncJobs(mailboxId, 20),
        repo.failedAttempts(mailboxId, 10),
        repo.failedSends(mailboxId, 10),
        repo.scanErrors(mailboxId),
        repo.eventCounts([mailboxId]),
      ]);
      const syncHistory = jobs.map(syncRun);
      const errors: Array<{ at: string | null; source: string; code: string; ref: string | null }> = [];
      if (m?.syncState === 'error' && m.syncError) errors.push({ at: iso(m.updatedAt), source: 'sync', code: m.syncError, ref: null });
      for (const r of syncHistory) if (r.outcome === 'failed' || r.outcome === 'retry') errors.push({ at: r.finishedAt ?? r.queuedAt, source: 'sync', code: r.reason ?? r.outcome, ref: r.jobId });
      for (const a of attempts) errors.push({ at: iso(a.at), source: 'webhook', code: a.statusCode ? `HTTP ${a.statusCode}${a.error ? ` (${a.error})` : ''}` : (a.error ?? 'no answer'), ref: a.deliveryId });
      for (const s of sends) errors.push({ at: iso(s.at), source: 'send', code: s.code ?? 'failed', ref: s.outboundId });
      if (scan.count) errors.push({ at: iso(scan.latest), source: 'scan', code: `${scan.count} attachment${scan.count === 1 ? '' : 's'} without a scan verdict`, ref: null });
      errors.sort((a, b) => (b.at ?? '').localeCompare(a.at ?? ''));
      return {
        mailbox: m
          ? {
              mailboxId: m.id,
              tenantId: m.tenantId,
              provider: m.provider,
              status: m.status,
              statusReason: m.statusReason,
              grantedScopes: m.grantedScopes,
              syncState: m.syncState,
              syncError: m.syncError,
              backfillCompletedAt: iso(m.backfillCompletedAt),
              lastSyncedAt: iso(m.lastSyncedAt),
              syncLagSeconds: syncLagSeconds(m, now),
              push: { health: pushHealth(m, now), lastPushAt: iso(m.lastPushAt), expiresAt: iso(m.watchExpiresAt ?? m.subscriptionExpiresAt) },
              events: counts.get(m.id) ?? { pending: 0, dead: 0 },
              createdAt: m.createdAt.toISOString(),
            }
          : null,
        tenantId: m?.tenantId ?? receipts[0]?.tenantId ?? null,
        syncHistory,
        errors: errors.slice(0, 30),
        purges: receipts.map((r) => r.view),
      };
    },
  }),
  defineOps({
    name: 'webhookEndpoints.list',
    summary: 'a tenant’s webhook endpoints: host and path, enabled, dead deliveries (never the secret)',
    input: z.strictObject({ tenantId: z.string().min(1).max(64) }),
    async run({ tenantId }) {
      if (!(await deps.tenants.find(tenantId))) throw new OpsNotFoundError('tenant');
      const rows = await repo.endpointsOfTenant(tenantId);
      return rows.map((e) => ({
        endpointId: e.id,
        url: urlWithoutQuery(e.url),
        enabled: e.enabled,
        disabledReason: e.disabledReason,
        previousSecretExpiresAt: iso(e.previousSecretExpiresAt),
        deadDeliveries: e.deadDeliveries,
        createdAt: e.createdAt.toISOString(),
      }));
    },
  }),
  ];
}

/** A receiver URL as ops see it: no query string or credentials (some receivers put a token there). */
function urlWithoutQuery(raw: string): string {
  try {
    const u = new URL(raw);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

function syncRun(j: SyncJobRow): {
  jobId: string;
  trigger: string | null;
  state: string;
  outcome: string;
  reason: string | null;
  detail: Record<string, unknown> | null;
  attempt: number;
  queuedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  durationMs: number | null;
} {
  const output = (j.output && typeof j.output === 'object' ? j.output : {}) as { outcome?: unknown; reason?: unknown; detail?: unknown; message?: unknown };
  const started = j.startedOn ? new Date(j.startedOn) : null;
  const finished = j.completedOn ? new Date(j.completedOn) : null;
  // A job that threw is `failed`/`retry` in the queue with the error's name as `message`.
  const outcome = typeof output.outcome === 'string' ? output.outcome : j.state === 'completed' ? 'done' : j.state;
  const reason = typeof output.reason === 'string' ? output.reason : typeof output.message === 'string' ? output.message.slice(0, 100) : null;
  return {
    jobId: j.id,
    trigger: j.reason,
    state: j.state,
    outcome,
    reason,
    detail: output.detail && typeof output.detail === 'object' ? (output.detail as Record<string, unknown>) : null,
    attempt: j.retryCount + 1,
    queuedAt: new Date(j.createdOn).toISOString(),
    startedAt: started?.toISOString() ?? null,
    finishedAt: finished?.toISOString() ?? null,
    durationMs: started && finished ? finished.getTime() - started.getTime() : null,
  };
}
