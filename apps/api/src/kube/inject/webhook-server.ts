import https from 'node:https';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { V1Pod } from '@kubernetes/client-node';
import { logger } from '../../log.ts';
import { injectSidecar, validateInjectConfig, type InjectConfig } from './mutate.ts';

// The mutating admission webhook the Kubernetes API server calls (over HTTPS, verifying our
// certificate against the configuration's caBundle) for every pod created in a namespace its
// namespaceSelector matches. It never refuses a pod: every answer is `allowed: true`, with the
// patch when one was built; our own failures are logged and the pod goes ahead uninjected (and the
// configuration's failurePolicy is Ignore as well, for when we cannot answer at all).

export const INJECT_PATH = '/inject';
export const WEBHOOK_SERVICE = 'tern-webhook';
/** The names the API server may dial the webhook Service by (deploy/kubernetes/base/control-plane.yaml), in the control plane's namespace. */
export function webhookServiceDns(namespace: string, clusterDomain = 'cluster.local'): string[] {
  return [`${WEBHOOK_SERVICE}.${namespace}.svc`, `${WEBHOOK_SERVICE}.${namespace}.svc.${clusterDomain}`, `${WEBHOOK_SERVICE}.${namespace}`, WEBHOOK_SERVICE];
}
const MAX_BODY = 8 * 1024 * 1024;

export interface AdmissionResponse {
  uid: string;
  allowed: true;
  patchType?: 'JSONPatch';
  /** base64 of the JSON patch. */
  patch?: string;
  warnings?: string[];
}

