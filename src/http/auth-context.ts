/** Who is calling, as established by the auth middleware. */
export type Principal =
  | { kind: 'tenant'; tenantId: string; apiKeyId: string }
  | { kind: 'admin'; apiKeyId: string }
  /** The per-run token a local CLI uses to reach a `serve` that holds the embedded database. */
  | { kind: 'local_admin' };

export type AuthRequirement = 'none' | 'tenant' | 'admin';

export function actorOf(p: Principal): { actorType: 'api_key' | 'ops'; actorId: string } {
  switch (p.kind) {
    case 'tenant':
      return { actorType: 'api_key', actorId: p.apiKeyId };
    case 'admin':
      return { actorType: 'ops', actorId: p.apiKeyId };
    case 'local_admin':
      return { actorType: 'ops', actorId: 'local-cli' };
  }
}
