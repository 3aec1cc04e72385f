import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { LoadRun } from '../reports/crowd-input.js';
import { runRd } from '../reports/rd.js';
import { writeReport, type ReportInput } from '../reports/report.js';
import { loadSequence } from '../reports/sequence.js';
import { PALETTE } from '../reports/svg-plot.js';
import { createJpipServer } from '../server/server.js';
import { FIXTURES, fixtureBytes } from './helpers.js';

/**
 * The report renders in a real browser: headless Chromium (Debian package
 * `chromium`) loads the page without console messages (the page has no
 * script, so any message is a problem: a load its Content-Security-Policy
 * blocked, a parse error), its DOM holds the tables and the inline SVG
 * plots, and a screenshot shows them (enough non-white pixels, and the
 * colours of the first two curves). Skipped, with a note, when no Chromium
 * is installed; `$CHROMIUM` names another binary. Set
 * `JPIP_REPORT_SCREENSHOT=path.png` to keep the screenshot.
 */

function findChromium(): string | undefined {
  const env = process.env['CHROMIUM'];
  if (env) return env;
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    for (const name of ['chromium', 'chromium-browser']) {
      const p = join(dir, name);
      try {
        accessSync(p, constants.X_OK);
        return p;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

const chromium = findChromium();
const test = suite('report in headless Chromium');

let dir = '';
let page = '';

function runChromium(args: string[]): { stdout: string; stderr: string; status: number | null } {
  const profile = mkdtempSync(join(tmpdir(), 'chromium-profile-'));
  try {
    const r = spawnSync(
      chromium!,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--hide-scrollbars',
        `--user-data-dir=${profile}`,
        '--enable-logging=stderr',
        '--v=0',
        ...args,
      ],
      { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 * 1024 * 1024 },
    );
    return { stdout: r.stdout ?? '', stderr: r.stderr ?? '', status: r.status };
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

/** Console messages of the page (Chromium logs them as `...:CONSOLE...] "text", source: ...`). */
function consoleLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => /:CONSOLE/.test(l));
}

const hex = (c: string): [number, number, number] => [parseInt(c.slice(1, 3), 16), parseInt(c.slice(3, 5), 16), parseInt(c.slice(5, 7), 16)];

async function pixelStats(png: string): Promise<{ total: number; nonWhite: number; colour: number[] }> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const targets = PALETTE.slice(0, 2).map(hex);
  const colour = targets.map(() => 0);
  let nonWhite = 0;
  const n = info.width * info.height;
  for (let i = 0; i < n; i++) {
    const r = data[i * info.channels]!;
    const g = data[i * info.channels + 1]!;
    const b = data[i * info.channels + 2]!;
    if (r < 235 || g < 235 || b < 235) nonWhite++;
    targets.forEach(([tr, tg, tb], k) => {
      if (Math.abs(r - tr) + Math.abs(g - tg) + Math.abs(b - tb) < 60) colour[k]!++;
    });
  }
  return { total: n, nonWhite, colour };
}

test.before(async () => {
  if (!chromium) return;
  dir = mkdtempSync(join(tmpdir(), 'report-chromium-'));
  const srv = createJpipServer({ root: FIXTURES, port: 0 });
  const url = await srv.listen();
  let input: ReportInput;
  try {
    const file = 'g256-irrev-8l-cb32.j2k';
    const rd = await runRd({
      servers: [
        { name: 'ours', url, dialect: 'ours' },
        { name: 'generic', url, dialect: 'jpip' },
      ],
      target: file,
      original: { bytes: fixtureBytes(file), file },
      sequence: loadSequence('paper'),
      sequenceSource: 'paper',
      step: 256,
    });
    // Two load runs as the report holds them (reading crowd files is tested in report.test.ts).
    const crowd: LoadRun[] = ['ours', 'esajpip'].map((server, k) => ({
      source: `crowd-${server}.json`,
      kind: 'crowd',
      server,
      clients: 100,
      durationSeconds: 10,
      responses: 4000 - 1000 * k,
      responsesPerSecond: 400 - 100 * k,
      errors: 0,
      latency: { p50: 10 + k, p90: 20 + k, p99: 40 + k, p999: 60 + k, max: 90 + k, mean: 12 + k },
      process: Array.from({ length: 10 }, (_, i) => ({ t: i + 1, rssBytes: (60 + 20 * k + (i % 3)) * 2 ** 20, cpuPercent: 50 + 10 * k + (i % 4) * 5 })),
      serverIncludesSimulator: false,
      simulatorCpuPercent: 30,
      timeline: Array.from({ length: 10 }, (_, i) => ({ t: i + 1, responses: 400 - 100 * k + i * 7 })),
    }));
    input = { crowd, rd: [{ source: 'rd.json', result: rd }] };
  } finally {
    await srv.close();
  }
  page = (await writeReport(input, dir)).html;
});

test.after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the page loads without a console message, and its DOM holds the tables and plots', () => {
  if (!chromium) {
    console.log('  (skipped: no chromium on PATH; `apt-get install -y chromium` to run it)');
    return;
  }
  const r = runChromium(['--dump-dom', pathToFileURL(page).href]);
  assert.is(r.status, 0, r.stderr.slice(-2000));
  assert.equal(consoleLines(r.stderr), []);
  const dom = r.stdout;
  assert.match(dom, /Server load under the flash crowd \(Table I\)/);
  assert.is((dom.match(/<svg /g) ?? []).length, 4, 'throughput, memory, CPU, rate-distortion');
  assert.match(dom, /<th scope="row">esajpip<\/th>/);
});

test('a screenshot shows the plots', async () => {
  if (!chromium) {
    console.log('  (skipped: no chromium on PATH)');
    return;
  }
  const shot = process.env['JPIP_REPORT_SCREENSHOT'] ?? join(dir, 'screenshot.png');
  const r = runChromium(['--window-size=1280,3200', `--screenshot=${shot}`, pathToFileURL(page).href]);
  assert.is(r.status, 0, r.stderr.slice(-2000));
  assert.ok(existsSync(shot), 'screenshot written');
  const s = await pixelStats(shot);
  assert.ok(s.nonWhite / s.total > 0.02, `non-white ${((100 * s.nonWhite) / s.total).toFixed(1)}%`);
  // Both curve colours appear in quantity: the plots are drawn, not just the tables.
  for (const [k, n] of s.colour.entries()) assert.ok(n > 2000, `colour ${PALETTE[k]}: ${n} pixels`);
  if (process.env['JPIP_REPORT_SCREENSHOT']) console.log(`  screenshot ${shot}: ${s.nonWhite} of ${s.total} pixels non-white, curve colours ${s.colour.join(', ')} pixels`);
});

test('the console check catches a page that breaks the rules (so the test above can fail)', () => {
  if (!chromium) {
    console.log('  (skipped: no chromium on PATH)');
    return;
  }
  const bad = join(dir, 'bad.html');
  writeFileSync(bad, `<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src 'none'"></head><body><img src="http://127.0.0.1:9/x.png"></body></html>`);
  const r = runChromium(['--dump-dom', pathToFileURL(bad).href]);
  assert.ok(consoleLines(r.stderr).length > 0, 'a blocked load is reported');
});

test.run();
