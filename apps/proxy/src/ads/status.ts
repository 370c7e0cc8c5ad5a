import type { TypeState } from './session.ts';

export interface AdsTypeStatus {
  /** Resources held (and in the sink) for this type. */
  resources: number;
  /** version_info (SotW) / system_version_info (delta) of the last ACKed response. */
  version?: string;
  /** ISO time of the last applied update. */
  lastUpdate?: string;
  /** The last NACK since the last accepted update (cleared by the next ACK). */
  lastNack?: { message: string; version: string; nonce: string; at: string };
}

/** What the admin page shows about the control-plane connection. */
export interface AdsStatus {
  mode: 'sotw' | 'delta';
  connected: boolean;
  /** The server of the current (or next) stream. */
  server: string | undefined;
  servers: readonly string[];
  connectedSince?: string;
  reconnects: number;
  /** Why the last stream ended, while not connected. */
  lastError?: string;
  types: Record<string, AdsTypeStatus>;
}

export function statusOf(input: {
  mode: 'sotw' | 'delta';
  connected: boolean;
  server: string | undefined;
  servers: readonly string[];
  connectedSince: Date | undefined;
  reconnects: number;
  lastError: string | undefined;
  states: ReadonlyMap<string, TypeState>;
}): AdsStatus {
  const types: Record<string, AdsTypeStatus> = {};
  for (const [typeUrl, s] of input.states) {
    const t: AdsTypeStatus = { resources: s.held.size };
    if (s.version !== undefined) t.version = s.version;
    if (s.lastUpdate) t.lastUpdate = s.lastUpdate.toISOString();
    if (s.lastNack) t.lastNack = { ...s.lastNack, at: s.lastNack.at.toISOString() };
    types[typeUrl] = t;
  }
  const out: AdsStatus = {
    mode: input.mode,
    connected: input.connected,
    server: input.server,
    servers: [...input.servers],
    reconnects: input.reconnects,
    types,
  };
  if (input.connected && input.connectedSince) out.connectedSince = input.connectedSince.toISOString();
  if (!input.connected && input.lastError) out.lastError = input.lastError;
  return out;
}
