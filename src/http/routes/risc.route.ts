import { readBody } from '../read-body.js';
import { z } from 'zod';
import type { RouteRegistry } from '../route-registry.js';

/** Why a SET was refused; anything else thrown is a server error. */
export type RiscRejection = 'malformed' | 'unsupported_alg' | 'unknown_key' | 'bad_signature' | 'bad_type' | 'bad_issuer' | 'bad_audience' | 'stale' | 'keys_unavailable';

export interface RiscRouteDeps {
  receive(jwt: string): Promise<{ accepted: true } | { accepted: false; reason: RiscRejection }>;
}

const MAX_SET_BYTES = 64 * 1024;

/** RFC 8935 error codes for a push-delivered SET. */
const rfc8935Error = z.object({ err: z.string(), description: z.string() });

/**
 * Google Cross-Account Protection (RISC) receiver: Google POSTs a signed Security Event Token
 * (`application/secevent+jwt`, RFC 8935 push delivery). No API key: the signature is the
 * authentication. Only mounted when GOOGLE_RISC_ENABLED is set.
 */
export function registerRiscRoutes(routes: RouteRegistry, deps: RiscRouteDeps): void {
  routes.add({
    method: 'post',
    path: '/risc/google',
    operationId: 'receiveGoogleRisc',
    summary: 'Google Cross-Account Protection security events',
    tags: ['Push'],
    auth: 'push',
    bodyContentType: 'application/secevent+jwt',
    body: z.custom<Request>(),
    responses: {
      202: { description: 'Accepted' },
      400: { description: 'Not a valid, verifiable SET (RFC 8935 error body)', schema: rfc8935Error },
      429: { description: 'Too many SETs from this address (`RATE_LIMIT_PUSH`): retry after `Retry-After` seconds' },
    },
    async handler({ req, res }) {
      let jwt: string;
      try {
        jwt = await readBody(req, MAX_SET_BYTES);
      } catch {
        res.status(400).json({ err: 'invalid_request', description: 'body too large or unreadable' });
        return { handled: true };
      }
      const outcome = await deps.receive(jwt);
      if (!outcome.accepted) {
        if (outcome.reason === 'keys_unavailable') {
          // Our side: let Google retry later.
          res.status(503).json({ err: 'temporarily_unavailable', description: 'signing keys could not be loaded' });
          return { handled: true };
        }
        const err = outcome.reason === 'bad_type' ? 'invalid_request' : outcome.reason === 'unknown_key' ? 'invalid_key' : outcome.reason === 'bad_issuer' ? 'invalid_issuer' : outcome.reason === 'bad_audience' ? 'invalid_audience' : 'authentication_failed';
        res.status(400).json({ err, description: 'the security event token was rejected' });
        return { handled: true };
      }
      res.status(202).end();
      return { handled: true };
    },
  });
}
