// End-to-end: a new viewer signs up, picks a profile, plays a title, switches
// quality, and finds it again in "Continue Watching" after a reload.
//
// Run from the repo root:   node --test web/e2e/
// Needs: the release binary (cargo build --release, or REEL_BIN=/path/to/reel),
// Debian's Chromium at /usr/bin/chromium (or CHROMIUM_PATH), and
// `npm install` in web/ for playwright-core.
// Optional: REEL_E2E_SHOTS=/some/dir saves screenshots of the home page.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN, CHROMIUM, PASSWORD, ReelServer, launchChromium, waitInPage } from './harness.mjs';

const SHOTS = process.env.REEL_E2E_SHOTS || '';

const server = new ReelServer('reel-e2e-');
let browser = null;

// Cleanup runs whatever happened in the test: browser, server, temp dir.
after(async () => {
  await browser?.close().catch(() => {});
  await server.stop();
});

test('sign up, play a title, switch quality, resume from Continue Watching', { timeout: 600_000 }, async (t) => {
  assert.ok(existsSync(BIN), `reel binary not found at ${BIN}: build it with "cargo build --release" or set REEL_BIN`);
  assert.ok(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);

  const base = await server.start();

  browser = await launchChromium(['--autoplay-policy=no-user-gesture-required']);
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);

  // The app should not throw. Failed loads (e.g. the expected 401 from /me
  // before signing in) are reported by Chromium as console errors; skip those.
  const problems = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/Failed to load resource/i.test(msg.text())) problems.push(`console.error: ${msg.text()}`);
  });

  try {
    // ---- sign up through the UI -------------------------------------------
    await page.goto(`${base}/`);
    await page.getByTestId('signin-form').waitFor();
    await page.getByTestId('goto-signup').click();
    await page.getByTestId('signup-form').waitFor();
    const email = `e2e-${Date.now()}-${Math.random().toString(36).slice(2, 8)}@example.com`;
    await page.getByTestId('signup-email').fill(email);
    await page.getByTestId('signup-password').fill(PASSWORD);
    await page.locator('[data-testid="plan-option"][data-plan="standard"]').click();
    await page.getByTestId('signup-submit').click();

    // ---- profile picker → home ----------------------------------------------
    await page.waitForURL(`${base}/profiles`);
    const firstProfile = page.getByTestId('profile').first();
    await firstProfile.waitFor();
    await firstProfile.click();
    await page.waitForURL(`${base}/`);
    await page.getByTestId('row').first().waitFor();

    // ---- open the first title of the first ordinary row, press Play ----------
    const row = page.locator('[data-testid="row"]:not([data-row-id="continue-watching"])').first();
    const firstCard = row.getByTestId('card').first();
    const titleId = await firstCard.getAttribute('data-title-id');
    assert.ok(titleId, 'first card has a data-title-id');
    await firstCard.click();
    await page.waitForURL(`${base}/title/${encodeURIComponent(titleId)}`);
    await page.getByTestId('play').click();
    await page.waitForURL(/\/watch\//);

    // ---- it plays --------------------------------------------------------------
    const t0 = await waitInPage(page, 'the video to start playing', () => {
      const p = window.__reelPlayer;
      const v = p && p.video;
      return v && !v.paused && v.readyState >= 3 && v.currentTime > 0.2 ? v.currentTime : false;
    }, undefined, 90_000);
    await sleep(12_500);
    const t1 = await page.evaluate(() => window.__reelPlayer.video.currentTime);
    assert.ok(t1 - t0 >= 8, `video advanced ${(t1 - t0).toFixed(2)}s in 12.5s of wall time (from ${t0} to ${t1})`);

    // ---- quality menu: ≥ 2 renditions, switching to one sticks ----------------
    // Controls fade out while playing; moving the mouse brings them back.
    await page.mouse.move(640, 400);
    await page.mouse.move(660, 420);
    await page.getByTestId('quality-button').click();
    const menu = page.getByTestId('quality-menu');
    await menu.waitFor({ state: 'visible' });
    const heights = (await menu.locator('[data-testid="quality-option"]').evaluateAll(
      (els) => els.map((e) => e.dataset.height),
    )).filter((hgt) => hgt && hgt !== 'auto').map(Number);
    assert.ok(heights.length >= 2, `quality menu lists ≥ 2 qualities, got ${JSON.stringify(heights)}`);

    // Pick a height other than what is playing now so the change is observable.
    const playingHeight = await page.evaluate(() => {
      const { hls } = window.__reelPlayer;
      return hls && hls.currentLevel >= 0 ? hls.levels[hls.currentLevel].height : 0;
    });
    const target = heights.find((hgt) => hgt !== playingHeight) ?? heights[heights.length - 1];
    await menu.locator(`[data-testid="quality-option"][data-height="${target}"]`).click();
    await waitInPage(page, `hls to switch to ${target}p`, (want) => {
      const { hls } = window.__reelPlayer;
      return hls && hls.currentLevel >= 0 && hls.levels[hls.currentLevel].height === want;
    }, target, 45_000);
    await waitInPage(page, `the quality label to show ${target}p`, (want) => {
      const el = document.querySelector('[data-testid="quality-label"]');
      return el && el.textContent.includes(`${want}p`) && el.dataset.height === String(want);
    }, target);
    // Let playback resume after the switch flushed the buffer.
    await waitInPage(page, 'playback to resume after the switch', () => {
      const v = window.__reelPlayer.video;
      return !v.paused && v.readyState >= 3;
    }, undefined, 45_000);
    await sleep(1_500);

    // ---- pause → heartbeat carries the paused position ------------------------
    const beats = [];
    page.on('response', (res) => {
      const req = res.request();
      if (req.method() === 'POST' && /\/api\/v1\/playback\/[^/]+\/heartbeat$/.test(new URL(res.url()).pathname)) {
        let body = null;
        try { body = req.postDataJSON(); } catch { /* ignore */ }
        beats.push({ status: res.status(), position: body && body.position_s });
      }
    });
    const pausedAt = await page.evaluate(() => {
      const v = window.__reelPlayer.video;
      v.pause();
      return v.currentTime;
    });
    const deadline = Date.now() + 15_000;
    while (!beats.some((b) => b.status === 200 && Math.abs(b.position - pausedAt) <= 1.5) && Date.now() < deadline) await sleep(200);
    assert.ok(beats.some((b) => b.status === 200 && Math.abs(b.position - pausedAt) <= 1.5),
      `a heartbeat near the paused position ${pausedAt.toFixed(1)}s got 200; saw ${JSON.stringify(beats)}`);

    // ---- reload, go home, find the title in Continue Watching ----------------
    await page.reload();
    await page.getByTestId('video').waitFor();
    await page.goto(`${base}/`);
    const cw = page.locator('[data-testid="row"][data-row-id="continue-watching"]');
    await cw.waitFor();
    const cwCard = cw.locator(`[data-testid="card"][data-title-id="${titleId}"]`);
    await cwCard.waitFor();
    const position = Number(await cwCard.getAttribute('data-position'));
    assert.ok(Math.abs(position - pausedAt) <= 6,
      `Continue Watching position ${position}s is within ±6s of ${pausedAt.toFixed(1)}s`);

    // ---- screenshots -----------------------------------------------------------
    if (SHOTS) {
      mkdirSync(SHOTS, { recursive: true });
      await page.evaluate(() => window.scrollTo(0, 0));
      await settleImages(page);
      await page.screenshot({ path: path.join(SHOTS, 'home-1280x800.png') });
      await page.setViewportSize({ width: 390, height: 844 });
      await settleImages(page);
      await page.screenshot({ path: path.join(SHOTS, 'home-390x844.png') });
      t.diagnostic(`screenshots in ${SHOTS}`);
    }

    assert.deepEqual(problems, [], 'no uncaught errors or console errors in the page');
  } catch (err) {
    if (SHOTS) {
      mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: path.join(SHOTS, 'failure.png') }).catch(() => {});
    }
    err.message += `\nurl: ${page.url()}\npage problems: ${JSON.stringify(problems)}${server.tail()}`;
    throw err;
  }
});

/** Wait until on-screen <img>s finished loading so screenshots aren't half-drawn
 *  (off-screen lazy images never load, so only look at the viewport). */
async function settleImages(page) {
  await page.waitForFunction(() => [...document.images].every((img) => {
    const r = img.getBoundingClientRect();
    const onScreen = r.bottom > 0 && r.right > 0 && r.top < innerHeight && r.left < innerWidth && r.width > 0;
    return !onScreen || img.complete;
  }), undefined, { timeout: 10_000 }).catch(() => {});
  await sleep(500);
}
