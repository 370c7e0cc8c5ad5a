import type { NodeMessage } from '@tern/xds';
import type { ReuseLookup } from './resources.ts';
import type { AdsLogger, HeldResource } from './sink.ts';

/** google.rpc.Code INVALID_ARGUMENT: what Envoy puts in a NACK's error_detail. */
export const INVALID_ARGUMENT = 3;

/** What the client keeps per resource type across streams (the proxy keeps serving it while disconnected). */
export interface TypeState {
  held: Map<string, HeldResource>;
  /** Encoded bytes of each held resource, to recognise unchanged ones (see ReuseLookup). */
  raw: Map<string, Buffer>;
  /** version_info (SotW) or system_version_info (delta) of the last applied response. */
  version?: string;
  lastUpdate?: Date;
  lastNack?: { message: string; version: string; nonce: string; at: Date };
}

/** What a per-stream protocol session needs from the client. */
export interface SessionHost {
  readonly typeUrls: readonly string[];
  readonly node: NodeMessage;
  readonly logger: AdsLogger;
  state(typeUrl: string): TypeState;
  /** Sorted names the current configuration references, for a non-wildcard type. */
  wanted(typeUrl: string): string[];
  /** Hands the complete set to the sink and records it; throws (sink's error) without recording. */
  apply(typeUrl: string, set: Map<string, HeldResource>, version: string, bytes: ReadonlyMap<string, Buffer>): Promise<void>;
  /** The held JSON of `name` if `bytes` are what it was decoded from. */
  reuse(typeUrl: string): ReuseLookup;
  rejected(typeUrl: string, message: string, version: string, nonce: string): void;
  /** Drops held resources whose names are no longer wanted (and tells the sink). */
  prune(typeUrl: string, keep: ReadonlySet<string>): Promise<void>;
}

/** One ADS stream's protocol logic (state of the world or delta). */
export interface Session<Res> {
  start(): Promise<void>;
  onResponse(res: Res): Promise<void>;
  /** Re-reads the wanted names from the sink and updates subscriptions when they changed. */
  resync(): Promise<void>;
}
