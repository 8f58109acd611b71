import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
});
