// Simulated sidecars for `npm run bench:xds`: N state-of-the-world ADS streams that behave like
// Envoy (CDS and LDS wildcard, then EDS and RDS by name, ACK everything), in their own process so
// the control plane's CPU and memory are its own. Every stream ACK is reported on stdout as one
// JSON line {t, p, type, v} (t = epoch ms, p = proxy index); the parent computes convergence.
//
//   node --import tsx bench/xds/sim.ts ADDRESS COUNT NAMESPACES SERVICES CHANNELS
// Proxy i is in namespace team-(i % NAMESPACES), fronting workload svc-<i % SERVICES>-v1 (in that
// namespace, as bench/lib/mesh.ts places services),
// and may also reach the namespace `shared` (EGRESS_HOSTS), so a change there touches everyone.
import * as grpc from '@grpc/grpc-js';
import { createAdsClient, plainToStruct, TYPE_URL, unpackAny, type AdsClient, type DiscoveryResponse } from '@tern/xds';

const [address, countArg, nsArg, servicesArg, channelsArg] = process.argv.slice(2);
const services = Number(servicesArg);
const count = Number(countArg);
const namespaces = Number(nsArg);
const channels = Number(channelsArg ?? 50);
const clients: AdsClient[] = Array.from({ length: channels }, () =>
  createAdsClient(address!, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': 64 * 1024 * 1024 }),
);

/** Field 1 of a message (`name` of Cluster, Listener, RouteConfiguration; `cluster_name` of a CLA). */
function firstStringField(buf: Buffer): string {
  if (buf[0] !== 0x0a) return '';
  let len = 0;
  let shift = 0;
  let i = 1;
  for (;;) {
    const b = buf[i++]!;
    len |= (b & 0x7f) << shift;
    if (b < 0x80) break;
    shift += 7;
  }
  return buf.toString('utf8', i, i + len);
}

const out: string[] = [];
let flushScheduled = false;
function report(p: number, type: string, v: string) {
  out.push(JSON.stringify({ t: performance.timeOrigin + performance.now(), p, type, v }));
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(() => {
      flushScheduled = false;
      process.stdout.write(out.join('\n') + '\n');
      out.length = 0;
    });
  }
}

const short: Record<string, string> = { [TYPE_URL.cluster]: 'cds', [TYPE_URL.listener]: 'lds', [TYPE_URL.route]: 'rds', [TYPE_URL.endpoint]: 'eds' };
let connected = 0;

function startProxy(p: number) {
  const ns = `team-${p % namespaces}`;
  const serviceIndex = p % services;
  const stream = clients[p % channels]!.StreamAggregatedResources();
  const node = {
    id: `sim-${p}`,
    cluster: 'bench',
    locality: {},
    user_agent_name: 'tern-bench-sim',
    metadata: plainToStruct({
      NAMESPACE: ns,
      WORKLOAD_NAME: `svc-${String(serviceIndex).padStart(5, '0')}-v1`,
      EGRESS_HOSTS: ['./*', 'shared/*'],
    }),
  };
  const wanted: Record<string, string[]> = { [TYPE_URL.cluster]: [], [TYPE_URL.listener]: [], [TYPE_URL.endpoint]: [], [TYPE_URL.route]: [] };
  const acked: Record<string, string> = {};
  let first = true;
  const send = (typeUrl: string, nonce = '') => {
    stream.write({ type_url: typeUrl, resource_names: wanted[typeUrl], version_info: acked[typeUrl] ?? '', response_nonce: nonce, ...(first ? { node } : {}) });
    first = false;
  };
  stream.on('data', (res: DiscoveryResponse) => {
    acked[res.type_url] = res.version_info;
    if (res.type_url === TYPE_URL.cluster) {
      const names = res.resources.map((r) => firstStringField(r.value)).sort();
      const changed = names.join() !== wanted[TYPE_URL.endpoint]!.join();
      send(res.type_url, res.nonce);
      if (changed) {
        wanted[TYPE_URL.endpoint] = names;
        send(TYPE_URL.endpoint);
      }
    } else if (res.type_url === TYPE_URL.listener) {
      const routes = new Set<string>();
      for (const r of res.resources) {
        const l = unpackAny(r) as { filter_chains?: { filters?: { typed_config?: { rds?: { route_config_name?: string } } }[] }[] };
        for (const fc of l.filter_chains ?? []) for (const f of fc.filters ?? []) if (f.typed_config?.rds?.route_config_name) routes.add(f.typed_config.rds.route_config_name);
      }
      const names = [...routes].sort();
      const changed = names.join() !== wanted[TYPE_URL.route]!.join();
      send(res.type_url, res.nonce);
      if (changed) {
        wanted[TYPE_URL.route] = names;
        send(TYPE_URL.route);
      }
    } else {
      send(res.type_url, res.nonce);
    }
    report(p, short[res.type_url] ?? res.type_url, res.version_info);
  });
  stream.on('error', (err) => {
    process.stderr.write(`sim-${p}: ${err.message}\n`);
  });
  send(TYPE_URL.cluster);
  send(TYPE_URL.listener);
  connected++;
}

// Connect gradually: a thundering herd of 5,000 streams at once measures the herd, not steady state.
for (let p = 0; p < count; p++) {
  startProxy(p);
  if (p % 100 === 99) await new Promise((r) => setTimeout(r, 20));
}
process.stderr.write(`sim: ${connected} streams open\n`);
process.on('SIGTERM', () => process.exit(0));
