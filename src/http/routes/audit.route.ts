import { z } from 'zod';
import type { AuditService } from '../../audit/audit.service.js';
import { InvalidCursorError } from '../api-error.js';
import { decodeCursor, encodeCursor, paginationQuery } from '../pagination.js';
import { commonErrors, type RouteRegistry } from '../route-registry.js';

const auditEntrySchema = z
  .object({
    id: z.string(),
    object: z.literal('audit_entry'),
    seq: z.number().int().meta({ description: 'Position in the hash chain.' }),
    actorType: z.enum(['api_key', 'ops', 'system', 'break_glass']),
    actorId: z.string(),
    action: z.string().meta({ example: 'message.read' }),
    targetType: z.string().nullable(),
    targetId: z.string().nullable(),
    reason: z.string().nullable(),
    metadata: z.record(z.string(), z.unknown()),
    createdAt: z.string(),
    hash: z.string(),
  })
  .meta({ id: 'AuditEntry' });

export function registerAuditRoutes(routes: RouteRegistry, deps: { audit: AuditService }): void {
  routes.add({
    method: 'get',
    path: '/v1/audit',
    operationId: 'listAuditEntries',
    summary: 'The tenant’s audit trail, oldest first',
    description: 'Every content read (messages, attachments), ops action and lifecycle step concerning this tenant.',
    tags: ['Audit'],
    auth: 'tenant',
    query: paginationQuery,
    responses: {
      200: { description: 'A page of audit entries', schema: z.object({ object: z.literal('list'), data: z.array(auditEntrySchema), nextCursor: z.string().nullable() }) },
      ...commonErrors,
    },
    async handler({ query, principal }) {
      const raw = decodeCursor(query.cursor);
      if (raw !== undefined && !/^\d{1,15}$/.test(raw)) throw new InvalidCursorError();
      const rows = await deps.audit.listForTenant(principal.tenantId, raw ? Number(raw) : 0, query.limit + 1);
      const data = rows.slice(0, query.limit).map((e) => ({
        id: e.id,
        object: 'audit_entry' as const,
        seq: e.seq,
        actorType: e.actorType,
        actorId: e.actorId,
        action: e.action,
        targetType: e.targetType,
        targetId: e.targetId,
        reason: e.reason,
        metadata: e.metadata,
        createdAt: e.createdAt,
        hash: e.hash,
      }));
      const last = data[data.length - 1];
      return { status: 200, body: { object: 'list', data, nextCursor: rows.length > query.limit && last ? encodeCursor(String(last.seq)) : null } };
    },
  });
}
