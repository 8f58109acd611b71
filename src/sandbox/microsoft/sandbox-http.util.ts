import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Graph's error envelope: {error:{code, message, innerError:{date, request-id, client-request-id}}}. */
export class GraphHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export class BodyTooLargeError extends Error {}

export async function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limitBytes) tooLarge = true;
    else chunks.push(chunk);
  }
  if (tooLarge) throw new BodyTooLargeError(`body exceeds ${limitBytes} bytes`);
  return Buffer.concat(chunks);
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; odata.metadata=minimal; charset=utf-8', 'content-length': Buffer.byteLength(text).toString(), ...headers });
  res.end(text);
}

export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-length': '0', ...headers });
  res.end();
}

export function sendGraphError(res: ServerResponse, err: GraphHttpError, clientRequestId: string | undefined): void {
  const requestId = randomUUID();
  sendJson(
    res,
    err.status,
    {
      error: {
        code: err.code,
        message: err.message,
        innerError: { date: new Date().toISOString().replace(/\.\d{3}Z$/, ''), 'request-id': requestId, 'client-request-id': clientRequestId ?? requestId },
      },
    },
    { 'request-id': requestId, 'client-request-id': clientRequestId ?? requestId, ...err.headers },
  );
}

export function base64url(input: Buffer | string): string {
  return Buffer.from(input).toString('base64url');
}

export function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}
