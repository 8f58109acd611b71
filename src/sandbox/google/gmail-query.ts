import { addressesIn, normalizeMessageId, normalizeSubject, headerValue } from './gmail-mime.js';
import type { StoredMessage } from './gmail-mailbox.store.js';

/**
 * The subset of Gmail search syntax (https://support.google.com/mail/answer/7190) the connector
 * and tests use: after:/before: (epoch seconds or YYYY/MM/DD), rfc822msgid:, in:/label:, from:,
 * to:, subject:, is:unread, and bare words (matched against the raw message).
 */
export type MessagePredicate = (m: StoredMessage) => boolean;

// "All dates used in the search query are interpreted as midnight on that date in the PST
// timezone" (users.messages.list guide); PST is UTC-8.
const PST_OFFSET_MS = 8 * 3600_000;

function parseDate(value: string): number | undefined {
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const m = /^(\d{4})[/-](\d{1,2})[/-](\d{1,2})$/.exec(value);
  if (!m) return undefined;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) + PST_OFFSET_MS;
}

function tokenize(q: string): string[] {
  return [...q.matchAll(/(\S+:"[^"]*"|"[^"]*"|\S+)/g)].map((m) => m[0]);
}

const unquote = (s: string) => s.replace(/^"|"$/g, '');

export function compileQuery(q: string | undefined): MessagePredicate | { error: string } {
  const preds: MessagePredicate[] = [];
  for (const raw of tokenize(q ?? '')) {
    const negate = raw.startsWith('-');
    const tok = negate ? raw.slice(1) : raw;
    const idx = tok.indexOf(':');
    const op = idx > 0 ? tok.slice(0, idx).toLowerCase() : '';
    const arg = idx > 0 ? unquote(tok.slice(idx + 1)) : unquote(tok);
    let p: MessagePredicate;
    switch (op) {
      case 'after':
      case 'before': {
        const t = parseDate(arg);
        if (t === undefined) return { error: `Invalid ${op}: value` };
        p = op === 'after' ? (m) => m.internalDate >= t : (m) => m.internalDate < t;
        break;
      }
      case 'rfc822msgid': {
        const want = normalizeMessageId(arg);
        p = (m) => m.internetMessageId === want;
        break;
      }
      case 'in':
      case 'label': {
        const label = arg.toUpperCase();
        p = label === 'ANYWHERE' ? () => true : (m) => m.labelIds.some((l) => l.toUpperCase() === label);
        break;
      }
      case 'is': {
        const label = arg.toUpperCase();
        p = label === 'READ' ? (m) => !m.labelIds.includes('UNREAD') : (m) => m.labelIds.includes(label);
        break;
      }
      case 'from':
      case 'to': {
        const want = arg.toLowerCase();
        const names = op === 'from' ? ['from'] : ['to', 'cc', 'bcc'];
        p = (m) => addressesIn(m.root.headers, names).some((a) => a.includes(want));
        break;
      }
      case 'subject': {
        const want = normalizeSubject(arg);
        p = (m) => normalizeSubject(headerValue(m.root.headers, 'Subject')).includes(want);
        break;
      }
      default: {
        const want = tok.toLowerCase();
        p = (m) => m.raw.toString('latin1').toLowerCase().includes(want);
      }
    }
    preds.push(negate ? (m) => !p(m) : p);
  }
  return (m) => preds.every((p) => p(m));
}
