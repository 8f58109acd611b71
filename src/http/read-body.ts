import type { Request } from 'express';

/** The raw request body as UTF-8 text, refused past `limit` bytes (push and RISC endpoints read it themselves). */
export async function readBody(req: Request, limit: number): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    size += buf.length;
    if (size > limit) throw new Error('body too large');
    parts.push(buf);
  }
  return Buffer.concat(parts).toString('utf8');
}
