/**
 * The demo mesh in docker-compose (deploy/docker/demo.Dockerfile), against the control plane in
 * another container: signs in as admin with TERN_ADMIN_PASSWORD (the compose file gives the same
 * value to the control plane), retrying while that starts, then runs the demo. Apps and sidecars
 * share this container's loopback, as in a local run; the gateway listens on 127.0.0.1 only, so
 * 0.0.0.0:TERN_DEMO_PUBLISH_PORT forwards to it for the port the compose file publishes.
 * Settings: TERN_API_URL, TERN_XDS_ADDRESS, TERN_ADMIN_PASSWORD, TERN_DEMO_GATEWAY_PORT (9080),
 * TERN_DEMO_PUBLISH_PORT (9081), TERN_DEMO_BASE_PORT (19000), TERN_DEMO_RPS (2; 0 = no traffic).
 */
import net from 'node:net';
import { DEFAULT_PROXY_BUNDLE, startDemoMesh } from './mesh.ts';

const env = (name: string, fallback?: string): string => {
  const v = process.env[name] || fallback;
  if (!v) {
    process.stderr.write(`demo: ${name} must be set\n`);
    process.exit(2);
  }
  return v;
};
const api = env('TERN_API_URL');
const password = env('TERN_ADMIN_PASSWORD');
const gatewayPort = Number(env('TERN_DEMO_GATEWAY_PORT', '9080'));
const publishPort = Number(env('TERN_DEMO_PUBLISH_PORT', '9081'));
const basePort = Number(env('TERN_DEMO_BASE_PORT', '19000'));
const rps = Number(env('TERN_DEMO_RPS', '2'));

async function signIn(): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    const r = await fetch(`${api}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password }) }).catch(() => undefined);
    if (r?.ok) return ((await r.json()) as { sessionToken: string }).sessionToken;
    // A wrong password will not get better; a control plane still starting will.
    if (r?.status === 401) throw new Error(`cannot sign in to ${api} as admin: TERN_ADMIN_PASSWORD is not its password`);
    if (attempt === 120) throw new Error(`${api} did not answer a sign-in within 2 minutes (last: ${r?.status ?? 'no answer'})`);
    await new Promise((res) => setTimeout(res, 1000));
  }
}


const mesh = await startDemoMesh({
  api,
  token: await signIn().catch((err: Error) => {
    process.stderr.write(`demo: ${err.message}\n`);
    return process.exit(1);
  }),
  xdsAddress: env('TERN_XDS_ADDRESS'),
  gatewayPort,
  basePort,
  // Built into the image (deploy/docker/demo.Dockerfile), which the unprivileged user may not rebuild.
  proxyBundle: DEFAULT_PROXY_BUNDLE,
  traffic: rps > 0 ? { rps } : false,
  log: (l) => console.log(l),
}).catch((err: Error) => {
  process.stderr.write(`demo: ${err.message}\n`);
  process.exit(1);
});

const forwarder = net.createServer((c) => {
  const u = net.connect(gatewayPort, '127.0.0.1');
  c.pipe(u).pipe(c);
  c.on('error', () => u.destroy());
  u.on('error', () => c.destroy());
});
forwarder.listen(publishPort, '0.0.0.0', () => console.log(`Bookinfo: port ${publishPort} of this container -> the gateway on 127.0.0.1:${gatewayPort}`));

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    forwarder.close();
    void mesh.stop().then(() => process.exit(0));
  });
}
