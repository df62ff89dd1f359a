// End-to-end: an operator opens the Ops page of a running `reel up`: the
// charts draw from the node's metrics store (fed by the control plane and
// the demo appliances), and a bad PromQL query in Explore says where.
//
// Run from the repo root:   node --test web/e2e/
// Needs: the release binary (cargo build --release, or REEL_BIN=/path/to/reel),
// Debian's Chromium at /usr/bin/chromium (or CHROMIUM_PATH), and
// `npm install` in web/ for playwright-core.
// Optional: REEL_E2E_SHOTS=/some/dir saves screenshots of the home page.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN, CHROMIUM, ReelServer, launchChromium, operatorAccount, signedInPage, waitInPage } from './harness.mjs';

const server = new ReelServer('reel-e2e-ops-');
let browser = null;

after(async () => {
  await browser?.close().catch(() => {});
  await server.stop();
});

test('the Ops page charts the service from its metrics store', { timeout: 600_000 }, async () => {
  assert.ok(existsSync(BIN), `reel binary not found at ${BIN}: build it with "cargo build --release" or set REEL_BIN`);
  assert.ok(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
  const base = await server.start();

  // An operator account: sign up over the API, promote with the CLI.
  const signup = await operatorAccount(server, 'ops');
  // Some traffic to chart, then at least one collection round (every 5 s).
  for (let i = 0; i < 20; i++) await fetch(`${base}/api/v1/genres`, { headers: { authorization: `Bearer ${signup.token}` } });
  await sleep(6_000);

  browser = await launchChromium();
  const problems = [];
  const page = await signedInPage(browser, base, signup, problems);

  try {
    await page.goto(`${base}/ops`);
    await page.getByTestId('ops-page').waitFor();
    assert.equal(await page.getByTestId('ops-panel').count(), 7);
    // The last 15 minutes: a few points per series already.
    await page.locator('[data-testid="ops-range"] [data-range="15m"], [data-testid="ops-range"][data-range="15m"]').first().click();
    // The requests panel draws lines from stored samples.
    await waitInPage(page, 'the requests chart to draw',
      () => {
        const p = document.querySelector('[data-testid="ops-panel"][data-panel-id="requests"]');
        return p?.dataset.state === 'ready' && p.querySelectorAll('svg polyline, svg path, svg circle').length > 0;
      }, undefined, 60_000);
    // The edge panels come from the appliances' /metrics.
    await waitInPage(page, 'an edge panel to settle',
      () => ['ready', 'empty'].includes(document.querySelector('[data-testid="ops-panel"][data-panel-id="edge-hit-ratio"]')?.dataset.state), undefined, 60_000);
    // The alerts section answers (no rules here, so nothing fired).
    await page.getByTestId('ops-alerts-empty').waitFor();
    // Explore: a bad query shows the server's message with a caret.
    await page.getByTestId('ops-explore-input').fill('sum by (status (x)');
    await page.getByTestId('ops-explore-run').click();
    const err = page.getByTestId('ops-explore-error');
    await err.waitFor();
    assert.match(await err.innerText(), /at 15/);
    assert.deepEqual(problems, []);
  } catch (e) {
    e.message += server.tail();
    throw e;
  }
});
