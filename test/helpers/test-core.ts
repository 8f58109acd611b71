// The middle tier of the integration tests: the real core — database (a copy of the suite's
// migrated template), key store, data keys, audit log, job queue storage — and the repositories on
// it, without the service's modules, HTTP server or job workers. For tests of a room's services
// and repositories that HTTP is not part of: they construct what they test from `core` themselves.
//
//   const t = await startTestCore();
//   const { tenantId } = await t.createTenant();
//   ... new SomeService(new SomeRepository(t.core.prisma), t.core.dataKeys) ...
//   await t.close();   // in afterAll
import { startTestService, type TestService, type TestServiceOptions } from './test-service.js';

export type TestCore = Pick<TestService, 'config' | 'core' | 'logs' | 'createTenant' | 'close'>;

export async function startTestCore(opts: Pick<TestServiceOptions, 'env' | 'databaseUrl' | 'dataDir' | 'encryptionKeys'> = {}): Promise<TestCore> {
  const svc = await startTestService({ ...opts, modules: () => Promise.resolve([]), http: false, workers: false });
  return { config: svc.config, core: svc.core, logs: svc.logs, createTenant: svc.createTenant.bind(svc), close: svc.close.bind(svc) };
}
