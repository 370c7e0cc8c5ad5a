// Benchmark (not a test): the graph page with ~2,000 nodes and 4,000 edges of synthetic telemetry.
// Prints the time from navigation to the first nodes drawn and the frame rate while panning.
// npm run bench:console   (needs the console build and /usr/bin/chromium)
import { startApi, startConsole, launchBrowser, ensureBuilt, ADMIN_PASSWORD } from '../e2e/lib/console-harness.ts';
import { writeRows } from '../apps/api/src/telemetry/store.ts';
import { BUCKETS, type RollupRow } from '../apps/api/src/telemetry/rows.ts';

const N = 2000, M = 4000;
ensureBuilt();
const api = await startApi();
const bucket = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 60_000);
let seed = 3; const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
const rows: RollupRow[] = [];
const seen = new Set<string>();
while (rows.length < M) {
  const a = Math.floor(rnd() * (N - 1)); const b = a + 1 + Math.floor(rnd() * Math.min(50, N - a - 1));
  if (seen.has(`${a}>${b}`)) continue; seen.add(`${a}>${b}`);
  const d = new Array<number>(BUCKETS).fill(0); d[4] = 10;
  rows.push({ bucket, srcWorkload: `w${a}-v1`, srcNamespace: 'default', srcPrincipal: 'unknown', srcApp: `w${a}`, srcVersion: 'v1', dstService: `w${b}.default.svc.cluster.local`, dstWorkload: `w${b}-v1`, dstNamespace: 'default', dstApp: `w${b}`, dstVersion: 'v1', codeClass: '2xx', protocol: 'http', mtls: true, requests: 10, errors: 0, bytesIn: 1, bytesOut: 1, durationSumMs: 100, d });
}
let t = Date.now();
await writeRows(api.app.db.prisma, 'TelemetryMinute', rows);
console.log('seed ms', Date.now() - t);
t = Date.now();
const g = await api.rest('GET', '/api/v1/graph?window=5m');
console.log('graph API ms', Date.now() - t, 'nodes', g.body.nodes?.length, 'edges', g.body.edges?.length);
const web = await startConsole(api.url);
const b = await launchBrowser();
const page = b.context.pages()[0] ?? (await b.context.newPage());
page.setDefaultTimeout(120_000);
await page.goto(`${web.url}/login`);
await page.getByLabel('Username').fill('admin');
await page.getByLabel('Password').fill(ADMIN_PASSWORD);
await page.getByLabel('Password').press('Enter');
await page.getByTestId('role').waitFor();
t = Date.now();
await page.goto(`${web.url}/graph?window=5m`);
await page.locator('.react-flow__node').first().waitFor({ state: 'attached' });
await page.screenshot({ path: 'test-artifacts/console/graph-2000.png' }).catch(() => undefined);
console.log('navigation -> nodes drawn ms', Date.now() - t, 'rendered nodes', await page.locator('.react-flow__node').count());
// Pan: drag across the canvas for ~2 s while counting animation frames.
const box = (await page.getByTestId('graph').boundingBox())!;
await page.evaluate(`window.__frames = 0; (function f(){ window.__frames++; requestAnimationFrame(f); })()`);
const f0 = (await page.evaluate('window.__frames')) as number;
const t0 = Date.now();
await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
await page.mouse.down();
for (let i = 0; i < 60; i++) await page.mouse.move(box.x + box.width / 2 + (i % 20) * 10, box.y + box.height / 2 + (i % 10) * 5, { steps: 2 });
await page.mouse.up();
const f1 = (await page.evaluate('window.__frames')) as number;
console.log('pan fps', ((f1 - f0) / ((Date.now() - t0) / 1000)).toFixed(1));
await b.close(); await web.close(); await api.close();
