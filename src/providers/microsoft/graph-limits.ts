import { mb } from '../mime-size.js';
import type { LimitsPort } from '../ports.js';
import { ATTACHMENT_MAX_BYTES, GRAPH_WRITE_LIMIT_BYTES } from './graph.adapter.js';

/**
 * Graph: a message above 4 MB is built as a draft with each attachment added separately, under
 * 3 MB by one POST and 3–150 MB by an upload session; one attachment may not exceed 150 MB
 * (provider-facts §4.3). The draft body itself (text + html, without attachments) goes in one
 * 4 MB request as base64 MIME, so the bodies must stay well below it.
 */
export const GRAPH_MAX_BODY_BYTES = Math.floor((GRAPH_WRITE_LIMIT_BYTES * 3) / 4 / 1.4);

export const graphLimits: LimitsPort = {
  requestTooLarge(input) {
    const big = input.attachments.findIndex((a) => a.size > ATTACHMENT_MAX_BYTES);
    if (big >= 0) return `attachments[${big}] is ${mb(input.attachments[big]!.size)} MB; Microsoft 365 accepts attachments up to 150 MB`;
    if (input.textBytes + input.htmlBytes > GRAPH_MAX_BODY_BYTES) {
      return `text and html together are ${mb(input.textBytes + input.htmlBytes)} MB; Microsoft 365 accepts at most ${mb(GRAPH_MAX_BODY_BYTES)} MB of body without attachments`;
    }
    return undefined;
  },
  // No whole-message check: drafts take attachments one by one.
  composedTooLarge: () => undefined,
};
