import { openBackend } from './lib/backend.ts';
import { growMesh } from './lib/mesh.ts';
import { ternWrite, baselineWrite } from './lib/writes.ts';
import { now, summarize, ms } from './lib/stats.ts';
const kind = (process.argv[2] ?? 'pglite') as 'pglite' | 'postgres';
const b = await openBackend(kind, 'postgres://tern_ci:tern_ci@127.0.0.1:5432/postgres');
let n = 0;
for (const size of [10, 100, 1000, 3000]) {
  const t0 = now();
  await growMesh(b.app, n, size);
  n = size;
  const seed = now() - t0;
  const t: number[] = [], bl: number[] = [];
  for (let k = 0; k < 15; k++) {
    let s = now(); await ternWrite(b.app, 0, 10 + (k % 80)); t.push(now() - s);
    s = now(); await baselineWrite(b.app, 1, 10 + (k % 80)); bl.push(now() - s);
  }
  const a = summarize(t), c = summarize(bl);
  console.log(size, 'seed', ms(seed), 'tern', ms(a.p50), ms(a.p95), 'base', ms(c.p50), ms(c.p95));
}
await b.close();
