import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { buildOpenApiDocument } from './app.js';
import { ApiError, ERROR_CATALOGUE, ERROR_CODES, errorBody, InternalError, type ErrorCode } from './api-error.js';
import { toApiError } from './error-mapper.js';
import { commonErrors, createRouteRegistry } from './route-registry.js';
import { BreakGlassRefusedError } from '../lifecycle/break-glass.service.js';
import { ExportTooLargeError } from '../lifecycle/data-subject.service.js';
import { MailboxNotFoundError } from '../lifecycle/purge.service.js';
import { ReadRefusedError } from '../messages/message-read.service.js';
import { ConnectRequestError, type ConnectRefusal } from '../oauth/connect.service.js';
import { OpsNotFoundError } from '../ops/ops-command.js';
import { SendRejectedError } from '../send/send-rejection.js';
import { EndpointRejectedError } from '../webhooks/webhook-endpoint.service.js';
import { NoMatchingEndpointError } from '../webhooks/webhook-dispatcher.service.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** `| 404 | `not_found`, `route_not_found` | … |` rows of docs/api.md's error table: code → status. */
function documentedCodes(): Map<string, number> {
  const doc = readFileSync(path.join(repoRoot, 'docs/api.md'), 'utf8');
  const out = new Map<string, number>();
  for (const line of doc.split('\n')) {
    const m = /^\|\s*(\d{3})\s*\|([^|]*)\|/.exec(line);
    if (!m) continue;
    for (const code of m[2]!.matchAll(/`([a-z_]+)`/g)) out.set(code[1]!, Number(m[1]));
  }
  return out;
}

describe('the error catalogue', () => {
  it('every public code is in docs/api.md’s error table with its status, and the table names no other', () => {
    const documented = documentedCodes();
    const missing = ERROR_CODES.filter((code) => documented.get(code) !== ERROR_CATALOGUE[code].status);
    expect(missing, 'codes missing from docs/api.md (or with another status)').toEqual([]);
    expect([...documented.keys()].filter((c) => !(c in ERROR_CATALOGUE)), 'documented codes that no longer exist').toEqual([]);
  });

  it('the OpenAPI Error schema enumerates exactly the catalogue codes', () => {
    const routes = createRouteRegistry();
    routes.add({ method: 'get', path: '/x', operationId: 'x', summary: 'x', tags: ['x'], auth: 'tenant', responses: { 200: { description: 'ok' }, ...commonErrors }, handler: async () => ({ status: 200 }) });
    const doc = buildOpenApiDocument(routes, 'test', 'http://localhost') as unknown as { components: { schemas: Record<string, unknown> } };
    const error = z.object({ properties: z.object({ error: z.object({ properties: z.object({ code: z.object({ enum: z.array(z.string()) }) }) }) }) }).parse(doc.components.schemas.Error);
    expect([...error.properties.error.properties.code.enum].sort()).toEqual([...ERROR_CODES].sort());
  });

  it('a connect refusal carries a catalogue code by type: a call site cannot invent one (checked by npm run typecheck)', () => {
    expectTypeOf<ConnectRefusal>().toExtend<ErrorCode>();
    expectTypeOf(ConnectRequestError).toBeConstructibleWith('provider_not_configured', 'Google is not configured on this connector');
    // @ts-expect-error 'mailbox_gone' is no ConnectRefusal (and no catalogue code)
    expectTypeOf(ConnectRequestError).toBeConstructibleWith('mailbox_gone', 'x');
  });

  it('maps every domain refusal to a catalogue error with a public message, and anything else to a bodiless 500', () => {
    const cases: Array<[unknown, string, number]> = [
      [new MailboxNotFoundError('mailbox not found'), 'not_found', 404],
      [new OpsNotFoundError('webhook endpoint'), 'not_found', 404],
      [new ReadRefusedError({ kind: 'not_found', what: 'attachment' }), 'not_found', 404],
      [new ReadRefusedError({ kind: 'mailbox_disconnecting' }), 'mailbox_disconnecting', 409],
      [new ReadRefusedError({ kind: 'attachment_not_clean', scanStatus: 'infected' }), 'attachment_not_clean', 409],
      [new SendRejectedError('attachment_infected', 'an attachment is infected'), 'attachment_infected', 422],
      [new SendRejectedError('scan_unavailable', 'the scanner is unavailable'), 'scan_unavailable', 503],
      [new ConnectRequestError('return_url_not_allowed', 'returnUrl must be http or https'), 'return_url_not_allowed', 400],
      [new EndpointRejectedError({ kind: 'limit_reached' }), 'endpoint_limit_reached', 409],
      [new EndpointRejectedError({ kind: 'url_not_allowed', reason: 'private_address', message: 'the URL resolves to a private address' }), 'url_not_allowed', 422],
      [new NoMatchingEndpointError('no enabled endpoint'), 'no_matching_endpoint', 409],
      [new ExportTooLargeError(5000), 'export_too_large', 413],
      [new BreakGlassRefusedError('mailbox_not_found', 'mailbox not found'), 'not_found', 404],
      [new BreakGlassRefusedError('session_expired', 'the session expired'), 'break_glass_session_expired', 403],
      [Object.assign(new Error('too large'), { type: 'entity.too.large', status: 413 }), 'payload_too_large', 413],
      [new Error('connect ECONNREFUSED 10.0.0.7:5432 password=hunter2'), 'internal_error', 500],
    ];
    for (const [err, code, status] of cases) {
      const mapped = toApiError(err);
      expect({ code: mapped.code, status: mapped.status }).toEqual({ code, status });
      expect(mapped).toBeInstanceOf(ApiError);
    }
    // A 500 says nothing of what went wrong; a refusal's private detail is never in the body.
    expect(errorBody(new InternalError(new Error('password=hunter2')), 'req-1')).toEqual({ error: { code: 'internal_error', message: 'internal error', requestId: 'req-1' } });
    const tooLarge = toApiError(new ExportTooLargeError(5000));
    expect(tooLarge.detail).toContain('5000');
    expect(JSON.stringify(errorBody(tooLarge, undefined))).not.toContain('5000');
  });
});
