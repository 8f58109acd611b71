import type { Request } from 'express';
import { constantTimeEqual } from '../crypto/secret-compare.js';
import { isSandboxKey, type ApiKeyService } from '../tenancy/api-key.service.js';
import { ApiError, ForbiddenError, UnauthorizedError } from './api-error.js';
import type { AdminPrincipal, Authenticate, TenantPrincipal } from './auth-context.js';

/**
 * `Authorization: Bearer <key>`. Missing, malformed, unknown and revoked keys all answer the same
 * 401 so a caller learns nothing about which keys exist. A valid key of the wrong kind is a 403.
 */
export function createAuthenticator(deps: {
  apiKeys: Pick<ApiKeyService, 'authenticate'>;
  /** Per-run token of the local CLI when this process holds the embedded database. */
  localAdminToken?: () => string | undefined;
  /** NODE_ENV=production: `mbc_test_` keys (issued by a sandbox process) are refused with their own message. */
  refuseSandboxKeys?: boolean;
}): Authenticate {
  const authenticate = async (req: Request, need: 'tenant' | 'admin'): Promise<TenantPrincipal | AdminPrincipal> => {
    const header = req.header('authorization');
    const match = header ? /^Bearer ([^\s]+)$/i.exec(header.trim()) : null;
    if (!match) {
      throw new UnauthorizedError('missing or malformed Authorization header; expected "Bearer <API key>"');
    }
    const presented = match[1]!;
    if (deps.refuseSandboxKeys && isSandboxKey(presented)) {
      // Said plainly (the prefix is public): a sandbox key pasted into a production integration.
      throw new ApiError('sandbox_key_refused', 'this is a sandbox API key (mbc_test_…), issued by a SANDBOX=1 process; a production process accepts live keys (mbc_live_…) only');
    }
    let principal: TenantPrincipal | AdminPrincipal | undefined;
    const local = deps.localAdminToken?.();
    if (local && constantTimeEqual(presented, local)) {
      principal = { kind: 'local_admin' };
    } else {
      const key = await deps.apiKeys.authenticate(presented);
      if (key) principal = key.scope === 'admin' ? { kind: 'admin', apiKeyId: key.keyId } : { kind: 'tenant', tenantId: key.tenantId, apiKeyId: key.keyId };
    }
    if (!principal) throw new UnauthorizedError('invalid or revoked API key');
    if (need === 'tenant' && principal.kind !== 'tenant') {
      // Ops keys cannot read tenant mail: that path is break-glass only (Limited Use).
      throw new ForbiddenError('this endpoint needs a tenant API key');
    }
    if (need === 'admin' && principal.kind === 'tenant') {
      throw new ForbiddenError('this endpoint needs an admin API key');
    }
    return principal;
  };
  // The checks above make the principal the kind `need` names.
  return authenticate as Authenticate;
}
