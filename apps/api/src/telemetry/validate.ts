import type { TelemetryReportRequest } from '@tern/xds';
import { BUCKETS } from './rows.ts';

// A report comes from the network: check every field it is read by, naming the path and the rule.

export class ReportError extends Error {
  constructor(
    readonly path: string,
    readonly rule: string,
  ) {
    super(`${path}: ${rule}`);
  }
}

const LABEL_FIELDS = [
  'reporter', 'source_workload', 'source_workload_namespace', 'source_principal', 'source_app', 'source_version',
  'destination_workload', 'destination_workload_namespace', 'destination_principal', 'destination_app', 'destination_version',
  'destination_service', 'destination_service_name', 'destination_service_namespace', 'connection_security_policy',
] as const;

const MAX_SERIES = 20000;
const MAX_LABEL = 512;

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function count(v: unknown, path: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new ReportError(path, 'must be a finite number >= 0');
}

export function validateReport(r: unknown): TelemetryReportRequest {
  if (!isObj(r)) throw new ReportError('report', 'must be an object');
  if (r.v !== 1) throw new ReportError('v', 'must be 1');
  if (typeof r.node !== 'string' || r.node === '' || r.node.length > 512) throw new ReportError('node', 'must be a non-empty string of at most 512 characters');
  if (typeof r.boot !== 'string' || r.boot === '' || r.boot.length > 128) throw new ReportError('boot', 'must be a non-empty string of at most 128 characters');
  if (!Number.isSafeInteger(r.seq) || (r.seq as number) < 1) throw new ReportError('seq', 'must be an integer >= 1');
  if (!Array.isArray(r.labels)) throw new ReportError('labels', 'must be an array');
  if (!Array.isArray(r.http)) throw new ReportError('http', 'must be an array');
  if (!Array.isArray(r.tcp)) throw new ReportError('tcp', 'must be an array');
  if (r.http.length + r.tcp.length > MAX_SERIES) throw new ReportError('http', `at most ${MAX_SERIES} series per report`);
  if (r.labels.length > MAX_SERIES) throw new ReportError('labels', `at most ${MAX_SERIES} label sets per report`);
  r.labels.forEach((l, i) => {
    if (!isObj(l)) throw new ReportError(`labels[${i}]`, 'must be an object');
    for (const f of LABEL_FIELDS) {
      const v = l[f];
      if (typeof v !== 'string' || v.length > MAX_LABEL) throw new ReportError(`labels[${i}].${f}`, `must be a string of at most ${MAX_LABEL} characters`);
    }
    if (l.reporter !== 'source' && l.reporter !== 'destination') throw new ReportError(`labels[${i}].reporter`, 'must be "source" or "destination"');
  });
  const nLabels = r.labels.length;
  const labelRef = (v: unknown, path: string) => {
    if (!Number.isInteger(v) || (v as number) < 0 || (v as number) >= nLabels) throw new ReportError(path, `must be an index into labels (0..${nLabels - 1})`);
  };
  r.http.forEach((s, i) => {
    const p = `http[${i}]`;
    if (!isObj(s)) throw new ReportError(p, 'must be an object');
    labelRef(s.l, `${p}.l`);
    if (s.p !== 'http' && s.p !== 'grpc') throw new ReportError(`${p}.p`, 'must be "http" or "grpc"');
    if (!Number.isInteger(s.c) || (s.c as number) < 0 || (s.c as number) > 999) throw new ReportError(`${p}.c`, 'must be an HTTP status code (0 for none)');
    if (typeof s.f !== 'string' || s.f.length > 64) throw new ReportError(`${p}.f`, 'must be a string of at most 64 characters');
    if (!Number.isInteger(s.g) || (s.g as number) < -1 || (s.g as number) > 16) throw new ReportError(`${p}.g`, 'must be a gRPC status 0..16, or -1 for none');
    count(s.n, `${p}.n`);
    count(s.ds, `${p}.ds`);
    count(s.rq, `${p}.rq`);
    count(s.rs, `${p}.rs`);
    if (!Array.isArray(s.d) || s.d.length !== BUCKETS) throw new ReportError(`${p}.d`, `must be an array of ${BUCKETS} bucket counts`);
    s.d.forEach((v, j) => count(v, `${p}.d[${j}]`));
  });
  r.tcp.forEach((s, i) => {
    const p = `tcp[${i}]`;
    if (!isObj(s)) throw new ReportError(p, 'must be an object');
    labelRef(s.l, `${p}.l`);
    if (typeof s.f !== 'string' || s.f.length > 64) throw new ReportError(`${p}.f`, 'must be a string of at most 64 characters');
    count(s.opened, `${p}.opened`);
    count(s.closed, `${p}.closed`);
    count(s.sent, `${p}.sent`);
    count(s.received, `${p}.received`);
  });
  return r as unknown as TelemetryReportRequest;
}
