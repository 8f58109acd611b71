import { request as httpsRequest, type RequestOptions } from 'node:https';
import { rootCertificates } from 'node:tls';
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';

export interface MsalNetworkClientOptions {
  /** Extra CA (PEM) trusted in addition to the system roots (the sandbox certificate). */
  extraCaPem?: string;
  /** Per-request timeout when MSAL gives none. */
  defaultTimeoutMs?: number;
  /** Upper bound on a token/discovery response; they are a few KB. */
  maxResponseBytes?: number;
}

/** Network failure without any response; MSAL surfaces it and graph-error.mapper maps it to `transient`. */
export class MsalNetworkError extends Error {
  override readonly name = 'MsalNetworkError';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** As long as MSAL keeps authority metadata itself (msal-common: AUTHORITY_METADATA_REFRESH_TIME_SECONDS). */
const AUTHORITY_METADATA_TTL_MS = 24 * 3600 * 1000;
/** Authorities are few (one per tenant with an organization install); a bound all the same. */
const AUTHORITY_METADATA_MAX_ENTRIES = 1000;

/** The only GETs MSAL makes: an authority's OpenID configuration and instance discovery. */
function isAuthorityMetadata(url: URL): boolean {
  return url.pathname.endsWith('/.well-known/openid-configuration') || url.pathname.endsWith('/discovery/instance');
}

/**
 * Authority metadata answered 200, by URL, shared by every client of the process. The connector
 * builds a ConfidentialClientApplication per call (one mailbox's token cache each: a cache never
 * holds two customers' tokens), and MSAL keeps authority metadata per application, so without this
 * every token acquisition of an authority MSAL has no built-in metadata for (a tenant id or
 * domain, a national cloud, the sandbox) first fetched its OpenID configuration again.
 */
const authorityMetadata = new Map<string, { until: number; status: number; headers: Record<string, string>; body: unknown }>();

/**
 * MSAL's INetworkModule over node:https. msal-node 7 has no agent options, and the stand-in's
 * certificate must be trusted without NODE_EXTRA_CA_CERTS (read once at process start), so the
 * connector supplies its own client (sandbox-notes.md, "MSAL Node").
 */
export class MsalNetworkClient implements INetworkModule {
  private readonly ca: string[] | undefined;
  private readonly defaultTimeoutMs: number;
  private readonly maxBytes: number;

  constructor(options: MsalNetworkClientOptions = {}) {
    this.ca = options.extraCaPem ? [...rootCertificates, options.extraCaPem] : undefined;
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 15_000;
    this.maxBytes = options.maxResponseBytes ?? 1024 * 1024;
  }

  async sendGetRequestAsync<T>(url: string, options?: NetworkRequestOptions, timeout?: number): Promise<NetworkResponse<T>> {
    const target = new URL(url);
    if (!isAuthorityMetadata(target)) return this.send<T>('GET', url, options, timeout);
    const key = target.href;
    const hit = authorityMetadata.get(key);
    if (hit && hit.until > Date.now()) return { status: hit.status, headers: { ...hit.headers }, body: structuredClone(hit.body) as T };
    const res = await this.send<T>('GET', url, options, timeout);
    if (res.status === 200) {
      authorityMetadata.delete(key);
      if (authorityMetadata.size >= AUTHORITY_METADATA_MAX_ENTRIES) authorityMetadata.delete(authorityMetadata.keys().next().value as string);
      authorityMetadata.set(key, { until: Date.now() + AUTHORITY_METADATA_TTL_MS, status: res.status, headers: { ...res.headers }, body: structuredClone(res.body) });
    }
    return res;
  }

  sendPostRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    return this.send<T>('POST', url, options, undefined);
  }

  private send<T>(method: 'GET' | 'POST', url: string, options: NetworkRequestOptions | undefined, timeout: number | undefined): Promise<NetworkResponse<T>> {
    const target = new URL(url);
    if (target.protocol !== 'https:') return Promise.reject(new MsalNetworkError('MSAL endpoints must be https', 'insecure_url'));
    const body = method === 'POST' ? (options?.body ?? '') : undefined;
    const headers: Record<string, string> = { ...(options?.headers ?? {}) };
    if (body !== undefined) headers['content-length'] = Buffer.byteLength(body).toString();
    const reqOptions: RequestOptions = { method, headers, timeout: timeout ?? this.defaultTimeoutMs, ...(this.ca ? { ca: this.ca } : {}) };
    return new Promise((resolve, reject) => {
      const req = httpsRequest(target, reqOptions, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > this.maxBytes) req.destroy(new MsalNetworkError('identity response too large', 'response_too_large'));
          else chunks.push(c);
        });
        res.on('end', () => {
          const out: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
          let parsed: T;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
          } catch {
            // Never echo the body: it may hold tokens.
            reject(new MsalNetworkError(`identity endpoint answered HTTP ${res.statusCode ?? 0} with a non-JSON body`, 'invalid_json'));
            return;
          }
          resolve({ headers: out, body: parsed, status: res.statusCode ?? 0 });
        });
        res.on('error', (e) => reject(new MsalNetworkError(`identity response failed: ${e.message}`, 'network_error')));
      });
      req.on('timeout', () => req.destroy(new MsalNetworkError('identity request timed out', 'timeout')));
      req.on('error', (e) => reject(e instanceof MsalNetworkError ? e : new MsalNetworkError(`identity request failed: ${(e as NodeJS.ErrnoException).code ?? e.name}`, 'network_error')));
      req.end(body);
    });
  }
}
