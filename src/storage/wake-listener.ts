import pg from 'pg';

interface WakeLogger {
  warn(obj: object, msg: string): void;
  info(msg: string): void;
}

/**
 * Cross-process wake-ups over Postgres LISTEN/NOTIFY on one channel (Postgres only; an embedded
 * database has one process, which wakes itself in-process).
 *
 * `notify()` sends one NOTIFY per turn of the event loop however often it is called. `listen()`
 * keeps a dedicated connection LISTENing; connections can drop at any time: on an error or end it
 * reconnects with backoff and then calls `onWake` (notifications sent meanwhile were lost), and a
 * periodic ping notices a connection that died silently. Callers keep a polling floor anyway.
 */
export class WakeChannel {
  #client: pg.Client | undefined;
  #stopped = false;
  #failures = 0;
  #retry: NodeJS.Timeout | undefined;
  #ping: NodeJS.Timeout | undefined;
  #notifyPending = false;

  constructor(
    private readonly deps: {
      connectionString: string;
      /** Identifier (letters, digits, underscore). */
      channel: string;
      /** Sends the NOTIFY through the service's pool. */
      query: (text: string, values?: unknown[]) => Promise<unknown>;
      logger: WakeLogger;
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
      this.deps.query('SELECT pg_notify($1, $2)', [this.deps.channel, '']).catch((err: unknown) => this.deps.logger.warn({ err }, 'wake-up notify failed; workers find the work at their next poll'));
    });
  }

  listen(onWake: () => void): void {
    this.#stopped = false;
    void this.#connect(false, onWake);
    this.#ping = setInterval(() => {
      const c = this.#client;
      if (!c) return;
      const timeout = setTimeout(() => this.#drop(c, new Error('listen connection ping timed out'), onWake), 10_000);
      c.query('SELECT 1')
        .catch((err: unknown) => this.#drop(c, err, onWake))
        .finally(() => clearTimeout(timeout));
    }, 30_000);
    this.#ping.unref();
  }

  async #connect(reconnect: boolean, onWake: () => void): Promise<void> {
    if (this.#stopped) return;
    const client = new pg.Client({ connectionString: this.deps.connectionString, keepAlive: true, ...(this.deps.applicationName ? { application_name: this.deps.applicationName } : {}) });
    client.on('error', (err) => this.#drop(client, err, onWake));
    client.on('end', () => this.#drop(client, new Error('listen connection ended'), onWake));
    client.on('notification', () => onWake());
    try {
      await client.connect();
      await client.query(`LISTEN ${this.deps.channel}`);
    } catch (err) {
      this.#drop(client, err, onWake);
      return;
    }
    if (this.#stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
    this.#failures = 0;
    if (reconnect) {
      this.deps.logger.info(`wake-up connection (${this.deps.channel}) restored`);
      onWake();
    }
  }

  #drop(client: pg.Client, err: unknown, onWake: () => void): void {
    if (this.#client !== client && this.#client !== undefined) return;
    this.#client = undefined;
    client.removeAllListeners('end');
    client.removeAllListeners('notification');
    client.on('error', () => undefined);
    client.end().catch(() => undefined);
    if (this.#stopped || this.#retry) return;
    this.#failures++;
    const delay = Math.min(30_000, 250 * 2 ** Math.min(7, this.#failures));
    this.deps.logger.warn({ err, retryInMs: delay }, `wake-up connection (${this.deps.channel}) lost; polling until it is back`);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      void this.#connect(true, onWake);
    }, delay);
    this.#retry.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retry);
    this.#retry = undefined;
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
