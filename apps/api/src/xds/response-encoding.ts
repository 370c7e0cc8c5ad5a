import type { AnyMessage, DiscoveryResponse } from '@tern/xds';

// The wire encoding of a state-of-the-world DiscoveryResponse, for grpc-js's response serializer.
// A change reaching every proxy serializes one response per proxy, each mostly the same encoded
// resources: protobufjs would build a writer per response and allocate its bytes, which grpc-js
// then copies into the framed message it sends. Here the bytes go into one reused buffer that
// grpc-js copies at once (it frames synchronously), so a response costs one allocation, not two.
//
//   DiscoveryResponse: 1 version_info, 2 resources (Any: 1 type_url, 2 value), 4 type_url,
//                      5 nonce, 6 control_plane (ControlPlane: 1 identifier)

const KNOWN = new Set(['version_info', 'resources', 'type_url', 'nonce', 'control_plane']);

/** Reused between calls; a response bigger than this gets its own buffer rather than growing it for good. */
const SCRATCH_MAX = 1 << 20;
let scratch = Buffer.allocUnsafe(64 * 1024);

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/** Tag, length and bytes of a length-delimited field of `len` bytes. */
const fieldSize = (len: number) => 1 + varintSize(len) + len;

function anySize(a: AnyMessage): number {
  return fieldSize(Buffer.byteLength(a.type_url)) + fieldSize(a.value.length);
}

/** A response with only the fields above (what SotwConnection builds): the caller's fallback handles anything else. */
function plainShape(res: DiscoveryResponse): boolean {
  for (const k in res) if (!KNOWN.has(k) && (res as unknown as Record<string, unknown>)[k] !== undefined) return false;
  if (!Array.isArray(res.resources)) return false;
  for (const r of res.resources) {
    if (typeof r?.type_url !== 'string' || !(r.value instanceof Uint8Array)) return false;
  }
  const cp = res.control_plane;
  if (cp !== undefined && (typeof cp !== 'object' || cp === null || Object.keys(cp).some((k) => k !== 'identifier'))) return false;
  const optionalString = (v: unknown) => v === undefined || typeof v === 'string';
  return optionalString(res.version_info) && optionalString(res.type_url) && optionalString(res.nonce) && optionalString(cp?.identifier);
}

/**
 * The encoded response, or undefined if `res` has a shape this does not handle. The result may be
 * a view of a buffer the next call overwrites: use it before calling again.
 */
export function encodeDiscoveryResponse(res: DiscoveryResponse): Buffer | undefined {
  if (!plainShape(res)) return undefined;
  // Present string fields are written even when empty, as protobufjs does: the same bytes.
  const version = res.version_info as string | undefined;
  const typeUrl = res.type_url as string | undefined;
  const nonce = res.nonce as string | undefined;
  const identifier = res.control_plane?.identifier;
  const byteLength = (v: string | undefined) => (v === undefined ? -1 : Buffer.byteLength(v));
  const versionLen = byteLength(version);
  const typeUrlLen = byteLength(typeUrl);
  const nonceLen = byteLength(nonce);
  const identifierLen = byteLength(identifier);
  const cpLen = identifierLen >= 0 ? fieldSize(identifierLen) : 0;
  let size = 0;
  if (versionLen >= 0) size += fieldSize(versionLen);
  const anySizes = res.resources.map(anySize);
  for (const s of anySizes) size += fieldSize(s);
  if (typeUrlLen >= 0) size += fieldSize(typeUrlLen);
  if (nonceLen >= 0) size += fieldSize(nonceLen);
  if (res.control_plane) size += fieldSize(cpLen);

  let buf: Buffer;
  if (size <= SCRATCH_MAX) {
    if (scratch.length < size) scratch = Buffer.allocUnsafe(Math.min(SCRATCH_MAX, Math.max(size, scratch.length * 2)));
    buf = scratch;
  } else {
    buf = Buffer.allocUnsafe(size);
  }
  let pos = 0;
  const str = (tag: number, s: string, len: number) => {
    buf[pos++] = tag;
    pos = writeVarint(buf, pos, len);
    pos += buf.write(s, pos, len, 'utf8');
  };
  if (versionLen >= 0) str(0x0a, version!, versionLen);
  res.resources.forEach((r, i) => {
    buf[pos++] = 0x12;
    pos = writeVarint(buf, pos, anySizes[i]!);
    str(0x0a, r.type_url, Buffer.byteLength(r.type_url));
    buf[pos++] = 0x12;
    pos = writeVarint(buf, pos, r.value.length);
    buf.set(r.value, pos);
    pos += r.value.length;
  });
  if (typeUrlLen >= 0) str(0x22, typeUrl!, typeUrlLen);
  if (nonceLen >= 0) str(0x2a, nonce!, nonceLen);
  if (res.control_plane) {
    buf[pos++] = 0x32;
    pos = writeVarint(buf, pos, cpLen);
    if (identifierLen >= 0) str(0x0a, identifier!, identifierLen);
  }
  if (pos !== size) throw new Error(`DiscoveryResponse encoding: wrote ${pos} bytes, expected ${size}`);
  return buf.subarray(0, size);
}
