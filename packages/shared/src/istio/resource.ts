import { z } from 'zod';

import { authorizationPolicySpecSchema } from './authorization-policy.ts';
import { destinationRuleSpecSchema } from './destination-rule.ts';
import { describeValue, fromZodIssues, type FieldIssue } from './issues.ts';
import { isAcceptedApiVersion, isKind, KIND_API_VERSIONS, KINDS, NETWORKING_API_VERSIONS, resolveKind, SECURITY_API_VERSIONS, type Kind } from './kinds.ts';
import { objectMetaSchema } from './metadata.ts';
import { peerAuthenticationSpecSchema } from './peer-authentication.ts';
import { serviceEntrySpecSchema } from './service-entry.ts';
import { virtualServiceSpecSchema } from './virtual-service.ts';

// Whole resources: { apiVersion, kind, metadata, spec, status? }. Status is written by the
// control plane, so whatever a client sends there is accepted unchecked and never acted on.

const statusSchema = z.record(z.string(), z.unknown()).optional();

export const virtualServiceSchema = z.strictObject({
  apiVersion: z.enum(NETWORKING_API_VERSIONS),
  kind: z.literal('VirtualService'),
  metadata: objectMetaSchema,
  spec: virtualServiceSpecSchema,
  status: statusSchema,
});
export type VirtualService = z.infer<typeof virtualServiceSchema>;

export const destinationRuleSchema = z.strictObject({
  apiVersion: z.enum(NETWORKING_API_VERSIONS),
  kind: z.literal('DestinationRule'),
  metadata: objectMetaSchema,
  spec: destinationRuleSpecSchema,
  status: statusSchema,
});
export type DestinationRule = z.infer<typeof destinationRuleSchema>;

export const serviceEntrySchema = z.strictObject({
  apiVersion: z.enum(NETWORKING_API_VERSIONS),
  kind: z.literal('ServiceEntry'),
  metadata: objectMetaSchema,
  spec: serviceEntrySpecSchema,
  status: statusSchema,
});
export type ServiceEntry = z.infer<typeof serviceEntrySchema>;

// Both security kinds are meaningful with an empty spec (a mesh-wide PeerAuthentication with
// the default mode; an AuthorizationPolicy that allows nothing), so spec may be omitted.
export const peerAuthenticationSchema = z.strictObject({
  apiVersion: z.enum(SECURITY_API_VERSIONS),
  kind: z.literal('PeerAuthentication'),
  metadata: objectMetaSchema,
  spec: peerAuthenticationSpecSchema.default({}),
  status: statusSchema,
});
export type PeerAuthentication = z.infer<typeof peerAuthenticationSchema>;

export const authorizationPolicySchema = z.strictObject({
  apiVersion: z.enum(SECURITY_API_VERSIONS),
  kind: z.literal('AuthorizationPolicy'),
  metadata: objectMetaSchema,
  spec: authorizationPolicySpecSchema.default({}),
  status: statusSchema,
});
export type AuthorizationPolicy = z.infer<typeof authorizationPolicySchema>;

export const RESOURCE_SCHEMAS = {
  VirtualService: virtualServiceSchema,
  DestinationRule: destinationRuleSchema,
  ServiceEntry: serviceEntrySchema,
  PeerAuthentication: peerAuthenticationSchema,
  AuthorizationPolicy: authorizationPolicySchema,
} as const satisfies Record<Kind, z.ZodType>;

export const meshResourceSchema = z.discriminatedUnion('kind', [
  virtualServiceSchema,
  destinationRuleSchema,
  serviceEntrySchema,
  peerAuthenticationSchema,
  authorizationPolicySchema,
]);
export type MeshResource = VirtualService | DestinationRule | ServiceEntry | PeerAuthentication | AuthorizationPolicy;

/** The resource type for a given kind, e.g. ResourceOf<'VirtualService'>. */
export type ResourceOf<K extends Kind> = Extract<MeshResource, { kind: K }>;

export type ParseResourceResult = { ok: true; resource: MeshResource } | { ok: false; issues: FieldIssue[] };

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const KIND_LIST = `${KINDS.slice(0, -1).join(', ')} and ${KINDS[KINDS.length - 1]}`;

/**
 * Validates one document (already parsed from YAML or JSON) as an Istio resource Tern accepts.
 * The kind and apiVersion are checked first, on their own: when either is wrong, the rest of the
 * document would be checked against the wrong schema, so only that one issue is returned.
 */
export function parseResource(doc: unknown): ParseResourceResult {
  if (!isPlainObject(doc)) {
    return {
      ok: false,
      issues: [{ path: '', rule: 'not_an_object', message: `The document must be a mapping with apiVersion, kind, metadata and spec, not ${describeValue(doc)}.` }],
    };
  }

  const kind = doc.kind;
  if (kind === undefined || kind === null) {
    return { ok: false, issues: [{ path: 'kind', rule: 'required', message: `kind is required; Tern accepts ${KIND_LIST}.` }] };
  }
  if (typeof kind !== 'string') {
    return { ok: false, issues: [{ path: 'kind', rule: 'type', message: `kind must be a string, not ${describeValue(kind)}.` }] };
  }
  if (!isKind(kind)) {
    const guess = resolveKind(kind) ?? KINDS.find((k) => k.toLowerCase() === kind.toLowerCase());
    return {
      ok: false,
      issues: [
        {
          path: 'kind',
          rule: 'unknown_kind',
          message: `kind ${JSON.stringify(kind)} is not supported; Tern accepts ${KIND_LIST}.${guess ? ` Did you mean ${guess}?` : ''}`,
        },
      ],
    };
  }

  const apiVersion = doc.apiVersion;
  const accepted = KIND_API_VERSIONS[kind].join(', ');
  if (apiVersion === undefined || apiVersion === null) {
    return { ok: false, issues: [{ path: 'apiVersion', rule: 'required', message: `apiVersion is required; ${kind} is served at ${accepted}.` }] };
  }
  if (!isAcceptedApiVersion(kind, apiVersion)) {
    return {
      ok: false,
      issues: [
        {
          path: 'apiVersion',
          rule: 'unsupported_api_version',
          message: `apiVersion ${typeof apiVersion === 'string' ? JSON.stringify(apiVersion) : describeValue(apiVersion)} is not served for ${kind}; use one of ${accepted}.`,
        },
      ],
    };
  }

  const result = RESOURCE_SCHEMAS[kind].safeParse(doc, { reportInput: true });
  if (result.success) return { ok: true, resource: result.data as MeshResource };
  return { ok: false, issues: fromZodIssues(result.error.issues) };
}
