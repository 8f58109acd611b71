// Headless Chromium for browser tests (hosted connect pages, OAuth consent flows), driven by
// playwright-core against the system Chromium — playwright's own browser download is not
// possible here. CI (.ci/run) installs Debian's `chromium` and sets CHROMIUM_PATH.
//
//   const executable = findChromium();
//   describe.skipIf(missing('Chromium', executable ? null : CHROMIUM_MISSING))('…', () => {   // requirements.ts
//     let browser: ChromiumHandle;
//     beforeAll(async () => { browser = await launchChromium(); });
//     afterAll(async () => { await browser?.close(); });
//     it('…', async () => { const page = await browser.newPage(); … });
//   });
// A page served with a self-signed certificate (the Microsoft stand-in's TLS): pass its PEM as
// `trustCertificatePem` — exactly that key is trusted, not "ignore all certificate errors".
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

const DEFAULT_PATHS = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

/** Flags for a quiet, hermetic headless run: no sandbox (root in CI), no background traffic. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

/** Reason for `missing('Chromium', …)` (test/helpers/requirements.ts): skipped locally, a failure in CI. */
export const CHROMIUM_MISSING =
  'Chromium is not installed (set CHROMIUM_PATH or install Debian `chromium`; CI installs it)';

/** Path of a Chromium executable: CHROMIUM_PATH when it exists, else the Debian location. */
export function findChromium(): string | undefined {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  return DEFAULT_PATHS.find((p) => existsSync(p));
}

export interface ChromiumHandle {
  /** One persistent context per launch: cookies and storage live in its own fresh profile dir. */
  context: BrowserContext;
  /** Opens a new tab in the context. */
  newPage(): Promise<Page>;
  /** Closes the browser and removes its profile dir. Safe to call twice. */
  close(): Promise<void>;
}

/** The Chromium flag that trusts exactly the key of this certificate (its SPKI's SHA-256). */
export function trustCertificateArg(certificatePem: string): string {
  const spki = new X509Certificate(certificatePem).publicKey.export({ type: 'spki', format: 'der' });
  return `--ignore-certificate-errors-spki-list=${createHash('sha256').update(spki).digest('base64')}`;
}

export async function launchChromium(
  options: { executablePath?: string; timeoutMs?: number; trustCertificatePem?: string } = {},
): Promise<ChromiumHandle> {
  const executablePath = options.executablePath ?? findChromium();
  if (!executablePath) throw new Error(CHROMIUM_MISSING);
  const userDataDir = await mkdtemp(path.join(tmpdir(), 'mbc-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      args: options.trustCertificatePem ? [...CHROMIUM_ARGS, trustCertificateArg(options.trustCertificatePem)] : CHROMIUM_ARGS,
      timeout: options.timeoutMs ?? 60_000,
    });
  } catch (err) {
    await rm(userDataDir, { recursive: true, force: true });
    throw err;
  }
  let closed = false;
  return {
    context,
    newPage: () => context.newPage(),
    async close() {
      if (closed) return;
      closed = true;
      try {
        await context.close();
      } finally {
        await rm(userDataDir, { recursive: true, force: true });
      }
    },
  };
}
