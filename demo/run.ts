/**
 * The demo mesh on its own, against a control plane that is already running:
 *   node --import tsx demo/run.ts --api http://127.0.0.1:8080 --token $TERN_TOKEN --xds 127.0.0.1:15010
 * Options: --namespace, --gateway-port (9080), --base-port (19000), --rps (2; 0 = no traffic).
 * Ctrl-C (SIGINT) or SIGTERM stops every sidecar and app. `npm start` runs it with its own control
 * plane instead (scripts/).
 */
import { parseArgs } from 'node:util';
import { ensureProxyBundle, startDemoMesh } from './mesh.ts';

const { values } = parseArgs({
  options: {
    api: { type: 'string' },
    token: { type: 'string' },
    xds: { type: 'string' },
    namespace: { type: 'string' },
    'gateway-port': { type: 'string' },
    'base-port': { type: 'string' },
    rps: { type: 'string' },
  },
});
const token = values.token ?? process.env.TERN_TOKEN;
if (!values.api || !token || !values.xds) {
  process.stderr.write('usage: demo/run.ts --api URL --token TOKEN (or TERN_TOKEN) --xds HOST:PORT [--namespace NS] [--gateway-port N] [--base-port N] [--rps N]\n');
  process.exit(2);
}
const num = (v: string | undefined, name: string) => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) {
    process.stderr.write(`--${name}: must be a number, got ${JSON.stringify(v)}\n`);
    process.exit(2);
  }
  return n;
};
const rps = num(values.rps, 'rps');
const bundle = await ensureProxyBundle((l) => console.log(l));
const mesh = await startDemoMesh({
  api: values.api,
  token,
  xdsAddress: values.xds,
  proxyBundle: bundle,
  log: (l) => console.log(l),
  ...(values.namespace ? { namespace: values.namespace } : {}),
  ...(values['gateway-port'] ? { gatewayPort: num(values['gateway-port'], 'gateway-port')! } : {}),
  ...(values['base-port'] ? { basePort: num(values['base-port'], 'base-port')! } : {}),
  ...(rps !== undefined ? { traffic: rps > 0 ? { rps } : false } : {}),
}).catch((err: Error) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
console.log(`open ${mesh.gatewayUrl}/productpage`);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    void mesh.stop().then(() => process.exit(0));
  });
}
