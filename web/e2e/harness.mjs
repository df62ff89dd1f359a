// Shared by the browser tests: a `reel up` on a free loopback port with a
// fresh data directory (its output kept for failure messages), Chromium
// launched the way this machine needs, and waiting on the page.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = process.env.REEL_BIN || path.join(REPO, 'target', 'release', 'reel');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const PASSWORD = 'correct horse battery 9';
const HEALTH_TIMEOUT_MS = 300_000; // first start encodes the demo library with ffmpeg

export function freePort() {
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

/** `reel up` in its own temporary data directory. */
export class ReelServer {
  constructor(prefix = 'reel-e2e-') {
    this.dataDir = mkdtempSync(path.join(os.tmpdir(), prefix));
    this.log = [];
    this.proc = null;
    this.base = null;
  }

  async start() {
    const port = await freePort();
    this.base = `http://127.0.0.1:${port}`;
    this.proc = spawn(BIN, ['up', '--data-dir', this.dataDir, '--listen', `127.0.0.1:${port}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info' },
    });
    const keep = (chunk) => {
      this.log.push(...chunk.toString().split('\n').filter(Boolean));
      if (this.log.length > 400) this.log.splice(0, this.log.length - 400);
    };
    this.proc.stdout.on('data', keep);
    this.proc.stderr.on('data', keep);
    this.proc.exitInfo = null;
    this.proc.on('exit', (code, signal) => { this.proc.exitInfo = { code, signal }; });
    const deadline = Date.now() + HEALTH_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (this.proc.exitInfo) throw new Error(`reel exited early (${JSON.stringify(this.proc.exitInfo)})${this.tail()}`);
      try {
        const res = await fetch(`${this.base}/healthz`, { signal: AbortSignal.timeout(2_000) });
        if (res.status === 200) return this.base;
      } catch { /* not listening yet */ }
      await sleep(500);
    }
    throw new Error(`reel did not become healthy within ${HEALTH_TIMEOUT_MS / 1000}s${this.tail()}`);
  }

  /** SIGTERM, then SIGKILL after 10 s; removes the data directory. */
  async stop() {
    const p = this.proc;
    if (p && !p.exitInfo) {
      const exited = new Promise((resolve) => p.once('exit', resolve));
      p.kill('SIGTERM');
      const graceful = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]);
      if (!graceful && !p.exitInfo) {
        p.kill('SIGKILL');
        await Promise.race([exited, sleep(5_000)]);
      }
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  get exited() {
    return this.proc?.exitInfo || null;
  }

  tail() {
    return `\n--- last server output ---\n${this.log.slice(-60).join('\n')}\n---`;
  }
}

/** Headless Chromium with the flags this machine's closed network needs. */
export function launchChromium(extraArgs = []) {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', ...extraArgs],
  });
}

/** Waits for `fn` (run in the page) to return truthy; fails with `what`. */
export async function waitInPage(page, what, fn, arg, timeout = 30_000) {
  try {
    return await (await page.waitForFunction(fn, arg, { timeout, polling: 250 })).jsonValue();
  } catch (err) {
    throw new Error(`timed out waiting for ${what}: ${err.message.split('\n')[0]}`);
  }
}

/** A premium account promoted to operator (admin) with the CLI. */
export async function operatorAccount(server, prefix = 'operator') {
  const email = `${prefix}-${Date.now()}@example.com`;
  const res = await fetch(`${server.base}/api/v1/accounts`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: PASSWORD, plan: 'premium' }),
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`sign-up answered ${res.status}: ${text}`);
  await new Promise((resolve, reject) => {
    const p = spawn(BIN, ['accounts', 'promote', email, '--data-dir', server.dataDir], { stdio: 'inherit' });
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`promote exited ${code}`))));
  });
  return JSON.parse(text);
}

/** A page signed in as `signup` (session cookie, first profile picked),
 *  collecting page errors into `problems`. */
export async function signedInPage(browser, base, signup, problems) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.addCookies([{ name: 'reel_session', value: signup.token, url: base }]);
  await context.addInitScript((id) => { try { localStorage.setItem('reel.profile', id); } catch {} }, signup.profiles[0].id);
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  return page;
}
