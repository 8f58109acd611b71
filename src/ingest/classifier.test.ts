import { createReadStream } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { classify } from './classifier.js';
import { InMemoryAttachmentSink } from './in-memory-attachment-sink.js';
import { parseMime, type ClassificationHeaders, type ParsedMessage } from './mime-parser.js';

const FIXTURES = new URL('../../fixtures/mime/', import.meta.url);
const parseFixture = (name: string): Promise<ParsedMessage> =>
  parseMime(createReadStream(new URL(name, FIXTURES)), { attachmentSink: new InMemoryAttachmentSink() });

const noHeaders: ClassificationHeaders = {
  autoSubmitted: null,
  xAutoreply: null,
  xAutorespond: null,
  precedence: null,
  xAutoResponseSuppress: null,
  returnPath: null,
  contentType: 'text/plain',
  reportType: null,
  listId: null,
  listUnsubscribe: null,
  xFailedRecipients: null,
  partTypes: [],
};
const message = (
  headers: Partial<ClassificationHeaders>,
  rest: Partial<Pick<ParsedMessage, 'subject' | 'from' | 'text'>> = {},
): Pick<ParsedMessage, 'headers' | 'subject' | 'from' | 'text'> => ({
  headers: { ...noHeaders, ...headers },
  subject: rest.subject ?? 'Hello',
  from: rest.from ?? { name: 'Alice', address: 'alice@example.com' },
  text: rest.text ?? 'hi',
});

describe('classify: auto-replies (RFC 3834 and vendor headers)', () => {
  it.each([
    ['outlook-oof.eml', 'auto_submitted'],
    ['exchange-oof-suppress-only.eml', 'x_auto_response_suppress'],
    ['sieve-vacation-x-autoreply.eml', 'x_autoreply'],
    ['gmail-vacation.eml', 'auto_submitted'],
  ])('%s is an auto-reply (%s)', async (file, reason) => {
    const c = classify(await parseFixture(file));
    expect(c).toMatchObject({ isAutoReply: true, isBounce: false, autoReplyReason: reason, autoReplyConfidence: 'strong' });
  });

  it('does not flag a human message that says Auto-Submitted: no and mentions vacation', async () => {
    const c = classify(await parseFixture('human-mentions-vacation.eml'));
    expect(c).toEqual({ isAutoReply: false, isBounce: false, isFeedbackReport: false });
  });

  it('does not flag ordinary customer mail in other charsets', async () => {
    for (const file of ['windows-1252-8bit.eml', 'shift-jis-base64.eml', 'shift-jis-8bit.eml']) {
      expect(classify(await parseFixture(file))).toMatchObject({ isAutoReply: false, isBounce: false });
    }
  });

  it.each(['auto_reply', 'bulk', 'junk', 'list'])('treats Precedence: %s as automatic', (value) => {
    expect(classify(message({ precedence: value })).autoReplyReason).toBe('precedence');
  });

  it('uses an out-of-office subject only as a weak signal', () => {
    const c = classify(message({}, { subject: 'Out of Office: back Monday' }));
    expect(c).toMatchObject({ isAutoReply: true, autoReplyReason: 'subject_pattern', autoReplyConfidence: 'weak' });
    expect(classify(message({}, { subject: 'Question about out of office hours' })).isAutoReply).toBe(false);
  });

  it('ignores X-Autoreply: no', () => {
    expect(classify(message({ xAutoreply: 'no' })).isAutoReply).toBe(false);
  });
});

describe('classify: bounces', () => {
  it('recognises an RFC 3464 multipart/report as a bounce, not an auto-reply', () => {
    const c = classify(
      message({ contentType: 'multipart/report', reportType: 'delivery-status', autoSubmitted: 'auto-replied' }),
    );
    expect(c).toMatchObject({ isBounce: true, isAutoReply: false, bounceReason: 'delivery_status_report' });
  });

  it('recognises a qmail-style plain-text bounce from MAILER-DAEMON', () => {
    const c = classify(
      message({ returnPath: '<>' }, { subject: 'failure notice', from: { name: '', address: 'MAILER-DAEMON@mx.example.net' } }),
    );
    expect(c).toMatchObject({ isBounce: true, bounceReason: 'daemon_sender' });
  });

  it('needs more than a null Return-Path to call something a bounce', () => {
    expect(classify(message({ returnPath: '<>' }, { subject: 'Your receipt' })).isBounce).toBe(false);
  });

  it('does not call a customer writing "Re: delivery failed?" a bounce', () => {
    expect(classify(message({}, { subject: 'Re: my parcel delivery failed?' })).isBounce).toBe(false);
  });
});

describe('classify: ARF feedback reports', () => {
  it('are neither bounces nor auto-replies', () => {
    const c = classify(message({ contentType: 'multipart/report', reportType: 'feedback-report', autoSubmitted: 'auto-generated' }));
    expect(c).toEqual({ isAutoReply: false, isBounce: false, isFeedbackReport: true });
  });
});
