// `npm run bench:proxy`: the sidecar on the request path, against a direct connection and nginx,
// in the same run. The upstream app and the proxy share CPU 0; the load generator runs on CPU 1
// (taskset), so CPU per request is the honest cost a sidecar adds to a pod. See docs/benchmarks.md.
// `pair` and `pair-mtls` put two sidecars on the path (client sidecar -> server sidecar -> app,
// plaintext or mutual TLS between them; bench/lib/sidecar-pair.ts), and a fixed-rate section
// measures every target at BENCH_RATE req/s, open loop (bench/proxy/rate-load.mjs).
//
// Needs wrk, nginx and h2load (Debian: apt-get install -y wrk nginx-light nghttp2-client).
// Environment (optional):
//   BENCH_SECONDS       duration of each timed run (default 10; plus 2 s warm-up for wrk rows, BENCH_RATE_WARMUP for fixed-rate rows)
//   BENCH_CONNECTIONS   HTTP/1.1 connection counts (default 50,4)
//   BENCH_TARGETS       direct,nginx,tern,pair,pair-mtls (default all); pair targets: HTTP/1.1 only
//   BENCH_PROTOCOLS     h1,h2c,grpc (default all)
//   BENCH_RATE          requests/s of the fixed-rate HTTP/1.1 section (default 1000; 0 = skip it);
//                       it runs when h1 is among the protocols
//   BENCH_RATE_CONNECTIONS  keep-alive connections of the fixed-rate generator (default 16)
//   BENCH_RATE_WARMUP   seconds at the rate before the fixed-rate measurement (default 10)
//   TERN_PROXY_CMD      command that starts the Tern proxy with a bootstrap file appended
//                       (default: the bundled proxy, built with esbuild at the start of the run)
//   BENCH_JSON          also write the results as JSON to this file ({closedLoop, fixedRate})
import { execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSeconds, freePort, onCpu0, rssMb, runOnCpu1, stop, waitForPort } from './lib/proc.ts';
import { clientTlsStats, createPairPki, HOST, serverConnections, serverRequestsBySecurity, startPair, stopPair, verifyPair, type PairPki, type RunningPair, type TlsStats } from './lib/sidecar-pair.ts';
import { table } from './lib/stats.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const connections = (process.env.BENCH_CONNECTIONS ?? '50,4').split(',').map(Number);
const targets = (process.env.BENCH_TARGETS ?? 'direct,nginx,tern,pair,pair-mtls').split(',');
const protocols = (process.env.BENCH_PROTOCOLS ?? 'h1,h2c,grpc').split(',');
const rate = Number(process.env.BENCH_RATE ?? 1000);
const rateConnections = Number(process.env.BENCH_RATE_CONNECTIONS ?? 16);
// Fresh sidecars keep compiling (JIT) for several seconds at this rate: a 2 s warm-up put the
// pair's p99 at 3-4 ms, 10 s at 1 ms (docs/benchmarks.md). Steady state is what is measured.
const rateWarmup = Number(process.env.BENCH_RATE_WARMUP ?? 10);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-bench-proxy-'));
const isPair = (t: string) => t === 'pair' || t === 'pair-mtls';

for (const t of targets) {
  if (!['direct', 'nginx', 'tern', 'pair', 'pair-mtls'].includes(t)) {
    console.error(`BENCH_TARGETS: unknown target "${t}" (direct, nginx, tern, pair, pair-mtls)`);
    process.exit(2);
  }
}
const tools = ['wrk', 'taskset', ...(targets.includes('nginx') ? ['nginx'] : []), ...(protocols.includes('h2c') ? ['h2load'] : [])];
for (const tool of tools) {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`]);
  } catch {
    console.error(`bench:proxy needs ${tool}: apt-get install -y wrk nginx-light nghttp2-client util-linux`);
    process.exit(2);
  }
}

function parseWrkMs(v: string, unit: string): number {
  const n = Number(v);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : n;
}

interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

async function wrk(port: number, conns: number, secs: number, host?: string): Promise<LoadResult> {
  const out = await runOnCpu1('wrk', ['-t1', `-c${conns}`, `-d${secs}s`, '--latency', ...(host ? ['-H', `Host: ${host}`] : []), `http://127.0.0.1:${port}/`]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const lat = (p: string) => {
    const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    return m ? parseWrkMs(m[1]!, m[2]!) : NaN;
  };
  const errs = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return { rps, p50: lat('50'), p99: lat('99'), errors: Number(errs?.[1] ?? 0) + (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0) };
}

