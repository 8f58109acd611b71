// axe-core in a page opened by playwright-core: the WCAG 2.1 AA violations of what is shown.
//
//   expect(await wcagViolations(page), 'connect page: axe WCAG 2.1 AA violations').toEqual([]);
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Page } from 'playwright-core';

export const WCAG_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

let source: Promise<string> | undefined;

/**
 * `id: [targets]` per violation, empty when the page passes. axe is evaluated through the
 * DevTools protocol, which the page's CSP does not govern, so pages without script work too.
 */
export async function wcagViolations(page: Page, tags: string[] = WCAG_TAGS): Promise<string[]> {
  source ??= readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  await page.evaluate(await source);
  return page.evaluate(async (runTags) => {
    const axe = (globalThis as unknown as { axe: { run(ctx: unknown, opts: unknown): Promise<{ violations: Array<{ id: string; nodes: Array<{ target: unknown }> }> }> } }).axe;
    const r = await axe.run(document, { runOnly: { type: 'tag', values: runTags } });
    return r.violations.map((v) => `${v.id}: ${JSON.stringify(v.nodes.map((n) => n.target))}`);
  }, tags);
}
