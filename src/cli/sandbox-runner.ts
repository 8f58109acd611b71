import { CliError } from './ops-client.js';

export async function runSandbox(..._args: unknown[]): Promise<void> {
  throw new CliError('the sandbox command is not available yet in this build');
}