async function h2load(port: number, conns: number, secs: number): Promise<LoadResult> {
  const out = await runOnCpu1('h2load', ['-c', String(conns), '-m', '10', '-D', String(secs), '--warm-up-time=1', `http://127.0.0.1:${port}/`]);
  const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out)?.[1]);
  // h2load prints min/max/mean/sd for request time; no percentiles: report the mean as p50, p99 n/a.
  const m = /time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)/.exec(out);
  const failed = Number(/(\d+) failed/.exec(out)?.[1] ?? 0);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  const non2xx = codes ? Number(codes[2]) + Number(codes[3]) + Number(codes[4]) : 0;
  return { rps, p50: m ? parseWrkMs(m[5]!, m[6]!) : NaN, p99: NaN, errors: failed + non2xx };
}

async function grpcLoad(port: number, conns: number, secs: number): Promise<LoadResult> {
  const out = await runOnCpu1(process.execPath, [path.join(here, 'proxy/grpc-load.mjs'), `127.0.0.1:${port}`, String(conns), String(secs + 1)]);
  const r = JSON.parse(out.trim().split('\n').pop()!) as { rps: number; p50: number; p99: number; failures: number };
  return { rps: r.rps, p50: r.p50, p99: r.p99, errors: r.failures };
}

function nginxConf(port: number, upstreamPort: number, protocol: string): string {
  const dir = fs.mkdtempSync(path.join(work, 'nginx-'));
  const location =
    protocol === 'grpc'
      ? `grpc_pass grpc://u;`
      : `proxy_pass http://u; proxy_http_version 1.1; proxy_set_header Connection "";`;
  const conf = `worker_processes 1;
daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  upstream u { server 127.0.0.1:${upstreamPort}; keepalive 128; }
  server {
    listen 127.0.0.1:${port}${protocol === 'h1' ? '' : ' http2'};
    keepalive_requests 1000000;
    location / { ${location} }
  }
}
`;
  const file = path.join(dir, 'nginx.conf');
  fs.writeFileSync(file, conf);
  return file;
}

function ternBootstrap(port: number, adminPort: number, upstreamPort: number, protocol: string): string {
  const http2 = protocol !== 'h1';
  const bootstrap = {
    node: { id: 'bench', cluster: 'bench', locality: {} },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: adminPort } } },
    static_resources: {
      listeners: [
        {
          name: 'bench',
          address: { socket_address: { address: '127.0.0.1', port_value: port } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    stat_prefix: 'bench',
                    codec_type: 'AUTO',
                    route_config: { name: 'bench', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'upstream', timeout: '0s' } }] }] },
                    http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters: [
        {
          name: 'upstream',
          type: 'STATIC',
          connect_timeout: '1s',
          load_assignment: { cluster_name: 'upstream', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: upstreamPort } } } }] }] },
          ...(http2
            ? {
                typed_extension_protocol_options: {
                  'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
                    '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
                    explicit_http_config: { http2_protocol_options: {} },
                  },
                },
              }
            : {}),
        },
      ],
    },
  };
  const file = path.join(work, `tern-${protocol}-${port}.json`);
  fs.writeFileSync(file, JSON.stringify(bootstrap, null, 2));
  return file;
}

/** The proxy as it ships: one bundled file run by plain node (no TypeScript loader in memory). */
function ternCommand(): string[] {
  if (process.env.TERN_PROXY_CMD) return process.env.TERN_PROXY_CMD.split(' ');
  execFileSync(process.execPath, [path.join(root, 'apps/proxy/scripts/bundle.mjs')], { stdio: 'inherit' });
  // A sidecar's young generation need not grow to V8's default 16 MiB semi-spaces (~20 MB of RSS
  // per pod); docs/proxy.md recommends this flag for production launches too.
  return [process.execPath, '--max-semi-space-size=4', path.join(root, 'apps/proxy/dist/tern-proxy.mjs'), '--bootstrap'];
}

