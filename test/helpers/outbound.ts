// Shared by the send tests: a scanner that passes every attachment, and waiting for an outbound
// message to reach a final state through the API a ticket service polls.
import type { Readable } from 'node:stream';
import type { Scanner } from '../../src/scan/scanner.port.js';
import type { TestService } from './test-service.js';
import { waitUntil } from './wait.js';

/** Reads each attachment to its end and calls it clean (send tests that are not about scanning). */
export const cleanScanner: Scanner = {
  async scan(content: Readable) {
    for await (const chunk of content) void chunk;
    return { status: 'clean' };
  },
  async ping() {
    return true;
  },
};

/** `GET /v1/outbound/:id` until it is `sent` or `failed` (at most 90 s); its last body. */
export async function outboundSettled(svc: Pick<TestService, 'api'>, apiKey: string, outboundId: string): Promise<Record<string, unknown>> {
  let last: Record<string, unknown> = {};
  await waitUntil(
    `outbound ${outboundId} sent or failed`,
    async () => {
      last = (await svc.api(apiKey, 'GET', `/v1/outbound/${outboundId}`)).body as Record<string, unknown>;
      return last.status === 'sent' || last.status === 'failed';
    },
    { timeoutMs: 90_000 },
  );
  return last;
}
