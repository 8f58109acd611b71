import type { NextFunction, Request, RequestHandler, Response, Router } from 'express';
import { z } from 'zod';
import type { ZodOpenApiOperationObject, ZodOpenApiPathsObject } from 'zod-openapi';
import { ERROR_CODES, ValidationError } from './api-error.js';
import type { Authenticate, AuthRequirement, PrincipalFor, PublicPrincipal, PushPrincipal } from './auth-context.js';

/**
 * One definition per route: express registration, zod validation and the OpenAPI operation all
 * come from it, so the document cannot drift from what the server accepts.
 */
type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

export interface RouteContext<P, Q, B, H, A extends AuthRequirement = AuthRequirement> {
  params: P;
  query: Q;
  body: B;
  headers: H;
  /** Exactly the kind the route's `auth` names (a tenant route gets a tenant, a public page no one). */
  principal: PrincipalFor<A>;
  req: Request;
  res: Response;
}

export type RouteResult =
  | { status: number; body?: unknown; headers?: Record<string, string> }
  /** The handler wrote the response itself (HTML pages, redirects, streams). */
  | { handled: true };

export interface RouteSpec<
  P extends z.ZodType = z.ZodType,
  Q extends z.ZodType = z.ZodType,
  B extends z.ZodType = z.ZodType,
  H extends z.ZodType = z.ZodType,
  A extends AuthRequirement = AuthRequirement,
> {
  method: Method;
  /** Express path, e.g. `/v1/mailboxes/:id`. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  auth: A;
  params?: P;
  query?: Q;
  body?: B;
  /** Body content type when not JSON (documentation only). */
  bodyContentType?: string;
  headers?: H;
  /**
   * Headers the handler requires although `headers` lets them through (so that it can answer a
   * missing one with its own error code): marked required in the OpenAPI document.
   */
  requiredHeaders?: string[];
  responses: Record<number, { description: string; schema?: z.ZodType; contentType?: string }>;
  /** Per-route body size limit (e.g. sends with attachments); default is the app-wide limit. */
  bodyLimit?: string;
  handler: (ctx: RouteContext<z.output<P>, z.output<Q>, z.output<B>, z.output<H>, A>) => Promise<RouteResult>;
}

export interface RouteRegistry {
  add<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType, H extends z.ZodType, A extends AuthRequirement>(spec: RouteSpec<P, Q, B, H, A>): void;
  readonly routes: readonly RouteSpec[];
  /** Mounts every route on `router`, using `authenticate` for those that need a principal. */
  mount(router: Router, authenticate: Authenticate, bodyParser: (limit?: string) => RequestHandler): void;
  openApiPaths(): ZodOpenApiPathsObject;
}

export function createRouteRegistry(): RouteRegistry {
  const routes: RouteSpec[] = [];
  return {
    routes,
    add(spec) {
      if (routes.some((r) => r.method === spec.method && r.path === spec.path)) {
        throw new Error(`route ${spec.method.toUpperCase()} ${spec.path} is registered twice`);
      }
      routes.push(spec as unknown as RouteSpec);
    },
    mount(router, authenticate, bodyParser) {
      for (const spec of routes) {
        const handlers: RequestHandler[] = [];
        if (spec.body && !spec.bodyContentType) handlers.push(bodyParser(spec.bodyLimit));
        handlers.push(async (req: Request, res: Response, next: NextFunction) => {
          try {
            const principal = await principalOf(spec.auth, req, authenticate);
            rejectNulBytes(req.params, 'path parameter');
            rejectNulBytes(req.query, 'query parameter');
            const params = parseInput(spec.params, req.params, 'path parameter');
            const query = parseInput(spec.query, req.query, 'query parameter');
            const headers = parseInput(spec.headers, req.headers, 'header');
            if (spec.body && !spec.bodyContentType) rejectNulBytes(req.body, 'body');
            const body = spec.body ? parseInput(spec.body, spec.bodyContentType ? req : (req.body ?? {}), 'body') : undefined;
            res.locals.route = spec.path;
            const result = await spec.handler({ params, query, body, headers, principal, req, res } as never);
            if ('handled' in result) return;
            for (const [k, v] of Object.entries(result.headers ?? {})) res.setHeader(k, v);
            if (result.body === undefined) res.status(result.status).end();
            else res.status(result.status).json(result.body);
          } catch (err) {
            next(err);
          }
        });
        router[spec.method](spec.path, ...handlers);
      }
    },
    openApiPaths() {
      const paths: ZodOpenApiPathsObject = {};
      for (const spec of routes) {
        const oaPath = spec.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
        const op: ZodOpenApiOperationObject = {
          operationId: spec.operationId,
          summary: spec.summary,
          ...(spec.description ? { description: spec.description } : {}),
          tags: spec.tags,
          ...(spec.auth === 'none' || spec.auth === 'push' ? { security: [] } : {}),
          requestParams: {
            ...(spec.params ? { path: spec.params as never } : {}),
            ...(spec.query ? { query: spec.query as never } : {}),
            ...(spec.headers ? { header: spec.headers as never } : {}),
          },
          ...(spec.body
            ? {
                requestBody: {
                  required: true,
                  content: { [spec.bodyContentType ?? 'application/json']: { schema: spec.bodyContentType ? z.unknown() : spec.body } },
                },
              }
            : {}),
          responses: Object.fromEntries(
            Object.entries(spec.responses).map(([status, r]) => [
              status,
              {
                description: r.description,
                ...(r.schema ? { content: { [r.contentType ?? 'application/json']: { schema: r.schema } } } : {}),
              },
            ]),
          ),
        };
        paths[oaPath] = { ...(paths[oaPath] ?? {}), [spec.method]: op };
      }
      return paths;
    },
  };
}

