import { Command, InvalidArgumentError } from 'commander';
import { ConfigError, loadConfig, loadDotEnv, type Config } from '../config/config.js';
import { checkDisplayName, checkLogoUrl, checkSupportUrl } from '../tenancy/tenant-branding.js';
import { CliError, runOps } from './ops-client.js';
import { describeThrown } from '../observability/thrown.js';

/**
 * `mailbox-connector` — every command accepts --json and exits non-zero with a one-line reason.
 * Ops commands call the same services as the admin HTTP API (src/bootstrap/*.module.ts).
 */
const program = new Command();
program
  .name('mailbox-connector')
  .description('Connect Gmail and Microsoft 365 mailboxes to a helpdesk')
  .option('--json', 'machine-readable output')
  // Usage errors are printed once, as one line, by the handler at the bottom (not commander's
  // text followed by a page of help). Set before the commands exist: subcommands inherit both.
  .configureOutput({ outputError: () => undefined })
  .exitOverride();

const json = (): boolean => Boolean(program.opts<{ json?: boolean }>().json);

function config(): Config {
  return loadConfig(process.env);
}

/** A yes/no option's value; anything else is a usage error naming the option. */
function yesNo(option: string, value: string): boolean {
  if (/^(yes|true|on)$/i.test(value)) return true;
  if (/^(no|false|off)$/i.test(value)) return false;
  throw new CliError(`${option} takes yes or no, not ${JSON.stringify(value.slice(0, 20))}`);
}

type BrandingOptions = { displayName?: string | false; logoUrl?: string | false; supportUrl?: string | false };

/**
 * `--display-name`, `--logo-url`, `--support-url` checked by the API's rules before anything
 * starts (one line naming the option); `--no-…` (tenants update) removes the value.
 */
function brandingOptions(o: BrandingOptions): Record<string, string | null> {
  const policy = { production: config().production };
  const rules = [
    ['displayName', '--display-name', checkDisplayName],
    ['logoUrl', '--logo-url', checkLogoUrl],
    ['supportUrl', '--support-url', checkSupportUrl],
  ] as const;
  const out: Record<string, string | null> = {};
  for (const [field, flag, check] of rules) {
    const value = o[field];
    if (value === undefined) continue;
    if (value === false) {
      out[field] = null;
      continue;
    }
    const r = check(value, policy);
    if (!r.ok) throw new CliError(`${flag} ${r.reason}`);
    out[field] = value;
  }
  return out;
}

