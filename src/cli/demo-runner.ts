import { CliError } from './ops-client.js';

export async function runDemo(..._args: unknown[]): Promise<void> {
  throw new CliError('the demo command is not available yet in this build');
}
