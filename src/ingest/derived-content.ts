import { sanitizeEmailHtml } from '../messages/safe-html.js';
import { extractReply } from '../messages/reply-extraction.js';
import type { ParsedMessage } from './mime-parser.js';

/**
 * The per-message work that turns parsed content into its display forms, done once at ingest
 * where parsing runs (in the parse worker thread for the service, so it never costs the event
 * loop), and stored with the content: `safeHtml`, and `replyText`/`signature`/`forwarded`
 * (messages/reply-extraction.ts). A message parsed without them (an older row, or a parse
 * function that skips them) gets them computed on read.
 */
export function addDerivedContent(message: ParsedMessage): ParsedMessage {
  message.safeHtml = sanitizeEmailHtml(message.html);
  message.reply = extractReply(message.text, message.subject);
  return message;
}
