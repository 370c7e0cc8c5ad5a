// `npm run bench:proxy`: the sidecar on the request path, against a direct connection and nginx,
// in the same run. The upstream app and the proxy share CPU 0; the load generator runs on CPU 1
// (taskset), so CPU per request is the honest cost a sidecar adds to a pod. See docs/benchmarks.md.
//
// Needs wrk, nginx and h2load (Debian: apt-get install -y wrk nginx-light nghttp2-client).
// Environment (optional):
//   BENCH_SECONDS       duration of each timed run (default 10; plus 2 s warm-up)
//   BENCH_CONNECTIONS   HTTP/1.1 connection counts (default 50,4)
//   BENCH_TARGETS       direct,nginx,tern (default all)
//   BENCH_PROTOCOLS     h1,h2c,grpc (default all)
//   TERN_PROXY_CMD      command that starts the Tern proxy with a bootstrap file appended
//                       (default: the bundled proxy, built with esbuild at the start of the run)
//   BENCH_JSON          also write the results as JSON to this file
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { table } from './lib/stats.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const connections = (process.env.BENCH_CONNECTIONS ?? '50,4').split(',').map(Number);
const targets = (process.env.BENCH_TARGETS ?? 'direct,nginx,tern').split(',');
const protocols = (process.env.BENCH_PROTOCOLS ?? 'h1,h2c,grpc').split(',');
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tern-bench-proxy-'));

for (const tool of ['wrk', 'nginx', 'h2load', 'taskset']) {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`]);
  } catch {
    console.error(`bench:proxy needs ${tool}: apt-get install -y wrk nginx-light nghttp2-client util-linux`);
    process.exit(2);
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function waitForPort(port: number, child: ChildProcess, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not listen on ${port}`);
}

function onCpu0(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
  const child = spawn('taskset', ['-c', '0', cmd, ...args], { cwd: opts.cwd ?? root, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err = (err + d).slice(-2000)));
  child.on('exit', (code) => {
    if (code && code !== 143 && !stopping.has(child)) console.error(`${cmd} exited ${code}: ${err}`);
  });
  return child;
}

const stopping = new Set<ChildProcess>();
async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  stopping.add(child);
  child.kill('SIGTERM');
  await new Promise((r) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      r(undefined);
    }, 8000);
    child.once('exit', () => {
      clearTimeout(t);
      r(undefined);
    });
  });
}

/** Process tree CPU (user+system) in seconds, from /proc. */
function cpuSeconds(pid: number): number {
  let total = 0;
  for (const p of [pid, ...children(pid)]) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
    } catch {
      /* exited */
    }
  }
  return total;
}

function children(pid: number): number[] {
  try {
    const out = execFileSync('pgrep', ['-P', String(pid)]).toString().trim();
    const direct = out ? out.split('\n').map(Number) : [];
    return direct.flatMap((c) => [c, ...children(c)]);
  } catch {
    return [];
  }
}

function rssMb(pid: number): number {
  let kb = 0;
  for (const p of [pid, ...children(pid)]) {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'));
      kb += Number(m?.[1] ?? 0);
    } catch {
      /* exited */
    }
  }
  return kb / 1024;
}

function runOnCpu1(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', ['-c', '1', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: root });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${out}`))));
  });
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

async function wrk(port: number, conns: number, secs: number): Promise<LoadResult> {
  const out = await runOnCpu1('wrk', ['-t1', `-c${conns}`, `-d${secs}s`, '--latency', `http://127.0.0.1:${port}/`]);
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
  cpuPerReqUs: number;
  upstreamCpuPerReqUs: number;
  costRatio: number;
  rssMb: number;
}

const results: Row[] = [];
const ternCmd = targets.includes('tern') ? ternCommand() : [];

for (const protocol of protocols) {
  const upstreamPort = await freePort();
  const upstream = onCpu0(process.execPath, [path.join(here, 'proxy/upstream.mjs'), String(upstreamPort), protocol]);
  await waitForPort(upstreamPort, upstream, 'upstream');
  try {
    for (const target of targets) {
      // nginx speaks HTTP/2 to upstreams only for gRPC (grpc_pass): no like-for-like h2c row.
      if (target === 'nginx' && protocol === 'h2c') continue;
      let proxy: ChildProcess | undefined;
      let port = upstreamPort;
      if (target === 'nginx') {
        port = await freePort();
        proxy = onCpu0('nginx', ['-c', nginxConf(port, upstreamPort, protocol)]);
        await waitForPort(port, proxy, 'nginx');
      } else if (target === 'tern') {
        port = await freePort();
        const bootstrap = ternBootstrap(port, await freePort(), upstreamPort, protocol);
        proxy = onCpu0(ternCmd[0]!, [...ternCmd.slice(1), bootstrap], { env: { TERN_LOG_LEVEL: 'warn' } });
        await waitForPort(port, proxy, 'tern proxy');
      }
      const conns = protocol === 'h1' ? connections : [protocol === 'grpc' ? 50 : 4];
      for (const c of conns) {
        const load = protocol === 'h1' ? wrk : protocol === 'h2c' ? h2load : grpcLoad;
        await load(port, c, 2); // warm-up: JIT, pools
        const up0 = cpuSeconds(upstream.pid!);
        const px0 = proxy ? cpuSeconds(proxy.pid!) : 0;
        const r = await load(port, c, seconds);
        const upCpu = cpuSeconds(upstream.pid!) - up0;
        const pxCpu = proxy ? cpuSeconds(proxy.pid!) - px0 : 0;
        const requests = r.rps * seconds;
        const upPer = (upCpu / requests) * 1e6;
        const pxPer = (pxCpu / requests) * 1e6;
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
          costRatio: proxy ? pxPer / upPer : NaN,
          rssMb: proxy ? rssMb(proxy.pid!) : NaN,
        });
        console.error(`${protocol} ${target} c=${c}: ${r.rps.toFixed(0)} req/s`);
      }
      await stop(proxy);
    }
  } finally {
    await stop(upstream);
  }
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');
const f3 = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : '-');
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
        nginx && r.target !== 'nginx' && r.target !== 'direct' ? `${(r.rps / nginx.rps).toFixed(2)}x` : '',
        r.target === 'direct' ? '' : f1(r.cpuPerReqUs),
        f1(r.upstreamCpuPerReqUs),
        f2(r.costRatio),
        r.target === 'direct' ? '' : f1(r.rssMb),
        String(r.errors),
      ]);
    }
  }
  console.log(table(['target', 'conns', 'req/s', 'p50 ms', 'p99 ms', 'added p50', 'vs nginx', 'proxy CPU us/req', 'upstream CPU us/req', 'cost ratio', 'RSS MB', 'errors'], out));
}
if (process.env.BENCH_JSON) fs.writeFileSync(process.env.BENCH_JSON, JSON.stringify(results, null, 2));
fs.rmSync(work, { recursive: true, force: true });
