import type { DeltaDiscoveryRequest, DeltaDiscoveryResponse } from '@tern/xds';
import { decodeDeltaResources, deltaResourceSet, isFullState, shortTypeName } from './resources.ts';
import { INVALID_ARGUMENT, type Session, type SessionHost } from './session.ts';
import type { HeldResource } from './sink.ts';

type Subscription = Set<string> | 'wildcard';

/**
 * Incremental ADS on one stream (Envoy's api_type DELTA_GRPC). Listeners and clusters are
 * subscribed with the explicit wildcard "*", routes and endpoints by name; every type's first
 * request tells the server which versions the client already holds (initial_resource_versions), so
 * a reconnect only transfers what changed meanwhile.
 */
export class DeltaSession implements Session<DeltaDiscoveryResponse> {
  private nodeSent = false;
  private readonly subs = new Map<string, Subscription>();

  constructor(
    private readonly host: SessionHost,
    private readonly send: (req: DeltaDiscoveryRequest) => void,
  ) {}

  async start(): Promise<void> {
    for (const typeUrl of this.host.typeUrls) {
      if (isFullState(typeUrl)) {
        this.subs.set(typeUrl, 'wildcard');
        this.request({ type_url: typeUrl, resource_names_subscribe: ['*'], initial_resource_versions: versions(this.host.state(typeUrl).held) });
        continue;
      }
      const wanted = this.host.wanted(typeUrl);
      await this.host.prune(typeUrl, new Set(wanted));
      this.subs.set(typeUrl, new Set(wanted));
      // No request while nothing is wanted: an empty first request would read as a wildcard.
      if (wanted.length > 0) {
        this.request({ type_url: typeUrl, resource_names_subscribe: wanted, initial_resource_versions: versions(this.host.state(typeUrl).held) });
      }
    }
  }

  async onResponse(res: DeltaDiscoveryResponse): Promise<void> {
    const typeUrl = res.type_url ?? '';
    const nonce = res.nonce ?? '';
    const version = res.system_version_info ?? '';
    const sub = this.subs.get(typeUrl);
    if (sub === undefined) {
      this.host.logger.warn({ typeUrl, nonce }, 'ADS delta response for a type this client did not subscribe to: ignored');
      return;
    }
    try {
      const delta = decodeDeltaResources(typeUrl, res.resources ?? [], res.removed_resources ?? [], this.host.reuse(typeUrl));
      const { set, ignored } = deltaResourceSet(this.host.state(typeUrl).held, delta, sub);
      if (ignored.length) this.host.logger.debug({ typeUrl, ignored }, 'ADS delta response carried resources not subscribed to');
      await this.host.apply(typeUrl, set, version, delta.bytes);
    } catch (err) {
      const message = (err as Error).message;
      this.host.rejected(typeUrl, message, version, nonce);
      this.request({ type_url: typeUrl, response_nonce: nonce, error_detail: { code: INVALID_ARGUMENT, message } });
      return;
    }
    this.request({ type_url: typeUrl, response_nonce: nonce });
    this.host.logger.debug({ type: shortTypeName(typeUrl), version, nonce }, 'ADS delta ACK');
    await this.resync();
  }

  async resync(): Promise<void> {
    for (const typeUrl of this.host.typeUrls) {
      if (isFullState(typeUrl)) continue;
      const wanted = this.host.wanted(typeUrl);
      const current = this.subs.get(typeUrl);
      const have = current instanceof Set ? current : new Set<string>();
      const subscribe = wanted.filter((n) => !have.has(n));
      const wantedSet = new Set(wanted);
      const unsubscribe = [...have].filter((n) => !wantedSet.has(n)).sort();
      if (subscribe.length || unsubscribe.length) {
        this.subs.set(typeUrl, wantedSet);
        const req: DeltaDiscoveryRequest = { type_url: typeUrl };
        if (subscribe.length) req.resource_names_subscribe = subscribe;
        if (unsubscribe.length) req.resource_names_unsubscribe = unsubscribe;
        this.request(req);
      }
      // The server sends no removal for names unsubscribed from: drop them here.
      await this.host.prune(typeUrl, wantedSet);
    }
  }

  private request(req: DeltaDiscoveryRequest): void {
    if (!this.nodeSent) {
      req.node = this.host.node;
      this.nodeSent = true;
    }
    this.send(req);
  }
}

function versions(held: ReadonlyMap<string, HeldResource>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, r] of held) out[name] = r.version ?? '';
  return out;
}
