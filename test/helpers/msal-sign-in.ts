// A user signs in to the Microsoft stand-in through its consent page with the real MSAL
// confidential client (authorization code + PKCE): the delegated token a connected mailbox holds.
import { ConfidentialClientApplication, CryptoProvider } from '@azure/msal-node';
import { sandboxMicrosoftEndpoints } from '../../src/providers/microsoft/microsoft-endpoints.js';
import { buildMsalConfiguration } from '../../src/providers/microsoft/msal-config.js';
import { approveMicrosoftConsent } from '../../src/sandbox/microsoft/approve-microsoft-consent.js';
import type { MicrosoftSandbox } from '../../src/sandbox/microsoft/microsoft-sandbox.js';

export interface SandboxApp {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
}

/** `email` consents to `scopes` for `app`; the access token. */
export async function msalSignIn(sb: MicrosoftSandbox, app: SandboxApp, email: string, scopes: string[]): Promise<string> {
  const cca = new ConfidentialClientApplication(buildMsalConfiguration({ clientId: app.clientId, clientSecret: app.clientSecret, endpoints: sandboxMicrosoftEndpoints(sb) }));
  const { verifier, challenge } = await new CryptoProvider().generatePkceCodes();
  const url = await cca.getAuthCodeUrl({ scopes, redirectUri: app.redirectUri, codeChallenge: challenge, codeChallengeMethod: 'S256', loginHint: email });
  const back = await approveMicrosoftConsent(url, { email });
  const result = await cca.acquireTokenByCode({ code: back.searchParams.get('code') ?? '', redirectUri: app.redirectUri, scopes, codeVerifier: verifier });
  return result.accessToken;
}
