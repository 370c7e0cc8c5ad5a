import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

// The control plane's Prometheus metrics, served at /metrics. One registry for the process (not
// prom-client's global one, which libraries may also write to); several Apps in one process (tests)
// share these series.

export const register = new Registry();
collectDefaultMetrics({ register, prefix: 'tern_' });

export const xdsConvergenceSeconds = new Histogram({
  name: 'tern_xds_convergence_seconds',
  help: 'From a mesh change reaching this replica to the last affected proxy ACKing it',
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [register],
});

export const xdsPushesTotal = new Counter({
  name: 'tern_xds_pushes_total',
  help: 'xDS responses sent to proxies, by type (cds, eds, lds, rds)',
  labelNames: ['type'] as const,
  registers: [register],
});

export const xdsNacksTotal = new Counter({
  name: 'tern_xds_nacks_total',
  help: 'xDS responses rejected by proxies (NACK), by type',
  labelNames: ['type'] as const,
  registers: [register],
});

// Every type's series exists from the start (at 0), so dashboards and rate() see them before the first push.
for (const type of ['cds', 'eds', 'lds', 'rds']) {
  xdsPushesTotal.inc({ type }, 0);
  xdsNacksTotal.inc({ type }, 0);
}

export const xdsConnectedProxies = new Gauge({
  name: 'tern_xds_connected_proxies',
  help: 'ADS streams currently open on this replica',
  registers: [register],
});
