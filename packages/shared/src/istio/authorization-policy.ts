import { z } from 'zod';

import { report } from './issues.ts';
import { isIPOrCidr } from './net.ts';
import { checkOneSelector, policyTargetReferenceSchema, workloadSelectorSchema } from './selectors.ts';

// security.istio.io AuthorizationPolicy. Structure from the CRD; the rule checks are those of
// istiod's ValidateAuthorizationPolicy that need nothing but this resource.

/** An AuthorizationPolicy value list: no element may be empty (an empty string matches nothing useful). */
const valueList = (opts: { maxItems?: number; maxLength?: number; ipBlocks?: boolean; ports?: boolean } = {}) => {
  let list = z.array(opts.maxLength !== undefined ? z.string().max(opts.maxLength) : z.string());
  if (opts.maxItems !== undefined) list = list.max(opts.maxItems);
  return list.superRefine((values, ctx) => {
    values.forEach((v, i) => {
      if (v === '') {
        report(ctx, 'not_empty', 'must not be an empty string', [i]);
        return;
      }
      if (opts.ipBlocks && !isIPOrCidr(v)) report(ctx, 'cidr', `must be an IP address or CIDR block such as "10.0.0.0/16" (got ${JSON.stringify(v)})`, [i]);
      if (opts.ports) {
        const n = /^[0-9]+$/.test(v) ? Number(v) : NaN;
        if (!(n >= 1 && n <= 65535)) report(ctx, 'port', `must be a port number from 1 to 65535 (got ${JSON.stringify(v)})`, [i]);
      }
    });
  });
};

const SOURCE_FIELDS = [
  'principals',
  'notPrincipals',
  'requestPrincipals',
  'notRequestPrincipals',
  'namespaces',
  'notNamespaces',
  'serviceAccounts',
  'notServiceAccounts',
  'ipBlocks',
  'notIpBlocks',
  'remoteIpBlocks',
  'notRemoteIpBlocks',
] as const;

export const authorizationSourceSchema = z
  .strictObject({
    principals: valueList().optional(),
    notPrincipals: valueList().optional(),
    requestPrincipals: valueList().optional(),
    notRequestPrincipals: valueList().optional(),
    namespaces: valueList().optional(),
    notNamespaces: valueList().optional(),
    serviceAccounts: valueList({ maxItems: 16, maxLength: 320 }).optional(),
    notServiceAccounts: valueList({ maxItems: 16, maxLength: 320 }).optional(),
    ipBlocks: valueList({ ipBlocks: true }).optional(),
    notIpBlocks: valueList({ ipBlocks: true }).optional(),
    remoteIpBlocks: valueList({ ipBlocks: true }).optional(),
    notRemoteIpBlocks: valueList({ ipBlocks: true }).optional(),
  })
  .superRefine((s, ctx) => {
    const n = (k: (typeof SOURCE_FIELDS)[number]) => s[k]?.length ?? 0;
    // serviceAccounts is shorthand for principals in a namespace; mixing the two is ambiguous.
    if (n('serviceAccounts') + n('notServiceAccounts') > 0 && n('principals') + n('notPrincipals') + n('namespaces') + n('notNamespaces') > 0) {
      report(ctx, 'service_accounts_with_principals', 'cannot set serviceAccounts/notServiceAccounts together with principals or namespaces');
    }
    if (SOURCE_FIELDS.every((k) => n(k) === 0)) report(ctx, 'not_empty', `must set at least one of ${SOURCE_FIELDS.join(', ')}`);
  });
export type AuthorizationSource = z.infer<typeof authorizationSourceSchema>;

const OPERATION_FIELDS = ['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths'] as const;

export const authorizationOperationSchema = z
  .strictObject({
    hosts: valueList().optional(),
    notHosts: valueList().optional(),
    ports: valueList({ ports: true }).optional(),
    notPorts: valueList({ ports: true }).optional(),
    methods: valueList().optional(),
    notMethods: valueList().optional(),
    paths: valueList().optional(),
    notPaths: valueList().optional(),
  })
  .superRefine((o, ctx) => {
    if (OPERATION_FIELDS.every((k) => (o[k]?.length ?? 0) === 0)) report(ctx, 'not_empty', `must set at least one of ${OPERATION_FIELDS.join(', ')}`);
  });
