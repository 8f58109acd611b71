import type { Request } from 'express';

/**
 * Who is calling, typed by how they authenticated. A route declares its `auth` and its handler
 * receives exactly that kind of principal (`PrincipalFor`), so a public page cannot act as an
 * operator and a tenant route needs no "is this really a tenant?" check: the compiler proves it
 * (src/http/auth-context.test.ts).
 */

/** `Authorization: Bearer <tenant API key>`. */
export interface TenantPrincipal {
  kind: 'tenant';
  tenantId: string;
  apiKeyId: string;
}

/**
 * An admin API key, or the per-run token a local CLI uses to reach a `serve` that holds the
 * embedded database.
 */
export type AdminPrincipal = { kind: 'admin'; apiKeyId: string } | { kind: 'local_admin' };

/** A signed-in ops console session (cookie + CSRF token; the admin key was checked at sign-in). */
export interface ConsolePrincipal {
  kind: 'console';
  apiKeyId: string;
}

/** No credential: the hosted connect pages and OAuth callbacks (bound to a session by single-use `state`). */
export interface PublicPrincipal {
  kind: 'public';
}

/**
 * A provider notification (Pub/Sub push, Graph notification, RISC security event): no API key;
 * the handler verifies the notification itself (OIDC JWT, `clientState`, signed SET).
 */
export interface PushPrincipal {
  kind: 'push';
}

export type Principal = TenantPrincipal | AdminPrincipal | ConsolePrincipal | PublicPrincipal | PushPrincipal;

/** What a route requires: `none` = public pages, `push` = provider notifications verified by the handler. */
export type AuthRequirement = 'none' | 'push' | 'tenant' | 'admin';

/** The principal a route with `auth: A` runs as. */
export type PrincipalFor<A extends AuthRequirement> = A extends 'tenant'
  ? TenantPrincipal
  : A extends 'admin'
    ? AdminPrincipal
    : A extends 'push'
      ? PushPrincipal
      : PublicPrincipal;

/** The requirements an API key answers (the others need no key). */
export type KeyRequirement = Extract<AuthRequirement, 'tenant' | 'admin'>;

export type Authenticate = <A extends KeyRequirement>(req: Request, need: A) => Promise<PrincipalFor<A>>;

/** The audit actor of a tenant API key or an operator. Public and push principals are no actors. */
export function actorOf(p: TenantPrincipal | AdminPrincipal): { actorType: 'api_key' | 'ops'; actorId: string } {
  switch (p.kind) {
    case 'tenant':
      return { actorType: 'api_key', actorId: p.apiKeyId };
    case 'admin':
      return { actorType: 'ops', actorId: p.apiKeyId };
    case 'local_admin':
      return { actorType: 'ops', actorId: 'local-cli' };
  }
}

/** The `actorId` an ops command records for an operator: `ops:<key id>`, `ops:local-cli` or `console:<key id>`. */
export function opsActorId(p: AdminPrincipal | ConsolePrincipal): string {
  return p.kind === 'console' ? `console:${p.apiKeyId}` : `ops:${actorOf(p).actorId}`;
}
