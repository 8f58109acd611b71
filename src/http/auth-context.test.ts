import express, { type RequestHandler } from 'express';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { z } from 'zod';
import { actorOf, type AdminPrincipal, type Authenticate, type AuthRequirement, type PrincipalFor, type PublicPrincipal, type PushPrincipal, type TenantPrincipal } from './auth-context.js';
import { createRouteRegistry, type RouteContext, type RouteRegistry, type RouteSpec } from './route-registry.js';

/** Adds `GET /<auth>` with `handler`, typed exactly as a real route with that `auth`. */
function testRoute(routes: RouteRegistry) {
  return <A extends AuthRequirement>(auth: A, handler: RouteSpec<z.ZodType, z.ZodType, z.ZodType, z.ZodType, A>['handler']): void =>
    routes.add({ method: 'get', path: `/${auth}`, operationId: auth, summary: auth, tags: ['t'], auth, responses: { 200: { description: 'ok' } }, handler });
}

// The type-level half runs under `npm run typecheck` (this file is in tsconfig's include): a
// `@ts-expect-error` that stops erroring fails the typecheck.
describe('route principals are typed by their auth kind', () => {
  it('gives each requirement exactly its kind of principal', () => {
    expectTypeOf<PrincipalFor<'tenant'>>().toEqualTypeOf<TenantPrincipal>();
    expectTypeOf<PrincipalFor<'admin'>>().toEqualTypeOf<AdminPrincipal>();
    expectTypeOf<PrincipalFor<'none'>>().toEqualTypeOf<PublicPrincipal>();
    expectTypeOf<PrincipalFor<'push'>>().toEqualTypeOf<PushPrincipal>();
    expectTypeOf<RouteContext<unknown, unknown, unknown, unknown, 'tenant'>['principal']>().toEqualTypeOf<TenantPrincipal>();
    expectTypeOf<RouteContext<unknown, unknown, unknown, unknown, 'none'>['principal']>().toEqualTypeOf<PublicPrincipal>();
  });

  it('does not let a public page or a push endpoint act as an operator or a tenant', () => {
    const routes = createRouteRegistry();
    const add = testRoute(routes);
    add('none', async ({ principal }) => {
      // @ts-expect-error a public principal is no audit actor (it used to run as local_admin)
      actorOf(principal);
      // @ts-expect-error and has no tenant
      void principal.tenantId;
      return { status: 200, body: principal };
    });
    add('push', async ({ principal }) => {
      // @ts-expect-error a push notification is no operator
      actorOf(principal);
      return { status: 200, body: principal };
    });
    // No "is this a tenant?" check: the type says so.
    add('tenant', async ({ principal }) => ({ status: 200, body: { tenantId: principal.tenantId, actor: actorOf(principal) } }));
    expect(routes.routes.map((r) => r.auth)).toEqual(['none', 'push', 'tenant']);
  });

  it('at run time, public and push routes get a principal of their own kind, never an API key’s', async () => {
    const routes = createRouteRegistry();
    const seen: unknown[] = [];
    for (const auth of ['none', 'push'] as const) {
      testRoute(routes)(auth, async ({ principal }) => {
        seen.push(principal);
        return { status: 204 };
      });
    }
    const authenticate = (async () => {
      throw new Error('public and push routes must not authenticate');
    }) as unknown as Authenticate;
    const router = express.Router();
    routes.mount(router, authenticate, (): RequestHandler => (_req, _res, next) => next());
    const app = express().use(router);
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const { port } = server.address() as { port: number };
      for (const auth of ['none', 'push']) expect((await fetch(`http://127.0.0.1:${port}/${auth}`)).status).toBe(204);
    } finally {
      server.close();
    }
    expect(seen).toEqual([{ kind: 'public' }, { kind: 'push' }]);
  });
});
