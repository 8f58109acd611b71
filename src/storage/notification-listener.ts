import pg from 'pg';
import type { Logger } from '../observability/logger.js';
import { Backoff } from '../retry/backoff.js';

/** 500 ms, 1 s, 2 s … 30 s between reconnects; one listener per process, so no jitter. */
const RECONNECT_BACKOFF = new Backoff({ baseMs: 250, capMs: 30_000, jitter: 'none' });

/**
 * A dedicated LISTEN connection (Postgres only), used by the job queue and the webhook pump
 * ({@link WakeChannel}) to wake workers. Connections
 * can drop at any time: on an error or end it reconnects with backoff and then calls `onReconnect`
 * (notifications sent meanwhile were lost); a periodic ping notices a connection that died
 * silently. Callers keep polling as the floor.
 *
 * A process that wakes others also wakes itself in-process first; `notify` sends the NOTIFY on
 * this connection, and what this connection sent is not handed back to `onNotify` (Postgres
 * delivers a session its own notifications, with its own backend pid). Without that, each
 * wake-up came twice — a second job fetch or webhook claim cycle that found nothing, per job and
 * per committed event.
 */
export class NotificationListener {
  #client: pg.Client | undefined;
  #stopped = false;
  #failures = 0;
  #retry: NodeJS.Timeout | undefined;
  #ping: NodeJS.Timeout | undefined;

  constructor(
    private readonly connectionString: string,
    private readonly channel: string,
    private readonly logger: Pick<Logger, 'warn' | 'info' | 'debug'>,
    private readonly onNotify: (payload: string) => void,
    private readonly onReconnect: () => void,
    private readonly applicationName = 'mbc-job-listener',
  ) {}

  start(): void {
    void this.#connect(false);
    this.#ping = setInterval(() => {
      const c = this.#client;
      if (!c) return;
      const timeout = setTimeout(() => this.#drop(c, new Error('listen connection ping timed out')), 10_000);
      c.query('SELECT 1')
        .catch((err: unknown) => this.#drop(c, err))
        .finally(() => clearTimeout(timeout));
    }, 30_000);
    this.#ping.unref();
  }

  async #connect(reconnect: boolean): Promise<void> {
    if (this.#stopped) return;
    const client = new pg.Client({ connectionString: this.connectionString, keepAlive: true, application_name: this.applicationName });
    client.on('error', (err) => this.#drop(client, err));
    client.on('end', () => this.#drop(client, new Error('listen connection ended')));
    let ownPid: number | undefined;
    client.on('notification', (msg) => {
      if (msg.processId !== ownPid) this.onNotify(msg.payload ?? '');
    });
    try {
      await client.connect();
      ownPid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
      await client.query(`LISTEN ${pg.escapeIdentifier(this.channel)}`);
    } catch (err) {
      this.#drop(client, err);
      return;
    }
    if (this.#stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
    this.#failures = 0;
    if (reconnect) {
      this.logger.info('notification connection restored');
      this.onReconnect();
    }
  }

  #drop(client: pg.Client, err: unknown): void {
    // A late event of a connection already replaced: nothing to do.
    if (this.#client !== client && this.#client !== undefined) return;
    this.#client = undefined;
    client.removeAllListeners('end');
    client.removeAllListeners('notification');
    client.on('error', () => undefined);
    client.end().catch(() => undefined);
    if (this.#stopped || this.#retry) return;
    this.#failures++;
    const delay = RECONNECT_BACKOFF.delayMs(this.#failures + 1);
    this.logger.warn({ err, retryInMs: delay }, 'notification connection lost; reconnecting (callers poll meanwhile)');
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      void this.#connect(true);
    }, delay);
    this.#retry.unref();
  }

  /**
   * Sends `payload` on the channel from this listener's connection; this process does not hear it
   * back. False when the connection is down (reconnecting) or the send failed on it (the
   * connection's error handler drops and replaces it): the caller sends it another way.
   */
  async notify(payload: string): Promise<boolean> {
    const c = this.#client;
    if (!c) return false;
    try {
      await c.query('SELECT pg_notify($1, $2)', [this.channel, payload]);
      return true;
    } catch {
      return false;
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retry);
    clearInterval(this.#ping);
    const c = this.#client;
    this.#client = undefined;
    if (c) {
      c.removeAllListeners('end');
      c.on('error', () => undefined);
      await c.end().catch(() => undefined);
    }
  }
}

/**
 * Wakes the other processes: on `listener`'s connection while it is up (this process does not hear
 * its own notification back: it woke itself in-process already), else through `viaPool` (a process
 * without workers, a listener reconnecting, or a send that failed on it).
 */
export async function notifyOtherProcesses(listener: NotificationListener | undefined, payload: string, viaPool: () => Promise<unknown>): Promise<void> {
  if (listener && (await listener.notify(payload))) return;
  await viaPool();
}