/** Public pages and push endpoints carry no API key: they run as no one, never as an operator. */
async function principalOf(auth: AuthRequirement, req: Request, authenticate: Authenticate): Promise<PrincipalFor<AuthRequirement>> {
  if (auth === 'none') return { kind: 'public' } satisfies PublicPrincipal;
  if (auth === 'push') return { kind: 'push' } satisfies PushPrincipal;
  return authenticate(req, auth);
}

/**
 * Where the first NUL byte in a JSON-like value is (path of the string or key holding it), or
 * undefined. Nesting deeper than 64 levels is not searched.
 */
export function findNulByte(value: unknown, path: string[] = [], depth = 0): string[] | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? path : undefined;
  if (depth > 64 || !value || typeof value !== 'object') return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findNulByte(value[i], [...path, String(i)], depth + 1);
      if (found) return found;
    }
    return undefined;
  }
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    if (key.includes('\u0000')) return [...path, key.replaceAll('\u0000', '\\0')];
    const found = findNulByte(v, [...path, key], depth + 1);
    if (found) return found;
  }
  return undefined;
}

/**
 * No identifier, cursor, filter or JSON field of this API ever holds a NUL byte (mail text cannot
 * carry one either), and Postgres refuses one in any text value, so the query would fail as a
 * 500. Checked here once for every route — path and query parameters and JSON bodies — before any
 * schema or handler sees the value.
 */
function rejectNulBytes(values: unknown, where: string): void {
  const found = findNulByte(values);
  if (!found) return;
  const field = found.join('.') || where;
  throw new ValidationError(`${where} ${field}: must not contain a NUL byte`, { field, location: where });
}

/**
 * The 400 for a failed zod parse of `where` (body, query, path): `details.field` names the
 * offending field — for an unknown field, the unknown key itself (`body` would not tell the caller
 * which one).
 */
export function validationError(error: z.ZodError, where: string): ValidationError {
  const issue = error.issues[0]!;
  const path = issue.code === 'unrecognized_keys' && issue.keys.length ? [...issue.path, issue.keys[0]!] : issue.path;
  const field = path.length ? path.join('.') : where;
  const message =
    issue.code === 'unrecognized_keys'
      ? `unknown ${where} field${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.join(', ')}`
      : `${where} ${field}: ${issue.message}`;
  return new ValidationError(message, { field, location: where });
}

function parseInput(schema: z.ZodType | undefined, value: unknown, where: string): unknown {
  if (!schema) return undefined;
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw validationError(parsed.error, where);
}

/** Standard error response schema for the OpenAPI document. */
export const errorSchema = z
  .object({
    error: z.object({
      code: z.enum(ERROR_CODES).meta({ example: 'not_found', description: 'One of the catalogue codes (docs/api.md, Errors)' }),
      message: z.string(),
      requestId: z.string().optional(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  })
  .meta({ id: 'Error' });

export const commonErrors = {
  400: { description: 'Invalid request', schema: errorSchema },
  401: { description: 'Missing or invalid API key', schema: errorSchema },
  404: { description: 'Not found (or not this tenant’s)', schema: errorSchema },
  429: { description: 'Too many failed authentications (or connect sessions) from this client: `rate_limited`, retry after `Retry-After` seconds (docs/security.md, Abuse limits)', schema: errorSchema },
} as const;
