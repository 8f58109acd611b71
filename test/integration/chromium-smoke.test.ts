// Proves the browser toolchain itself (system Chromium + playwright-core + a local HTTP server),
// so a failing connect-page test can be told apart from a broken browser setup.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_MISSING, findChromium, launchChromium, type ChromiumHandle } from '../helpers/chromium.js';
import { missing } from '../helpers/requirements.js';

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>smoke</title></head>
<body>
  <button id="go" type="button">Connect</button>
  <p id="out"></p>
  <script>
    document.getElementById('go').addEventListener('click', async () => {
      const res = await fetch('/api/ping', { method: 'POST' });
      document.getElementById('out').textContent = 'server said ' + (await res.text());
    });
  </script>
</body></html>`;

const executable = findChromium();

describe.skipIf(missing('Chromium', executable ? null : CHROMIUM_MISSING))('Chromium smoke', () => {
  let server: Server;
  let baseUrl: string;
  let browser: ChromiumHandle | undefined;
  let pings = 0;

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.method === 'POST' && req.url === '/api/ping') {
        pings++;
        res.writeHead(200, { 'content-type': 'text/plain' }).end('pong');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });

  it('loads a local page, clicks a button and sees the server round-trip', async () => {
    const page = await browser!.newPage();
    await page.goto(`${baseUrl}/`);
    expect(await page.title()).toBe('smoke');
    await page.getByRole('button', { name: 'Connect' }).click();
    await expect.poll(() => page.locator('#out').textContent()).toBe('server said pong');
    expect(pings).toBe(1);
  });
});

if (!executable) {
  if (process.env.CI) {
    // .ci/run installs Chromium, so in CI a missing browser is a broken setup, not a reason to skip.
    it('has Chromium in CI', () => {
      expect.fail(`${CHROMIUM_MISSING}; CHROMIUM_PATH=${process.env.CHROMIUM_PATH ?? '(unset)'}`);
    });
  } else {
    console.warn(`[chromium-smoke] skipped: ${CHROMIUM_MISSING}`);
  }
}
