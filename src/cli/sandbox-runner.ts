import { startGoogleSandbox, type GoogleSandbox } from '../sandbox/google/google-sandbox.server.js';
import { startMicrosoftSandbox, type MicrosoftSandbox } from '../sandbox/microsoft/microsoft-sandbox.js';
import { CliError } from './ops-client.js';

export interface SandboxRunOptions {
  googlePort: number;
  microsoftPort: number;
  graphPort: number;
  json: boolean;
}

/**
 * `mailbox-connector sandbox`: both stand-ins, standalone, until Ctrl-C. Prints where they listen
 * and the environment lines that point a connector (`serve` with SANDBOX=1) at them. The Google
 * stand-in accepts any OAuth client id with a loopback redirect URI; the Microsoft one accepts
 * `sandbox-client-id` / `sandbox-client-secret` with any redirect URI — the connector's sandbox
 * defaults, so no app registration is needed.
 */
export async function runSandbox(opts: SandboxRunOptions): Promise<void> {
  for (const [name, port] of Object.entries({ '--google-port': opts.googlePort, '--microsoft-port': opts.microsoftPort, '--graph-port': opts.graphPort })) {
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`${name} must be a port number`);
  }
  let google: GoogleSandbox | undefined;
  let microsoft: MicrosoftSandbox | undefined;
  try {
    google = await startGoogleSandbox({ port: opts.googlePort });
    microsoft = await startMicrosoftSandbox({ identityPort: opts.microsoftPort, graphPort: opts.graphPort });
  } catch (err) {
    await google?.close();
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(code === 'EADDRINUSE' ? 'a sandbox port is already in use (choose others with --google-port, --microsoft-port, --graph-port)' : `the sandbox failed to start: ${(err as Error).message}`);
  }
  const env = {
    SANDBOX: '1',
    SANDBOX_GOOGLE_URL: google.url,
    SANDBOX_MICROSOFT_URL: microsoft.graphBaseUrl,
    SANDBOX_MICROSOFT_AUTHORITY: microsoft.authority,
  };
  const info = {
    google: { url: google.url, controlApi: `${google.url}/_sandbox` },
    microsoft: { authority: microsoft.authority, graph: `${microsoft.graphBaseUrl}/v1.0`, controlApi: `${microsoft.graphBaseUrl}/_sandbox`, tenantId: microsoft.tenantId },
    env,
  };
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(info)}\n`);
  } else {
    process.stdout.write(
      [
        'Sandbox providers are running (loopback only; the control APIs have no authentication — never expose them).',
        `  Google (OAuth, Gmail API, Pub/Sub push)   ${google.url}   control: ${info.google.controlApi}`,
        `  Microsoft identity (Entra, https)         ${microsoft.authority}`,
        `  Microsoft Graph                           ${info.microsoft.graph}   control: ${info.microsoft.controlApi}`,
        '',
        'Point a connector at them with:',
        ...Object.entries(env).map(([k, v]) => `  ${k}=${v}`),
        '',
        'Press Ctrl-C to stop.',
        '',
      ].join('\n'),
    );
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await Promise.all([google.close(), microsoft.close()]);
}
