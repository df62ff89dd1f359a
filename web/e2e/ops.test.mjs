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
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = process.env.REEL_BIN || path.join(REPO, 'target', 'release', 'reel');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SHOTS = process.env.REEL_E2E_SHOTS || '';
const HEALTH_TIMEOUT_MS = 300_000; // first start encodes the demo library with ffmpeg
const PASSWORD = 'correct horse battery 9';

const log = [];          // server output, printed when something fails
let server = null;       // ChildProcess
let browser = null;
let dataDir = null;

// Cleanup runs whatever happened in the test: browser, server, temp dir.
after(async () => {
  await browser?.close().catch(() => {});
  await stopServer();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function startServer(port) {
  server = spawn(BIN, ['up', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info' },
  });
  const keep = (chunk) => {
    log.push(...chunk.toString().split('\n').filter(Boolean));
    if (log.length > 400) log.splice(0, log.length - 400);
  };
  server.stdout.on('data', keep);
  server.stderr.on('data', keep);
  server.exitInfo = null;
  server.on('exit', (code, signal) => { server.exitInfo = { code, signal }; });
}

async function stopServer() {
  if (!server || server.exitInfo) return;
  const exited = new Promise((resolve) => server.once('exit', resolve));
  server.kill('SIGTERM');
  const graceful = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]);
  if (!graceful && !server.exitInfo) {
    server.kill('SIGKILL');
    await Promise.race([exited, sleep(5_000)]);
  }
}

const serverLog = () => `\n--- last server output ---\n${log.slice(-60).join('\n')}\n---`;

async function waitForHealth(base) {
  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (server.exitInfo) throw new Error(`reel exited early (${JSON.stringify(server.exitInfo)})${serverLog()}`);
    try {
      const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2_000) });
      if (res.status === 200) return;
    } catch { /* not listening yet */ }
    await sleep(500);
  }
  throw new Error(`reel did not become healthy within ${HEALTH_TIMEOUT_MS / 1000}s${serverLog()}`);
}

/** Wait for `fn` (run in the page) to return truthy; fails with `what`. */
async function waitInPage(page, what, fn, arg, timeout = 30_000) {
  try {
    return await (await page.waitForFunction(fn, arg, { timeout, polling: 250 })).jsonValue();
  } catch (err) {
    throw new Error(`timed out waiting for ${what}: ${err.message.split('\n')[0]}`);
  }
}

test('the Ops page charts the service from its metrics store', { timeout: 600_000 }, async () => {
  assert.ok(existsSync(BIN), `reel binary not found at ${BIN}: build it with "cargo build --release" or set REEL_BIN`);
  assert.ok(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'reel-e2e-ops-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  startServer(port);
  await waitForHealth(base);

  // An operator account: sign up over the API, promote with the CLI.
  const email = `ops-${Date.now()}@example.com`;
  const res = await fetch(`${base}/api/v1/accounts`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: PASSWORD, plan: 'premium' }),
  });
  const text = await res.text();
  assert.equal(res.status, 201, text);
  const signup = JSON.parse(text);
  await new Promise((resolve, reject) => {
    const p = spawn(BIN, ['accounts', 'promote', email, '--data-dir', dataDir], { stdio: 'inherit' });
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`promote exited ${code}`))));
  });
  // Some traffic to chart, then at least one collection round (every 5 s).
  for (let i = 0; i < 20; i++) await fetch(`${base}/api/v1/genres`, { headers: { authorization: `Bearer ${signup.token}` } });
  await sleep(6_000);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.addCookies([{ name: 'reel_session', value: signup.token, url: base }]);
  await context.addInitScript((id) => { try { localStorage.setItem('reel.profile', id); } catch {} }, signup.profiles[0].id);
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  const problems = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));

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
    e.message += serverLog();
    throw e;
  }
});
