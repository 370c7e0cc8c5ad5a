import * as grpc from '@grpc/grpc-js';
import {
  createAdsClient,
  plainToStruct,
  TYPE_URL,
  unpackAny,
  type AdsClient,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type DiscoveryRequest,
  type DiscoveryResponse,
  type JsonObject,
} from '@tern/xds';

// Raw ADS clients for the ADS server's tests (which run it with the real compiler).

// ---- raw ADS clients ----

export function node(id: string, metadata: JsonObject = {}) {
  return { id, metadata: plainToStruct(metadata), user_agent_name: 'tern-test' };
}

class Inbox<T> {
  readonly items: T[] = [];
  ended: grpc.ServiceError | undefined;
  private waiters: (() => void)[] = [];
  push(x: T) {
    this.items.push(x);
    for (const w of this.waiters.splice(0)) w();
  }
  fail(err: grpc.ServiceError) {
    this.ended = err;
    for (const w of this.waiters.splice(0)) w();
  }
  /** The next unread item matching `pred` (items before it are consumed too). */
  async next(pred: (x: T) => boolean = () => true, ms = 5000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.items.findIndex(pred);
      if (i >= 0) return this.items.splice(0, i + 1)[i]!;
      if (this.ended) throw new Error(`stream ended: ${this.ended.message}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching message within ${ms} ms; unread: ${JSON.stringify(this.items.map((x) => summary(x)))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
  async error(ms = 5000): Promise<grpc.ServiceError> {
    const deadline = Date.now() + ms;
    while (!this.ended) {
      if (Date.now() > deadline) throw new Error('the stream did not fail');
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.ended;
  }
}

function summary(x: unknown) {
  const r = x as { type_url?: string; nonce?: string; resources?: unknown[] };
  return { type: r.type_url?.split('.').pop(), nonce: r.nonce, n: r.resources?.length };
}

export class SotwClient {
  readonly client: AdsClient;
  readonly call: grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
  readonly inbox = new Inbox<DiscoveryResponse>();
  constructor(address: string) {
    this.client = createAdsClient(address, grpc.credentials.createInsecure());
    this.call = this.client.StreamAggregatedResources();
    this.call.on('data', (m: DiscoveryResponse) => this.inbox.push(m));
    this.call.on('error', (e: grpc.ServiceError) => this.inbox.fail(e));
  }
  send(req: DiscoveryRequest) {
    this.call.write(req);
  }
  next(typeUrl: string, ms?: number) {
    return this.inbox.next((m) => m.type_url === typeUrl, ms);
  }
  /** Sends the ACK of `res` (same names as before unless given). */
  ack(res: DiscoveryResponse, resourceNames: string[] = []) {
    this.send({ type_url: res.type_url, version_info: res.version_info, response_nonce: res.nonce, resource_names: resourceNames });
  }
  close() {
    this.call.cancel();
    this.client.close();
  }
}

export class DeltaClient {
  readonly client: AdsClient;
  readonly call: grpc.ClientDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
  readonly inbox = new Inbox<DeltaDiscoveryResponse>();
  constructor(address: string) {
    this.client = createAdsClient(address, grpc.credentials.createInsecure());
    this.call = this.client.DeltaAggregatedResources();
    this.call.on('data', (m: DeltaDiscoveryResponse) => this.inbox.push(m));
    this.call.on('error', (e: grpc.ServiceError) => this.inbox.fail(e));
  }
  send(req: DeltaDiscoveryRequest) {
    this.call.write(req);
  }
  next(typeUrl: string, ms?: number) {
    return this.inbox.next((m) => m.type_url === typeUrl, ms);
  }
  ack(res: DeltaDiscoveryResponse) {
    this.send({ type_url: res.type_url, response_nonce: res.nonce });
  }
  close() {
    this.call.cancel();
    this.client.close();
  }
}

export const names = (res: { resources: { type_url: string; value: Buffer }[] }) =>
  (res.resources ?? []).map((r) => { const j = unpackAny(r); return (j.name ?? j.cluster_name) as string; }).sort();
export const deltaNames = (res: DeltaDiscoveryResponse) => (res.resources ?? []).map((r) => r.name).sort();
/** Empty repeated fields arrive absent (proto-loader, defaults: false). */
export const removedNames = (res: DeltaDiscoveryResponse) => [...(res.removed_resources ?? [])].sort();
export const decode = unpackAny;
export { TYPE_URL };

/** Polls `fn` until it returns a truthy value. */
export async function eventually<T>(fn: () => Promise<T | undefined | null | false> | T | undefined | null | false, ms = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what} not met within ${ms} ms${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Waits until the ADS server's mesh includes every write committed so far. The change feed learns
 * of a commit through a notification that may arrive after the write's response (PostgreSQL), so
 * the target is the database's revision, not the feed's.
 */
export async function meshCaughtUp(api: { app: { resources: { currentRevision(): Promise<string> }; xds: { mesh: { meshRevision: string } } } }): Promise<void> {
  const target = BigInt(await api.app.resources.currentRevision());
  await eventually(() => BigInt(api.app.xds.mesh.meshRevision) >= target, 5000, `mesh at revision ${target}`);
}
