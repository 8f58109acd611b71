import type { Request, Response } from 'express';
import { z } from 'zod';
import type { RouteRegistry } from '../route-registry.js';
import { readBody } from '../read-body.js';

export interface MicrosoftPushRouteDeps {
  receiveMicrosoft(notifications: readonly unknown[]): Promise<{ accepted: number; rejected: number }>;
}

const MAX_NOTIFICATION_BYTES = 1024 * 1024;
const bodySchema = z.object({ value: z.array(z.unknown()).max(1000) });

/**
 * Graph change and lifecycle notifications (provider-facts §4.2). The validation handshake
 * answers 200 text/plain with the URL-decoded token (Express has decoded the query already),
 * `nosniff` so a browser never renders it as HTML. Notifications are checked (clientState, in
 * constant time) and their syncs queued before the 202, well inside Graph's 3 s.
 */
export function registerMicrosoftPushRoutes(routes: RouteRegistry, deps: MicrosoftPushRouteDeps): void {
  for (const [path, operationId, summary, description] of [
    [
      '/push/microsoft',
      'receiveGraphNotification',
      'Microsoft Graph change notifications',
      'Graph change notifications for subscribed mailboxes, checked against the subscription’s clientState: queues a sync of each mailbox named. Also answers the subscription validation handshake. Called by Microsoft, not by API clients.',
    ],
    [
      '/push/microsoft/lifecycle',
      'receiveGraphLifecycleNotification',
      'Microsoft Graph subscription lifecycle notifications',
      'Graph lifecycle notifications (reauthorization required, subscription removed, missed notifications): the subscription is renewed or recreated and the mailbox resynced. Called by Microsoft, not by API clients.',
    ],
  ] as const) {
    routes.add({
      method: 'post',
      path,
      operationId,
      summary,
      description,
      tags: ['Push'],
      auth: 'push',
      bodyContentType: 'application/json',
      body: z.custom<Request>(),
      query: z.object({ validationToken: z.string().max(1024).optional() }),
      responses: {
        200: { description: 'Validation handshake: the decoded validationToken', contentType: 'text/plain' },
        202: { description: 'Notifications accepted; syncs queued' },
        400: { description: 'Not a notification collection' },
        429: { description: 'Too many notifications from this address (`RATE_LIMIT_PUSH`): retry after `Retry-After` seconds' },
      },
      async handler({ req, res, query }) {
        if (query.validationToken !== undefined) {
          plain(res).status(200).send(query.validationToken);
          return { handled: true };
        }
        let parsed: z.infer<typeof bodySchema>;
        try {
          parsed = bodySchema.parse(JSON.parse(await readBody(req, MAX_NOTIFICATION_BYTES)));
        } catch {
          res.status(400).end();
          return { handled: true };
        }
        await deps.receiveMicrosoft(parsed.value);
        // 202 even when some were rejected: a forged notification gets no signal, and Graph must
        // not retry a batch because one entry in it was bad.
        res.status(202).end();
        return { handled: true };
      },
    });
  }
}

function plain(res: Response): Response {
  return res.type('text/plain; charset=utf-8').set('X-Content-Type-Options', 'nosniff').set('Content-Security-Policy', "default-src 'none'");
}
