import protobuf from 'protobufjs';
import { messageType, typeNameOf, typeUrlOf, UnknownTypeError } from './protos.ts';

/**
 * Proto3 JSON mapping for Envoy resources, with proto field names (snake_case, as Envoy's YAML and
 * docs spell them). protobufjs' own fromObject/toObject ignore unknown fields and do not know the
 * well-known types' JSON forms; its global `wrappers` hook would also change how grpc-js-xds decodes
 * in the same process, so the mapping is done here, by walking the descriptor.
 *
 * Differences from strict proto3 JSON, chosen for the code that reads the objects: 64-bit integers
 * come out as JS numbers (config values never approach 2^53), default values are omitted.
 */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export class XdsJsonError extends Error {
  constructor(
    readonly path: string,
    readonly rule: string,
  ) {
    super(`${path || '(root)'}: ${rule}`);
  }
}

// google/protobuf/struct.proto comes from protobufjs' bundled definitions, whose Value fields are
// camelCase (stringValue, structValue, ...) whatever keepCase says; Any keeps type_url.
const WRAPPERS = new Set([
  'google.protobuf.DoubleValue',
  'google.protobuf.FloatValue',
  'google.protobuf.Int64Value',
  'google.protobuf.UInt64Value',
  'google.protobuf.Int32Value',
  'google.protobuf.UInt32Value',
  'google.protobuf.BoolValue',
  'google.protobuf.StringValue',
  'google.protobuf.BytesValue',
]);

const INT_TYPES = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32', 'int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const UNSIGNED = new Set(['uint32', 'fixed32', 'uint64', 'fixed64']);
const INT32_TYPES = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32']);

function fullName(type: protobuf.Type): string {
  return type.fullName.replace(/^\./, '');
}

