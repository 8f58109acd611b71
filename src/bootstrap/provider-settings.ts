import { X509Certificate } from 'node:crypto';
import { connect as tlsConnect } from 'node:tls';
import { z } from 'zod';
import type { Config } from '../config/config.js';
import type { Logger } from '../observability/logger.js';
import { discoverGoogleEndpoints, GOOGLE_ENDPOINTS, sandboxGoogleEndpoints, type GoogleEndpoints } from '../providers/google/google-endpoints.js';
import { loadMicrosoftAppCertificate } from '../providers/microsoft/microsoft-app-certificate.js';
import type { MicrosoftAppCredential } from '../providers/microsoft/microsoft-app-token.client.js';
import { microsoftEndpoints, sandboxMicrosoftEndpoints, type MicrosoftEndpoints } from '../providers/microsoft/microsoft-endpoints.js';
import { startGoogleSandbox, type GoogleSandbox } from '../sandbox/google/google-sandbox.server.js';
import { DEFAULT_SANDBOX_CLIENT, startMicrosoftSandbox, type MicrosoftSandbox } from '../sandbox/microsoft/microsoft-sandbox.js';

/** OAuth client id used with the in-process Google stand-in when GOOGLE_CLIENT_ID is unset. */
export const SANDBOX_GOOGLE_CLIENT = { clientId: 'sandbox-client.apps.googleusercontent.com', clientSecret: 'sandbox-secret' } as const;
/** Service account the stand-in's Pub/Sub push JWTs name when GOOGLE_PUBSUB_SERVICE_ACCOUNT is unset. */
export const SANDBOX_PUSH_SERVICE_ACCOUNT = 'gmail-push@mailbox-connector-sandbox.iam.gserviceaccount.com';
export const SANDBOX_PUBSUB_TOPIC = 'projects/mailbox-connector-sandbox/topics/gmail';

export interface GoogleProviderSettings {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  endpoints: GoogleEndpoints;
  /** Pub/Sub: topic for users.watch, and what a push JWT must carry (aud, email). */
  pubsub: { topic: string | undefined; audience: string; serviceAccount: string | undefined; pushEndpoint: string };
}

export interface MicrosoftProviderSettings {
  clientId: string;
  /** The client secret; '' when the app authenticates with a certificate only. */
  clientSecret: string;
  /** How MSAL authenticates the app: MICROSOFT_CLIENT_CERTIFICATE_PATH when set, else the secret. */
  credential: MicrosoftAppCredential;
  redirectUri: string;
  endpoints: MicrosoftEndpoints;
  notificationUrl: string;
  lifecycleNotificationUrl: string;
}

/**
 * Which Google / Microsoft the connector talks to, resolved once at start: the real services,
 * stand-ins at SANDBOX_*_URL, or stand-ins started in this process (SANDBOX=1 alone). Undefined
 * means that provider is not configured (no client id) and connect offers only the other.
 */
export interface ProviderSettings {
  mode: 'production' | 'sandbox-external' | 'sandbox-embedded';
  google: GoogleProviderSettings | undefined;
  microsoft: MicrosoftProviderSettings | undefined;
  /** In-process stand-ins (tests and the demo drive them directly). */
  sandbox: { google: GoogleSandbox | undefined; microsoft: MicrosoftSandbox | undefined };
  /** Stops in-process stand-ins; no-op otherwise. */
  close(): Promise<void>;
}

