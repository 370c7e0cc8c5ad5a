import { z } from 'zod';
import { namespaceName, objectName, resolveKind } from '@tern/shared';
import { ValidationError } from '../../errors.ts';

export const kindParam = z.string().min(1).max(64).describe('Kind, plural or short name: VirtualService, virtualservices, vs, …');
export const namespaceParam = namespaceName;
export const nameParam = objectName;

export function toKind(s: string): string {
  const kind = resolveKind(s);
  if (!kind) {
    throw new ValidationError(`unknown kind "${s}"`, [
      { path: 'kind', rule: 'unknown_kind', message: `unknown kind "${s}"; use VirtualService, DestinationRule, ServiceEntry, PeerAuthentication or AuthorizationPolicy` },
    ]);
  }
  return kind;
}
