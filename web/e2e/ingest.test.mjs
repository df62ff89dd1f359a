// End-to-end: a mezzanine ingested with `reel media ingest` (per-title
// ladder chosen by VMAF, CMAF packaged for HLS and DASH) shows its ladder
// and hull chart on the title page to an operator, and plays in Chromium
// through the web UI over HLS.
//
// Run from the repo root:   node --test web/e2e/
// Needs what play.test.mjs needs, plus ../shared/data/video (the VMAF
// resource clips) beside the repository.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN, CHROMIUM, REPO, ReelServer, launchChromium, operatorAccount, signedInPage, waitInPage } from './harness.mjs';

const SOURCE = path.join(REPO, '..', 'shared', 'data', 'video', 'Seeking_30_480_1050.mp4');
const server = new ReelServer('reel-e2e-ingest-');
let browser = null;

after(async () => {
  await browser?.close().catch(() => {});
  await server.stop();
});

function run(args) {
  return new Promise((resolve, reject) => {
    const out = [];
    const p = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout.on('data', (c) => out.push(c));
    p.stderr.on('data', (c) => out.push(c));
    p.on('exit', (code) => (code === 0 ? resolve(Buffer.concat(out).toString())
      : reject(new Error(`reel ${args.join(' ')} exited ${code}: ${Buffer.concat(out).toString().slice(-2000)}`))));
  });
}

test('an ingested title shows its ladder to an operator and plays over HLS', { timeout: 900_000 }, async () => {
  assert.ok(existsSync(BIN), `reel binary not found at ${BIN}: build it with "cargo build --release" or set REEL_BIN`);
  assert.ok(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
  assert.ok(existsSync(SOURCE), `mezzanine not found at ${SOURCE}`);
  const base = await server.start();

  // Ingest while the service runs: a small candidate grid keeps it quick.
  const report = JSON.parse(await run(['media', 'ingest', SOURCE, '--title', 'seeking', '--name', 'Seeking',
    '--crfs', '24,32,40', '--heights', '240,480', '--data-dir', server.dataDir, '--json']));
  assert.ok(report.ladder.length >= 2, `a ladder of at least two rungs: ${JSON.stringify(report.ladder)}`);

  // An operator account: sign up over the API, promote with the CLI.
  const signup = await operatorAccount(server, 'ingest');
  browser = await launchChromium();
  const problems = [];
  const page = await signedInPage(browser, base, signup, problems);

  try {
    // ---- the title page shows the ladder and the hull chart ------------------
    await page.goto(`${base}/title/seeking`);
    await page.getByTestId('ladder').waitFor();
    const rows = await page.getByTestId('ladder-rung').allTextContents();
    assert.equal(rows.length, report.ladder.length, `one table row per rung: ${JSON.stringify(rows)}`);
    for (const rung of report.ladder) {
      assert.ok(rows.some((r) => r.includes(rung.name) && r.includes(`${rung.width}×${rung.height}`) && r.includes(rung.vmaf.toFixed(2))),
        `rung ${rung.name} (${rung.width}x${rung.height}, VMAF ${rung.vmaf.toFixed(2)}) in the table: ${JSON.stringify(rows)}`);
    }
    assert.equal(await page.getByTestId('hull-rung').count(), report.ladder.length);
    assert.ok(await page.locator('[data-testid="hull-chart"] circle.cand').count() >= 6, 'every candidate is drawn');
    if (process.env.REEL_E2E_SHOTS) {
      await page.getByTestId('ladder').screenshot({ path: path.join(process.env.REEL_E2E_SHOTS, 'ladder.png') });
    }

    // ---- it plays over HLS through the web UI --------------------------------
    await page.getByTestId('play').click();
    await page.waitForURL(/\/watch\//);
    const t0 = await waitInPage(page, 'the ingested video to start playing', () => {
      const p = window.__reelPlayer;
      const v = p && p.video;
      return v && !v.paused && v.readyState >= 3 && v.currentTime > 0.2 ? v.currentTime : false;
    }, undefined, 90_000);
    await sleep(3_000);
    const played = await page.evaluate(() => {
      const v = window.__reelPlayer.video;
      return { t: v.currentTime, w: v.videoWidth, h: v.videoHeight, ended: v.ended };
    });
    assert.ok(played.ended || played.t - t0 >= 1.5, `video advanced from ${t0} to ${played.t}`);
    const sizes = report.ladder.map((r) => `${r.width}x${r.height}`);
    assert.ok(sizes.includes(`${played.w}x${played.h}`), `playing one of the ladder's renditions (${played.w}x${played.h} in ${sizes})`);

    // ---- a per-shot rung (its chunks at different CRFs, joined) plays too ----
    const mixed = report.ladder.filter((r) => (r.shot_crfs || []).some((c) => c !== r.shot_crfs[0]));
    assert.ok(mixed.length > 0, `this grid gives Seeking per-shot rungs: ${JSON.stringify(report.ladder)}`);
    for (const rung of mixed) {
      assert.ok(rows.some((r) => r.includes(rung.name) && r.includes('per shot')), `${rung.name} shows its per-shot CRFs: ${JSON.stringify(rows)}`);
    }
    const rung = mixed[mixed.length - 1];
    const switched = await page.evaluate((name) => {
      const { hls, video } = window.__reelPlayer;
      const idx = hls.levels.findIndex((l) => l.uri.includes(`/${name}/`) || l.uri.startsWith(`${name}/`));
      if (idx < 0) return { idx, uris: hls.levels.map((l) => l.uri) };
      hls.currentLevel = idx; // switch now, dropping what is buffered
      video.currentTime = 0;
      video.play();
      return { idx, frames: video.getVideoPlaybackQuality().totalVideoFrames };
    }, rung.name);
    assert.ok(switched.idx >= 0, `the master playlist offers ${rung.name}: ${JSON.stringify(switched.uris)}`);
    await waitInPage(page, `the per-shot rung ${rung.name} to play past its first chunk`, ({ idx, frames }) => {
      const { hls, video } = window.__reelPlayer;
      const q = video.getVideoPlaybackQuality();
      return hls.currentLevel === idx && !video.error && video.currentTime > 2.5 && q.totalVideoFrames > frames + 50
        && video.videoWidth === hls.levels[idx].width;
    }, switched, 60_000);
    assert.deepEqual(problems, [], `no page errors after the switch: ${problems.join('; ')}`);
    assert.deepEqual(problems, [], `no page errors: ${problems.join('; ')}`);
  } catch (err) {
    err.message += server.tail();
    throw err;
  }
});
