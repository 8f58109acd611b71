import SwaggerParser from '@apidevtools/swagger-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_TYPES } from '../../src/events/event-types.js';
import { startTestService, type TestService } from '../helpers/test-service.js';

type Json = Record<string, unknown>;
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

let svc: TestService;
let doc: Json;

beforeAll(async () => {
  svc = await startTestService({ workers: false });
  const res = await fetch(`${svc.url}/openapi.json`);
  expect(res.status).toBe(200);
  doc = (await res.json()) as Json;
});
afterAll(async () => {
  await svc?.close();
});

function resolvePointer(root: Json, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  let node: unknown = root;
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object' || !(key in (node as Json))) return undefined;
    node = (node as Json)[key];
  }
  return node;
}

function collectRefs(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) node.forEach((n) => collectRefs(n, out));
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string') out.push(v);
      else collectRefs(v, out);
    }
  }
  return out;
}

function operations(): Array<{ path: string; method: string; op: Json }> {
  const out: Array<{ path: string; method: string; op: Json }> = [];
  for (const [path, item] of Object.entries(doc.paths as Record<string, Json>)) {
    for (const method of METHODS) if (item[method]) out.push({ path, method, op: item[method] as Json });
  }
  return out;
}

describe('/openapi.json', () => {
  it('is a structurally valid OpenAPI 3.1 document', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    const ops = operations();
    expect(ops.length).toBeGreaterThan(10);
    const operationIds = ops.map((o) => o.op.operationId);
    expect(new Set(operationIds).size).toBe(operationIds.length);
    for (const { path, method, op } of ops) {
      const where = `${method.toUpperCase()} ${path}`;
      expect(typeof op.operationId, where).toBe('string');
      const responses = op.responses as Record<string, Json> | undefined;
      expect(responses && Object.keys(responses).length, `${where} has responses`).toBeGreaterThan(0);
      for (const [code, r] of Object.entries(responses!)) {
        expect(code, where).toMatch(/^([1-5]\d\d|[1-5]XX|default)$/);
        expect(typeof r.description, `${where} ${code} description`).toBe('string');
      }
      // Every {param} in the template is declared as a required path parameter, and vice versa.
      const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      const params = ((op.parameters as Json[] | undefined) ?? []).map((p) => (p.$ref ? (resolvePointer(doc, p.$ref as string) as Json) : p));
      const declared = params.filter((p) => p.in === 'path');
      expect(declared.map((p) => p.name).sort(), `${where} path params`).toEqual([...templated].sort());
      for (const p of declared) expect(p.required, `${where} ${String(p.name)} required`).toBe(true);
      for (const p of params) expect(['path', 'query', 'header', 'cookie']).toContain(p.in);
    }
  });

  it('resolves every $ref', () => {
    const refs = collectRefs(doc);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) expect(resolvePointer(doc, ref), ref).toBeDefined();
  });

  it('documents every route the registry serves, with the same operation id', () => {
    const paths = doc.paths as Record<string, Json>;
    const missing: string[] = [];
    for (const route of svc.service.routes.routes) {
      const oaPath = route.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
      const op = paths[oaPath]?.[route.method] as Json | undefined;
      if (!op || op.operationId !== route.operationId) missing.push(`${route.method.toUpperCase()} ${route.path}`);
    }
    expect(missing).toEqual([]);
    // And this room's routes are among them.
    for (const p of ['/v1/webhook-endpoints', '/v1/webhook-endpoints/{id}/rotate-secret', '/v1/events', '/v1/events/{id}/replay', '/v1/mailboxes/{id}/messages', '/v1/messages/{id}', '/v1/attachments/{id}/content', '/v1/audit']) {
      expect(paths[p], p).toBeDefined();
    }
  });

  it('passes a maintained validator (@apidevtools/swagger-parser: OpenAPI 3.1 schema and $refs)', async () => {
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeDefined();
  });

  it('covers the routes outside the registry: health, readiness, metrics and the document itself', () => {
    const paths = doc.paths as Record<string, Json>;
    for (const p of ['/healthz', '/readyz', '/metrics', '/openapi.json']) expect((paths[p]?.get as Json | undefined)?.operationId, p).toBeTypeOf('string');
    // The console and the reference page are HTML, not API, and the document says so.
    expect(Object.keys(paths).some((p) => p.startsWith('/admin') || p === '/docs')).toBe(false);
    expect((doc.info as Json).description).toMatch(/\/admin/);
  });

  it('gives every operation a description and an example for every request and response body', () => {
    const problems: string[] = [];
    for (const { path, method, op } of operations()) {
      const where = `${method.toUpperCase()} ${path}`;
      if (typeof op.description !== 'string' || op.description.trim().length < 20) problems.push(`${where}: no description`);
      const media: Array<[string, Json]> = [];
      const rb = op.requestBody as Json | undefined;
      for (const [type, m] of Object.entries((rb?.content ?? {}) as Record<string, Json>)) media.push([`request ${type}`, m]);
      for (const [code, r] of Object.entries(op.responses as Record<string, Json>)) for (const [type, m] of Object.entries((r.content ?? {}) as Record<string, Json>)) media.push([`${code} ${type}`, m]);
      for (const [what, m] of media) if (m.schema && !('example' in m) && !('examples' in m)) problems.push(`${where} ${what}: no example`);
    }
    expect(problems).toEqual([]);
  });

  it('every example is valid for the route’s own schema (what the server accepts and answers)', () => {
    const paths = doc.paths as Record<string, Json>;
    const problems: string[] = [];
    for (const route of svc.service.routes.routes) {
      const op = paths[route.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}')]![route.method] as Json;
      const where = `${route.method.toUpperCase()} ${route.path}`;
      if (route.body && !route.bodyContentType) {
        const example = (((op.requestBody as Json).content as Json)['application/json'] as Json).example;
        const r = route.body.safeParse(example);
        if (!r.success) problems.push(`${where} request example: ${r.error.issues[0]!.path.join('.')} ${r.error.issues[0]!.message}`);
      }
      for (const [code, resp] of Object.entries(route.responses)) {
        if (!resp.schema || (resp.contentType && resp.contentType !== 'application/json')) continue;
        const example = ((((op.responses as Json)[code] as Json).content as Json)['application/json'] as Json).example;
        const r = resp.schema.safeParse(example);
        if (!r.success) problems.push(`${where} ${code} example: ${r.error.issues[0]!.path.join('.')} ${r.error.issues[0]!.message}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('gives every named schema a description and an example', () => {
    const problems: string[] = [];
    for (const [name, schema] of Object.entries(((doc.components as Json).schemas ?? {}) as Record<string, Json>)) {
      if (typeof schema.description !== 'string' || !schema.description) problems.push(`${name}: no description`);
      if (!('example' in schema) && !(Array.isArray(schema.examples) && schema.examples.length)) problems.push(`${name}: no example`);
    }
    expect(problems).toEqual([]);
  });

  it('documents every event type under webhooks, with its signature headers, a description and an example', () => {
    const webhooks = doc.webhooks as Record<string, Json>;
    expect(Object.keys(webhooks).sort()).toEqual([...EVENT_TYPES].sort());
    for (const type of EVENT_TYPES) {
      const op = webhooks[type]!.post as Json;
      expect(op.description, type).toEqual(expect.stringContaining('webhook-signature'));
      const params = (op.parameters as Json[] | undefined) ?? [];
      for (const h of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) expect(params.find((p) => p.name === h)?.required, `${type} ${h}`).toBe(true);
      const body = (((op.requestBody as Json).content as Json)['application/json'] as Json).example as Json;
      expect(body, type).toMatchObject({ type, id: expect.any(String), sequence: expect.any(Number), data: expect.any(Object) });
    }
  });

  it('marks the headers the server requires as required (Idempotency-Key on sends)', () => {
    const paths = doc.paths as Record<string, Json>;
    for (const p of ['/v1/messages/{id}/reply', '/v1/mailboxes/{id}/send']) {
      const params = ((paths[p]!.post as Json).parameters as Json[]) ?? [];
      expect(params.find((x) => x.in === 'header' && x.name === 'idempotency-key')?.required, p).toBe(true);
    }
    for (const route of svc.service.routes.routes.filter((r) => r.requiredHeaders?.length)) {
      const params = ((paths[route.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}')]![route.method] as Json).parameters as Json[]) ?? [];
      for (const h of route.requiredHeaders!) expect(params.find((x) => x.in === 'header' && x.name === h.toLowerCase())?.required, `${route.path} ${h}`).toBe(true);
    }
  });

  it('serves the reference at /docs from this origin (Swagger UI, no CDN, no inline script) and / leads there', async () => {
    const root = await fetch(`${svc.url}/`, { redirect: 'manual' });
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/docs');
    const page = await fetch(`${svc.url}/docs`);
    expect(page.status).toBe(200);
    const html = await page.text();
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(html).not.toMatch(/<script>|<script [^>]*>[^<]+<\/script>|https?:\/\//);
    for (const src of [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!)) {
      const res = await fetch(`${svc.url}${src}`);
      expect(res.status, src).toBe(200);
    }
    expect(await (await fetch(`${svc.url}/docs/swagger-initializer.js`)).text()).toContain("url: '/openapi.json'");
    expect((await fetch(`${svc.url}/docs/assets/package.json`)).status).toBe(404);
  });
});

