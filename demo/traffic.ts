/**
 * The traffic generator: GET /productpage through the gateway at a steady rate, so the graph,
 * the metrics and the console stay alive. It caps requests in flight (a fault injected by the user
 * can make each one take seconds) and only counts outcomes.
 */
import http from 'node:http';

export interface TrafficGenerator {
  stats(): { sent: number; ok: number; failed: number };
  stop(): Promise<void>;
}

export function startTraffic(o: { gatewayPort: number; rps: number; maxInFlight?: number }): TrafficGenerator {
  if (!(o.rps > 0 && o.rps <= 1000)) throw new Error(`traffic.rps: must be a number in (0, 1000], got ${o.rps}`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.maxInFlight ?? 10 });
  const max = o.maxInFlight ?? 10;
  let sent = 0;
  let ok = 0;
  let failed = 0;
  const inFlight = new Set<http.ClientRequest>();
  const timer = setInterval(() => {
    if (inFlight.size >= max) return;
    sent++;
    const req = http.get({ host: '127.0.0.1', port: o.gatewayPort, path: '/productpage', agent, headers: { 'user-agent': 'tern-demo-traffic' } }, (res) => {
      res.resume();
      res.on('end', () => {
        inFlight.delete(req);
        if (res.statusCode === 200) ok++;
        else failed++;
      });
    });
    req.setTimeout(30_000, () => req.destroy(new Error('timeout')));
    req.on('error', () => {
      if (inFlight.delete(req)) failed++;
    });
    inFlight.add(req);
  }, 1000 / o.rps);
  timer.unref();
  return {
    stats: () => ({ sent, ok, failed }),
    async stop() {
      clearInterval(timer);
      for (const r of inFlight) r.destroy();
      inFlight.clear();
      agent.destroy();
    },
  };
}