export type AuthorizationOperation = z.infer<typeof authorizationOperationSchema>;

export const authorizationConditionSchema = z
  .strictObject({
    key: z.string().min(1),
    values: valueList().optional(),
    notValues: valueList().optional(),
  })
  .superRefine((c, ctx) => {
    if ((c.values?.length ?? 0) === 0 && (c.notValues?.length ?? 0) === 0) {
      report(ctx, 'not_empty', `must set values or notValues for the key ${JSON.stringify(c.key)}`);
    }
  });
export type AuthorizationCondition = z.infer<typeof authorizationConditionSchema>;

export const authorizationRuleFromSchema = z.strictObject({ source: authorizationSourceSchema });
export const authorizationRuleToSchema = z.strictObject({ operation: authorizationOperationSchema });

export const authorizationRuleSchema = z.strictObject({
  // An explicitly empty list would match nothing; Istio rejects it rather than guess.
  from: z.array(authorizationRuleFromSchema).min(1).max(512).optional(),
  to: z.array(authorizationRuleToSchema).min(1).optional(),
  when: z.array(authorizationConditionSchema).optional(),
});
export type AuthorizationRule = z.infer<typeof authorizationRuleSchema>;

export const AUTHORIZATION_ACTIONS = ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'] as const;

export const extensionProviderSchema = z.strictObject({
  name: z.string().optional(),
});

// Source fields and conditions the CUSTOM action cannot evaluate (the external authorizer sees
// the request, not Istio's peer identity).
const CUSTOM_UNSUPPORTED_SOURCE = ['namespaces', 'notNamespaces', 'serviceAccounts', 'notServiceAccounts', 'principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals'] as const;

export const authorizationPolicySpecSchema = z
  .strictObject({
    selector: workloadSelectorSchema.optional(),
    targetRef: policyTargetReferenceSchema.optional(),
    targetRefs: z.array(policyTargetReferenceSchema).max(16).optional(),
    rules: z.array(authorizationRuleSchema).max(512).optional(),
    action: z.enum(AUTHORIZATION_ACTIONS).optional(),
    provider: extensionProviderSchema.optional(),
  })
  .superRefine((ap, ctx) => {
    checkOneSelector(ap, ctx);
    const action = ap.action ?? 'ALLOW';
    if (action === 'CUSTOM') {
      if (ap.rules === undefined) {
        report(ctx, 'rules_required', 'must be set for the CUSTOM action (use [{}] to send every request to the provider)', ['rules']);
      } else if (!ap.provider?.name) {
        report(ctx, 'required', 'is required for the CUSTOM action', ['provider', 'name']);
      }
      ap.rules?.forEach((rule, i) => {
        rule.from?.forEach((f, j) => {
          for (const k of CUSTOM_UNSUPPORTED_SOURCE) {
            if (f.source[k] !== undefined) report(ctx, 'not_supported', 'is not supported with the CUSTOM action', ['rules', i, 'from', j, 'source', k]);
          }
        });
        rule.when?.forEach((c, j) => {
          if (['source.namespace', 'source.serviceAccount', 'source.principal'].includes(c.key) || c.key.startsWith('request.auth.')) {
            report(ctx, 'not_supported', `uses the key ${JSON.stringify(c.key)}, which is not supported with the CUSTOM action`, ['rules', i, 'when', j, 'key']);
          }
        });
      });
    } else if (ap.provider !== undefined) {
      report(ctx, 'provider_requires_custom', `can only be set with action CUSTOM (action is ${action})`, ['provider']);
    }
    if (action === 'DENY' && ap.rules === undefined) {
      report(ctx, 'rules_required', 'must be set for the DENY action, which without rules would never match (use [{}] to deny every request)', ['rules']);
    }
  });
export type AuthorizationPolicySpec = z.infer<typeof authorizationPolicySpecSchema>;
