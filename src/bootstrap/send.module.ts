import { notifyEventsCommitted } from '../events/outbox.service.js';
import { registerOutboundRoutes } from '../http/routes/outbound.route.js';
import { registerSendRoutes } from '../http/routes/send.route.js';
import { PROVIDER_LIMITS } from '../providers/provider-modules.js';
import type { Scanner } from '../scan/scanner.port.js';
import type { MailProviderSource } from '../send/mail-provider-source.port.js';
import { OutboundSender, type OutboundSenderHooks, type OutboundSenderOptions } from '../send/outbound-sender.service.js';
import { OutboundQueryService } from '../send/outbound-view.js';
import type { ComposerDeps } from '../send/reply-composer.js';
import { SendAsDirectory, type SendAsDirectoryOptions } from '../send/send-as.directory.js';
import { SendRequestService } from '../send/send-request.service.js';
import { sendOps } from '../send/send.ops.js';
import { BlobStore } from '../storage/blob.store.js';
import { MessageReadRepository } from '../storage/message-read.repository.js';
import { OutboundRepository } from '../storage/outbound.repository.js';
import { SendFromRefusalRepository } from '../storage/send-from-refusal.repository.js';
import type { Core } from './core.js';
import type { ServiceModule } from './module.js';
import type { ProcessServices } from './modules.js';

export interface SendModuleOptions {
  /** Provider adapters per mailbox; default: the process services' factory (token vault). */
  providers?: MailProviderSource;
  /** Default: clamd from CLAMD_* (a NullScanner when unset: sends with attachments are refused, 503). */
  scanner?: Scanner;
  sender?: OutboundSenderOptions;
  hooks?: OutboundSenderHooks;
  composer?: ComposerDeps;
  /** Cache of the mailboxes' send-as lists (defaults: 10 min, refresh on a miss at most every 30 s). */
  sendAs?: SendAsDirectoryOptions;
}

/** Parallel sends per process; each holds at most one message's MIME in memory. */
const SEND_CONCURRENCY = 4;

/**
 * Replies and new messages through the connected mailbox (issue 7): the send and status routes,
 * the `send.outbound` job, and an ops command that re-enqueues records whose job was lost.
 */
export function sendModule(core: Core, services: ProcessServices, opts: SendModuleOptions = {}): ServiceModule {
  const providers: MailProviderSource = opts.providers ?? (async (mailbox) => services.access.providers.forMailbox(mailbox));
  // The same clamd client (CLAMD_*) that scans incoming attachments.
  const scanner = opts.scanner ?? services.scanner.scanner;
  const outbound = new OutboundRepository(core.prisma);
  const blobs = new BlobStore(core.prisma, core.dataKeys);
  // Send-as aliases (issue 15 item 4), read from the provider and cached in this process, and the
  // From addresses the provider refused at a send (remembered so requests for them are refused up
  // front), shared with every process through send_from_refusals (address as its blind index).
  const refusals = { store: new SendFromRefusalRepository(core.prisma), index: (address: string) => core.blindIndex.emailIndex(address) };
  const sendAs = new SendAsDirectory({ providers, clock: core.clock, logger: core.logger, refusals }, opts.sendAs);

  const requests = new SendRequestService({
    outbound,
    messages: new MessageReadRepository(core.prisma),
    mailboxes: core.mailboxes,
    dataKeys: core.dataKeys,
    blindIndex: core.blindIndex,
    blobs,
    scanner,
    jobs: core.jobs,
    audit: core.audit,
    logger: core.logger,
    clock: core.clock,
    ...(opts.composer ? { composer: opts.composer } : {}),
    limits: PROVIDER_LIMITS,
    sendAs,
  });
  const sender = new OutboundSender(
    {
      outbound,
      mailboxes: core.mailboxes,
      blobs,
      dataKeys: core.dataKeys,
      outbox: core.outbox,
      transaction: (fn) => outbound.transaction(fn),
      eventsCommitted: (ids) => notifyEventsCommitted(core.jobs, ids, core.logger),
      providers,
      logger: core.logger,
      metrics: core.metrics,
      clock: core.clock,
      ...(opts.hooks ? { hooks: opts.hooks } : {}),
      onSendAsDenied: (mailboxId, address) => sendAs.rememberDenied(mailboxId, address),
      onFromRewritten: (mailboxId, address) => sendAs.rememberRewritten(mailboxId, address),
    },
    { leaseMs: core.config.jobs.sendLeaseSeconds * 1000, ...opts.sender },
  );

  return {
    name: 'send',
    routes(registry) {
      registerSendRoutes(registry, { requests, bodyLimit: core.config.http.sendBodyLimit });
      registerOutboundRoutes(registry, { outbound: new OutboundQueryService(outbound) });
    },
    jobs(queue) {
      queue.register('send.outbound', (payload) => sender.handle(payload), { concurrency: SEND_CONCURRENCY });
    },
    ops: sendOps({ outbound, jobs: core.jobs, clock: core.clock }),
  };
}