interface Row {
  protocol: string;
  target: string;
  connections: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** Both sidecars together for the pair targets. */
  cpuPerReqUs: number;
  upstreamCpuPerReqUs: number;
  costRatio: number;
  rssMb: number;
  /** Pair targets: [client sidecar, server sidecar]. */
  rssParts?: number[];
  /** pair-mtls: the client cluster's ssl.* counters over the timed run. */
  tls?: TlsStats;
}

/** One target set up in front of the upstream: where to send load and which processes are the proxies. */
interface Started {
  port: number;
  /** The proxies on the path ([] for direct; client then server sidecar for the pairs). */
  procs: ChildProcess[];
  pair?: RunningPair;
  /** Host header for the load (the pair routes by it, as a sidecar does). */
  host?: string;
}

let pki: PairPki | undefined;

async function startTarget(target: string, protocol: string, upstreamPort: number): Promise<Started> {
  if (target === 'direct') return { port: upstreamPort, procs: [] };
  if (target === 'nginx') {
    const port = await freePort();
    const proxy = onCpu0('nginx', ['-c', nginxConf(port, upstreamPort, protocol)]);
    await waitForPort(port, proxy, 'nginx');
    return { port, procs: [proxy] };
  }
  if (target === 'tern') {
    const port = await freePort();
    const bootstrap = ternBootstrap(port, await freePort(), upstreamPort, protocol);
    const proxy = onCpu0(ternCmd[0]!, [...ternCmd.slice(1), bootstrap], { env: { TERN_LOG_LEVEL: 'warn' } });
    await waitForPort(port, proxy, 'tern proxy');
    return { port, procs: [proxy] };
  }
  const mtls = target === 'pair-mtls';
  if (mtls) pki ??= await createPairPki();
  const pair = await startPair({ work, ternCmd, appPort: upstreamPort, mtls, ...(pki ? { pki } : {}) });
  try {
    // Before any figure: an "mTLS" row that is really plaintext (or a pair that does not forward) would be a lie.
    const check = await verifyPair(pair);
    console.error(`${target}: checked — client TLS ${JSON.stringify(check.clientTls)}, server requests by security ${JSON.stringify(Object.fromEntries(check.serverBySecurity))}, principals seen: source ${check.sourcePrincipals.join()} destination ${check.destinationPrincipals.join()}`);
  } catch (err) {
    await stopPair(pair);
    throw err;
  }
  return { port: pair.port, procs: [pair.client, pair.server], pair, host: HOST };
}

async function stopTarget(s: Started): Promise<void> {
  if (s.pair) await stopPair(s.pair);
  else for (const p of s.procs) await stop(p);
}

const minus = (a: TlsStats, b: TlsStats): TlsStats => ({
  handshake: a.handshake - b.handshake,
  session_reused: a.session_reused - b.session_reused,
  connection_error: a.connection_error - b.connection_error,
  fail_verify_error: a.fail_verify_error - b.fail_verify_error,
  fail_verify_san: a.fail_verify_san - b.fail_verify_san,
});

const results: Row[] = [];
const ternCmd = targets.some((t) => t === 'tern' || isPair(t)) ? ternCommand() : [];

