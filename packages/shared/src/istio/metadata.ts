import { z } from 'zod';

import { report } from './issues.ts';
import { dns1123Label, dns1123Subdomain, labelMap, qualifiedNameProblem } from './names.ts';
import { intIn } from './numbers.ts';

// Kubernetes ObjectMeta as a client may send it. Server-populated fields (uid, resourceVersion,
// managedFields, ...) are accepted so that `kubectl get -o yaml` output can be re-applied, but
// they carry no meaning here.

/** Kubernetes caps the total size of all annotations on one object. */
export const MAX_ANNOTATIONS_BYTES = 256 * 1024;

export const DEFAULT_NAMESPACE = 'default';

const annotationMap = () =>
  z.record(z.string(), z.string()).superRefine((annotations, ctx) => {
    let bytes = 0;
    for (const [key, value] of Object.entries(annotations)) {
      bytes += new TextEncoder().encode(key).length + new TextEncoder().encode(value).length;
      const p = qualifiedNameProblem(key, 'annotation_key');
      if (p) report(ctx, p.rule, `is not a valid annotation key: it ${p.predicate}`, [key]);
    }
    if (bytes > MAX_ANNOTATIONS_BYTES) {
      report(ctx, 'max_length', `must total at most ${MAX_ANNOTATIONS_BYTES} bytes of keys and values (they total ${bytes})`);
    }
  });

const ownerReferenceSchema = z.strictObject({
  apiVersion: z.string(),
  kind: z.string(),
  name: z.string(),
  uid: z.string(),
  controller: z.boolean().optional(),
  blockOwnerDeletion: z.boolean().optional(),
});

const managedFieldsEntrySchema = z.strictObject({
  manager: z.string().optional(),
  operation: z.enum(['Apply', 'Update']).optional(),
  apiVersion: z.string().optional(),
  time: z.string().optional(),
  fieldsType: z.string().optional(),
  fieldsV1: z.record(z.string(), z.unknown()).optional(),
  subresource: z.string().optional(),
});

export const objectMetaSchema = z.strictObject({
  name: dns1123Subdomain(),
  namespace: dns1123Label().default(DEFAULT_NAMESPACE),
  labels: labelMap().optional(),
  annotations: annotationMap().optional(),
  // A generated name would make `apply` create a new object every time it is run.
  generateName: z
    .custom<never>(() => false, {
      error: 'is not supported: give metadata.name, so that applying the same file twice updates one resource',
      params: { rule: 'unsupported_field' },
    })
    .optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  generation: intIn({ min: 0, max: Number.MAX_SAFE_INTEGER }).optional(),
  // `kubectl create --dry-run -o yaml` writes `creationTimestamp: null`.
  creationTimestamp: z.string().nullable().optional(),
  deletionTimestamp: z.string().optional(),
  deletionGracePeriodSeconds: intIn({ min: 0, max: Number.MAX_SAFE_INTEGER }).optional(),
  finalizers: z.array(z.string()).optional(),
  ownerReferences: z.array(ownerReferenceSchema).optional(),
  managedFields: z.array(managedFieldsEntrySchema).optional(),
  selfLink: z.string().optional(),
});
export type ObjectMeta = z.infer<typeof objectMetaSchema>;