export async function resolveProviderSettings(config: Config, logger: Pick<Logger, 'info' | 'warn'>): Promise<ProviderSettings> {
  const publicUrl = config.http.publicUrl;
  const googlePush = `${publicUrl}/push/google`;
  const redirect = (p: 'google' | 'microsoft') => `${publicUrl}/oauth/${p}/callback`;
  const msUrls = { notificationUrl: `${publicUrl}/push/microsoft`, lifecycleNotificationUrl: `${publicUrl}/push/microsoft/lifecycle` };
  const pubsub = (serviceAccountDefault: string | undefined, topicDefault: string | undefined) => ({
    topic: config.google.pubsubTopic ?? topicDefault,
    // Pub/Sub uses the push endpoint URL as audience when none is configured (OidcToken.Audience).
    audience: config.google.pubsubAudience ?? googlePush,
    serviceAccount: config.google.pubsubServiceAccount ?? serviceAccountDefault,
    pushEndpoint: googlePush,
  });

  // The app certificate (validated by loadConfig; read again here, the key is never kept in Config).
  const msCertificate = config.microsoft.clientCertificatePath ? loadMicrosoftAppCertificate(config.microsoft.clientCertificatePath) : undefined;
  if (msCertificate) logger.info({ thumbprintSha256: msCertificate.thumbprintSha256, validTo: msCertificate.validTo.toISOString() }, 'Microsoft: the app authenticates with its certificate (MICROSOFT_CLIENT_CERTIFICATE_PATH)');
  if (msCertificate && msCertificate.validTo.getTime() - Date.now() < 30 * 86_400_000) logger.warn({ validTo: msCertificate.validTo.toISOString() }, 'Microsoft: the app certificate expires within 30 days; upload a new one to the Entra app');
  const msCredential = (secret: string | undefined): MicrosoftAppCredential => (msCertificate ? { kind: 'certificate', thumbprintSha256: msCertificate.thumbprintSha256, privateKeyPem: msCertificate.privateKeyPem } : { kind: 'secret', clientSecret: secret ?? '' });

  if (!config.sandbox.enabled) {
    const g = config.google;
    const m = config.microsoft;
    const googleEndpoints = await productionGoogleEndpoints(config);
    return {
      mode: 'production',
      google: g.clientId && g.clientSecret ? { clientId: g.clientId, clientSecret: g.clientSecret, redirectUri: redirect('google'), endpoints: googleEndpoints, pubsub: pubsub(undefined, undefined) } : undefined,
      microsoft: m.clientId && (m.clientSecret || msCertificate) ? { clientId: m.clientId, clientSecret: m.clientSecret ?? '', credential: msCredential(m.clientSecret), redirectUri: redirect('microsoft'), endpoints: microsoftEndpoints(m.tenant, { authorityHost: m.authorityHost, graphHost: m.graphHost }), ...msUrls } : undefined,
      sandbox: { google: undefined, microsoft: undefined },
      close: () => Promise.resolve(),
    };
  }

  const googleClient = { clientId: config.google.clientId ?? SANDBOX_GOOGLE_CLIENT.clientId, clientSecret: config.google.clientSecret ?? SANDBOX_GOOGLE_CLIENT.clientSecret };
  const msClient = { clientId: config.microsoft.clientId ?? DEFAULT_SANDBOX_CLIENT.clientId, clientSecret: config.microsoft.clientSecret ?? DEFAULT_SANDBOX_CLIENT.clientSecret };
  const started: Array<{ close(): Promise<void> }> = [];
  let closing: Promise<void> | undefined;
  try {
    let googleSandbox: GoogleSandbox | undefined;
    let googleEndpoints: GoogleEndpoints;
    if (config.sandbox.googleUrl) {
      googleEndpoints = sandboxGoogleEndpoints(config.sandbox.googleUrl);
      const p = pubsub(SANDBOX_PUSH_SERVICE_ACCOUNT, SANDBOX_PUBSUB_TOPIC);
      await registerExternalGooglePush(config.sandbox.googleUrl, { endpoint: googlePush, audience: p.audience, serviceAccountEmail: p.serviceAccount ?? SANDBOX_PUSH_SERVICE_ACCOUNT }, logger);
    } else {
      const p = pubsub(SANDBOX_PUSH_SERVICE_ACCOUNT, SANDBOX_PUBSUB_TOPIC);
      googleSandbox = await startGoogleSandbox({
        port: 0,
        clients: [{ clientId: googleClient.clientId, clientSecret: googleClient.clientSecret, redirectUris: [redirect('google')] }],
        push: { endpoint: googlePush, audience: p.audience, serviceAccountEmail: p.serviceAccount ?? SANDBOX_PUSH_SERVICE_ACCOUNT },
      });
      started.push(googleSandbox);
      googleEndpoints = sandboxGoogleEndpoints(googleSandbox.url);
    }

    let msSandbox: MicrosoftSandbox | undefined;
    let msEndpoints: MicrosoftEndpoints;
    if (config.sandbox.microsoftUrl) {
      msEndpoints = await externalMicrosoftSandbox(config.sandbox.microsoftUrl, config.sandbox.microsoftAuthority);
    } else {
      // The admin-consent redirect of organization installs is registered beside the sign-in one.
      msSandbox = await startMicrosoftSandbox({
        clients: [{ ...msClient, redirectUris: [redirect('microsoft'), `${publicUrl}/oauth/microsoft/admin-consent`], ...(msCertificate ? { certificatePem: msCertificate.certificatePem } : {}) }],
      });
      started.push(msSandbox);
      msEndpoints = sandboxMicrosoftEndpoints(msSandbox);
    }
    const mode = googleSandbox || msSandbox ? 'sandbox-embedded' : 'sandbox-external';
    logger.info(
      { mode, google: googleSandbox?.url ?? config.sandbox.googleUrl, microsoftGraph: msEndpoints.graphBaseUrl, microsoftAuthority: msEndpoints.authority },
      'SANDBOX=1: using the local Google and Microsoft stand-ins',
    );
    if (config.webhooks.sandboxLoopbackDefault) {
      logger.info({ allowedHosts: config.webhooks.allowedHosts }, 'SANDBOX=1: webhook receivers on this machine are allowed (WEBHOOK_ALLOWED_HOSTS is unset; set it to choose the hosts)');
    }
    return {
      mode,
      google: { ...googleClient, redirectUri: redirect('google'), endpoints: googleEndpoints, pubsub: pubsub(SANDBOX_PUSH_SERVICE_ACCOUNT, SANDBOX_PUBSUB_TOPIC) },
      microsoft: { ...msClient, credential: msCredential(msClient.clientSecret), redirectUri: redirect('microsoft'), endpoints: msEndpoints, ...msUrls },
      sandbox: { google: googleSandbox, microsoft: msSandbox },
      close() {
        closing ??= Promise.all(started.map((s) => s.close().catch(() => undefined))).then(() => undefined);
        return closing;
      },
    };
  } catch (err) {
    await Promise.all(started.map((s) => s.close().catch(() => undefined)));
    throw err;
  }
}

