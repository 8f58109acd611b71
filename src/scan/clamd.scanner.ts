import { connect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import type { ScanErrorReason, ScanMeta, ScanVerdict, Scanner } from './scanner.port.js';

/*
 * clamd INSTREAM client over node:net, written here instead of using `clamscan`'s scanStream
 * (provider-facts §7.4) because that implementation:
 * - ignores backpressure (socket.write's return value is dropped), so a fast source feeding a
 *   slower clamd is buffered whole in memory — the thing attachment streaming must avoid;
 * - has only a socket idle timeout, no deadline for the whole scan;
 * - reports "INSTREAM size limit exceeded" as a generic Error told apart only by its message text
 *   (STYLE.md: never branch on message text), and writes errors to console.error.
 *
 * Protocol (clamd.8, provider-facts §7.1): send "zINSTREAM\0", then chunks of
 * <uint32 big-endian length><data>, then a zero-length chunk. Replies are NUL-terminated:
 * "stream: OK", "stream: <Signature> FOUND", "INSTREAM size limit exceeded. ERROR", "<...> ERROR".
 */

export const ClamdScannerOptionsSchema = z
  .object({
    socket: z.string().min(1).optional(),
    host: z.string().min(1).optional(),
    port: z.number().int().min(1).max(65535).optional(),
    /** Connecting (or PING) must finish within this. */
    connectTimeoutMs: z.number().int().positive().default(5_000),
    /** No byte moved in either direction for this long → timeout. */
    idleTimeoutMs: z.number().int().positive().default(30_000),
    /** Whole scan deadline (clamd's own MaxScanTime default is 120 s). */
    scanTimeoutMs: z.number().int().positive().default(150_000),
    /** Chunk size on the wire. clamd reads any size; 64 KiB keeps syscalls few and memory flat. */
    chunkBytes: z.number().int().positive().max(16 * 1024 * 1024).default(64 * 1024),
    /**
     * clamd's StreamMaxLength when known. Streams above it are answered `too_large` without
     * waiting for clamd to cut the connection. clamd still enforces its own limit either way.
     */
    streamMaxBytes: z.number().int().positive().optional(),
  })
  .refine((o) => o.socket !== undefined || o.port !== undefined, {
    message: 'clamd needs a socket path or a TCP port',
  });

export type ClamdScannerOptions = z.input<typeof ClamdScannerOptionsSchema>;

const SIGNATURE = /^stream: (.+) FOUND$/;
const CLOSED_MID_STREAM = Symbol('closed-mid-stream');

export class ClamdScanner implements Scanner {
  private readonly options: z.output<typeof ClamdScannerOptionsSchema>;

  constructor(options: ClamdScannerOptions) {
    this.options = ClamdScannerOptionsSchema.parse(options);
  }

  async ping(): Promise<boolean> {
    try {
      const socket = await this.open();
      const reply = await new Promise<string>((resolve, reject) => {
        const chunks: Buffer[] = [];
        socket.setTimeout(this.options.connectTimeoutMs, () => socket.destroy(new ScanFailure('timeout')));
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.on('error', reject);
        socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
        socket.end('zPING\0');
      });
      return reply.replace(/\0/g, '').trim() === 'PONG';
    } catch {
      return false;
    }
  }

  async scan(content: Readable, meta: ScanMeta = {}): Promise<ScanVerdict> {
    const limit = this.options.streamMaxBytes;
    if (limit !== undefined && meta.sizeBytes != null && meta.sizeBytes > limit) {
      await drain(content);
      return { status: 'error', reason: 'too_large' };
    }
    let socket: Socket;
    try {
      socket = await this.open();
    } catch (err) {
      await drain(content);
      return { status: 'error', reason: err instanceof ScanFailure ? err.reason : 'unreachable' };
    }
    const verdict = await this.stream(socket, content);
    if (verdict !== CLOSED_MID_STREAM) return verdict;
    // clamd is alive but hung up on a client that was writing promptly: the only deliberate
    // mid-stream close is the StreamMaxLength refusal (clamd/scanner.c). A dead clamd is
    // "unreachable" and gets retried.
    return (await this.ping()) ? { status: 'error', reason: 'too_large' } : { status: 'error', reason: 'unreachable' };
  }

  private stream(socket: Socket, content: Readable): Promise<ScanVerdict | typeof CLOSED_MID_STREAM> {
    return new Promise<ScanVerdict | typeof CLOSED_MID_STREAM>((resolve, reject) => {
      const replyChunks: Buffer[] = [];
      let settled = false;
      let sent = 0;
      let contentError: unknown = null;
      let terminated = false;

      const finish = (verdict: ScanVerdict | typeof CLOSED_MID_STREAM | null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        socket.destroy();
        // Keep consuming so any other reader of a teed stream is not stalled by our early exit.
        content.unpipe();
        content.off('data', onData);
        if (!content.readableEnded && !content.destroyed) content.resume();
        if (contentError !== null) reject(contentError);
        else resolve(verdict ?? parseReply(Buffer.concat(replyChunks).toString('latin1')));
      };

      const deadline = setTimeout(() => finish({ status: 'error', reason: 'timeout' }), this.options.scanTimeoutMs);
      socket.setTimeout(this.options.idleTimeoutMs, () => finish({ status: 'error', reason: 'timeout' }));
      socket.on('data', (chunk: Buffer) => {
        replyChunks.push(chunk);
        // clamd answers before we finish only to refuse (size limit) — it closes right after.
        if (chunk.includes(0)) finish(null);
      });
      socket.on('end', () => finish(replyChunks.length || terminated ? null : CLOSED_MID_STREAM));
      socket.on('close', () => finish(replyChunks.length ? null : { status: 'error', reason: 'protocol' }));
      // EPIPE/ECONNRESET while we write usually means clamd refused the stream and closed; the
      // reply (if any) already arrived in 'data'. Without a reply it is a protocol failure.
      socket.on('error', () => {
        if (replyChunks.length) return finish(null);
        // clamd stopped reading before our terminating chunk and no reply could be read. Node
        // destroys a socket on a failed write (EPIPE), discarding a reply that may already sit in
        // the receive buffer, so the refusal text is not always observable. scan() tells the
        // cases apart with a PING.
        finish(sent > 0 && !terminated ? CLOSED_MID_STREAM : { status: 'error', reason: 'protocol' });
      });

      const onData = (chunk: Buffer | string): void => {
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        sent += buf.length;
        if (this.options.streamMaxBytes !== undefined && sent > this.options.streamMaxBytes) {
          finish({ status: 'error', reason: 'too_large' });
          return;
        }
        let ok = true;
        for (let offset = 0; offset < buf.length; offset += this.options.chunkBytes) {
          const piece = buf.subarray(offset, offset + this.options.chunkBytes);
          const header = Buffer.allocUnsafe(4);
          header.writeUInt32BE(piece.length, 0);
          ok = socket.write(header) && ok;
          ok = socket.write(piece) && ok;
        }
        // Yield to the event loop between chunks (and wait for drain when the socket is full).
        // clamd refuses an over-long stream by replying and closing; if we kept writing in the
        // same tick the write would fail with EPIPE and Node would destroy the socket before the
        // reply already sitting in the receive buffer was read.
        content.pause();
        const resume = (): void => {
          if (!settled) content.resume();
        };
        if (ok) setImmediate(resume);
        else socket.once('drain', () => setImmediate(resume));
      };

      content.on('data', onData);
      content.once('end', () => {
        if (settled) return;
        terminated = true;
        socket.write(Buffer.alloc(4)); // zero-length chunk ends the stream
      });
      content.once('error', (err) => {
        contentError = err;
        finish(null);
      });
      socket.write('zINSTREAM\0');
    });
  }

  private open(): Promise<Socket> {
    return new Promise<Socket>((resolve, reject) => {
      const socket = this.options.socket
        ? connect({ path: this.options.socket })
        : connect({ host: this.options.host ?? '127.0.0.1', port: this.options.port! });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ScanFailure('unreachable'));
      }, this.options.connectTimeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(socket);
      });
      socket.once('error', () => {
        clearTimeout(timer);
        reject(new ScanFailure('unreachable'));
      });
    });
  }
}

class ScanFailure extends Error {
  constructor(readonly reason: ScanErrorReason) {
    super(`clamd ${reason}`);
  }
}

/** Maps clamd's reply text to a verdict. Exported for unit tests of the protocol mapping. */
export function parseReply(raw: string): ScanVerdict {
  const reply = raw.replace(/\0/g, '').trim();
  if (reply === 'stream: OK') return { status: 'clean' };
  const found = SIGNATURE.exec(reply);
  if (found) return { status: 'infected', signature: sanitizeSignature(found[1]!) };
  // clamd's own wording (clamd/scanner.c); this is a fixed protocol string, not a free-form message.
  if (/size limit exceeded/i.test(reply)) return { status: 'error', reason: 'too_large' };
  return { status: 'error', reason: 'protocol' };
}

function sanitizeSignature(signature: string): string {
  // Signature names go into webhooks and logs: printable ASCII only, bounded.
  return signature.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
}

async function drain(content: Readable): Promise<void> {
  if (content.readableEnded || content.destroyed) return;
  await new Promise<void>((resolve, reject) => {
    content.once('end', resolve);
    content.once('error', reject);
    content.resume();
  });
}
