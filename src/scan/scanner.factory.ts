import { ClamdScanner, type ClamdScannerOptions } from './clamd.scanner.js';
import { NullScanner } from './null.scanner.js';
import type { Scanner } from './scanner.port.js';

export interface ScannerSettings {
  /** CLAMD_SOCKET: unix socket path; wins over host/port (as clamd clients conventionally do). */
  socket?: string | null;
  /** CLAMD_HOST + CLAMD_PORT. */
  host?: string | null;
  port?: number | null;
  /** clamd's StreamMaxLength in bytes, when the deployment knows it (answers too_large early). */
  streamMaxBytes?: number | null;
  timeouts?: Pick<ClamdScannerOptions, 'connectTimeoutMs' | 'idleTimeoutMs' | 'scanTimeoutMs'>;
}

/**
 * Composition-root helper (CONTRACT.md: CLAMD_SOCKET or CLAMD_HOST+CLAMD_PORT; unset → attachments
 * stay pending and /readyz reports the scanner missing). Returns `configured: false` with a
 * NullScanner so readiness can say so without probing.
 */
export function createScanner(settings: ScannerSettings): { scanner: Scanner; configured: boolean } {
  const socket = settings.socket || undefined;
  const port = settings.port ?? undefined;
  if (!socket && port === undefined) return { scanner: new NullScanner(), configured: false };
  return {
    scanner: new ClamdScanner({
      socket,
      host: socket ? undefined : (settings.host ?? undefined),
      port: socket ? undefined : port,
      streamMaxBytes: settings.streamMaxBytes ?? undefined,
      ...settings.timeouts,
    }),
    configured: true,
  };
}