/**
 * Google's documented endpoints, or — with GOOGLE_ISSUER_URL — those its OpenID discovery
 * document names (read once at start; an unreadable or inconsistent document stops the start),
 * with the Gmail API at GMAIL_API_URL.
 */
async function productionGoogleEndpoints(config: Config): Promise<GoogleEndpoints> {
  const { issuerUrl, gmailApiUrl, clientId } = config.google;
  if (!clientId) return GOOGLE_ENDPOINTS;
  if (issuerUrl) return discoverGoogleEndpoints(issuerUrl, { gmailApiUrl });
  return gmailApiUrl ? { ...GOOGLE_ENDPOINTS, gmailRootUrl: gmailApiUrl.endsWith('/') ? gmailApiUrl : `${gmailApiUrl}/` } : GOOGLE_ENDPOINTS;
}

/**
 * Points a standalone Google stand-in's Pub/Sub push subscription at this connector (what an
 * admin does with `gcloud pubsub subscriptions create --push-endpoint` in production). Best
 * effort: without it mail still arrives through polling.
 */
async function registerExternalGooglePush(googleUrl: string, push: { endpoint: string; audience: string; serviceAccountEmail: string }, logger: Pick<Logger, 'warn'>): Promise<void> {
  const base = new URL(googleUrl);
  if (!['127.0.0.1', 'localhost'].includes(base.hostname)) return;
  try {
    const res = await fetch(new URL('/_sandbox/push', base), { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(push), signal: AbortSignal.timeout(5000) });
    if (!res.ok) logger.warn({ status: res.status }, 'the Google stand-in refused the push subscription; relying on polling');
  } catch {
    logger.warn('the Google stand-in is unreachable; connect and sync will fail until it runs');
  }
}

const sandboxInfoSchema = z.object({
  authority: z.url(),
  graphBaseUrl: z.url(),
  caCertPem: z.string().includes('BEGIN CERTIFICATE'),
  msal: z.object({ knownAuthorities: z.array(z.string()), cloudDiscoveryMetadata: z.string() }),
});

/**
 * A Microsoft stand-in in another process. Its description comes from `GET /_sandbox/info` on
 * the control API when the stand-in offers it; otherwise from SANDBOX_MICROSOFT_AUTHORITY, with
 * the certificate read from the loopback TLS handshake (the stand-in generates a new self-signed
 * one at every start, so there is no file to point at). Loopback only: this is never a way to
 * trust a remote host.
 */
async function externalMicrosoftSandbox(graphUrl: string, authority: string | undefined): Promise<MicrosoftEndpoints> {
  const base = graphUrl.replace(/\/+$/, '');
  const info = await fetch(`${base}/_sandbox/info`, { signal: AbortSignal.timeout(5000) })
    .then(async (r) => (r.ok ? sandboxInfoSchema.safeParse(await r.json()) : undefined))
    .catch(() => undefined);
  if (info?.success) return sandboxMicrosoftEndpoints(info.data);
  if (!authority) {
    throw new Error('SANDBOX_MICROSOFT_AUTHORITY is required with SANDBOX_MICROSOFT_URL (the Microsoft stand-in does not describe itself at /_sandbox/info)');
  }
  const a = new URL(authority);
  if (!['127.0.0.1', 'localhost'].includes(a.hostname)) throw new Error('SANDBOX_MICROSOFT_AUTHORITY must be on loopback');
  const caCertPem = await loopbackCertificate(a.hostname, Number(a.port || 443));
  const host = a.host;
  const authorityUrl = `${a.origin}${a.pathname.replace(/\/+$/, '')}`;
  return sandboxMicrosoftEndpoints({
    authority: authorityUrl,
    graphBaseUrl: base,
    caCertPem,
    msal: {
      knownAuthorities: [host],
      cloudDiscoveryMetadata: JSON.stringify({
        tenant_discovery_endpoint: `${authorityUrl}/v2.0/.well-known/openid-configuration`,
        'api-version': '1.1',
        metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
      }),
    },
  });
}

function loopbackCertificate(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    // Verification is off for this one handshake only: its purpose is to read the self-signed
    // certificate of a loopback stand-in, which is then trusted for that origin alone.
    const socket = tlsConnect({ host, port, rejectUnauthorized: false, servername: host === 'localhost' ? host : undefined }, () => {
      const raw = socket.getPeerCertificate().raw;
      socket.end();
      if (!raw) return reject(new Error('the Microsoft stand-in presented no certificate'));
      resolve(new X509Certificate(raw).toString());
    });
    socket.setTimeout(5000, () => socket.destroy(new Error('timed out reading the Microsoft stand-in certificate')));
    socket.once('error', reject);
  });
}