export interface AdmissionReviewResponse {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

export interface WebhookServerOptions {
  config: InjectConfig;
  /** The serving certificate (PEM, leaf first) and key. */
  cert: { certPem: string; keyPem: string };
  /** The namespace's labels (an informer's cache in the controller); throwing = not injected. */
  namespaceLabels(namespace: string): Promise<Record<string, string>>;
  host?: string;
  port?: number;
}

export interface WebhookServer {
  server: https.Server;
  port: number;
  /** A renewed serving certificate: used for new handshakes. */
  setCertificate(cert: { certPem: string; keyPem: string }): void;
  close(): Promise<void>;
}

export class AdmissionReviewError extends Error {
  override readonly name = 'AdmissionReviewError';
}

interface ParsedReview {
  uid: string;
  namespace: string;
  operation: string;
  kind: string;
  pod: V1Pod;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks the review's shape; throws AdmissionReviewError naming the field path and the rule. */
export function parseAdmissionReview(body: unknown): ParsedReview {
  if (!isObject(body)) throw new AdmissionReviewError('body: must be a JSON object (an admission.k8s.io/v1 AdmissionReview)');
  if (body.apiVersion !== 'admission.k8s.io/v1') throw new AdmissionReviewError(`apiVersion: must be "admission.k8s.io/v1" (set admissionReviewVersions: ["v1"]), got ${JSON.stringify(body.apiVersion)}`);
  if (body.kind !== 'AdmissionReview') throw new AdmissionReviewError(`kind: must be "AdmissionReview", got ${JSON.stringify(body.kind)}`);
  const r = body.request;
  if (!isObject(r)) throw new AdmissionReviewError('request: is required and must be an object');
  if (typeof r.uid !== 'string' || r.uid === '') throw new AdmissionReviewError('request.uid: is required and must be a string');
  const kind = isObject(r.kind) && typeof r.kind.kind === 'string' ? r.kind.kind : undefined;
  if (!kind) throw new AdmissionReviewError('request.kind.kind: is required');
  if (typeof r.operation !== 'string') throw new AdmissionReviewError('request.operation: is required');
  const obj = r.object;
  if (r.operation === 'CREATE' && !isObject(obj)) throw new AdmissionReviewError('request.object: is required for CREATE and must be an object');
  const pod = (isObject(obj) ? obj : {}) as V1Pod;
  const metaNs = isObject(obj) && isObject(obj.metadata) && typeof obj.metadata.namespace === 'string' ? obj.metadata.namespace : undefined;
  const namespace = typeof r.namespace === 'string' && r.namespace !== '' ? r.namespace : metaNs;
  if (r.operation === 'CREATE' && kind === 'Pod' && !namespace) throw new AdmissionReviewError('request.namespace: is required for a pod');
  return { uid: r.uid, namespace: namespace ?? '', operation: r.operation, kind, pod };
}

/** The answer for one review: always allowed; the patch when injecting. Errors are logged, never returned. */
export async function review(parsed: ParsedReview, opts: Pick<WebhookServerOptions, 'config' | 'namespaceLabels'>): Promise<AdmissionResponse> {
  const base: AdmissionResponse = { uid: parsed.uid, allowed: true };
  if (parsed.kind !== 'Pod' || parsed.operation !== 'CREATE') return base;
  const podName = parsed.pod.metadata?.name ?? `${parsed.pod.metadata?.generateName ?? ''}<generated>`;
  const where = { namespace: parsed.namespace, pod: podName, uid: parsed.uid };
  try {
    const labels = await opts.namespaceLabels(parsed.namespace);
    const result = injectSidecar(parsed.pod, labels, opts.config);
    if (result.patch.length === 0) {
      logger.debug({ ...where, reason: result.reason }, `sidecar injection skipped: ${result.message}`);
      // kubectl shows warnings: an annotation we could not read must not pass silently.
      return result.reason === 'invalid-annotation' ? { ...base, warnings: [`tern sidecar not injected: ${result.message}`] } : base;
    }
    logger.info({ ...where, ops: result.patch.length }, result.message);
    return {
      ...base,
      patchType: 'JSONPatch',
      patch: Buffer.from(JSON.stringify(result.patch)).toString('base64'),
      ...(result.warnings.length ? { warnings: result.warnings.map((w) => `tern sidecar: ${w}`) } : {}),
    };
  } catch (err) {
    logger.error({ ...where, err: err instanceof Error ? err.message : String(err) }, 'sidecar injection failed; the pod is created without a sidecar');
    return { ...base, warnings: ['tern sidecar not injected: internal error in the injection webhook (see the control plane log)'] };
  }
}

function send(res: http.ServerResponse, status: number, body: unknown) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export async function startWebhookServer(opts: WebhookServerOptions): Promise<WebhookServer> {
  validateInjectConfig(opts.config);
  const server = https.createServer({ cert: opts.cert.certPem, key: opts.cert.keyPem, minVersion: 'TLSv1.2' }, (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== INJECT_PATH) return send(res, 404, `not found: the injection webhook answers POST ${INJECT_PATH}\n`);
    if (req.method !== 'POST') return send(res, 405, `method ${req.method ?? ''} not allowed: POST an admission.k8s.io/v1 AdmissionReview to ${INJECT_PATH}\n`);
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) tooBig = true;
      else chunks.push(c);
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      if (tooBig) return send(res, 413, `the AdmissionReview is larger than ${MAX_BODY} bytes\n`);
      let parsed: ParsedReview;
      try {
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch (err) {
          throw new AdmissionReviewError(`body: is not JSON (${(err as Error).message})`);
        }
        parsed = parseAdmissionReview(body);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        logger.warn({ err: message }, 'injection webhook: malformed AdmissionReview');
        return send(res, 400, `malformed AdmissionReview: ${message}\n`);
      }
      review(parsed, opts).then(
        (response) => send(res, 200, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response } satisfies AdmissionReviewResponse),
        (err: unknown) => {
          // review() catches its own errors; this is a last resort.
          logger.error({ err: err instanceof Error ? err.message : String(err) }, 'injection webhook failed');
          send(res, 200, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: parsed.uid, allowed: true } });
        },
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    setCertificate: (c) => server.setSecureContext({ cert: c.certPem, key: c.keyPem, minVersion: 'TLSv1.2' }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
