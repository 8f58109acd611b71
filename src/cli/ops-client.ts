import type { Config } from '../config/config.js';
import { findNulByte } from '../http/route-registry.js';
import { readEmbeddedLock } from '../storage/embedded-lock.js';

export class CliError extends Error {
  override readonly name = 'CliError';
}

/**
 * Runs an ops command where the data is: through a running `serve` when it holds the embedded
 * database (PGlite admits one process), otherwise in this process.
 */
export async function runOps(config: Config, name: string, input: Record<string, unknown>, onProgress: (line: string) => void): Promise<unknown> {
  // Same rule as the HTTP API (src/http/route-registry.ts): no value holds a NUL byte.
  const nul = findNulByte(input);
  if (nul) throw new CliError(`${nul.join('.') || 'input'}: must not contain a NUL byte`);
  if (config.database.embedded) {
    const holder = readEmbeddedLock(config.database.dataDir);
    if (holder && holder.pid !== process.pid) {
      if (!holder.port) throw new CliError(`the embedded database is held by "${holder.command}" (pid ${holder.pid}), which serves no HTTP; stop it first`);
      return runRemote(holder.port, holder.adminToken, name, input);
    }
  }
  const { createCore } = await import('../bootstrap/core.js');
  const { buildProcessServices, createModules } = await import('../bootstrap/modules.js');
  const { collectOps } = await import('../bootstrap/service.js');
  // stdout is for the command's result (--json); logs go to stderr.
  const core = await createCore(config, { command: `mailbox-connector ${name}`, logDestination: process.stderr });
  try {
    const cmd = collectOps(await createModules(core, await buildProcessServices(core))).find((c) => c.name === name);
    if (!cmd) throw new CliError(`${name} is not available in this build`);
    const parsed = cmd.input.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new CliError(`${issue.path.join('.') || 'input'}: ${issue.message}`);
    }
    const { runOpsCommand } = await import('../ops/ops-runner.js');
    return await runOpsCommand(cmd, parsed.data, { actorId: `ops:cli:${process.env.USER ?? 'unknown'}`, progress: onProgress }, core.audit);
  } finally {
    await core.close();
  }
}

async function runRemote(port: number, token: string, name: string, input: Record<string, unknown>): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(`http://127.0.0.1:${port}/v1/admin/ops/${encodeURIComponent(name)}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(input),
    });
  } catch {
    throw new CliError(`the running service (port ${port}) did not answer`);
  }
  const body = (await res.json().catch(() => ({}))) as { result?: unknown; error?: { message?: string } };
  if (!res.ok) throw new CliError(body.error?.message ?? `the running service answered ${res.status}`);
  return body.result;
}
