import { z } from 'zod';

import { report } from './issues.ts';
import { isIP } from './net.ts';

// Name rules shared by Kubernetes object metadata and by Istio's own name-like fields. Each
// check returns null when the value is fine, or the rule it breaks and a predicate saying why,
// so the message can name the first offending character instead of only quoting a regex.

export interface NameProblem {
  rule: string;
  predicate: string;
}

function codePoint(ch: string): string {
  return `U+${(ch.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Describes the first character of `s` that `allowed` rejects, or null. */
function badCharacter(s: string, allowed: RegExp): string | null {
  for (const ch of s) {
    if (allowed.test(ch)) continue;
    const cp = ch.codePointAt(0) ?? 0;
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) return `contains the control character ${codePoint(ch)}`;
    if (cp > 0x7f) return `contains the non-ASCII character ${JSON.stringify(ch)} (${codePoint(ch)})`;
    if (/[A-Z]/.test(ch)) return `contains the uppercase letter "${ch}"; it must be lowercase`;
    if (ch === ' ') return 'contains a space';
    return `contains the character ${JSON.stringify(ch)}, which is not allowed`;
  }
  return null;
}

const LOWER_ALNUM_DASH = /[a-z0-9-]/;
const LOWER_ALNUM_DASH_DOT = /[a-z0-9.-]/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const SUBDOMAIN_WORDS = "a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit)";
const LABEL_WORDS = "a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit)";

export function dns1123SubdomainProblem(s: string): NameProblem | null {
  if (s.length === 0) return { rule: 'dns1123_subdomain', predicate: `must not be empty; it must be ${SUBDOMAIN_WORDS}` };
  const bad = badCharacter(s, LOWER_ALNUM_DASH_DOT);
  if (bad) return { rule: 'dns1123_subdomain', predicate: `must be ${SUBDOMAIN_WORDS}, but it ${bad}` };
  if (s.length > 253) return { rule: 'max_length', predicate: `must be at most 253 characters long (it has ${s.length})` };
  if (!DNS1123_SUBDOMAIN.test(s)) {
    return {
      rule: 'dns1123_subdomain',
      predicate: `must be ${SUBDOMAIN_WORDS}; each '.'-separated part must start and end with a letter or digit (got ${JSON.stringify(s)})`,
    };
  }
  return null;
}

export function dns1123LabelProblem(s: string): NameProblem | null {
  if (s.length === 0) return { rule: 'dns1123_label', predicate: `must not be empty; it must be ${LABEL_WORDS}` };
  const bad = badCharacter(s, LOWER_ALNUM_DASH);
  if (bad) return { rule: 'dns1123_label', predicate: `must be ${LABEL_WORDS}, but it ${bad}` };
  if (s.length > 63) return { rule: 'max_length', predicate: `must be at most 63 characters long (it has ${s.length})` };
  if (!DNS1123_LABEL.test(s)) {
    return { rule: 'dns1123_label', predicate: `must be ${LABEL_WORDS} (got ${JSON.stringify(s)})` };
  }
  return null;
}

/** A string field holding a DNS-1123 subdomain (object names). */
export const dns1123Subdomain = () =>
  z.string().superRefine((s, ctx) => {
    const p = dns1123SubdomainProblem(s);
    if (p) report(ctx, p.rule, p.predicate);
  });

/** A string field holding a DNS-1123 label (namespaces, subset names). */
export const dns1123Label = () =>
  z.string().superRefine((s, ctx) => {
    const p = dns1123LabelProblem(s);
    if (p) report(ctx, p.rule, p.predicate);
  });

// ---- Kubernetes label keys and values -------------------------------------------------------

const QUALIFIED_NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const QUALIFIED_CHARS = /[-A-Za-z0-9_.]/;

/** Kubernetes "qualified name": an optional DNS-subdomain prefix and '/', then a name ≤ 63. */
export function qualifiedNameProblem(key: string, rule: string): NameProblem | null {
  const parts = key.split('/');
  if (parts.length > 2) return { rule, predicate: "may contain at most one '/' (between a DNS prefix and the name)" };
  let name = key;
  if (parts.length === 2) {
    const prefix = parts[0] as string;
    name = parts[1] as string;
    const p = dns1123SubdomainProblem(prefix);
    if (p) return { rule, predicate: `has an invalid prefix ${JSON.stringify(prefix)}: it ${p.predicate}` };
  }
  if (name.length === 0) return { rule, predicate: 'must have a non-empty name part' };
  const bad = badCharacter(name, QUALIFIED_CHARS);
  if (bad) return { rule, predicate: `must be a qualified name (letters, digits, '-', '_' and '.'), but it ${bad}` };
  if (name.length > 63) return { rule, predicate: `must have a name part of at most 63 characters (it has ${name.length})` };
  if (!QUALIFIED_NAME_PART.test(name)) return { rule, predicate: 'must start and end its name part with a letter or digit' };
  return null;
}

export function labelValueProblem(value: string): NameProblem | null {
  if (value === '') return null;
  const bad = badCharacter(value, QUALIFIED_CHARS);
  if (bad) return { rule: 'label_value', predicate: `must be a label value (letters, digits, '-', '_' and '.'), but it ${bad}` };
  if (value.length > 63) return { rule: 'label_value', predicate: `must be at most 63 characters long (it has ${value.length})` };
  if (!QUALIFIED_NAME_PART.test(value)) return { rule: 'label_value', predicate: 'must be empty or start and end with a letter or digit' };
  return null;
}

export interface LabelMapOptions {
  /** Istio selectors reject '*' in keys and values: selection is exact, not a pattern. */
  noWildcard?: boolean;
  maxProperties?: number;
}

/** A map of Kubernetes labels, as in metadata.labels, selectors and subset labels. */
export function labelMap(opts: LabelMapOptions = {}) {
  return z.record(z.string(), z.string()).superRefine((labels, ctx) => {
    const keys = Object.keys(labels);
    if (opts.maxProperties !== undefined && keys.length > opts.maxProperties) {
      report(ctx, 'max_properties', `must have at most ${opts.maxProperties} entries (it has ${keys.length})`);
    }
    for (const key of keys) {
      const value = labels[key] as string;
      if (opts.noWildcard && key.includes('*')) {
        report(ctx, 'label_key', 'must not contain the wildcard "*" in its key; selectors match labels exactly', [key]);
        continue;
      }
      if (key.length === 0) {
        report(ctx, 'label_key', 'must not have an empty key', [key]);
        continue;
      }
      const kp = qualifiedNameProblem(key, 'label_key');
      if (kp) report(ctx, kp.rule, `is not a valid label key: it ${kp.predicate}`, [key]);
      if (opts.noWildcard && value.includes('*')) {
        report(ctx, 'label_value', 'must not contain the wildcard "*"; selectors match labels exactly', [key]);
        continue;
      }
      const vp = labelValueProblem(value);
      if (vp) report(ctx, vp.rule, vp.predicate, [key]);
    }
  });
}

// ---- Host names ------------------------------------------------------------------------------

// Istio's host labels accept upper case (DNS is case-insensitive); only the first label may be a
// wildcard, as "*" or a "*"-prefixed label ("*.example.com", "*-dev.example.com").
const HOST_LABEL = /^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$/;
const WILDCARD_LABEL = /^(\*|\*-?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)$/;
const HOST_CHARS = /[-A-Za-z0-9.*]/;

export interface HostOptions {
  wildcard?: boolean;
  ip?: boolean;
}

/** Checks a host name as Istio's ValidateWildcardDomain does; null when valid. */
export function hostProblem(host: string, opts: HostOptions = {}): string | null {
  if (host.length === 0) return 'must not be empty';
  if (opts.ip && isIP(host)) return null;
  const bad = badCharacter(host, HOST_CHARS);
  if (bad) return `must be a host name such as "reviews" or "reviews.prod.svc.cluster.local", but it ${bad}`;
  if (host.length > 255) return `must be at most 255 characters long (it has ${host.length})`;
  const labels = host.split('.');
  // A single trailing dot (a rooted name) is allowed.
  if (labels.length > 1 && labels[labels.length - 1] === '') labels.pop();
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i] as string;
    if (label.includes('*')) {
      if (!opts.wildcard) return 'must not contain a wildcard "*"';
      if (i !== 0 || !WILDCARD_LABEL.test(label)) return 'may only use "*" as the first label (as in "*.example.com")';
      continue;
    }
    if (label.length === 0) return 'must not contain empty labels (two dots in a row, or a leading dot)';
    if (label.length > 63) return `has a label longer than 63 characters (${JSON.stringify(label.slice(0, 20))}…)`;
    if (!HOST_LABEL.test(label)) return `has the label ${JSON.stringify(label)}, which must start and end with a letter or digit`;
  }
  return null;
}

/** A host-name string field. */
export function hostName(opts: HostOptions = {}) {
  return z.string().superRefine((s, ctx) => {
    const p = hostProblem(s, opts);
    if (p) report(ctx, 'hostname', p);
  });
}

// ---- Port names ----------------------------------------------------------------------------

const PORT_NAME = /^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/;

export function portNameProblem(name: string): string | null {
  if (name.length === 0) return 'must not be empty';
  if (name.length > 63) return `must be at most 63 characters long (it has ${name.length})`;
  if (!PORT_NAME.test(name)) return "must be a port name: letters, digits and '-', starting and ending with a letter or digit";
  return null;
}

// ---- Gateway references --------------------------------------------------------------------

/** A VirtualService gateway reference: "mesh", "<namespace>/<name>" or a (legacy) FQDN. */
export function gatewayNameProblem(g: string): string | null {
  if (g === 'mesh') return null;
  const slash = g.indexOf('/');
  if (slash >= 0) {
    const ns = g.slice(0, slash);
    const name = g.slice(slash + 1);
    if (ns === '' || name === '') return 'must be "<namespace>/<gateway name>" with neither part empty';
    if (dns1123LabelProblem(ns)) return `has an invalid namespace ${JSON.stringify(ns)}: it must be a DNS-1123 label`;
    if (dns1123LabelProblem(name)) return `has an invalid gateway name ${JSON.stringify(name)}: it must be a DNS-1123 label`;
    return null;
  }
  const p = hostProblem(g);
  return p ? `must be "mesh", "<namespace>/<gateway name>" or a gateway name: it ${p}` : null;
}

export function gatewayList() {
  return z.array(z.string()).superRefine((list, ctx) => {
    list.forEach((g, i) => {
      const p = gatewayNameProblem(g);
      if (p) report(ctx, 'gateway_name', p, [i]);
    });
  });
}

// ---- exportTo -------------------------------------------------------------------------------

/**
 * exportTo: "." (this namespace), "*" (all), namespace names, and for ServiceEntry "~" (none).
 * "*" and "~" only make sense alone.
 */
export function exportTo(opts: { allowNone?: boolean } = {}) {
  return z.array(z.string()).superRefine((list, ctx) => {
    const seen = new Set<string>();
    list.forEach((e, i) => {
      if (seen.has(e)) report(ctx, 'unique', `repeats ${JSON.stringify(e)}`, [i]);
      seen.add(e);
      if (e === '.' || e === '*') return;
      if (e === '~') {
        if (!opts.allowNone) report(ctx, 'export_to', '"~" (export to no namespace) is only allowed on a ServiceEntry', [i]);
        return;
      }
      const p = dns1123LabelProblem(e);
      if (p) report(ctx, 'export_to', `must be ".", "*"${opts.allowNone ? ', "~"' : ''} or a namespace name: it ${p.predicate}`, [i]);
    });
    if (list.length > 1 && list.includes('*')) report(ctx, 'export_to', 'cannot combine "*" (all namespaces) with other entries');
    if (list.length > 1 && list.includes('~')) report(ctx, 'export_to', 'cannot combine "~" (no namespace) with other entries');
  });
}
