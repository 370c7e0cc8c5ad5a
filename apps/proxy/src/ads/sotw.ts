import { type DiscoveryRequest, type DiscoveryResponse } from '@tern/xds';
import { decodeSotwResources, isFullState, sameNames, shortTypeName, sotwResourceSet } from './resources.ts';
import { INVALID_ARGUMENT, type Session, type SessionHost } from './session.ts';

type Subscription = string[] | 'wildcard';

/**
 * State-of-the-world ADS on one stream (Envoy's api_type GRPC). Listeners and clusters are
 * subscribed as wildcards (an empty resource_names, the form every server understands); routes
 * and endpoints by the names the current configuration references.
 */
export class SotwSession implements Session<DiscoveryResponse> {
  private nodeSent = false;
  private readonly subs = new Map<string, Subscription>();
  private readonly nonces = new Map<string, string>();

  constructor(
    private readonly host: SessionHost,
    private readonly send: (req: DiscoveryRequest) => void,
  ) {}

  async start(): Promise<void> {
    for (const typeUrl of this.host.typeUrls) {
      if (isFullState(typeUrl)) {
        this.subscribe(typeUrl, 'wildcard');
      } else {
        const names = this.host.wanted(typeUrl);
        await this.host.prune(typeUrl, new Set(names));
        if (names.length > 0) this.subscribe(typeUrl, names);
      }
    }
  }

  async onResponse(res: DiscoveryResponse): Promise<void> {
    const typeUrl = res.type_url ?? '';
    const nonce = res.nonce ?? '';
    const version = res.version_info ?? '';
    const sub = this.subs.get(typeUrl);
    if (sub === undefined) {
      this.host.logger.warn({ typeUrl, nonce }, 'ADS response for a type this client did not subscribe to: ignored');
      return;
    }
    this.nonces.set(typeUrl, nonce);
    const state = this.host.state(typeUrl);
    try {
      const decoded = decodeSotwResources(typeUrl, res.resources ?? [], this.host.reuse(typeUrl));
      const { set, ignored } = sotwResourceSet(typeUrl, state.held, decoded, version, sub === 'wildcard' ? 'wildcard' : new Set(sub));
      if (ignored.length) this.host.logger.debug({ typeUrl, ignored }, 'ADS response carried resources not subscribed to');
      await this.host.apply(typeUrl, set, version, new Map([...decoded].map(([name, d]) => [name, d.bytes])));
    } catch (err) {
      const message = (err as Error).message;
      this.host.rejected(typeUrl, message, version, nonce);
      this.send({
        type_url: typeUrl,
        version_info: state.version ?? '',
        resource_names: names(sub),
        response_nonce: nonce,
        error_detail: { code: INVALID_ARGUMENT, message },
      });
      return;
    }
    this.send({ type_url: typeUrl, version_info: version, resource_names: names(sub), response_nonce: nonce });
    this.host.logger.debug({ type: shortTypeName(typeUrl), version, nonce }, 'ADS ACK');
    await this.resync();
  }

  async resync(): Promise<void> {
    for (const typeUrl of this.host.typeUrls) {
      if (isFullState(typeUrl)) continue;
      const wanted = this.host.wanted(typeUrl);
      const current = this.subs.get(typeUrl);
      if (current === undefined) {
        // Never requested on this stream: an empty first request would read as a wildcard.
        if (wanted.length > 0) this.subscribe(typeUrl, wanted);
      } else if (current === 'wildcard' || !sameNames(current, wanted)) {
        // A subscription change carries the last accepted version and the latest nonce, as Envoy's does.
        this.subscribe(typeUrl, wanted);
      }
      await this.host.prune(typeUrl, new Set(wanted));
    }
  }

  private subscribe(typeUrl: string, sub: Subscription): void {
    this.subs.set(typeUrl, sub);
    const req: DiscoveryRequest = {
      type_url: typeUrl,
      version_info: this.host.state(typeUrl).version ?? '',
      resource_names: names(sub),
      response_nonce: this.nonces.get(typeUrl) ?? '',
    };
    if (!this.nodeSent) {
      req.node = this.host.node;
      this.nodeSent = true;
    }
    this.send(req);
  }
}

function names(sub: Subscription): string[] {
  return sub === 'wildcard' ? [] : sub;
}