for (const protocol of protocols) {
  const upstreamPort = await freePort();
  const upstream = onCpu0(process.execPath, [path.join(here, 'proxy/upstream.mjs'), String(upstreamPort), protocol]);
  await waitForPort(upstreamPort, upstream, 'upstream');
  try {
    for (const target of targets) {
      // nginx speaks HTTP/2 to upstreams only for gRPC (grpc_pass): no like-for-like h2c row.
      if (target === 'nginx' && protocol === 'h2c') continue;
      // The pair is an HTTP/1.1 service between two sidecars (as the compiler emits it without h2 upgrade).
      if (isPair(target) && protocol !== 'h1') continue;
      const started = await startTarget(target, protocol, upstreamPort);
      const { port, procs } = started;
      const conns = protocol === 'h1' ? connections : [protocol === 'grpc' ? 50 : 4];
      for (const c of conns) {
        const load = protocol === 'h1' ? (p: number, n: number, secs: number) => wrk(p, n, secs, started.host) : protocol === 'h2c' ? h2load : grpcLoad;
        await load(port, c, 2); // warm-up: JIT, pools
        const tls0 = started.pair?.mtls ? await clientTlsStats(started.pair) : undefined;
        const up0 = cpuSeconds(upstream.pid!);
        const px0 = procs.reduce((a, p) => a + cpuSeconds(p.pid!), 0);
        const r = await load(port, c, seconds);
        const upCpu = cpuSeconds(upstream.pid!) - up0;
        const pxCpu = procs.reduce((a, p) => a + cpuSeconds(p.pid!), 0) - px0;
        const tls = tls0 ? minus(await clientTlsStats(started.pair!), tls0) : undefined;
        const requests = r.rps * seconds;
        const upPer = (upCpu / requests) * 1e6;
        const pxPer = (pxCpu / requests) * 1e6;
        const rss = procs.map((p) => rssMb(p.pid!));
        results.push({
          protocol,
          target,
          connections: c,
          rps: r.rps,
          p50: r.p50,
          p99: r.p99,
          errors: r.errors,
          cpuPerReqUs: pxPer,
          upstreamCpuPerReqUs: upPer,
          costRatio: procs.length ? pxPer / upPer : NaN,
          rssMb: procs.length ? rss.reduce((a, b) => a + b, 0) : NaN,
          ...(started.pair ? { rssParts: rss } : {}),
          ...(tls ? { tls } : {}),
        });
        console.error(`${protocol} ${target} c=${c}: ${r.rps.toFixed(0)} req/s${tls ? `, TLS handshakes ${tls.handshake} (resumed ${tls.session_reused})` : ''}`);
      }
      await stopTarget(started);
    }
  } finally {
    await stop(upstream);
  }
}

// Fixed rate, open loop: latency at a load far below saturation, where a sidecar's cost shows as
// added latency rather than lost throughput (issue 6's target: the mTLS pair adds <= 0.5 ms p50 and
// <= 1.5 ms p99 over direct at 1,000 req/s). Fresh processes per target, BENCH_RATE_WARMUP s at the rate first.

interface RateRow {
  target: string;
  rate: number;
  /** Requests due in the timed phase, and answered 2xx. */
  due: number;
  requests: number;
  errors: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  /** How late the generator itself issued requests (p99, ms): large values mean the generator, not the target, was behind. */
  lateP99: number;
  proxyCpuPerReqUs: number;
  /** Pair targets: the client and the server sidecar separately. */
  proxyCpuPartsUs?: number[];
  upstreamCpuPerReqUs: number;
  rssMb: number;
  /** Pair targets: the client's cluster ssl.* counters over the timed phase, and since the sidecar started. */
  tlsTimed?: TlsStats;
  tlsTotal?: TlsStats;
  /** Requests the server sidecar received, by connection_security_policy (whole run). */
  serverBySecurity?: Record<string, number>;
  /** Connections the server sidecar holds from the client sidecar at the end. */
  serverConnections?: number;
}

const rateResults: RateRow[] = [];

