/**
 * The TypeScript type of the values a JSON schema accepts, as declaration text. build.mjs writes
 * one type per schema.json into lib/generated/validators.d.ts, and types each compiled validator
 * as a guard for it (`data is BridgeNetConf`), so a config that passed ajv is typed from the
 * same file ajv checked it against: no hand-kept interface to drift, and no casts.
 *
 * Only what our schemas use is understood: type (one or a list), properties, required,
 * additionalProperties, patternProperties, items, enum, const, local $ref, anyOf, oneOf and allOf.
 * Keywords that only narrow a value (minimum, pattern, minLength...) do not change its type.
 * Anything else types as `unknown`, which is always true, never a lie. An object not closed by
 * `additionalProperties: false` keeps an index signature of `unknown`: other plugins' keys pass. Pure.
 */

type Schema = Record<string, unknown>;

const isSchema = (v: unknown): v is Schema => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The schema a local `$ref` ("#/$defs/range") points at. */
function resolveRef(root: Schema, ref: string): Schema {
  if (!ref.startsWith('#')) throw new Error(`schema $ref ${ref}: only local references are supported`);
  let at: unknown = root;
  for (const part of ref.slice(1).split('/').filter(Boolean)) {
    const key = decodeURIComponent(part).replace(/~1/g, '/').replace(/~0/g, '~');
    at = isSchema(at) ? at[key] : undefined;
  }
  if (!isSchema(at)) throw new Error(`schema $ref ${ref} points at nothing`);
  return at;
}

/** A property name as a TypeScript key: bare when it is an identifier, else quoted. */
function key(name: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : JSON.stringify(name);
}

const union = (parts: string[]): string => {
  const uniq = [...new Set(parts)];
  if (uniq.length === 0) return 'never';
  if (uniq.includes('unknown')) return 'unknown';
  return uniq.length === 1 ? uniq[0]! : uniq.map(grouped).join(' | ');
};

/** A part of a union or intersection, in parentheses when it is one itself. */
const grouped = (p: string): string => (/ [|&] /.test(p) ? `(${p})` : p);

function objectType(schema: Schema, root: Schema, seen: Schema[]): string {
  const props = isSchema(schema.properties) ? schema.properties : {};
  const required = new Set(Array.isArray(schema.required) ? (schema.required as unknown[]).filter((r): r is string => typeof r === 'string') : []);
  const fields = Object.entries(props).map(([name, s]) => `${key(name)}${required.has(name) ? '' : '?'}: ${schemaType(s, root, seen)};`);
  // Required names the properties do not describe are still there, of any type.
  for (const name of required) if (!Object.hasOwn(props, name)) fields.push(`${key(name)}: unknown;`);
  const extra = schema.additionalProperties;
  const pattern = isSchema(schema.patternProperties) ? Object.values(schema.patternProperties) : [];
  if (extra !== false || pattern.length > 0) {
    // TypeScript wants every property to fit the index signature: a typed one only when the
    // object has no named properties (a map such as sysctl or aliases).
    const valueTypes = [...(isSchema(extra) ? [extra] : []), ...pattern].map((s) => schemaType(s, root, seen));
    const typed = extra !== undefined && extra !== true && fields.length === 0 ? union(valueTypes) : 'unknown';
    fields.push(`[k: string]: ${typed};`);
  }
  return `{ ${fields.join(' ')} }`;
}

function typeOf(t: string, schema: Schema, root: Schema, seen: Schema[]): string {
  switch (t) {
    case 'string':
      return 'string';
    case 'number':
    case 'integer':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'null':
      return 'null';
    case 'array': {
      const items = schema.items;
      return `Array<${isSchema(items) ? schemaType(items, root, seen) : 'unknown'}>`;
    }
    case 'object':
      return objectType(schema, root, seen);
    default:
      return 'unknown';
  }
}

/** The TypeScript type (declaration text) of the values `schema` accepts. */
export function schemaType(schema: unknown, root: unknown = schema, seen: Schema[] = []): string {
  if (schema === true || schema === undefined) return 'unknown';
  if (schema === false) return 'never';
  if (!isSchema(schema) || !isSchema(root)) return 'unknown';
  // A recursive $ref: the outer level already says what it is; `unknown` here is still true.
  if (seen.includes(schema)) return 'unknown';
  const inner = [...seen, schema];
  if (Array.isArray(schema.enum)) return union(schema.enum.map((v) => JSON.stringify(v)));
  if ('const' in schema) return JSON.stringify(schema.const);
  const parts: string[] = [];
  if (typeof schema.$ref === 'string') parts.push(schemaType(resolveRef(root, schema.$ref), root, inner));
  const types = Array.isArray(schema.type) ? schema.type : typeof schema.type === 'string' ? [schema.type] : [];
  if (types.length > 0) parts.push(union(types.map((t) => typeOf(String(t), schema, root, inner))));
  else if (isSchema(schema.properties) || schema.additionalProperties !== undefined) parts.push(objectType(schema, root, inner));
  for (const k of ['anyOf', 'oneOf'] as const) {
    const alts = schema[k];
    if (Array.isArray(alts)) parts.push(union(alts.map((s) => schemaType(s, root, inner))));
  }
  if (Array.isArray(schema.allOf)) parts.push(...schema.allOf.map((s) => schemaType(s, root, inner)));
  // Every part holds at once: a value matches the $ref, the type and each combinator.
  const known = parts.filter((p) => p !== 'unknown');
  if (known.length === 0) return 'unknown';
  return known.length === 1 ? known[0]! : known.map(grouped).join(' & ');
}

/** `host-local` → `HostLocal`: a type name from a plugin folder's name. */
export function typeName(folder: string): string {
  return folder
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('');
}
