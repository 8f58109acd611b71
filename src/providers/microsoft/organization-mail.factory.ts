import type { AccessTokenSource, ChangePage, MailProvider, RawMessage, SendRequest, SendResult, SyncCursor, WindowPage } from '../mail-provider.port.js';
import { MailProviderFactory, type MailboxRef, type MailProviderFactoryOptions } from '../mail-provider.factory.js';
import { ProviderError } from '../provider-error.js';
import type { GraphSubscriptionsPort } from '../ports.js';
import type { WatchInfo } from '../mail-provider.port.js';
import { ConcurrencyLimiter } from './concurrency-limiter.js';
import { GraphSubscriptionsAdapter } from './graph-subscriptions.adapter.js';
import { GraphAdapter } from './graph.adapter.js';
import type { MicrosoftEndpoints } from './microsoft-endpoints.js';

/** An organization-install mailbox: the address its `/users/{address}/…` paths name. */
export interface OrganizationMailboxBinding {
  address: string;
}

export interface OrganizationMailOptions extends MailProviderFactoryOptions {
  /**
   * The binding of a Microsoft mailbox added to an organization install; undefined for every
   * other mailbox (delegated, shared member), which the plain factory serves.
   */
  organizationMailbox: (mailboxId: string) => Promise<OrganizationMailboxBinding | undefined>;
  /**
   * Called when Graph refuses an organization mailbox (403: taken out of the application access
   * policy): the vault flags it `reauth_required` with its one event. Then the error goes on.
   */
  organizationAccessDenied?: (mailboxId: string) => Promise<unknown>;
}

/** Graph's 403 on an organization mailbox: the tenant's application access policy (or consent) no longer lets the app in. */
export const ORGANIZATION_ACCESS_DENIED = 'organization_access_denied';

function organizationAccessDenied(err: ProviderError): ProviderError {
  if (err.status !== 403 || err.kind !== 'auth_revoked') return err;
  return new ProviderError('microsoft', 'auth_revoked', 'The organization no longer lets the app read this mailbox (Graph 403: application access policy or consent)', {
    status: 403,
    reason: ORGANIZATION_ACCESS_DENIED,
    cause: err,
  });
}

/**
 * The provider factory with organization installs: a Microsoft mailbox added to an install is
 * read and written as `/users/{address}/…` with the install's app-only token (application
 * permissions, `appOnly` sends) and its push subscription names that resource; every other
 * mailbox is built by the plain factory. Whether a mailbox is an organization one is looked up
 * once (lazily: `forMailbox` stays synchronous) and never changes for a mailbox id.
 */
export class OrganizationMailProviderFactory extends MailProviderFactory {
  readonly #limiters = new Map<string, ConcurrencyLimiter>();

  constructor(private readonly org: OrganizationMailOptions) {
    super(org);
  }

  #endpoints(): MicrosoftEndpoints {
    if (!this.org.microsoft) throw new ProviderError('microsoft', 'invalid_request', 'Microsoft is not configured', { reason: 'provider_not_configured' });
    return this.org.microsoft;
  }

  #limiter(id: string): ConcurrencyLimiter {
    let l = this.#limiters.get(id);
    if (!l) {
      l = new ConcurrencyLimiter(4);
      this.#limiters.set(id, l);
      if (this.#limiters.size > 5000) this.#limiters.delete(this.#limiters.keys().next().value as string);
    }
    return l;
  }

  #tokens(id: string): AccessTokenSource {
    return this.org.tokenSource(id);
  }

  override forMailbox(mailbox: MailboxRef & { access?: string }): MailProvider {
    if (mailbox.provider !== 'microsoft' || (mailbox.access !== undefined && mailbox.access !== 'organization')) return super.forMailbox(mailbox);
    const onAccessDenied = this.org.organizationAccessDenied;
    const report = async (err: unknown): Promise<void> => {
      if (onAccessDenied && err instanceof ProviderError && err.reason === ORGANIZATION_ACCESS_DENIED) await onAccessDenied(mailbox.id).catch(() => undefined);
    };
    return new LazyProvider(report, async () => {
      const binding = await this.org.organizationMailbox(mailbox.id);
      if (!binding) return super.forMailbox(mailbox);
      return new GraphAdapter({
        endpoints: this.#endpoints(),
        accessToken: this.#tokens(mailbox.id),
        limiter: this.#limiter(mailbox.id),
        sharedMailbox: binding.address,
        appOnly: true,
        runner: { refineError: organizationAccessDenied },
      });
    });
  }

  override graphSubscriptions(mailbox: MailboxRef & { access?: string }): GraphSubscriptionsAdapter {
    const plain = super.graphSubscriptions(mailbox);
    if (mailbox.access !== undefined && mailbox.access !== 'organization') return plain;
    const resolve = async (): Promise<GraphSubscriptionsPort & { resource?: string }> => {
      const binding = await this.org.organizationMailbox(mailbox.id);
      if (!binding) return plain;
      const subs = new GraphSubscriptionsAdapter({ endpoints: this.#endpoints(), accessToken: this.#tokens(mailbox.id), limiter: this.#limiter(mailbox.id), runner: { refineError: organizationAccessDenied } });
      const resource = `/users/${encodeURIComponent(binding.address)}/mailFolders('inbox')/messages`;
      return {
        create: (input) => subs.create({ ...input, resource }),
        renew: (id, at) => subs.renew(id, at),
        reauthorize: (id) => subs.reauthorize(id),
        delete: (id) => subs.delete(id),
      };
    };
    // Same surface as the adapter the callers expect; each call resolves the binding first.
    return {
      create: async (input: Parameters<GraphSubscriptionsAdapter['create']>[0]): Promise<WatchInfo & { subscriptionId: string }> => (await resolve()).create(input),
      renew: async (id: string, at: Date) => (await resolve()).renew(id, at),
      reauthorize: async (id: string) => (await resolve()).reauthorize(id),
      delete: async (id: string) => (await resolve()).delete(id),
    } as unknown as GraphSubscriptionsAdapter;
  }

  override release(mailboxId: string): void {
    super.release(mailboxId);
    this.#limiters.delete(mailboxId);
  }
}

/** A MailProvider built on first use (the organization binding is looked up asynchronously). */
class LazyProvider implements MailProvider {
  readonly name = 'microsoft' as const;
  #inner: Promise<MailProvider> | undefined;

  constructor(
    private readonly onError: (err: unknown) => Promise<void>,
    private readonly make: () => Promise<MailProvider>,
  ) {}

  async #run<T>(call: (p: MailProvider) => Promise<T>): Promise<T> {
    this.#inner ??= this.make();
    try {
      return await call(await this.#inner);
    } catch (err) {
      await this.onError(err);
      throw err;
    }
  }

  getAddress(): Promise<string> {
    return this.#run((p) => p.getAddress());
  }
  currentCursor(): Promise<SyncCursor> {
    return this.#run((p) => p.currentCursor());
  }
  listChanges(cursor: SyncCursor): Promise<ChangePage> {
    return this.#run((p) => p.listChanges(cursor));
  }
  listWindow(since: Date, pageToken?: string): Promise<WindowPage> {
    return this.#run((p) => p.listWindow(since, pageToken));
  }
  fetchRaw(providerMessageId: string): Promise<RawMessage> {
    return this.#run((p) => p.fetchRaw(providerMessageId));
  }
  findByInternetMessageId(internetMessageId: string): Promise<string | undefined> {
    return this.#run((p) => p.findByInternetMessageId(internetMessageId));
  }
  send(req: SendRequest): Promise<SendResult> {
    return this.#run((p) => p.send(req));
  }
}
