import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { headerValue, readBody, sendEmpty, sendJson } from './sandbox-http.util.js';
import type { MicrosoftSandbox } from './microsoft-sandbox.js';

const schemas = {
  user: z.object({ email: z.string().email(), displayName: z.string().max(256).optional() }),
  deliver: z.object({ rawMimeBase64: z.string().min(1), receivedDateTime: z.string().datetime({ offset: true }).optional() }),
  revoke: z.object({ invalidateAccessTokens: z.boolean().optional() }),
  refreshFailure: z.object({ mode: z.enum(['invalid_grant', 'interaction_required']).nullable() }),
  expireDelta: z.object({ mode: z.enum(['gone', 'syncStateNotFound']) }),
  sharedMember: z.object({ member: z.string().email() }),
  accessToken: z.object({ scopes: z.array(z.string()).optional() }),
  fault: z.object({ status: z.number().int().min(400).max(599), code: z.string().optional(), count: z.number().int().positive().optional(), retryAfterSeconds: z.number().int().nonnegative().optional(), pathIncludes: z.string().optional() }),
  latency: z.object({ ms: z.number().int().min(0).max(60_000) }),
  drop: z.object({ count: z.number().int().min(0) }),
  accessPolicy: z.object({ mailboxes: z.array(z.string().email()).max(10_000).nullable() }),
  adminConsent: z.object({ roles: z.array(z.string().min(1)).optional() }),
  lifecycle: z.object({ event: z.enum(['reauthorizationRequired', 'subscriptionRemoved', 'missed']) }),
  aliases: z.object({ aliases: z.array(z.string().email()).max(400) }),
  sendRight: z.object({ trustee: z.string().email(), right: z.enum(['SendAs', 'SendOnBehalf']).nullable() }),
  sendFromAlias: z.object({ enabled: z.boolean() }),
};

