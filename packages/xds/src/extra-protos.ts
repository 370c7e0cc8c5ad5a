import { protoRoot } from './protos.ts';

// Extensions the route compiler emits inside Any fields beyond the core set in protos.ts: Istio's
// default retry policy names the previous-hosts predicate, and retryRemoteLocalities the
// previous-priorities one. Loaded into the same Root, on demand, so encodeJson knows them.

export const RETRY_TYPE_URL = {
  previousHosts: 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate',
  previousPriorities: 'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig',
} as const;

const EXTRA_FILES = [
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/extensions/retry/priority/previous_priorities/v3/previous_priorities_config.proto',
];

let loaded = false;

/** Makes the retry extension types known to encodeJson/decodeJson; idempotent. */
export function loadExtraProtos(): void {
  if (loaded) return;
  const root = protoRoot();
  root.loadSync(EXTRA_FILES, { keepCase: true });
  root.resolveAll();
  loaded = true;
}
