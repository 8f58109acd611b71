import { z } from 'zod';
import type { AuditService } from '../../audit/audit.service.js';
import type { OpsCommand } from '../../ops/ops-command.js';
import { runOpsCommand } from '../../ops/ops-runner.js';
import { opsActorId } from '../auth-context.js';
import { ApiError } from '../api-error.js';
import { commonErrors, validationError, type RouteRegistry } from '../route-registry.js';

/**
 * The admin API for ops: every CLI ops command is also reachable here (admin API key, or the
 * local CLI's per-run token when this process holds the embedded database).
 */
export function registerOpsRoutes(routes: RouteRegistry, commands: OpsCommand[], audit: Pick<AuditService, 'record'>): void {
  const byName = new Map(commands.map((c) => [c.name, c]));
  routes.add({
    method: 'post',
    path: '/v1/admin/ops/:name',
    operationId: 'runOpsCommand',
    summary: 'Run an ops command (same as the CLI)',
    description: `Commands: ${commands.map((c) => `\`${c.name}\` (${c.summary})`).join(', ')}.`,
    tags: ['Admin'],
    auth: 'admin',
    params: z.strictObject({ name: z.string().min(1).max(64) }),
    body: z.record(z.string(), z.unknown()).meta({ description: 'The command’s input (as for `mailbox-connector ops <name> <json>`).', example: { mailboxId: 'mbx_06H49ZQ4Y1R2S3T4V5W6X7Y8Z9', reason: 'ticket OPS-42: abuse report' } }),
    responses: {
      200: { description: 'The command result', schema: z.object({ result: z.unknown() }).meta({ example: { result: { mailboxId: 'mbx_06H49ZQ4Y1R2S3T4V5W6X7Y8Z9', purgeId: 'prg_06H4B1C2D3E4F5G6H7J8K9M0N1', alreadyRunning: false } } }) },
      ...commonErrors,
      403: { description: 'Not an admin key' },
    },
    async handler({ params, body, principal }) {
      const cmd = byName.get(params.name);
      if (!cmd) throw new ApiError('unknown_command', `no ops command named ${params.name}`);
      const parsed = cmd.input.safeParse(body);
      if (!parsed.success) throw validationError(parsed.error, 'body');
      const result = await runOpsCommand(cmd, parsed.data, { actorId: opsActorId(principal), progress: () => undefined }, audit);
      return { status: 200, body: { result } };
    },
  });
}
