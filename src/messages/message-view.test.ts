import { describe, expect, it } from 'vitest';
import type { DataKeyService } from '../crypto/data-key.service.js';
import { encodeMessageContent, type MessageContent } from '../mailboxes/message-content.js';
import type { MessageRecord } from '../storage/message-read.repository.js';
import { TenantDisplaySettings } from '../tenancy/display-settings.js';
import { MessageViewer } from './message-view.js';

/** A data-key fake whose "ciphertext" is the plaintext: the viewer's own logic is what is tested. */
const keys = { decryptFor: async (_owner: unknown, data: Uint8Array) => Buffer.from(data) } as unknown as DataKeyService;

const HTML = '<p onclick="x()">Hi</p><img src="https://t.example/p.gif"><img src="cid:a@b">';

function content(extra: Partial<MessageContent> = {}): MessageContent {
  return {
    v: 1, internetMessageId: 'm@x', messageIdSynthetic: false, inReplyTo: null, references: [], from: null, to: [], cc: [], bcc: [], replyTo: [],
    subject: 's', date: '2026-12-01T00:00:00.000Z', text: 'Hi', html: HTML, headers: {}, autoReplyReason: null, bounceReason: null, ...extra,
  };
}

function row(c: MessageContent): MessageRecord {
  return {
    id: 'msg_1', tenantId: 'ten_1', mailboxId: 'mbx_1', providerMessageId: 'p', providerThreadId: null, threadKey: 't', direction: 'inbound',
    isAutoReply: false, isBounce: false, oversize: false, parseError: null, sizeBytes: 1, origin: 'live', receivedAt: new Date(0), contentEnc: encodeMessageContent(c), outboundId: null, createdAt: new Date(0),
    attachments: [
      { id: 'att_1', tenantId: 'ten_1', mailboxId: 'mbx_1', messageId: 'msg_1', ordinal: 0, filenameEnc: Buffer.from('a.png'), contentType: 'image/png', size: 3, isInline: true, contentIdEnc: Buffer.from('<a@b>'), scanStatus: 'clean', scanSignature: null, blobId: 'blb_1' },
    ],
  };
}

describe('MessageViewer', () => {
  it('computes safeHtml for a row stored before it existed, and uses the stored one otherwise', async () => {
    const viewer = new MessageViewer(keys);
    const old = await viewer.full(row(content()));
    expect(old.safeHtml).toBe('<p>Hi</p><img src="https://t.example/p.gif" /><img src="cid:a@b" />');
    const stored = await viewer.full(row(content({ safeHtml: '<p>stored</p>' })));
    expect(stored.safeHtml).toBe('<p>stored</p>');
    expect((await viewer.full(row(content({ html: null })))).safeHtml).toBeNull();
    expect(old.html).toBe(HTML);
  });

  it('gives attachments their Content-ID without angle brackets, and rewrites cid: only when asked', async () => {
    const viewer = new MessageViewer(keys);
    const plain = await viewer.full(row(content()));
    expect(plain.attachments[0]).toMatchObject({ id: 'att_1', contentId: 'a@b', isInline: true, filename: 'a.png' });
    const urls = await viewer.full(row(content()), { inlineImageUrl: (id) => `https://c.example/v1/attachments/${id}/content` });
    expect(urls.safeHtml).toContain('<img src="https://c.example/v1/attachments/att_1/content" />');
    expect(urls.html).toContain('<img src="https://c.example/v1/attachments/att_1/content">');
  });

  it('turns remote images off for a tenant that blocks them (read per tenant, cached for the ttl)', async () => {
    let blocked = true;
    let reads = 0;
    let now = 0;
    const settings = new TenantDisplaySettings(
      {
        find: async (id) => {
          reads++;
          return { id, name: 'T', allowedReturnOrigins: [], retentionDays: null, blockRemoteImages: blocked, displayName: null, logoUrl: null, supportUrl: null, createdAt: new Date(0) };
        },
      },
      5_000,
      () => now,
    );
    const viewer = new MessageViewer(keys, settings.for);
    expect((await viewer.full(row(content()))).safeHtml).toBe('<p>Hi</p><img data-blocked-src="https://t.example/p.gif" /><img src="cid:a@b" />');
    blocked = false;
    now = 4_999;
    expect((await viewer.full(row(content()))).safeHtml).toContain('data-blocked-src');
    now = 5_000;
    expect((await viewer.full(row(content()))).safeHtml).toContain(' src="https://t.example/p.gif"');
    expect(reads).toBe(2);
  });
});