function join(path: string, key: string | number): string {
  return typeof key === 'number' ? `${path}[${key}]` : path ? `${path}.${key}` : key;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

const DURATION_RE = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/;

export function parseDuration(text: string, path = ''): { seconds: number; nanos: number } {
  const m = DURATION_RE.exec(text);
  if (!m) throw new XdsJsonError(path, `must be a duration such as "1.5s", got ${JSON.stringify(text)}`);
  const sign = m[1] ? -1 : 1;
  const seconds = Number(m[2]);
  const nanos = m[3] ? Number(m[3].padEnd(9, '0')) : 0;
  if (seconds > 315_576_000_000) throw new XdsJsonError(path, 'duration is out of range');
  return { seconds: sign * seconds, nanos: sign * nanos };
}

export function formatDuration(d: { seconds?: number | string | protobuf.Long; nanos?: number }): string {
  const seconds = Number(d.seconds ?? 0);
  const nanos = d.nanos ?? 0;
  const negative = seconds < 0 || nanos < 0;
  const abs = Math.abs(seconds);
  const frac = Math.abs(nanos);
  if (frac === 0) return `${negative ? '-' : ''}${abs}s`;
  const digits = String(frac).padStart(9, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${abs}.${digits}s`;
}

/** Duration JSON ("1.5s") to milliseconds; undefined stays undefined. */
export function durationMs(value: Json | undefined): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new XdsJsonError('', 'duration must be a string');
  const d = parseDuration(value);
  return d.seconds * 1000 + d.nanos / 1e6;
}

// ---------- JSON -> protobufjs object ----------

function scalarFromJson(fieldType: string, value: unknown, path: string): unknown {
  if (fieldType === 'string') {
    if (typeof value !== 'string') throw new XdsJsonError(path, 'must be a string');
    return value;
  }
  if (fieldType === 'bool') {
    if (typeof value !== 'boolean') throw new XdsJsonError(path, 'must be a boolean');
    return value;
  }
  if (fieldType === 'bytes') {
    if (typeof value !== 'string') throw new XdsJsonError(path, 'must be a base64 string');
    return Buffer.from(value, 'base64');
  }
  if (fieldType === 'double' || fieldType === 'float') {
    if (typeof value === 'number') return value;
    if (value === 'NaN' || value === 'Infinity' || value === '-Infinity') return Number(value);
    if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
    throw new XdsJsonError(path, 'must be a number');
  }
  if (INT_TYPES.has(fieldType)) {
    const n = typeof value === 'number' ? value : typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : NaN;
    if (!Number.isInteger(n)) throw new XdsJsonError(path, 'must be an integer');
    if (UNSIGNED.has(fieldType) && n < 0) throw new XdsJsonError(path, 'must not be negative');
    if (INT32_TYPES.has(fieldType) && (n > 0xffffffff || (!UNSIGNED.has(fieldType) && (n > 0x7fffffff || n < -0x80000000)))) {
      throw new XdsJsonError(path, 'is out of range for a 32-bit integer');
    }
    return typeof value === 'string' ? value : n;
  }
  throw new XdsJsonError(path, `unsupported scalar type ${fieldType}`);
}

function structValueFromJson(value: unknown, path: string): unknown {
  if (value === null) return { nullValue: 'NULL_VALUE' };
  if (typeof value === 'number') return { numberValue: value };
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'boolean') return { boolValue: value };
  if (Array.isArray(value)) return { listValue: { values: value.map((v, i) => structValueFromJson(v, join(path, i))) } };
  if (isPlainObject(value)) return { structValue: structFromJson(value, path) };
  throw new XdsJsonError(path, 'must be a JSON value');
}

function structFromJson(value: unknown, path: string): unknown {
  if (!isPlainObject(value)) throw new XdsJsonError(path, 'must be an object');
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) fields[k] = structValueFromJson(v, join(path, k));
  return { fields };
}

function fieldValueFromJson(field: protobuf.Field, value: unknown, path: string): unknown {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return messageFromJson(resolved, value, path);
  if (resolved instanceof protobuf.Enum) {
    if (typeof value === 'string') {
      if (!(value in resolved.values)) {
        throw new XdsJsonError(path, `must be one of ${Object.keys(resolved.values).join(', ')}`);
      }
      return resolved.values[value];
    }
    if (typeof value === 'number' && Number.isInteger(value)) return value;
    throw new XdsJsonError(path, `must be one of ${Object.keys(resolved.values).join(', ')}`);
  }
  return scalarFromJson(field.type, value, path);
}

function messageFromJson(type: protobuf.Type, value: unknown, path: string): unknown {
  const name = fullName(type);
  switch (name) {
    case 'google.protobuf.Any':
      return { ...packAnyJson(value, path) };
    case 'google.protobuf.Duration':
      if (typeof value === 'string') return parseDuration(value, path);
      break;
    case 'google.protobuf.Timestamp':
      if (typeof value === 'string') {
        const ms = Date.parse(value);
        if (Number.isNaN(ms)) throw new XdsJsonError(path, 'must be an RFC 3339 timestamp');
        return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
      }
      break;
    case 'google.protobuf.Struct':
      return structFromJson(value, path);
    case 'google.protobuf.Value':
      return structValueFromJson(value, path);
    case 'google.protobuf.ListValue':
      if (!Array.isArray(value)) throw new XdsJsonError(path, 'must be a list');
      return { values: value.map((v, i) => structValueFromJson(v, join(path, i))) };
    case 'google.protobuf.Empty':
      if (!isPlainObject(value) || Object.keys(value).length > 0) throw new XdsJsonError(path, 'must be an empty object');
      return {};
    default:
      if (WRAPPERS.has(name)) {
        const inner = type.fields.value!;
        if (isPlainObject(value) && 'value' in value && Object.keys(value).length === 1) {
          return { value: scalarFromJson(inner.type, value.value, join(path, 'value')) };
        }
        return { value: scalarFromJson(inner.type, value, path) };
      }
  }
  if (!isPlainObject(value)) throw new XdsJsonError(path, 'must be an object');
  const out: Record<string, unknown> = {};
  const oneofSeen = new Map<string, string>();
  for (const [key, raw] of Object.entries(value)) {
    // Proto3 JSON parsers accept the lowerCamelCase name as well as the proto name.
    const field = type.fields[key] ?? camelIndex(type).get(key);
    const fieldPath = join(path, key);
    if (!field) throw new XdsJsonError(fieldPath, `unknown field for ${name}`);
    if (raw === null && fullName(type) !== 'google.protobuf.Value') continue;
    if (field.partOf) {
      const other = oneofSeen.get(field.partOf.name);
      if (other) throw new XdsJsonError(fieldPath, `only one of ${other} and ${field.name} may be set (oneof ${field.partOf.name})`);
      oneofSeen.set(field.partOf.name, field.name);
    }
    if (field.map) {
      if (!isPlainObject(raw)) throw new XdsJsonError(fieldPath, 'must be an object (map)');
      const entries: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(raw)) entries[k] = fieldValueFromJson(field, v, join(fieldPath, k));
      out[field.name] = entries;
    } else if (field.repeated) {
      if (!Array.isArray(raw)) throw new XdsJsonError(fieldPath, 'must be a list');
      out[field.name] = raw.map((v, i) => fieldValueFromJson(field, v, join(fieldPath, i)));
    } else {
      out[field.name] = fieldValueFromJson(field, raw, fieldPath);
    }
  }
  return out;
}

const camelIndexes = new WeakMap<protobuf.Type, Map<string, protobuf.Field>>();

function camelIndex(type: protobuf.Type): Map<string, protobuf.Field> {
  let index = camelIndexes.get(type);
  if (!index) {
    index = new Map(type.fieldsArray.map((f) => [f.name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase()), f]));
    camelIndexes.set(type, index);
  }
  return index;
}

function packAnyJson(value: unknown, path: string): { type_url: string; value: Uint8Array } {
  if (!isPlainObject(value)) throw new XdsJsonError(path, 'must be an object with "@type"');
  const typeUrl = value['@type'];
  if (typeof typeUrl !== 'string') throw new XdsJsonError(join(path, '@type'), 'is required');
  let inner: protobuf.Type;
  try {
    inner = messageType(typeUrl);
  } catch (err) {
    if (err instanceof UnknownTypeError) throw new XdsJsonError(join(path, '@type'), `unknown type ${typeNameOf(typeUrl)}`);
    throw err;
  }
  const { '@type': _ignored, ...rest } = value;
  const innerName = fullName(inner);
  const body = innerName.startsWith('google.protobuf.') && 'value' in rest && innerName !== 'google.protobuf.Struct' ? rest.value : rest;
  const obj = messageFromJson(inner, body, path);
  return { type_url: typeUrlOf(innerName), value: inner.encode(inner.fromObject(obj as Record<string, unknown>)).finish() };
}

/** Validates Envoy JSON against the message type and encodes it. Throws XdsJsonError naming the field. */
export function encodeJson(typeNameOrUrl: string, json: unknown): Uint8Array {
  const type = messageType(typeNameOrUrl);
  const obj = messageFromJson(type, json, '');
  return type.encode(type.fromObject(obj as Record<string, unknown>)).finish();
}

/** Envoy JSON with "@type" -> google.protobuf.Any ({type_url, value}) as gRPC messages carry it. */
export function packAny(json: JsonObject): { type_url: string; value: Buffer } {
  const packed = packAnyJson(json, '');
  return { type_url: packed.type_url, value: Buffer.from(packed.value.buffer, packed.value.byteOffset, packed.value.byteLength) };
}

/** Checks Envoy JSON without encoding the result; returns it unchanged. */
export function validateJson(typeNameOrUrl: string, json: unknown): void {
  messageFromJson(messageType(typeNameOrUrl), json, '');
}

// ---------- protobuf -> JSON ----------

const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: String, bytes: String, defaults: false, oneofs: false };

function structValueToJson(v: Record<string, unknown>): Json {
  if ('structValue' in v) return structToJson(v.structValue as Record<string, unknown>);
  if ('listValue' in v) return ((v.listValue as { values?: Record<string, unknown>[] }).values ?? []).map(structValueToJson);
  if ('stringValue' in v) return v.stringValue as string;
  if ('numberValue' in v) return v.numberValue as number;
  if ('boolValue' in v) return v.boolValue as boolean;
  return null;
}

function structToJson(s: Record<string, unknown>): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries((s.fields ?? {}) as Record<string, Record<string, unknown>>)) out[k] = structValueToJson(v);
  return out;
}

function valueToJson(field: protobuf.Field, v: unknown): Json {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return messageToJson(resolved, v as Record<string, unknown>);
  return v as Json;
}

function messageToJson(type: protobuf.Type, obj: Record<string, unknown>): Json {
  const name = fullName(type);
  switch (name) {
    case 'google.protobuf.Any': {
      const typeUrl = obj.type_url as string;
      const bytes = Buffer.from((obj.value as string | undefined) ?? '', 'base64');
      return decodeAnyJson(typeUrl, bytes);
    }
    case 'google.protobuf.Duration':
      return formatDuration(obj as { seconds?: number; nanos?: number });
    case 'google.protobuf.Timestamp':
      return new Date(Number(obj.seconds ?? 0) * 1000 + Number(obj.nanos ?? 0) / 1e6).toISOString();
    case 'google.protobuf.Struct':
      return structToJson(obj);
    case 'google.protobuf.Value':
      return structValueToJson(obj);
    case 'google.protobuf.ListValue':
      return ((obj.values ?? []) as Record<string, unknown>[]).map(structValueToJson);
    default:
      if (WRAPPERS.has(name)) {
        const inner = obj.value;
        if (inner !== undefined) return inner as Json;
        const t = type.fields.value!.type;
        return t === 'bool' ? false : t === 'string' || t === 'bytes' ? '' : 0;
      }
  }
  const out: JsonObject = {};
  for (const [key, v] of Object.entries(obj)) {
    const field = type.fields[key];
    if (!field) continue;
    if (field.map) {
      const m: JsonObject = {};
      for (const [k, mv] of Object.entries(v as Record<string, unknown>)) m[k] = valueToJson(field, mv);
      out[key] = m;
    } else if (field.repeated) {
      out[key] = (v as unknown[]).map((e) => valueToJson(field, e));
    } else {
      out[key] = valueToJson(field, v);
    }
  }
  return out;
}

function decodeAnyJson(typeUrl: string, bytes: Uint8Array): JsonObject {
  const inner = messageType(typeUrl);
  const json = messageToJson(inner, inner.toObject(inner.decode(bytes), TO_OBJECT));
  const innerName = fullName(inner);
  if (innerName.startsWith('google.protobuf.') && innerName !== 'google.protobuf.Struct' && (typeof json !== 'object' || json === null || Array.isArray(json))) {
    return { '@type': typeUrlOf(innerName), value: json };
  }
  return { '@type': typeUrlOf(innerName), ...(json as JsonObject) };
}

/** Decodes bytes of the given type to Envoy JSON (snake_case, "@type" for Any, "1.5s" durations). */
export function decodeJson(typeNameOrUrl: string, bytes: Uint8Array): JsonObject {
  const type = messageType(typeNameOrUrl);
  return messageToJson(type, type.toObject(type.decode(bytes), TO_OBJECT)) as JsonObject;
}

/** google.protobuf.Any as gRPC delivers it -> Envoy JSON with "@type". */
export function unpackAny(any: { type_url: string; value: Uint8Array }): JsonObject {
  return decodeAnyJson(any.type_url, any.value);
}

/** Envoy JSON normalised through the descriptor: unknown fields rejected, defaults dropped, forms canonical. */
export function normalizeJson(typeNameOrUrl: string, json: unknown): JsonObject {
  return decodeJson(typeNameOrUrl, encodeJson(typeNameOrUrl, json));
}
