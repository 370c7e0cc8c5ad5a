import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { AdminState } from './server.ts';

// What kubelet talks to in an injected pod (Istio's ports): the proxy's own readiness on 15021
// (`/healthz/ready`), and on 15020 the app's probes, which the injector rewrote to point here
// (`/app-health/<container>/<livez|readyz|startupz>`): the proxy runs the original probe against the
// app on 127.0.0.1 — from the proxy, so it is not redirected and needs no mTLS under STRICT.

export type AppProber =
  | { httpGet: { path?: string; port: number; scheme?: string; httpHeaders?: { name: string; value: string }[] }; timeoutSeconds?: number }
  | { tcpSocket: { port: number }; timeoutSeconds?: number };

export class AppProbersError extends Error {
  override readonly name = 'AppProbersError';
}

const isPort = (p: unknown): p is number => Number.isInteger(p) && (p as number) > 0 && (p as number) < 65536;

/** TERN_KUBE_APP_PROBERS (JSON: probe path → the original probe handler), checked field by field. */
export function parseAppProbers(text: string): Map<string, AppProber> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new AppProbersError(`TERN_KUBE_APP_PROBERS: not JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new AppProbersError('TERN_KUBE_APP_PROBERS: must be an object of probe path → probe');
  const out = new Map<string, AppProber>();
  for (const [path, v] of Object.entries(raw as Record<string, unknown>)) {
    const at = `TERN_KUBE_APP_PROBERS["${path}"]`;
    if (!/^\/app-health\/[^/]+\/(livez|readyz|startupz)$/.test(path)) throw new AppProbersError(`${at}: the path must be /app-health/<container>/<livez|readyz|startupz>`);
    const p = v as { httpGet?: { port?: unknown; scheme?: unknown }; tcpSocket?: { port?: unknown }; timeoutSeconds?: unknown };
    if (p?.timeoutSeconds !== undefined && !(typeof p.timeoutSeconds === 'number' && p.timeoutSeconds > 0)) throw new AppProbersError(`${at}.timeoutSeconds: must be a positive number`);
    if (p?.httpGet) {
      if (!isPort(p.httpGet.port)) throw new AppProbersError(`${at}.httpGet.port: must be a port number`);
      if (p.httpGet.scheme !== undefined && p.httpGet.scheme !== 'HTTP' && p.httpGet.scheme !== 'HTTPS') throw new AppProbersError(`${at}.httpGet.scheme: must be HTTP or HTTPS`);
    } else if (p?.tcpSocket) {
      if (!isPort(p.tcpSocket.port)) throw new AppProbersError(`${at}.tcpSocket.port: must be a port number`);
    } else throw new AppProbersError(`${at}: needs httpGet or tcpSocket`);
    out.set(path, p as AppProber);
  }
  return out;
}

/** Runs one original probe against the app: its HTTP status (any 2xx/3xx passes, as kubelet), or 503 with why. */
export function runProbe(p: AppProber): Promise<{ status: number; body: string }> {
  const timeoutMs = (p.timeoutSeconds ?? 1) * 1000;
  if ('tcpSocket' in p) {
    return new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port: p.tcpSocket.port });
      const done = (status: number, body: string) => {
        s.destroy();
        resolve({ status, body });
      };
      s.setTimeout(timeoutMs, () => done(503, `tcp ${p.tcpSocket.port}: no connection within ${timeoutMs} ms\n`));
      s.once('connect', () => done(200, 'ok\n'));
      s.once('error', (err) => done(503, `tcp ${p.tcpSocket.port}: ${err.message}\n`));
    });
  }
  const g = p.httpGet;
  const mod = g.scheme === 'HTTPS' ? https : http;
  return new Promise((resolve) => {
    const headers = Object.fromEntries((g.httpHeaders ?? []).map((h) => [h.name, h.value]));
    const req = mod.request({ host: '127.0.0.1', port: g.port, path: g.path ?? '/', headers: { 'user-agent': 'kube-probe/tern', ...headers }, timeout: timeoutMs, rejectUnauthorized: false }, (res) => {
      res.resume();
      const status = res.statusCode ?? 503;
      // kubelet: 200-399 pass; a failure is passed on as it came, so kubelet's event names it.
      res.on('end', () => resolve({ status: status >= 200 && status < 400 ? 200 : status, body: `app answered ${status}\n` }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ status: 503, body: `http ${g.port}${g.path ?? '/'}: ${err.message}\n` }));
    req.end();
  });
}

function listen(server: http.Server, host: string, port: number): Promise<http.Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/** `GET /healthz/ready` on the health port: 200 once the proxy has its configuration, 503 before and while draining. */
export function startHealth(state: Pick<AdminState, 'ready' | 'draining'>, host: string, port: number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if ((req.url ?? '').split('?')[0] !== '/healthz/ready') {
      res.writeHead(404).end('not found\n');
      return;
    }
    const ok = state.ready() && !state.draining();
    res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'LIVE\n' : state.draining() ? 'DRAINING\n' : 'PRE_INITIALIZING\n');
  });
  return listen(server, host, port);
}

/** The app-health port: each rewritten probe path runs its original probe. */
export function startAppHealth(probers: ReadonlyMap<string, AppProber>, host: string, port: number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const p = probers.get((req.url ?? '').split('?')[0]!);
    if (!p) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`no probe ${req.url}\n`);
      return;
    }
    void runProbe(p).then(({ status, body }) => res.writeHead(status, { 'content-type': 'text/plain' }).end(body));
  });
  return listen(server, host, port);
}
