import { AdmissionregistrationV1Api, type KubeConfig, type V1MutatingWebhookConfiguration } from '@kubernetes/client-node';
import { webhookCaBundle } from '../ca/serving-cert.ts';
import { logger } from '../log.ts';
import { kubeErrorCode } from './client.ts';
import type { LeaderService } from './controller.ts';

// The leader keeps `caBundle` of every entry of the MutatingWebhookConfiguration equal to the CA's
// trust bundle (the issuing root plus TERN_CA_TRUST_BUNDLE_FILE's roots, so a root rotation keeps
// the API server trusting the webhook's certificate from either root): at the start of leadership,
// when the bundle changes, and on a periodic check (a `kubectl apply` of the manifest, which has no
// caBundle, or someone's edit may reset it).
//
// The write is a JSON patch, not server-side apply: it names exactly the caBundle fields, guarded
// by a `test` of the resourceVersion (the webhook indexes stay right; a concurrent edit makes the
// patch fail and the next attempt re-reads). Server-side apply would need every webhook entry
// (name, and the fields the API server requires) in our applied configuration, and would take
// ownership of list entries the manifest owns. The field manager `tern-control-plane-webhook`
// shows in managedFields who wrote it. RBAC: get and patch on this one object (resourceNames).

export const WEBHOOK_CONFIGURATION = 'tern-sidecar-injector';
export const CA_BUNDLE_FIELD_MANAGER = 'tern-control-plane-webhook';

export interface CaBundleKeeperOptions {
  kc: KubeConfig;
  /** The PEM roots the webhook's serving certificate chains to (CaService.trustBundle().roots). */
  trustBundle(): string[];
  name?: string;
  /** The periodic check (a GET); default 60 s. */
  checkMs?: number;
  /** How often the local trust bundle is compared with what was written (no API call); default 5 s. */
  bundlePollMs?: number;
}

export type CaBundleState = 'current' | 'patched' | 'missing' | 'no-webhooks';

/** The JSON patch making every entry's caBundle `want`, or [] when they all are. */
export function caBundlePatch(mwc: V1MutatingWebhookConfiguration, want: string): { op: string; path: string; value: unknown }[] {
  const ops = (mwc.webhooks ?? []).flatMap((w, i) => (w.clientConfig?.caBundle === want ? [] : [{ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: want }]));
  if (ops.length === 0) return [];
  return [{ op: 'test', path: '/metadata/resourceVersion', value: mwc.metadata?.resourceVersion }, ...ops];
}

export class WebhookCaBundleKeeper implements LeaderService {
  private readonly api: AdmissionregistrationV1Api;
  private readonly name: string;
  private stopped = true;
  private timer: NodeJS.Timeout | undefined;
  private poll: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private failures = 0;
  /** The bundle last confirmed in the cluster (base64 PEM). */
  private written: string | undefined;
  private lastState: CaBundleState | 'error' | undefined;
  checks = 0;
  patches = 0;

  constructor(private readonly o: CaBundleKeeperOptions) {
    this.api = o.kc.makeApiClient(AdmissionregistrationV1Api);
    this.name = o.name ?? WEBHOOK_CONFIGURATION;
  }

  private want(): string {
    return webhookCaBundle(this.o.trustBundle().join('\n'));
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.failures = 0;
    this.written = undefined;
    this.trigger(0);
    this.poll = setInterval(() => {
      if (this.written !== undefined && this.written !== this.want()) this.trigger(0);
    }, this.o.bundlePollMs ?? 5000);
    this.poll.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.poll);
    await this.running;
  }

  /** One check: read the configuration, patch the entries whose caBundle differs. */
  async syncOnce(): Promise<CaBundleState> {
    const want = this.want();
    let mwc: V1MutatingWebhookConfiguration;
    try {
      mwc = await this.api.readMutatingWebhookConfiguration({ name: this.name });
    } catch (err) {
      if (kubeErrorCode(err) === 404) return 'missing';
      throw err;
    }
    if (!mwc.webhooks?.length) return 'no-webhooks';
    const patch = caBundlePatch(mwc, want);
    if (patch.length === 0) {
      this.written = want;
      return 'current';
    }
    await this.api.patchMutatingWebhookConfiguration({ name: this.name, body: patch, fieldManager: CA_BUNDLE_FIELD_MANAGER });
    this.written = want;
    this.patches++;
    return 'patched';
  }

  private trigger(delayMs: number): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.run(), delayMs);
    this.timer.unref();
  }

  private run(): void {
    if (this.stopped) return;
    const checkMs = this.o.checkMs ?? 60_000;
    this.running = this.syncOnce().then(
      (state) => {
        this.checks++;
        this.failures = 0;
        this.report(state);
        return checkMs;
      },
      (err: unknown) => {
        this.checks++;
        this.failures++;
        const retry = Math.min(checkMs, 500 * 2 ** (this.failures - 1));
        // A failed `test` (someone edited it meanwhile) or an API error: read again soon.
        logger.warn({ name: this.name, err: err instanceof Error ? err.message : String(err), code: kubeErrorCode(err), retryInMs: retry }, 'injection webhook: could not update the caBundle of the MutatingWebhookConfiguration; retrying');
        this.lastState = 'error';
        return retry;
      },
    ).then((next) => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        next = 0;
      }
      this.trigger(next);
    });
  }

  private report(state: CaBundleState): void {
    const was = this.lastState;
    this.lastState = state;
    if (state === 'patched') logger.info({ name: this.name, fieldManager: CA_BUNDLE_FIELD_MANAGER }, 'injection webhook: caBundle of the MutatingWebhookConfiguration set to the CA trust bundle');
    // Said once per change of state, not every check.
    else if (state === 'missing' && was !== 'missing') logger.error({ name: this.name }, `injection webhook: MutatingWebhookConfiguration ${this.name} not found: pods are not injected until it exists (apply deploy/kubernetes or tern install); checking again periodically`);
    else if (state === 'no-webhooks' && was !== 'no-webhooks') logger.warn({ name: this.name }, `injection webhook: MutatingWebhookConfiguration ${this.name} has no webhooks entries; nothing to keep current`);
  }
}
