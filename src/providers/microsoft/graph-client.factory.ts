import { Client, HTTPMessageHandler, type Context, type Middleware } from '@microsoft/microsoft-graph-client';
import type { AccessTokenSource } from '../mail-provider.port.js';
import type { MicrosoftEndpoints } from './microsoft-endpoints.js';

/**
 * Adds the mailbox's bearer token — only for requests to the configured Graph origin.
 * The library's own AuthenticationHandler recognises only https Graph hosts (GraphRequestUtil
 * isGraphURL) and strips the header otherwise, which rules out the plain-http sandbox; and
 * upload-session URLs must *not* receive the token (outlook-large-attachments).
 */
class GraphBearerMiddleware implements Middleware {
  private next: Middleware | undefined;

  constructor(
    private readonly graphOrigin: string,
    private readonly accessToken: AccessTokenSource,
  ) {}

  async execute(context: Context): Promise<void> {
    const url = typeof context.request === 'string' ? context.request : context.request.url;
    const options = (context.options ??= {});
    const headers = options.headers instanceof Headers ? options.headers : new Headers((options.headers as Record<string, string> | undefined) ?? {});
    if (new URL(url).origin === this.graphOrigin) headers.set('Authorization', `Bearer ${await this.accessToken()}`);
    else headers.delete('Authorization');
    options.headers = headers;
    if (!this.next) throw new Error('GraphBearerMiddleware has no next middleware');
    await this.next.execute(context);
  }

  setNext(next: Middleware): void {
    this.next = next;
  }
}

/** The real `@microsoft/microsoft-graph-client` Client, configured for one mailbox. */
export function createGraphClient(endpoints: MicrosoftEndpoints, accessToken: AccessTokenSource): Client {
  const origin = new URL(endpoints.graphBaseUrl).origin;
  return Client.initWithMiddleware({
    baseUrl: origin,
    defaultVersion: endpoints.graphVersion,
    middleware: [new GraphBearerMiddleware(origin, accessToken), new HTTPMessageHandler()],
  });
}