if (rate > 0 && protocols.includes('h1')) {
  const upstreamPort = await freePort();
  const upstream = onCpu0(process.execPath, [path.join(here, 'proxy/upstream.mjs'), String(upstreamPort), 'h1']);
  await waitForPort(upstreamPort, upstream, 'upstream');
  try {
    for (const target of targets) {
      const started = await startTarget(target, 'h1', upstreamPort);
      try {
        const { procs, pair } = started;
        const sample = () => ({ up: cpuSeconds(upstream.pid!), procs: procs.map((p) => cpuSeconds(p.pid!)) });
        let atWarm: ReturnType<typeof sample> | undefined;
        let tlsAtWarm: Promise<TlsStats> | undefined;
        const args = [path.join(here, 'proxy/rate-load.mjs'), String(started.port), String(rate), String(rateWarmup), String(seconds), String(rateConnections), started.host ?? '127.0.0.1'];
        const out = await runOnCpu1(process.execPath, args, (line) => {
          if (line !== 'WARM') return;
          atWarm = sample();
          if (pair?.mtls) tlsAtWarm = clientTlsStats(pair);
        });
        const atEnd = sample();
        if (!atWarm) throw new Error(`rate-load did not report the end of its warm-up: ${out}`);
        const r = JSON.parse(out.trim().split('\n').pop()!) as { due: number; requests: number; errors: number; firstError: string; p50: number; p90: number; p99: number; p999: number; max: number; lateP99: number };
        if (r.errors > 0) console.error(`fixed rate ${target}: ${r.errors} failed or unanswered requests (first: ${r.firstError})`);
        const per = (cpu: number) => (cpu / r.due) * 1e6;
        const parts = procs.map((_, i) => per(atEnd.procs[i]! - atWarm!.procs[i]!));
        const row: RateRow = {
          target,
          rate,
          due: r.due,
          requests: r.requests,
          errors: r.errors,
          p50: r.p50,
          p90: r.p90,
          p99: r.p99,
          p999: r.p999,
          max: r.max,
          lateP99: r.lateP99,
          proxyCpuPerReqUs: procs.length ? parts.reduce((a, b) => a + b, 0) : NaN,
          ...(pair ? { proxyCpuPartsUs: parts } : {}),
          upstreamCpuPerReqUs: per(atEnd.up - atWarm.up),
          rssMb: procs.length ? procs.reduce((a, p) => a + rssMb(p.pid!), 0) : NaN,
        };
        if (pair) {
          if (pair.mtls) {
            const total = await clientTlsStats(pair);
            row.tlsTotal = total;
            row.tlsTimed = minus(total, await tlsAtWarm!);
          }
          row.serverBySecurity = Object.fromEntries(await serverRequestsBySecurity(pair));
          row.serverConnections = serverConnections(pair);
        }
        rateResults.push(row);
        console.error(`fixed rate ${target}: p50 ${r.p50.toFixed(3)} ms, p99 ${r.p99.toFixed(3)} ms`);
      } finally {
        await stopTarget(started);
      }
    }
  } finally {
    await stop(upstream);
  }
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');
const f3 = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : '-');
const plus = (x: number) => (Number.isFinite(x) ? `${x < 0 ? '' : '+'}${x.toFixed(3)}` : '-');
for (const protocol of protocols) {
  const rows = results.filter((r) => r.protocol === protocol);
  const conns = [...new Set(rows.map((r) => r.connections))];
  console.log(`\n## ${protocol === 'h1' ? 'HTTP/1.1 (wrk, keep-alive)' : protocol === 'h2c' ? 'HTTP/2 cleartext (h2load, 10 streams per connection; latency = mean)' : 'gRPC unary (@grpc/grpc-js client, one channel)'}\n`);
  const out: string[][] = [];
  for (const c of conns) {
    const direct = rows.find((r) => r.connections === c && r.target === 'direct');
    const nginx = rows.find((r) => r.connections === c && r.target === 'nginx');
    for (const r of rows.filter((x) => x.connections === c)) {
      out.push([
        r.target,
        String(c),
        r.rps.toFixed(0),
        f3(r.p50),
        f3(r.p99),
        direct && r.target !== 'direct' ? `+${f3(r.p50 - direct.p50)}` : '',
        // Two sidecars against one nginx is no like-for-like throughput comparison.
        nginx && r.target !== 'nginx' && r.target !== 'direct' && !isPair(r.target) ? `${(r.rps / nginx.rps).toFixed(2)}x` : '',
        r.target === 'direct' ? '' : f1(r.cpuPerReqUs),
        f1(r.upstreamCpuPerReqUs),
        f2(r.costRatio),
        r.target === 'direct' ? '' : r.rssParts ? r.rssParts.map(f1).join('+') : f1(r.rssMb),
        String(r.errors),
      ]);
    }
  }
  console.log(table(['target', 'conns', 'req/s', 'p50 ms', 'p99 ms', 'added p50', 'vs nginx', 'proxy CPU us/req', 'upstream CPU us/req', 'cost ratio', 'RSS MB', 'errors'], out));
  if (rows.some((r) => isPair(r.target))) console.log('\n(pair rows: two sidecars on the path; proxy CPU and RSS are client + server sidecar)');
}

