import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { ScanVerdict, Scanner } from './scanner.port.js';

/**
 * Used when no clamd is configured (CONTRACT.md: CLAMD_* unset → attachments stay `pending`,
 * never served, and /readyz reports the scanner missing). Drains the content so tees continue.
 */
export class NullScanner implements Scanner {
  async scan(content: Readable): Promise<ScanVerdict> {
    content.resume();
    await finished(content);
    return { status: 'not_configured' };
  }

  async ping(): Promise<boolean> {
    return false;
  }
}
