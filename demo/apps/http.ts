/**
 * What every Bookinfo app shares: a counted node:http server on 127.0.0.1, and outbound calls made
 * the way an app behind a local-mode sidecar makes them — an absolute-form request to its own
 * sidecar's HTTP forward-proxy port, so routing, retries, faults, mTLS and telemetry happen there.
 */
import http from 'node:http';
import type net from 'node:net';

/**
 * Headers Istio's Bookinfo apps pass on from the request they serve to the requests it causes
 * (productpage's `getForwardHeaders`, reviews' `propagate_headers`): the end user, the request id
 * and every tracing format the sample supports.
 */
export const PROPAGATED_HEADERS = [
  'end-user', 'user-agent', 'x-request-id',
  'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'x-b3-flags', 'b3',
  'traceparent', 'tracestate', 'x-ot-span-context', 'x-cloud-trace-context', 'grpc-trace-bin',
  'x-datadog-trace-id', 'x-datadog-parent-id', 'x-datadog-sampling-priority',
] as const;

export function propagate(req: http.IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of PROPAGATED_HEADERS) {
    const v = req.headers[h];
    if (typeof v === 'string') out[h] = v;
  }
  return out;
}

export interface AppServer {
  port: number;
  requests(): number;
  close(): Promise<void>;
}

export async function serve(port: number, handler: (req: http.IncomingMessage, res: http.ServerResponse) => unknown): Promise<AppServer> {
  let count = 0;
  const server = http.createServer((req, res) => {
    count++;
    Promise.resolve(handler(req, res)).catch((err: Error) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: err.message }));
    });
  });
  // A demo app behind a sidecar: the sidecar's pooled connections may sit idle for long.
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    requests: () => count,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

export interface Reply {
  status: number;
  body: string;
}

/**
 * GET `http://<authority><path>` through the forward proxy at 127.0.0.1:`proxyPort`. Rejects on a
 * connection error or when no complete answer came within `timeoutMs` (the request is then
 * abandoned, as the Python and Java clients of the sample abandon theirs).
 */
export function callThroughSidecar(agent: http.Agent, proxyPort: number, authority: string, path: string, headers: Record<string, string>, timeoutMs: number): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxyPort, method: 'GET', path: `http://${authority}${path}`, headers: { ...headers, host: authority }, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body });
      });
      res.on('error', fail);
    });
    const timer = setTimeout(() => fail(new Error(`${authority}${path}: no answer within ${timeoutMs} ms`)), timeoutMs);
    function fail(err: Error): void {
      clearTimeout(timer);
      req.destroy();
      reject(err);
    }
    req.on('error', fail);
    req.end();
  });
}

export function sendJson(res: http.ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export function notFound(res: http.ServerResponse): void {
  sendJson(res, 404, { error: 'Not found' });
}

export function parseJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}
