// Address syntax checks written out by hand rather than with node:net, because this package is
// also loaded by the browser console.

const IPV4_OCTET = /^(0|[1-9][0-9]{0,2})$/;

export function isIPv4(s: string): boolean {
  const parts = s.split('.');
  if (parts.length !== 4) return false;
  // Leading zeros are rejected, as Go's netip does: "010" is octal to some parsers, decimal to others.
  return parts.every((p) => IPV4_OCTET.test(p) && Number(p) <= 255);
}

const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;

export function isIPv6(s: string): boolean {
  if (s.length === 0 || s.includes('%')) return false; // zones have no meaning in configuration
  let groupsNeeded = 8;
  let body = s;
  // An embedded IPv4 tail ("::ffff:10.0.0.1") stands for two groups.
  const lastColon = body.lastIndexOf(':');
  if (lastColon >= 0 && body.slice(lastColon + 1).includes('.')) {
    if (!isIPv4(body.slice(lastColon + 1))) return false;
    body = body.slice(0, lastColon + 1) + '0';
    groupsNeeded = 7;
  }
  const halves = body.split('::');
  if (halves.length > 2) return false;
  const parse = (part: string): string[] | null => {
    if (part === '') return [];
    const groups = part.split(':');
    return groups.every((g) => HEX_GROUP.test(g)) ? groups : null;
  };
  if (halves.length === 2) {
    const a = parse(halves[0] as string);
    const b = parse(halves[1] as string);
    if (!a || !b) return false;
    return a.length + b.length < groupsNeeded;
  }
  const all = parse(body);
  return all !== null && all.length === groupsNeeded;
}

export function isIP(s: string): boolean {
  return isIPv4(s) || isIPv6(s);
}

/** "10.0.0.0/8", "2001:db8::/32". */
export function isCidr(s: string): boolean {
  const slash = s.indexOf('/');
  if (slash < 0) return false;
  const addr = s.slice(0, slash);
  const bits = s.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(bits)) return false;
  const n = Number(bits);
  if (isIPv4(addr)) return n <= 32;
  if (isIPv6(addr)) return n <= 128;
  return false;
}

export function isIPOrCidr(s: string): boolean {
  return isIP(s) || isCidr(s);
}
