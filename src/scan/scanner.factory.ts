import type { Config } from '../config/config.js';
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

/** A scanner and whether one is configured (`false`: a NullScanner; attachments stay pending). */
export interface ConfiguredScanner {
  scanner: Scanner;
  configured: boolean;
}

/**
 * Composition-root helper (CONTRACT.md: CLAMD_SOCKET or CLAMD_HOST+CLAMD_PORT; unset → attachments
 * stay pending and /readyz reports the scanner missing). Returns `configured: false` with a
 * NullScanner so readiness can say so without probing.
 */
export function createScanner(settings: ScannerSettings): ConfiguredScanner {
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

/** The clamd client CLAMD_* configure (`Config.clamd`). The composition root builds it once per process. */
export function scannerFromConfig(clamd: Config['clamd']): ConfiguredScanner {
  if (clamd.kind === 'none') return createScanner({});
  return createScanner({
    ...(clamd.kind === 'socket' ? { socket: clamd.socket } : { host: clamd.host, port: clamd.port }),
    streamMaxBytes: clamd.streamMaxBytes ?? null,
    timeouts: { scanTimeoutMs: clamd.timeoutMs },
  });
}

/**
 * The `/readyz` check of the scanner. Not required: without clamd attachments stay pending (never
 * served) while mail still flows.
 */
export function scannerReadiness(s: ConfiguredScanner): { name: string; required: boolean; check(): Promise<{ status: 'ok' | 'not_configured' | 'error'; detail?: string }> } {
  return {
    name: 'scanner',
    required: false,
    async check() {
      if (!s.configured) return { status: 'not_configured', detail: 'set CLAMD_SOCKET or CLAMD_HOST + CLAMD_PORT; attachments stay pending' };
      return (await s.scanner.ping()) ? { status: 'ok' } : { status: 'error', detail: 'clamd does not answer PING' };
    },
  };
}
