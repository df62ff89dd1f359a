// End-to-end: an appliance dies during playback. The player moves to the
// next delivery URL with no error shown and no stall over 2 s, and steering
// stops sending viewers to the dead appliance.
//
// Run from the repo root: node --test web/e2e/  (see play.test.mjs for needs)

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = process.env.REEL_BIN || path.join(REPO, 'target', 'release', 'reel');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const PASSWORD = 'correct horse battery 9';

let server = null;
let browser = null;
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'reel-failover-'));
const log = [];

after(async () => {
  await browser?.close().catch(() => {});
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await Promise.race([new Promise((r) => server.once('exit', r)), sleep(10_000)]);
    if (server.exitCode === null) server.kill('SIGKILL');
  }
  rmSync(dataDir, { recursive: true, force: true });
});

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function json(res) {
  const body = await res.json();
  assert.ok(res.ok, `${res.status}: ${JSON.stringify(body)}`);
  return body;
}

test('an appliance dies mid-play: playback moves on, steering routes around it', { timeout: 420_000 }, async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  server = spawn(BIN, ['up', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  for (const s of [server.stdout, server.stderr]) s.on('data', (c) => { log.push(c.toString()); if (log.length > 200) log.shift(); });
  const deadline = Date.now() + 300_000;
  for (;;) {
    try { if ((await fetch(`${base}/healthz`)).ok) break; } catch { /* not yet */ }
    assert.ok(server.exitCode === null, `reel up exited:\n${log.join('')}`);
    assert.ok(Date.now() < deadline, 'reel up not healthy within 300 s');
    await sleep(300);
  }

  // All four appliances report healthy before we start (reports every 2 s).
  const healthy = () => JSON.parse(execFileSync(BIN, ['steer', 'explain', '--data-dir', dataDir, '--client', '127.0.0.1', '--title', 'demo-rule-110', '--json']).toString());
  for (let i = 0; i < 50 && healthy().places.length < 5; i++) await sleep(200);
  assert.equal(healthy().places.length, 5, 'four appliances and the origin');

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  const trail = [];
  page.on('console', (m) => trail.push(`console ${m.type()}: ${m.text()}`));
  page.on('requestfailed', (r) => trail.push(`failed ${r.url().replace(/media\/[^/]+/, 'media/T')} ${r.failure()?.errorText}`));
  page.on('requestfinished', (r) => { if (r.url().includes('/media/')) trail.push(`ok ${r.url().replace(/media\/[^/]+/, 'media/T')}`); });
  await page.goto(`${base}/signin`);
  const account = await page.evaluate(async ({ password }) => {
    const r = await fetch('/api/v1/accounts', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email: `failover${Date.now()}@example.com`, password, plan: 'premium' }) });
    return r.json();
  }, { password: PASSWORD });
  const profileId = account.profiles[0].id;
  await page.evaluate((id) => localStorage.setItem('reel.profile', id), profileId);

  const playback = page.waitForResponse((r) => r.url().endsWith('/api/v1/playback') && r.request().method() === 'POST');
  await page.goto(`${base}/watch/demo-rule-110`);
  const session = await (await playback).json();
  const victim = session.urls[0];
  assert.equal(victim.kind, 'appliance', 'playback starts on an appliance');

  // Watch the clock: the longest wall-time gap in which the video did not advance.
  await page.waitForFunction(() => window.__reelPlayer?.video?.currentTime > 1, null, { timeout: 60_000 });
  await page.evaluate(() => {
    const v = window.__reelPlayer.video;
    window.__stall = { last: performance.now(), lastTime: v.currentTime, max: 0 };
    setInterval(() => {
      const now = performance.now();
      if (v.currentTime > window.__stall.lastTime + 0.01 || v.paused || v.ended) {
        window.__stall.last = now;
        window.__stall.lastTime = v.currentTime;
      } else {
        window.__stall.max = Math.max(window.__stall.max, now - window.__stall.last);
      }
    }, 50);
  });
  const before = await page.evaluate(() => window.__reelPlayer.video.currentTime);

  // Kill that appliance's process (only ours: its cache dir is in our data dir).
  execFileSync('pkill', ['-9', '-f', path.join(dataDir, 'edges', victim.appliance_id)]);
  await sleep(12_000);

  const after12 = await page.evaluate(() => ({
    t: window.__reelPlayer.video.currentTime,
    ended: window.__reelPlayer.video.ended,
    stall: window.__stall.max,
    origin: window.__reelPlayer.deliveryOrigin,
  }));
  console.log(`# ${victim.appliance_id} killed at ${before.toFixed(1)} s; 12 s later at ${after12.t.toFixed(1)} s from ${after12.origin}; longest stall ${Math.round(after12.stall)} ms`);
  if (process.env.REEL_E2E_TRAIL) console.log(trail.join('\n'));
  const message = await page.locator('[data-testid="player-message"]').isVisible().catch(() => false);
  assert.equal(message, false, 'no error is shown to the viewer');
  assert.ok(after12.ended || after12.t - before >= 9, `video kept playing: ${before} -> ${after12.t}`);
  assert.ok(after12.stall <= 2000, `longest stall ${after12.stall} ms`);
  assert.notEqual(after12.origin, new URL(victim.url).origin, 'delivery moved off the dead appliance');
  assert.deepEqual(pageErrors, []);

  // Three missed reports (6 s) and steering leaves it out.
  const decision = healthy();
  assert.ok(!decision.places.some((p) => p.appliance_id === victim.appliance_id), `still steered to ${victim.appliance_id}`);
  assert.ok(decision.excluded.some(([id]) => id === victim.appliance_id));
  const next = await page.evaluate(async ({ profileId }) => {
    const r = await fetch('/api/v1/playback', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ profile_id: profileId, title_id: 'demo-colony' }) });
    return r.json();
  }, { profileId });
  assert.ok(!next.urls.some((u) => u.appliance_id === victim.appliance_id), 'new playbacks skip the dead appliance');
});
