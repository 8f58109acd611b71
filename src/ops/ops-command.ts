import type { z } from 'zod';

/**
 * An ops command (`mailbox-connector tenants create`, `keys rotate`, …). The CLI runs it in
 * process, or — when a `serve` holds the embedded database — sends it to that process over
 * `POST /v1/admin/ops/:name`; both paths validate the same schema and call the same `run`.
 */
export interface OpsCommand<I extends z.ZodType = z.ZodType, O = unknown> {
  name: string;
  summary: string;
  input: I;
  /**
   * Whether running it adds the generic `ops.command` audit entry (default true). Only for
   * commands that must not change the log they report on (`audit.verify`: the head it prints as
   * an anchor would otherwise be stale the moment it is printed).
   */
  auditInvocation?: boolean;
  run(input: z.output<I>, ctx: OpsContext): Promise<O>;
}

export interface OpsContext {
  /** Who is acting, for the audit log (`ops:<api key id>` or `ops:local-cli`). */
  actorId: string;
  /** Progress lines for long-running commands (the CLI prints them; HTTP drops them). */
  progress(message: string): void;
}

export function defineOps<I extends z.ZodType, O>(cmd: OpsCommand<I, O>): OpsCommand {
  return cmd as unknown as OpsCommand;
}

/**
 * What an ops command looked for does not exist (a mailbox, tenant, key, event, endpoint, purge):
 * `404 not_found` over the admin API and the console, the message as the CLI's one line.
 */
export class OpsNotFoundError extends Error {
  override readonly name = 'OpsNotFoundError';
  constructor(
    readonly what: string,
    message = `${what} not found`,
  ) {
    super(message);
  }
}
