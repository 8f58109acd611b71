import { readBody } from '../read-body.js';
import { z } from 'zod';
import type { RouteRegistry } from '../route-registry.js';

export interface GooglePushRouteDeps {
  receiveGoogle(authorization: string | undefined, body: unknown): Promise<{ status: 'accepted' | 'unauthorized' | 'bad_request' }>;
}

/** Pub/Sub push bodies are tiny ({"message":{"data":…}}); anything large is not from Pub/Sub. */
const MAX_PUSH_BYTES = 64 * 1024;

/**
 * Gmail watch notifications via a Pub/Sub push subscription. No API key: the Google-signed OIDC
 * JWT in `Authorization` is the authentication (verified before the body is looked at). The
 * work is a queued sync; the answer is immediate (2xx acknowledges, anything else makes Pub/Sub
 * redeliver).
 */
export function registerGooglePushRoutes(routes: RouteRegistry, deps: GooglePushRouteDeps): void {
  routes.add({
    method: 'post',
    path: '/push/google',
    operationId: 'receiveGooglePush',
    summary: 'Gmail change notification (Pub/Sub push, OIDC-authenticated)',
    description:
      'Gmail Pub/Sub push endpoint, authenticated by the Pub/Sub OIDC token: queues a sync of the mailbox the notification names. Called by Google, not by API clients.',
    tags: ['Push'],
    auth: 'push',
    bodyContentType: 'application/json',
    body: z.custom<Request>(),
    responses: {
      204: { description: 'Acknowledged; a sync of the matching mailboxes is queued' },
      400: { description: 'Not a Pub/Sub push envelope' },
      401: { description: 'Missing or invalid push token' },
      429: { description: 'Too many pushes from this address (`RATE_LIMIT_PUSH`): retry after `Retry-After` seconds' },
    },
    async handler({ req, res }) {
      let body: unknown;
      try {
        body = JSON.parse(await readBody(req, MAX_PUSH_BYTES));
      } catch {
        body = undefined;
      }
      const outcome = await deps.receiveGoogle(req.headers.authorization, body);
      res.status(outcome.status === 'accepted' ? 204 : outcome.status === 'unauthorized' ? 401 : 400).end();
      return { handled: true };
    },
  });
}
