import { z } from 'zod';
import type { JobQueue } from '../jobs/job-queue.js';
import { defineOps, type OpsCommand } from '../ops/ops-command.js';
import type { OutboundRepository } from '../storage/outbound.repository.js';

/** `send.requeue`: re-enqueue outbound messages whose job was lost (e.g. a crash between commit and enqueue). */
export function sendOps(deps: { outbound: Pick<OutboundRepository, 'listStuckQueued'>; jobs: Pick<JobQueue, 'enqueue'>; clock: () => Date }): OpsCommand[] {
  return [
    defineOps({
      name: 'send.requeue',
      summary: 're-enqueue outbound messages left queued without a job (e.g. after a crash between commit and enqueue)',
      input: z.strictObject({ olderThanMinutes: z.number().int().min(1).max(10_080).default(15), limit: z.number().int().min(1).max(10_000).default(1000) }),
      async run(input) {
        const stuck = await deps.outbound.listStuckQueued(new Date(deps.clock().getTime() - input.olderThanMinutes * 60_000), input.limit);
        // singletonKey = outbound id: a record whose job still exists is not queued twice,
        // and the job itself claims the row atomically either way.
        for (const row of stuck) await deps.jobs.enqueue('send.outbound', { outboundId: row.id }, { singletonKey: row.id });
        return { requeued: stuck.length };
      },
    }),
  ];
}
