#!/usr/bin/env node
// `node scripts/docker-dry-run.mjs` — builds the Dockerfile's image WITHOUT Docker (CI has no
// engine) and starts it, so a Dockerfile that cannot build or an image that cannot start fails CI.
//
// The steps are read from the Dockerfile itself, so they cannot drift from it: each stage gets a
// folder standing for its filesystem root; FROM/WORKDIR/ENV/COPY/RUN/USER/CMD/HEALTHCHECK are
// carried out in order (COPY from the build context honours .dockerignore, with Docker's own
// matching rules from @balena/dockerignore; COPY --from reads the named stage's folder; RUN runs
// with `sh -c` in the stage's WORKDIR, the WORKDIR's absolute path mapped to its folder). Any other
// instruction, or a form this script does not know, stops it: it never skips a step silently.
//
// Then it prints the runtime image's node_modules size, creates a fresh Postgres database and, as
// an unprivileged user, with the final stage's ENV plus what production requires (NODE_ENV from
// the Dockerfile, DATABASE_URL, ENCRYPTION_KEYS, AUDIT_HMAC_KEYS, an https PUBLIC_URL, PORT): runs the CMD with
// `migrate` for `serve` (must exit 0); starts the CMD, waits for GET /healthz to answer 200, runs
// the HEALTHCHECK command (must exit 0), stops it with SIGTERM (must exit 0); starts the CMD with
// `worker`, waits for "workers started", stops it the same way; and drops the database.
//
// Differences from a real `docker build`, printed when they apply: the machine's node/npm instead
// of the base image's; an absolute ENV path that does not exist here (e.g. /usr/local/bin/node) is
// mapped to the same program on PATH; a USER that does not exist here runs as `nobody` (and
// `chown` to it is mapped the same way); npm's cache is seeded from this machine's (hard links,
// so `npm cache clean` in a RUN step removes only the copy) to keep CI fast.
//
// Env: PG_ADMIN_URL (default postgresql://root@127.0.0.1:5432/postgres); DOCKER_CONTEXT = the build
// context (default: this checkout; e.g. a `git archive` export while others edit the tree);
// KEEP_DRY_RUN_DIR=1 keeps the temp folder. Exit code 0 only if every step passed.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import dockerignore from '@balena/dockerignore';
import pg from 'pg';

const repo = path.resolve(process.env.DOCKER_CONTEXT || fileURLToPath(new URL('..', import.meta.url)));
const started = Date.now();
const log = (line) => console.log(`[docker-dry-run +${Math.round((Date.now() - started) / 1000)}s] ${line}`);
class DryRunError extends Error {}

// ------------------------------------------------------------------ Dockerfile parsing
/** Instructions with their line numbers; comments dropped, continuation lines joined. */
export function parseDockerfile(text) {
  const out = [];
  let current = '';
  let startLine = 0;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (current === '' && (line === '' || line.startsWith('#'))) return;
    if (current !== '' && line.startsWith('#')) return; // comment inside a continued instruction
    if (current === '') startLine = i + 1;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      return;
    }
    current += line;
    const m = /^(\S+)\s*(.*)$/s.exec(current.trim());
    out.push({ line: startLine, keyword: m[1].toUpperCase(), args: m[2].trim() });
    current = '';
  });
  if (current !== '') throw new DryRunError('Dockerfile ends inside a continued line');
  return out;
}

/** Splits on whitespace, honouring "double" and 'single' quotes. */
function words(s) {
  const out = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  let m;
  while ((m = re.exec(s))) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (m[2] ?? m[3]));
  return out;
}

function jsonArray(s, where) {
  if (!s.startsWith('[')) throw new DryRunError(`${where}: only the JSON (exec) form is supported here`);
  const v = JSON.parse(s);
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new DryRunError(`${where}: not a JSON array of strings`);
  return v;
}

// ------------------------------------------------------------------ helpers
function userExists(name) {
  return spawnSync('id', ['-u', name], { stdio: 'ignore' }).status === 0;
}

