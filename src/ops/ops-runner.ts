import type { AuditService } from '../audit/audit.service.js';
import type { OpsCommand, OpsContext } from './ops-command.js';

/**
 * Runs an already-validated ops command and records that it ran (who, which command, whether it
 * succeeded) in the audit log — every ops action is audited, including read-only ones; commands
 * that change data also write their own, more specific entry. The input is not recorded: the
 * command's own entry says what matters without copying free text around.
 */
export async function runOpsCommand(cmd: OpsCommand, input: unknown, ctx: OpsContext, audit: Pick<AuditService, 'record'>): Promise<unknown> {
  let outcome: 'ok' | 'error' = 'error';
  try {
    const result = await cmd.run(input, ctx);
    outcome = 'ok';
    return result;
  } finally {
    if (cmd.auditInvocation !== false) await audit.record({ actorType: 'ops', actorId: ctx.actorId, action: 'ops.command', metadata: { command: cmd.name, outcome } });
  }
}
