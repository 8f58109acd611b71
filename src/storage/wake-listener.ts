import type { Logger } from '../observability/logger.js';
import { NotificationListener, notifyOtherProcesses } from './notification-listener.js';

/**
 * Cross-process wake-ups over Postgres LISTEN/NOTIFY on one channel (Postgres only; an embedded
 * database has one process, which wakes itself in-process).
 *
 * `notify()` sends one NOTIFY per turn of the event loop however often it is called. `listen()`
 * keeps a dedicated, reconnecting LISTEN connection ({@link NotificationListener}) and calls
 * `onWake` for every notification of another process and after a reconnect (notifications sent
 * meanwhile were lost); the caller wakes its own process itself.
 * Callers keep a polling floor anyway.
 */
export class WakeChannel {
  #listener: NotificationListener | undefined;
  #notifyPending = false;

  constructor(
    private readonly deps: {
      connectionString: string;
      /** Identifier (letters, digits, underscore). */
      channel: string;
      /** Sends the NOTIFY through the service's pool. */
      query: (text: string, values?: unknown[]) => Promise<unknown>;
      logger: Pick<Logger, 'warn' | 'info' | 'debug'>;
      applicationName?: string;
    },
  ) {
    if (!/^[a-z_][a-z0-9_]*$/.test(deps.channel)) throw new Error('channel must be a lower-case identifier');
  }

  notify(): void {
    if (this.#notifyPending) return;
    this.#notifyPending = true;
    setImmediate(() => {
      this.#notifyPending = false;
      notifyOtherProcesses(this.#listener, '', () => this.deps.query('SELECT pg_notify($1, $2)', [this.deps.channel, ''])).catch((err: unknown) =>
        this.deps.logger.warn({ err }, 'wake-up notify failed; workers find the work at their next poll'),
      );
    });
  }

  listen(onWake: () => void): void {
    if (this.#listener) return;
    this.#listener = new NotificationListener(this.deps.connectionString, this.deps.channel, this.deps.logger, () => onWake(), onWake, this.deps.applicationName);
    this.#listener.start();
  }

  async stop(): Promise<void> {
    const listener = this.#listener;
    this.#listener = undefined;
    await listener?.stop();
  }
}