function onPath(program) {
  const r = spawnSync('sh', ['-c', `command -v ${program}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function du(p) {
  return execFileSync('du', ['-sh', p], { encoding: 'utf8' }).split('\t')[0];
}

/**
 * Paths of the build context that `ig` does not exclude (relative, forward slashes; directories
 * too). An excluded directory is not entered unless an exception (`!pattern`) could reach inside.
 */
function contextPaths(dir, ig, mayReinclude, rel = '') {
  const out = [];
  for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    const ignored = ig.ignores(r);
    if (!ignored) out.push(r);
    if (e.isDirectory() && (!ignored || mayReinclude)) out.push(...contextPaths(dir, ig, mayReinclude, r));
  }
  return out;
}

// ------------------------------------------------------------------ the build
const work = mkdtempSync(path.join(tmpdir(), 'mbc-docker-dry-run.'));
chmodSync(work, 0o755);
const stages = [];
let db;

async function build() {
  const dockerfile = readFileSync(path.join(repo, 'Dockerfile'), 'utf8');
  const ignorePath = path.join(repo, '.dockerignore');
  const patterns = existsSync(ignorePath) ? readFileSync(ignorePath, 'utf8').split(/\r?\n/) : [];
  const ig = dockerignore({ ignorecase: false }).add(patterns);
  const mayReinclude = patterns.some((p) => p.trim().startsWith('!') && /[/*]/.test(p));
  const included = new Set(contextPaths(repo, ig, mayReinclude));

  // A stand-in `chown` that maps users missing on this machine to `nobody`.
  const shimDir = path.join(work, 'shim');
  mkdirSync(shimDir);
  const nobodyGroup = execFileSync('id', ['-gn', 'nobody'], { encoding: 'utf8' }).trim();
  writeFileSync(
    path.join(shimDir, 'chown'),
    `#!/bin/bash
# docker-dry-run: an owner that does not exist on this machine becomes nobody:${nobodyGroup}
args=()
for a in "$@"; do
  if [[ "$a" =~ ^[a-z_][a-z0-9_-]*(:[a-z_][a-z0-9_-]*)?$ ]] && ! id -u "\${a%%:*}" >/dev/null 2>&1; then a="nobody:${nobodyGroup}"; fi
  args+=("$a")
done
exec ${onPath('chown')} "\${args[@]}"
`,
    { mode: 0o755 },
  );

  const npmCache = execFileSync('npm', ['config', 'get', 'cache'], { encoding: 'utf8' }).trim();
  let stage;
  for (const ins of parseDockerfile(dockerfile)) {
    const where = `Dockerfile:${ins.line} ${ins.keyword}`;
    switch (ins.keyword) {
      case 'FROM': {
        const [image, as, name] = words(ins.args);
        if (image.startsWith('--')) throw new DryRunError(`${where}: flags are not supported here`);
        const root = path.join(work, `stage${stages.length}`);
        mkdirSync(path.join(root, 'root'), { recursive: true });
        chmodSync(root, 0o755);
        stage = { name: as?.toUpperCase() === 'AS' ? name : String(stages.length), image, root, workdir: '/', env: {}, user: undefined, cmd: undefined, healthcheck: undefined };
        stages.push(stage);
        const tagMajor = /^node:(\d+)/.exec(image)?.[1];
        const localMajor = process.versions.node.split('.')[0];
        log(`stage ${stage.name}: FROM ${image} → ${root} (this machine: node ${process.versions.node}, npm ${execFileSync('npm', ['--version'], { encoding: 'utf8' }).trim()})`);
        if (tagMajor && tagMajor !== localMajor) throw new DryRunError(`${where}: the image uses Node ${tagMajor}, this machine runs Node ${localMajor}`);
        // npm cache: hard links of this machine's cache (fast; removing them leaves the original).
        if (existsSync(path.join(npmCache, '_cacache'))) {
          try {
            execFileSync('cp', ['-al', path.join(npmCache, '_cacache'), path.join(root, 'root', '.npm', '_cacache')], { stdio: 'ignore' });
          } catch {
            mkdirSync(path.join(root, 'root', '.npm'), { recursive: true });
          }
        }
        break;
      }
      case 'WORKDIR': {
        stage.workdir = path.posix.resolve(stage.workdir, ins.args);
        mkdirSync(path.join(stage.root, stage.workdir), { recursive: true });
        log(`${where} ${stage.workdir}`);
        break;
      }
      case 'ENV': {
        for (const w of words(ins.args)) {
          const eq = w.indexOf('=');
          if (eq < 1) throw new DryRunError(`${where}: only the KEY=value form is supported here`);
          const key = w.slice(0, eq);
          let value = w.slice(eq + 1);
          if (value.startsWith('/') && !existsSync(value) && onPath(path.basename(value))) {
            const local = onPath(path.basename(value));
            log(`${where} ${key}=${value} (absent here: using ${local})`);
            value = local;
          } else {
            log(`${where} ${key}=${value}`);
          }
          stage.env[key] = value;
        }
        break;
      }
      case 'COPY': {
        const parts = words(ins.args);
        let from;
        while (parts[0]?.startsWith('--')) {
          const flag = parts.shift();
          if (flag.startsWith('--from=')) from = flag.slice('--from='.length);
          else throw new DryRunError(`${where}: flag ${flag} is not supported here`);
        }
        if (parts.length < 2) throw new DryRunError(`${where}: needs a source and a destination`);
        const dest = parts.pop();
        const destAbs = path.join(stage.root, path.posix.resolve(stage.workdir, dest));
        for (const src of parts) {
          if (/[*?[]/.test(src)) throw new DryRunError(`${where}: wildcards are not supported here`);
          let srcAbs;
          let filter = () => true;
          if (from !== undefined) {
            const other = stages.find((s) => s.name === from);
            if (!other || other === stage) throw new DryRunError(`${where}: no earlier stage named ${from}`);
            srcAbs = path.join(other.root, path.posix.resolve('/', src));
          } else {
            const rel = path.posix.normalize(src).replace(/^\/+|\/+$/g, '');
            if (!included.has(rel)) throw new DryRunError(`${where}: ${src} is not in the build context (missing, or excluded by .dockerignore)`);
            srcAbs = path.join(repo, rel);
            filter = (p) => {
              const r = path.relative(repo, p).split(path.sep).join('/');
              return r === '' || included.has(r);
            };
          }
          if (!existsSync(srcAbs)) throw new DryRunError(`${where}: ${src} does not exist`);
          const target = statSync(srcAbs).isDirectory() ? destAbs : dest.endsWith('/') || parts.length > 1 ? path.join(destAbs, path.basename(srcAbs)) : destAbs;
          mkdirSync(path.dirname(target), { recursive: true });
          cpSync(srcAbs, target, { recursive: true, filter });
          log(`${where} ${from !== undefined ? `--from=${from} ` : ''}${src} → ${path.posix.resolve(stage.workdir, dest)}`);
        }
        break;
      }
      case 'RUN': {
        if (ins.args.startsWith('[') || ins.args.startsWith('--')) throw new DryRunError(`${where}: only the shell form without flags is supported here`);
        if (stage.user && stage.user !== 'root') throw new DryRunError(`${where}: RUN after USER ${stage.user} is not supported here`);
        // The stage's WORKDIR as an absolute path means its folder here (never this machine's /app);
        // any other absolute path would reach outside the stage, so it is refused.
        const wd = stage.workdir;
        const absolute = /(^|[\s=:'"])(\/[^\s'";&|)]*)/g;
        for (const m of ins.args.matchAll(absolute)) {
          const p = m[2];
          if (p !== '/dev/null' && (wd === '/' || (p !== wd && !p.startsWith(`${wd}/`)))) {
            throw new DryRunError(`${where}: absolute path ${p} outside WORKDIR ${wd} cannot be run outside Docker`);
          }
        }
        const command = ins.args.replace(absolute, (_all, pre, p) => `${pre}${path.join(stage.root, p)}`);
        log(`${where} ${ins.args}`);
        const t0 = Date.now();
        const r = spawnSync('sh', ['-c', command], {
          cwd: path.join(stage.root, wd),
          stdio: 'inherit',
          env: {
            PATH: `${shimDir}:${process.env.PATH}`,
            HOME: path.join(stage.root, 'root'),
            npm_config_cache: path.join(stage.root, 'root', '.npm'),
            npm_config_prefer_offline: 'true',
            npm_config_update_notifier: 'false',
            ...stage.env,
          },
        });
        if (r.status !== 0) throw new DryRunError(`${where} failed (exit ${r.status ?? r.signal}): ${ins.args}`);
        log(`${where} done in ${Math.round((Date.now() - t0) / 1000)} s`);
        break;
      }
      case 'USER':
        stage.user = ins.args.split(':')[0];
        log(`${where} ${ins.args}${userExists(stage.user) ? '' : ' (absent here: runs as nobody)'}`);
        break;
      case 'CMD':
        stage.cmd = jsonArray(ins.args, where);
        break;
      case 'HEALTHCHECK': {
        const m = /^((?:--\S+\s+)*)CMD\s+(.*)$/s.exec(ins.args);
        if (!m) throw new DryRunError(`${where}: expected HEALTHCHECK [options] CMD [...]`);
        stage.healthcheck = jsonArray(m[2].trim(), where);
        break;
      }
      case 'EXPOSE':
      case 'LABEL':
        break;
      default:
        throw new DryRunError(`${where}: instruction not supported by the dry run`);
    }
  }
  return stages.at(-1);
}

// ------------------------------------------------------------------ start the image
async function startImage(image) {
  if (!image.cmd) throw new DryRunError('the final stage has no CMD');
  const app = path.join(image.root, image.workdir);
  const modules = path.join(app, 'node_modules');
  log(`runtime node_modules: ${existsSync(modules) ? du(modules) : 'none'} (${existsSync(modules) ? readdirSync(modules).length : 0} top-level entries); whole ${image.workdir}: ${du(app)}`);
  for (const banned of ['prisma', 'typescript', 'tsx', 'vitest', 'eslint']) {
    if (existsSync(path.join(modules, banned))) throw new DryRunError(`the runtime image contains the development package ${banned}`);
  }

  const adminUrl = process.env.PG_ADMIN_URL ?? 'postgresql://root@127.0.0.1:5432/postgres';
  const dbName = `mbc_docker_dry_run_${Date.now()}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  await admin.end();
  db = { adminUrl, name: dbName };
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;

  const port = await freePort();
  const user = image.user ?? 'root';
  const runAs = userExists(user) ? user : 'nobody';
  // A clean environment: the image's ENV and what production requires, nothing from this shell.
  const env = {
    PATH: process.env.PATH,
    HOME: '/tmp',
    ...image.env,
    DATABASE_URL: url.toString(),
    ENCRYPTION_KEYS: `1:${randomBytes(32).toString('base64')}`,
    AUDIT_HMAC_KEYS: `1:${randomBytes(32).toString('base64')}`,
    // A mounted volume in a real deployment; here a place the unprivileged user can write.
    AUDIT_ANCHOR_FILE: path.join(tmpdir(), `mbc-dry-run-anchors-${process.pid}.jsonl`),
    PUBLIC_URL: 'https://connector.example.test',
    PORT: String(port),
  };
  if (env.NODE_ENV !== 'production') throw new DryRunError(`the image sets NODE_ENV=${env.NODE_ENV ?? '(unset)'}, expected production`);
  const [program, ...args] = image.cmd;
  // Started directly under the user's uid/gid (not via runuser/su, which would stand between the
  // process and the SIGTERM a container runtime sends).
  const ids = process.getuid?.() === 0 ? { uid: Number(execFileSync('id', ['-u', runAs], { encoding: 'utf8' })), gid: Number(execFileSync('id', ['-g', runAs], { encoding: 'utf8' })) } : {};
  const as = runAs === user ? user : `${runAs} (for ${user})`;
  // The same image runs `migrate` and `worker` containers: the CMD with its last word replaced.
  const variant = (command) => (args.at(-1) === 'serve' ? [...args.slice(0, -1), command] : undefined);

  const migrateArgs = variant('migrate');
  if (migrateArgs) {
    log(`running ${JSON.stringify([program, ...migrateArgs])} as ${as} on database ${dbName}`);
    const m = spawnSync(program, migrateArgs, { cwd: app, env, encoding: 'utf8', timeout: 120_000, ...ids });
    if (m.status !== 0) throw new DryRunError(`migrate exited ${m.status ?? m.signal}:\n${m.stdout}${m.stderr}`);
    log(`migrate exits 0: ${m.stdout.split('\n').filter(Boolean).join(' | ')}`);
  } else {
    log('CMD does not end in `serve`: not trying migrate/worker');
  }

  log(`starting CMD ${JSON.stringify(image.cmd)} in ${image.workdir} as ${as} on port ${port}, NODE_ENV=${env.NODE_ENV}`);
  const serve = startProcess(program, args, { cwd: app, env, ids });
  try {
    const deadline = Date.now() + 90_000;
    let healthy = false;
    while (Date.now() < deadline && !serve.exit()) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) });
        if (res.status === 200) {
          healthy = true;
          break;
        }
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    if (!healthy) throw new DryRunError(`GET /healthz never answered 200 (${serve.exit() ? `process exited ${serve.exit().code ?? serve.exit().signal}` : 'timed out after 90 s'}); output:\n${serve.tail()}`);
    log(`GET /healthz → 200 after ${Math.round((Date.now() - deadline + 90_000) / 1000)} s`);
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(async (r) => `${r.status} ${await r.text()}`, (e) => String(e));
    log(`GET /readyz → ${ready.slice(0, 300)} (informational: no clamd is configured here)`);
    if (image.healthcheck) {
      const [hp, ...ha] = image.healthcheck;
      const h = spawnSync(hp, ha, { cwd: app, env, encoding: 'utf8', timeout: 10_000 });
      if (h.status !== 0) throw new DryRunError(`HEALTHCHECK ${JSON.stringify(image.healthcheck)} exited ${h.status ?? h.signal}: ${h.stderr}`);
      log('HEALTHCHECK command exits 0');
    }
    await serve.stop('serve');
  } finally {
    serve.kill();
  }

  const workerArgs = variant('worker');
  if (workerArgs) {
    log(`starting ${JSON.stringify([program, ...workerArgs])} as ${as}`);
    const worker = startProcess(program, workerArgs, { cwd: app, env, ids });
    try {
      const deadline = Date.now() + 90_000;
      while (Date.now() < deadline && !worker.exit() && !/workers started/.test(worker.output())) await new Promise((r) => setTimeout(r, 250));
      if (!/workers started/.test(worker.output())) {
        throw new DryRunError(`worker did not log "workers started" (${worker.exit() ? `exited ${worker.exit().code ?? worker.exit().signal}` : 'timed out after 90 s'}); output:\n${worker.tail()}`);
      }
      log('worker logged "workers started"');
      await worker.stop('worker');
    } finally {
      worker.kill();
    }
  }
}