function tokenMatches(given: string | undefined, expected: string): boolean {
  const a = createHash('sha256').update(given ?? '').digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/**
 * HTTP twin of the sandbox control functions, under /_sandbox on the Graph port, so a demo or a
 * test in another process can seed mail and inject faults:
 *   POST /_sandbox/users {email}                          POST /_sandbox/users/{email}/messages {rawMimeBase64}
 *   POST /_sandbox/users/{email}/revoke                   POST /_sandbox/users/{email}/refresh-failure {mode}
 *   POST /_sandbox/users/{email}/expire-delta {mode}      POST /_sandbox/users/{email}/access-token
 *   GET  /_sandbox/users/{email}/sent | /messages         POST|DELETE /_sandbox/faults   POST /_sandbox/latency {ms}
 *   POST /_sandbox/notifications/drop {count}             GET /_sandbox/notifications
 *   GET  /_sandbox/subscriptions                          POST /_sandbox/subscriptions/{id}/lifecycle {event}
 *   GET  /_sandbox/revocations
 *   POST /_sandbox/shared-mailboxes {email}               POST|DELETE /_sandbox/shared-mailboxes/{email}/members {member}
 *   POST|DELETE /_sandbox/apps/{clientId}/admin-consent {roles?}
 *   PUT /_sandbox/apps/{clientId}/access-policy {mailboxes: [address] | null}
 *   PUT /_sandbox/users/{email}/aliases {aliases}         PUT /_sandbox/users/{email}/send-rights {trustee, right: SendAs|SendOnBehalf|null}
 *   PUT /_sandbox/organization/send-from-alias {enabled}
 */
export async function handleControlRequest(sb: MicrosoftSandbox, req: IncomingMessage, res: ServerResponse, controlToken: string | undefined): Promise<void> {
  if (controlToken !== undefined && !tokenMatches(headerValue(req, 'x-sandbox-control-token'), controlToken)) {
    return sendJson(res, 401, { error: 'control token required' });
  }
  const url = new URL(req.url ?? '/', 'http://sandbox');
  const path = url.pathname.slice('/_sandbox'.length);
  const method = req.method ?? 'GET';
  const body = async <T>(schema: z.ZodType<T>): Promise<T | undefined> => {
    const raw = (await readBody(req, 200 * 1024 * 1024)).toString('utf8');
    const r = schema.safeParse(raw ? JSON.parse(raw) : {});
    if (!r.success) {
      sendJson(res, 400, { error: 'invalid body', issues: r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) });
      return undefined;
    }
    return r.data;
  };
  let m: RegExpExecArray | null;
  try {
    if (method === 'POST' && path === '/users') {
      const b = await body(schemas.user);
      if (b) sendJson(res, 201, sb.createUser(b.email, b.displayName));
      return;
    }
    if (method === 'POST' && path === '/shared-mailboxes') {
      const b = await body(schemas.user);
      if (b) sendJson(res, 201, sb.createSharedMailbox(b.email, b.displayName));
      return;
    }
    if ((m = /^\/shared-mailboxes\/([^/]+)\/members$/.exec(path)) && (method === 'POST' || method === 'DELETE')) {
      const b = await body(schemas.sharedMember);
      if (b) {
        sb.setSharedMember(decodeURIComponent(m[1] ?? ''), b.member, method === 'POST');
        sendEmpty(res, 204);
      }
      return;
    }
    if ((m = /^\/users\/([^/]+)\/(aliases|send-rights)$/.exec(path)) && method === 'PUT') {
      const email = decodeURIComponent(m[1] ?? '');
      if (m[2] === 'aliases') {
        const b = await body(schemas.aliases);
        if (b) {
          sb.setAliases(email, b.aliases);
          sendEmpty(res, 204);
        }
        return;
      }
      const b = await body(schemas.sendRight);
      if (b) {
        sb.setSendRight(email, b.trustee, b.right);
        sendEmpty(res, 204);
      }
      return;
    }
    if (path === '/organization/send-from-alias' && method === 'PUT') {
      const b = await body(schemas.sendFromAlias);
      if (b) {
        sb.setSendFromAliasEnabled(b.enabled);
        sendEmpty(res, 204);
      }
      return;
    }
    if ((m = /^\/users\/([^/]+)\/(messages|sent|revoke|refresh-failure|expire-delta|access-token)$/.exec(path))) {
      const email = decodeURIComponent(m[1] ?? '');
      const action = m[2];
      if (action === 'messages' && method === 'POST') {
        const b = await body(schemas.deliver);
        if (b) sendJson(res, 201, await sb.deliver(email, Buffer.from(b.rawMimeBase64, 'base64'), b.receivedDateTime ? { receivedAt: new Date(b.receivedDateTime) } : {}));
        return;
      }
      if (action === 'messages' && method === 'GET') return sendJson(res, 200, { value: sb.mailbox(email) });
      if (action === 'sent' && method === 'GET') {
        return sendJson(res, 200, { value: sb.sentMessages(email).map((s) => ({ ...s, mime: s.mime.toString('base64') })) });
      }
      if (action === 'revoke' && method === 'POST') {
        const b = await body(schemas.revoke);
        if (b) {
          sb.revokeGrants(email, b);
          sendEmpty(res, 204);
        }
        return;
      }
      if (action === 'refresh-failure' && method === 'POST') {
        const b = await body(schemas.refreshFailure);
        if (b) {
          sb.setRefreshFailure(email, b.mode ?? undefined);
          sendEmpty(res, 204);
        }
        return;
      }
      if (action === 'expire-delta' && method === 'POST') {
        const b = await body(schemas.expireDelta);
        if (b) {
          sb.expireDelta(email, b.mode);
          sendEmpty(res, 204);
        }
        return;
      }
      if (action === 'access-token' && method === 'POST') {
        const b = await body(schemas.accessToken);
        if (b) sendJson(res, 201, { accessToken: sb.issueAccessToken(email, b.scopes) });
        return;
      }
    }
    if ((m = /^\/apps\/([^/]+)\/admin-consent$/.exec(path))) {
      const clientId = decodeURIComponent(m[1] ?? '');
      if (method === 'DELETE') {
        sb.revokeAdminConsent(clientId);
        return sendEmpty(res, 204);
      }
      if (method === 'POST') {
        const b = await body(schemas.adminConsent);
        if (b) {
          sb.grantAdminConsent(clientId, b.roles);
          sendEmpty(res, 204);
        }
        return;
      }
    }
    if ((m = /^\/apps\/([^/]+)\/access-policy$/.exec(path)) && method === 'PUT') {
      const b = await body(schemas.accessPolicy);
      if (b) {
        sb.setApplicationAccessPolicy(decodeURIComponent(m[1] ?? ''), b.mailboxes);
        sendEmpty(res, 204);
      }
      return;
    }
    if (path === '/faults' && method === 'POST') {
      const b = await body(schemas.fault);
      if (b) {
        sb.injectFault(b);
        sendEmpty(res, 204);
      }
      return;
    }
    if (path === '/faults' && method === 'DELETE') {
      sb.clearFaults();
      return sendEmpty(res, 204);
    }
    if (path === '/latency' && method === 'POST') {
      const b = await body(schemas.latency);
      if (b) {
        sb.setLatency(b.ms);
        sendEmpty(res, 204);
      }
      return;
    }
    if (path === '/notifications/drop' && method === 'POST') {
      const b = await body(schemas.drop);
      if (b) {
        sb.dropNotifications(b.count);
        sendEmpty(res, 204);
      }
      return;
    }
    if (path === '/notifications' && method === 'GET') return sendJson(res, 200, { value: sb.notificationAttempts() });
    if (path === '/subscriptions' && method === 'GET') return sendJson(res, 200, { value: sb.subscriptions() });
    if (path === '/revocations' && method === 'GET') return sendJson(res, 200, { value: sb.revocations() });
    if ((m = /^\/subscriptions\/([^/]+)\/lifecycle$/.exec(path)) && method === 'POST') {
      const b = await body(schemas.lifecycle);
      if (b) {
        sb.sendLifecycleNotification(decodeURIComponent(m[1] ?? ''), b.event);
        sendEmpty(res, 202);
      }
      return;
    }
    sendJson(res, 404, { error: 'unknown control endpoint' });
  } catch (err) {
    // Control errors name the problem (unknown user/subscription); they never carry mail content.
    sendJson(res, 404, { error: err instanceof Error ? err.message : 'control request failed' });
  }
}