if (rateResults.length > 0) {
  console.log(`\n## HTTP/1.1 at a fixed ${rate} req/s (open loop, ${rateConnections} keep-alive connections; latency from each request's scheduled send time)\n`);
  const direct = rateResults.find((r) => r.target === 'direct');
  console.log(
    table(
      ['target', 'requests', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'added p50', 'added p99', 'proxy CPU us/req', 'client+server us/req', 'upstream CPU us/req', 'RSS MB', 'errors', 'generator late p99 ms'],
      rateResults.map((r) => [
        r.target,
        String(r.requests),
        f3(r.p50),
        f3(r.p99),
        f3(r.p999),
        f3(r.max),
        direct && r.target !== 'direct' ? plus(r.p50 - direct.p50) : '',
        direct && r.target !== 'direct' ? plus(r.p99 - direct.p99) : '',
        r.target === 'direct' ? '' : f1(r.proxyCpuPerReqUs),
        r.proxyCpuPartsUs ? r.proxyCpuPartsUs.map(f1).join('+') : '',
        f1(r.upstreamCpuPerReqUs),
        r.target === 'direct' ? '' : f1(r.rssMb),
        String(r.errors),
        f3(r.lateP99),
      ]),
    ),
  );
  const plain = rateResults.find((r) => r.target === 'pair');
  const mtls = rateResults.find((r) => r.target === 'pair-mtls');
  const tlsRows = rateResults.filter((r) => r.tlsTotal);
  if (tlsRows.length > 0) {
    console.log('\nTLS between the sidecars (client cluster `ssl.*` from the client\'s /stats; server: its istio_requests_total by connection_security_policy, and the connections it holds at the end):\n');
    console.log(
      table(
        ['target', 'requests (timed)', 'handshakes (timed)', 'resumed (timed)', 'handshakes (whole run)', 'resumed (whole run)', 'handshakes per 1k requests', 'TLS failures', 'server mutual_tls requests', 'server plaintext requests', 'server conns at end'],
        tlsRows.map((r) => [
          r.target,
          String(r.requests),
          String(r.tlsTimed!.handshake),
          String(r.tlsTimed!.session_reused),
          String(r.tlsTotal!.handshake),
          String(r.tlsTotal!.session_reused),
          f3((1000 * r.tlsTimed!.handshake) / Math.max(1, r.requests)),
          String(r.tlsTotal!.connection_error + r.tlsTotal!.fail_verify_error + r.tlsTotal!.fail_verify_san),
          String(r.serverBySecurity?.mutual_tls ?? 0),
          String(r.serverBySecurity?.none ?? 0),
          String(r.serverConnections ?? '-'),
        ]),
      ),
    );
  }
  if (direct && mtls) {
    const addP50 = mtls.p50 - direct.p50;
    const addP99 = mtls.p99 - direct.p99;
    const verdict = (x: number, limit: number) => (x <= limit ? 'met' : 'missed');
    console.log(`\npair-mtls over direct at ${rate} req/s: p50 ${plus(addP50)} ms (target <= 0.5: ${verdict(addP50, 0.5)}), p99 ${plus(addP99)} ms (target <= 1.5: ${verdict(addP99, 1.5)})`);
    if (plain) {
      console.log(
        `mTLS cost ratio (proxy CPU per request, pair-mtls / pair): ${f2(mtls.proxyCpuPerReqUs / plain.proxyCpuPerReqUs)}x ` +
          `(${f1(plain.proxyCpuPerReqUs)} -> ${f1(mtls.proxyCpuPerReqUs)} us; client ${f1(plain.proxyCpuPartsUs?.[0] ?? NaN)} -> ${f1(mtls.proxyCpuPartsUs?.[0] ?? NaN)}, server ${f1(plain.proxyCpuPartsUs?.[1] ?? NaN)} -> ${f1(mtls.proxyCpuPartsUs?.[1] ?? NaN)}); ` +
          `mTLS adds p50 ${plus(mtls.p50 - plain.p50)} ms, p99 ${plus(mtls.p99 - plain.p99)} ms over the plaintext pair`,
      );
    }
  }
}
if (process.env.BENCH_JSON) fs.writeFileSync(process.env.BENCH_JSON, JSON.stringify({ closedLoop: results, fixedRate: rateResults }, null, 2));
fs.rmSync(work, { recursive: true, force: true });
