import { registerAttachmentRoutes } from '../http/routes/attachments.route.js';
import { registerAuditRoutes } from '../http/routes/audit.route.js';
import { registerMessageRoutes } from '../http/routes/messages.route.js';
import { MessageContentPool } from '../messages/content-pool.js';
import { MessageReadService } from '../messages/message-read.service.js';
import { MessageViewer } from '../messages/message-view.js';
import { TenantDisplaySettings } from '../tenancy/display-settings.js';
import { BlobStore } from '../storage/blob.store.js';
import { blobInfo, MessageReadRepository } from '../storage/message-read.repository.js';
import type { Core } from './core.js';
import type { ServiceModule } from './module.js';

/** The read API: messages, clean attachment content, and the tenant's audit trail. */
export function messagesModule(core: Core): ServiceModule {
  // A large message's content becomes its API JSON in a worker thread, not on the event loop.
  const contentPool = new MessageContentPool();
  const messages = new MessageReadService({
    messages: new MessageReadRepository(core.prisma),
    mailboxes: core.mailboxes,
    // Uncached: a read follows a settings change at once.
    viewer: new MessageViewer(core.dataKeys, new TenantDisplaySettings(core.tenants).for),
    blobs: new BlobStore(core.prisma, core.dataKeys),
    blobInfo: (blobId) => blobInfo(core.prisma, blobId),
    audit: core.audit,
    contentPool,
  });
  return {
    name: 'messages',
    routes(registry) {
      registerMessageRoutes(registry, { messages, publicUrl: core.config.http.publicUrl });
      registerAttachmentRoutes(registry, { messages });
      registerAuditRoutes(registry, { audit: core.audit });
    },
    async stop() {
      await contentPool.close();
    },
  };
}