/** A child process with its output collected; stop() sends SIGTERM and requires exit code 0. */
function startProcess(program, args, { cwd, env, ids }) {
  const child = spawn(program, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], ...ids });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  let exit;
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve((exit = { code, signal }))));
  const tail = () => output.split('\n').slice(-30).join('\n');
  return {
    exit: () => exit,
    output: () => output,
    tail,
    kill: () => {
      if (!exit) child.kill('SIGKILL');
    },
    async stop(name) {
      child.kill('SIGTERM');
      const done = await Promise.race([exited, new Promise((r) => setTimeout(() => r(undefined), 30_000))]);
      if (!done) throw new DryRunError(`${name} did not stop within 30 s of SIGTERM; output:\n${tail()}`);
      if (done.code !== 0) throw new DryRunError(`${name} exited ${done.code ?? done.signal} after SIGTERM; output:\n${tail()}`);
      log(`${name} stopped on SIGTERM with exit code 0`);
    },
  };
}

let failed = false;
try {
  const image = await build();
  await startImage(image);
  log('PASS: the Dockerfile builds; its image migrates, serves /healthz (HEALTHCHECK passes) and runs a worker, each stopping cleanly');
} catch (err) {
  failed = true;
  console.error(`[docker-dry-run] FAIL: ${err instanceof DryRunError ? err.message : (err?.stack ?? err)}`);
} finally {
  if (db) {
    // The service made `<db>_keystore` beside it (the key store's own database, src/storage/keystore.ts).
    const admin = new pg.Client({ connectionString: db.adminUrl });
    const connected = await admin.connect().then(
      () => true,
      (e) => (console.error(`[docker-dry-run] could not connect to drop ${db.name}: ${e.message}`), false),
    );
    for (const name of connected ? [db.name, `${db.name}_keystore`] : []) {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch((e) => console.error(`[docker-dry-run] could not drop ${name}: ${e.message}`));
    }
    await admin.end().catch(() => undefined);
  }
  if (process.env.KEEP_DRY_RUN_DIR === '1') log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
