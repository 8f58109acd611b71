import { describe, expect, it } from 'vitest';
import { safeSnippet } from './webhook-dispatcher.service.js';

describe('safeSnippet (what of a receiver’s answer is kept in the delivery log)', () => {
  const body = JSON.stringify({ id: 'evt_1', type: 'message.received', data: { subject: 'Quarterly numbers', text: 'confidential' } });

  it('keeps a short error answer, capped', () => {
    expect(safeSnippet('{"error":"invalid signature"}', body)).toBe('{"error":"invalid signature"}');
    expect(safeSnippet('x'.repeat(5000), body)).toHaveLength(256);
  });

  it('drops an answer that echoes our payload (it would put mail content in the log)', () => {
    expect(safeSnippet(body, body)).toBe('[response echoed the request body; not stored]');
    expect(safeSnippet(body.slice(0, 100), body)).toBe('[response echoed the request body; not stored]');
  });

  it('stores nothing for an empty answer', () => {
    expect(safeSnippet('   ', body)).toBeNull();
  });
});
