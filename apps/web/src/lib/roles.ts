import type { Role } from './api-types.ts';

const ORDER: Role[] = ['viewer', 'editor', 'admin'];

export function roleAllows(have: Role | undefined, need: Role): boolean {
  return have !== undefined && ORDER.indexOf(have) >= ORDER.indexOf(need);
}

/** Why a control is disabled, or undefined when the role allows it. */
export function deniedReason(have: Role | undefined, need: Role): string | undefined {
  if (roleAllows(have, need)) return undefined;
  return `Needs the ${need} role; you are signed in as ${have ?? 'nobody'}.`;
}