function print(result: unknown): void {
  if (json()) {
    process.stdout.write(`${JSON.stringify(result, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}\n`);
    return;
  }
  if (Array.isArray(result)) {
    if (result.length === 0) console.log('(none)');
    for (const row of result) console.log(formatLine(row));
    return;
  }
  if (result && typeof result === 'object') {
    for (const [k, v] of Object.entries(result)) console.log(`${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
    return;
  }
  console.log(String(result));
}

function formatLine(row: unknown): string {
  if (!row || typeof row !== 'object') return String(row);
  return Object.entries(row)
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join('  ');
}

const progress = (line: string): void => {
  if (!json()) process.stderr.write(`… ${line}\n`);
};

async function ops(name: string, input: Record<string, unknown>): Promise<void> {
  print(await runOps(config(), name, input, progress));
}

/** A TCP port given on the command line, checked before anything starts. */
function portArg(value: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) throw new InvalidArgumentError('a port must be a whole number from 0 to 65535.');
  return Number(value);
}

const serve = program
  .command('serve', { isDefault: true })
  .description('run the HTTP API and the workers in one process')
  .option('--port <port>', 'listen port (default PORT or 8080)', portArg)
  .option('--no-workers', 'serve HTTP only')
  .action(async (opts: { port?: number; workers: boolean }) => {
    const { runServer } = await import('./server-runner.js');
    await runServer(config(), { http: true, workers: opts.workers, ...(opts.port !== undefined ? { port: opts.port } : {}), json: json() });
  });

program
  .command('worker')
  .description('run workers only (scale out: several processes against one Postgres)')
  .option('--health-port <port>', 'port of the /healthz, /readyz and /metrics server (default PORT or 8080)', portArg)
  .action(async (opts: { healthPort?: number }) => {
    const cfg = config();
    if (cfg.database.embedded) throw new CliError('worker needs DATABASE_URL: the embedded database admits one process (use serve)');
    const { runServer } = await import('./server-runner.js');
    await runServer(cfg, { http: false, workers: true, ...(opts.healthPort !== undefined ? { healthPort: opts.healthPort } : {}), json: json() });
  });

program
  .command('migrate')
  .description('apply pending database migrations')
  .action(async () => {
    const { runMigrate } = await import('./server-runner.js');
    print(await runMigrate(config()));
  });

program
  .command('backup')
  .requiredOption('--out <dir>', 'a new or empty folder for the two backup files and their manifest')
  .description('back up the data and the key store to separate files; prints how long each may be kept')
  .action(async (o: { out: string }) => {
    const { runBackup } = await import('./backup-runner.js');
    print(await runBackup(config(), o.out));
  });

program
  .command('restore')
  .requiredOption('--from <dir>', 'a folder written by backup')
  .option('--accept-missing-ledger', 'restore although the current key store (and its shred ledger) cannot be read')
  .description('restore a backup (service stopped); destroys again the keys of mailboxes purged since, holds undelivered webhooks')
  .action(async (o: { from: string; acceptMissingLedger?: boolean }) => {
    const { runRestore } = await import('./backup-runner.js');
    print(await runRestore(config(), o.from, { acceptMissingLedger: Boolean(o.acceptMissingLedger) }));
  });

program
  .command('keystore')
  .description('the key store (data keys and shred ledger)')
  .command('migrate')
  .description('move the data keys of an install from before the key store out of the data database (once)')
  .action(async () => {
    const { runKeystoreMigrate } = await import('./backup-runner.js');
    print(await runKeystoreMigrate(config()));
  });

const tenants = program.command('tenants').description('manage tenants');
tenants
  .command('create')
  .requiredOption('--name <name>', 'tenant name')
  .option('--return-origin <origin...>', 'allowed returnUrl origins for connect sessions')
  .option('--retention-days <days>', 'delete messages older than this')
  .option('--block-remote-images <yes|no>', 'serve safeHtml with remote images turned off (tracking pixels)')
  .option('--display-name <name>', 'name the customer sees on the hosted connect pages (1-80 characters)')
  .option('--logo-url <url>', 'logo on the hosted connect pages (https)')
  .option('--support-url <url>', '"Contact support" link on the hosted connect pages (https or mailto:)')
  .description('create a tenant; prints its id and first API key (shown once)')
  .action(async (o: { name: string; returnOrigin?: string[]; retentionDays?: string; blockRemoteImages?: string } & BrandingOptions) => {
    await ops('tenants.create', {
      name: o.name,
      ...(o.returnOrigin ? { allowedReturnOrigins: o.returnOrigin } : {}),
      ...(o.retentionDays ? { retentionDays: Number(o.retentionDays) } : {}),
      ...(o.blockRemoteImages !== undefined ? { blockRemoteImages: yesNo('--block-remote-images', o.blockRemoteImages) } : {}),
      ...brandingOptions(o),
    });
  });
tenants.command('list').description('list tenants').action(async () => ops('tenants.list', {}));
tenants
  .command('update <tenantId>')
  .option('--return-origin <origin...>', 'allowed returnUrl origins (replaces the list)')
  .option('--retention-days <days>', 'retention in days ("none" to keep forever)')
  .option('--block-remote-images <yes|no>', 'serve safeHtml with remote images turned off (tracking pixels)')
  .option('--display-name <name>', 'name the customer sees on the hosted connect pages (1-80 characters)')
  .option('--no-display-name', 'remove it (the pages say "your helpdesk")')
  .option('--logo-url <url>', 'logo on the hosted connect pages (https)')
  .option('--no-logo-url', 'remove the logo')
  .option('--support-url <url>', '"Contact support" link on the hosted connect pages (https or mailto:)')
  .option('--no-support-url', 'remove the support link')
  .description('change a tenant’s settings')
  .action(async (tenantId: string, o: { returnOrigin?: string[]; retentionDays?: string; blockRemoteImages?: string } & BrandingOptions) => {
    await ops('tenants.update', {
      tenantId,
      ...(o.returnOrigin ? { allowedReturnOrigins: o.returnOrigin } : {}),
      ...(o.retentionDays ? { retentionDays: o.retentionDays === 'none' ? null : Number(o.retentionDays) } : {}),
      ...(o.blockRemoteImages !== undefined ? { blockRemoteImages: yesNo('--block-remote-images', o.blockRemoteImages) } : {}),
      ...brandingOptions(o),
    });
  });

const apiKeys = program.command('api-keys').description('manage API keys');
apiKeys
  .command('create')
  .option('--tenant <tenantId>', 'tenant the key belongs to')
  .option('--admin', 'an ops key for the admin API instead')
  .option('--name <name>', 'label')
  .description('issue an API key (shown once)')
  .action(async (o: { tenant?: string; admin?: boolean; name?: string }) => {
    if (!o.tenant === !o.admin) throw new CliError('give exactly one of --tenant <id> or --admin');
    await ops('apiKeys.create', { ...(o.admin ? { admin: true } : { tenantId: o.tenant }), ...(o.name ? { name: o.name } : {}) });
  });
apiKeys
  .command('revoke <apiKeyId>')
  .description('revoke an API key')
  .action(async (apiKeyId: string) => ops('apiKeys.revoke', { apiKeyId }));

const mailboxes = program.command('mailboxes').description('ops view of mailboxes');
mailboxes
  .command('list')
  .option('--tenant <tenantId>', 'only this tenant')
  .option('--status <status>', 'only this status')
  .description('list mailboxes (no addresses)')
  .action(async (o: { tenant?: string; status?: string }) => ops('mailboxes.list', { ...(o.tenant ? { tenantId: o.tenant } : {}), ...(o.status ? { status: o.status } : {}) }));
mailboxes
  .command('revoke <mailboxId>')
  .requiredOption('--reason <reason>', 'why (recorded in the audit log and the purge receipt)')
  .description('ops revocation: stop sync, revoke the grant, purge the data')
  .action(async (mailboxId: string, o: { reason: string }) => ops('mailboxes.revoke', { mailboxId, reason: o.reason }));
mailboxes
  .command('resync <mailboxId>')
  .description('force a sync of one mailbox')
  .action(async (mailboxId: string) => ops('mailboxes.resync', { mailboxId }));

const events = program.command('events').description('webhook events');
events
  .command('replay [eventId]')
  .option('--since <iso>', 'replay every event created since this time')
  .description('deliver an event (or every event since a time) again')
  .action(async (eventId: string | undefined, o: { since?: string }) => {
    if (!eventId && !o.since) throw new CliError('give the event id to replay, or --since <iso> to replay every event since then');
    if (eventId && o.since) throw new CliError('give an event id or --since <iso>, not both');
    await ops('events.replay', eventId ? { eventId } : { since: o.since });
  });

events
  .command('release-held')
  .option('--discard', 'cancel them instead of sending them')
  .description('after a restore: send (or --discard) the webhook deliveries held since the restore')
  .action(async (o: { discard?: boolean }) => ops('events.releaseHeld', { discard: Boolean(o.discard) }));

program
  .command('keys')
  .description('encryption keys')
  .command('rotate')
  .description('re-wrap every data key under the active master key (first in ENCRYPTION_KEYS)')
  .action(async () => ops('keys.rotate', {}));

program
  .command('retention')
  .description('retention')
  .command('run')
  .description('delete messages older than each tenant’s retention now; prints counts')
  .action(async () => ops('retention.run', {}));

const auditCommand = program.command('audit').description('audit log');
auditCommand
  .command('anchor')
  .description('append the current head, signed with the audit key, to AUDIT_ANCHOR_FILE now (serve does it every AUDIT_ANCHOR_INTERVAL_SECONDS)')
  .action(async () => ops('audit.anchor', {}));
auditCommand
  .command('verify')
  .option('--head <seq:hash>', 'a head printed by an earlier verify, to detect removed trailing entries')
  .description('verify the audit log: HMAC chain, signed anchors in AUDIT_ANCHOR_FILE, and --head if given')
  .action(async (o: { head?: string }) => {
    const [seq, hash] = o.head?.split(':') ?? [];
    const result = (await runOps(config(), 'audit.verify', o.head ? { expectedHead: { seq: Number(seq), hash } } : {}, progress)) as { ok: boolean };
    print(result);
    if (!result.ok) process.exitCode = 1;
  });

// Break-glass: the only way an operator decrypts mail content (docs/data-lifecycle.md). Every
// open/read/close is audited and opening notifies the tenant.
const breakGlass = program.command('break-glass').description('time-limited, audited operator access to one mailbox’s content');
const operatorName = (given?: string): string => given ?? process.env.USER ?? process.env.LOGNAME ?? 'operator';
breakGlass
  .command('open')
  .requiredOption('--mailbox <mailboxId>', 'the one mailbox the session may read')
  .option('--reason <reason>', 'why (required; recorded in the audit log and sent to the tenant)')
  .option('--ticket <ref>', 'ticket reference (required)')
  .option('--minutes <n>', 'session length in minutes (max 240)', '30')
  .option('--operator <name>', 'who is reading (default: $USER)')
  .description('open a break-glass session (reason and ticket required)')
  .action(async (o: { mailbox: string; reason?: string; ticket?: string; minutes: string; operator?: string }) => {
    if (!o.reason?.trim()) throw new CliError('break-glass refused: --reason "…" is required');
    if (!o.ticket?.trim()) throw new CliError('break-glass refused: --ticket <ref> is required');
    const minutes = Number(o.minutes);
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > 240) throw new CliError('--minutes must be a whole number from 1 to 240');
    await ops('breakGlass.open', { mailboxId: o.mailbox, reason: o.reason, ticket: o.ticket, minutes, operator: operatorName(o.operator) });
  });
breakGlass
  .command('read')
  .requiredOption('--session <sessionId>', 'an open break-glass session')
  .requiredOption('--message <messageId>', 'a message of the session’s mailbox')
  .option('--operator <name>', 'who is reading (default: $USER)')
  .description('decrypt and print one message (audited)')
  .action(async (o: { session: string; message: string; operator?: string }) => {
    await ops('breakGlass.read', { sessionId: o.session, messageId: o.message, operator: operatorName(o.operator) });
  });
breakGlass
  .command('close')
  .requiredOption('--session <sessionId>', 'the session to end')
  .option('--operator <name>', 'who is closing (default: $USER)')
  .description('end a break-glass session before it expires')
  .action(async (o: { session: string; operator?: string }) => ops('breakGlass.close', { sessionId: o.session, operator: operatorName(o.operator) }));
breakGlass
  .command('list')
  .option('--all', 'include ended and expired sessions')
  .option('--mailbox <mailboxId>', 'only this mailbox')
  .description('list break-glass sessions')
  .action(async (o: { all?: boolean; mailbox?: string }) => ops('breakGlass.list', { all: Boolean(o.all), ...(o.mailbox ? { mailboxId: o.mailbox } : {}) }));

program
  .command('ops')
  .description('run any ops command by name with JSON input (same as POST /v1/admin/ops/:name)')
  .argument('<name>')
  .argument('[input]', 'JSON object', '{}')
  .action(async (name: string, input: string) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(input);
    } catch {
      throw new CliError('input must be a JSON object');
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new CliError('input must be a JSON object');
    await ops(name, parsed as Record<string, unknown>);
  });

program
  .command('sandbox')
  .description('run the local Google and Microsoft stand-ins and print where they listen')
  .option('--google-port <port>', 'Google stand-in port', portArg, 8081)
  .option('--microsoft-port <port>', 'Microsoft identity (https) port', portArg, 8082)
  .option('--graph-port <port>', 'Microsoft Graph port', portArg, 8083)
  .action(async (o: { googlePort: number; microsoftPort: number; graphPort: number }) => {
    const { runSandbox } = await import('./sandbox-runner.js');
    await runSandbox({ googlePort: o.googlePort, microsoftPort: o.microsoftPort, graphPort: o.graphPort, json: json() });
  });

program
  .command('demo')
  .description(
    'the whole story on the sandbox stand-ins, then stop: connect a Gmail and a Microsoft mailbox, deliver mail (one with an infected attachment), verified webhooks at a bundled receiver, threaded replies, a disconnect with its purge receipt (listens on PORT when set, else a free port; exits 1 when a step fails)',
  )
  .option('--json', 'print one JSON object per step (started, receiver, connected, delivered, webhook, received, scan, reply, purge, stopped) and a final summary')
  .option('--keep-running', 'after the story, keep serving and print the API key until Ctrl-C')
  .action(async (o: { json?: boolean; keepRunning?: boolean }) => {
    const { runDemo } = await import('./demo-runner.js');
    await runDemo(config(), { json: Boolean(o.json) || json(), keepRunning: Boolean(o.keepRunning) });
  });

try {
  // `.env` in the working directory, under the real environment (which wins): README, .env.example.
  loadDotEnv();
  await program.parseAsync(process.argv);
} catch (err) {
  const e = err as { code?: string; exitCode?: number; message?: string };
  if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') process.exit(0);
  // Any other way commander finished successfully (e.g. `help <command>`).
  if (e.code?.startsWith('commander.') && e.exitCode === 0) process.exit(0);
  const message = e.code?.startsWith('commander.') ? usageMessage(e.code, e.message ?? '') : err instanceof ConfigError || err instanceof CliError ? err.message : publicMessage(err);
  if (json()) process.stdout.write(`${JSON.stringify({ error: { message } })}\n`);
  else process.stderr.write(`error: ${message}\n`);
  process.exit(1);
}

/**
 * Commander's usage errors as one line. `serve` is the default command, so an unknown command
 * word arrives as an excess argument of `serve`: name it as what it is.
 */
function usageMessage(code: string, message: string): string {
  if (code === 'commander.excessArguments' && serve.args.length > 0 && process.argv.slice(2).filter((a) => !a.startsWith('-'))[0] === serve.args[0]) {
    return `unknown command '${serve.args[0]}' (commands: ${program.commands.map((c) => c.name()).join(', ')}; see mailbox-connector --help)`;
  }
  return `${message.replace(/^error:\s*/, '').split('\n')[0]} (see mailbox-connector --help)`;
}

function publicMessage(err: unknown): string {
  if (err && typeof err === 'object' && 'code' in err && (err as { code: unknown }).code === 'ECONNREFUSED') return 'cannot reach the database';
  // One line (describeThrown: not "[object Object]" for a thrown non-Error, as PGlite's file-system
  // errors are); errors from our own code name no secrets.
  return describeThrown(err);
}
