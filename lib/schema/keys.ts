/**
 * Config keys matched the way the reference plugins match them. The Go plugins decode their
 * config with encoding/json, which looks a JSON key up among a struct's field names exactly
 * first and, failing that, case-insensitively (Unicode simple folding: fold.go foldName); keys
 * of a Go map are data and are kept as written. Runtimes rely on it: containerd's CRI plugin
 * sends `{"HostPort":18080,"ContainerPort":80}` (go-cni's structs have no JSON tags).
 *
 * So before a plugin validates its config, the skeleton rewrites every key that names a field
 * of the plugin's schema.json to the schema's spelling (canonicalKeys). The field names per
 * level come from the schema at build time (deriveKeys, run by build.mjs); keys the schema
 * does not list, and the keys of maps (`additionalProperties`), stay as they are. Pure.
 */

/** The config keys one level of a config may hold, as the schema describes them. */
export interface KeyNode {
  /** This level is a struct: its field names in canonical spelling, each with what it holds. */
  p?: Record<string, KeyNode>;
  /** This level is an array: what its items hold. */
  i?: KeyNode;
  /** This level is a map whose keys are data (never rewritten): what its values hold. */
  m?: KeyNode;
}

const DNS: KeyNode = { p: { nameservers: {}, domain: {}, search: {}, options: {} } };

/**
 * What every plugin decodes (cni:pkg/types NetConf), merged into each plugin's own description:
 * cniVersion, name, type, capabilities (a map: its keys are capability names), ipam.type, dns,
 * prevResult (decoded into the result structs, so its fields match case-insensitively too) and
 * GC's cni.dev/valid-attachments.
 */
export const NETCONF_KEYS: KeyNode = {
  p: {
    cniVersion: {},
    name: {},
    type: {},
    capabilities: { m: {} },
    ipam: { p: { type: {} } },
    dns: DNS,
    prevResult: {
      p: {
        cniVersion: {},
        interfaces: { i: { p: { name: {}, mac: {}, mtu: {}, sandbox: {}, socketPath: {}, pciID: {} } } },
        ips: { i: { p: { version: {}, interface: {}, address: {}, gateway: {} } } },
        routes: { i: { p: { dst: {}, gw: {}, mtu: {}, advmss: {}, priority: {}, table: {}, scope: {} } } },
        dns: DNS,
      },
    },
    'cni.dev/valid-attachments': { i: { p: { containerID: {}, ifname: {} } } },
  },
};

/** Two descriptions as one: the union of their fields, items and map values. */
export function mergeKeys(a: KeyNode, b: KeyNode): KeyNode {
  const out: KeyNode = {};
  if (a.p || b.p) {
    const p: Record<string, KeyNode> = {};
    for (const [k, v] of Object.entries(a.p ?? {})) p[k] = v;
    for (const [k, v] of Object.entries(b.p ?? {})) p[k] = Object.hasOwn(p, k) ? mergeKeys(p[k]!, v) : v;
    out.p = p;
  }
  if (a.i || b.i) out.i = mergeKeys(a.i ?? {}, b.i ?? {});
  if (a.m || b.m) out.m = mergeKeys(a.m ?? {}, b.m ?? {});
  return out;
}

type Schema = Record<string, unknown>;

/** The schema a local `$ref` ("#/$defs/range") points at. */
function resolveRef(root: Schema, ref: string): Schema {
  if (!ref.startsWith('#')) throw new Error(`schema $ref ${ref}: only local references are supported`);
  let at: unknown = root;
  for (const part of ref.slice(1).split('/').filter(Boolean)) {
    const key = decodeURIComponent(part).replace(/~1/g, '/').replace(/~0/g, '~');
    at = (at as Schema | undefined)?.[key];
  }
  if (!at || typeof at !== 'object') throw new Error(`schema $ref ${ref} points at nothing`);
  return at as Schema;
}

/**
 * The key description of a JSON schema (build time): `properties` are struct fields,
 * `items`/`prefixItems` array items, `additionalProperties`/`patternProperties` with a schema
 * the values of a data map; `$ref`, `allOf`, `anyOf`, `oneOf` contribute their union. An object
 * with none of these (`{"type": "object"}`) is opaque: its keys are left alone.
 */
export function deriveKeys(schema: Schema, root: Schema = schema, seen: Schema[] = []): KeyNode {
  if (seen.includes(schema)) return {}; // a recursive $ref: the outer level already describes it
  const inner = [...seen, schema];
  const sub = (s: unknown): KeyNode => (s && typeof s === 'object' && !Array.isArray(s) ? deriveKeys(s as Schema, root, inner) : {});
  let node: KeyNode = {};
  if (typeof schema.$ref === 'string') node = mergeKeys(node, sub(resolveRef(root, schema.$ref)));
  for (const k of ['allOf', 'anyOf', 'oneOf']) {
    for (const s of (schema[k] as unknown[] | undefined) ?? []) node = mergeKeys(node, sub(s));
  }
  const props = schema.properties as Record<string, unknown> | undefined;
  if (props && typeof props === 'object') {
    const p: Record<string, KeyNode> = {};
    for (const [name, s] of Object.entries(props)) {
      // The fold below is exact only for ASCII field names (every Go tag in the reference is).
      if (!/^[\x20-\x7e]*$/.test(name)) throw new Error(`schema property ${JSON.stringify(name)}: field names must be printable ASCII`);
      p[name] = sub(s);
    }
    node = mergeKeys(node, { p });
  }
  const items = [schema.items, ...((schema.prefixItems as unknown[] | undefined) ?? [])].flat();
  // Items without keys of their own (strings, numbers) need no description.
  for (const s of items) {
    const i = sub(s);
    if (i.p || i.i || i.m) node = mergeKeys(node, { i });
  }
  if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
    node = mergeKeys(node, { m: sub(schema.additionalProperties) });
  }
  for (const s of Object.values((schema.patternProperties as Record<string, unknown> | undefined) ?? {})) {
    node = mergeKeys(node, { m: sub(s) });
  }
  return node;
}

const ASCII = /^[\x00-\x7f]*$/;

/**
 * A key folded as Go compares it with a field name: encoding/json foldName folds ASCII letters
 * and maps any other rune to the smallest rune of its Unicode simple-fold orbit. Field names
 * are ASCII (deriveKeys checks), and the only non-ASCII runes whose orbit holds an ASCII letter
 * are U+212A KELVIN SIGN (k) and U+017F LATIN SMALL LETTER LONG S (s); any other non-ASCII rune
 * can never match, so it is kept as it is.
 */
export function foldKey(key: string): string {
  if (ASCII.test(key)) return key.toLowerCase();
  let out = '';
  for (const ch of key) {
    if (ch === '\u212a') out += 'k';
    else if (ch === '\u017f') out += 's';
    else out += ch.length === 1 && ch < '\x80' ? ch.toLowerCase() : ch;
  }
  return out;
}

const foldIndexes = new WeakMap<Record<string, KeyNode>, Map<string, string>>();

/** Folded field name → field name; the first field of a fold wins (Go: first declared). */
function foldIndex(p: Record<string, KeyNode>): Map<string, string> {
  let idx = foldIndexes.get(p);
  if (!idx) {
    idx = new Map();
    for (const name of Object.keys(p)) {
      const f = foldKey(name);
      if (!idx.has(f)) idx.set(f, name);
    }
    foldIndexes.set(p, idx);
  }
  return idx;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Sets an own property, also for the key "__proto__" (plain assignment would set the prototype). */
function put(o: Record<string, unknown>, k: string, v: unknown): void {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

/**
 * A value decoded a second time into the same Go field: a struct, map or slice of structs is
 * decoded into what is already there (fields the second value does not name are kept), any
 * other value replaces the first.
 */
function mergeInto(prev: unknown, next: unknown, node: KeyNode): unknown {
  if (isObject(prev) && isObject(next) && (node.p || node.m)) {
    const out: Record<string, unknown> = { ...prev };
    for (const [k, v] of Object.entries(next)) {
      const child = node.p && Object.hasOwn(node.p, k) ? node.p[k] : node.m;
      put(out, k, Object.hasOwn(out, k) && child ? mergeInto(out[k], v, child) : v);
    }
    return out;
  }
  if (Array.isArray(prev) && Array.isArray(next) && node.i) {
    const item = node.i;
    return next.map((v, n) => (n < prev.length ? mergeInto(prev[n], v, item) : v));
  }
  return next;
}

/**
 * `value` with every key that names a field of `node` (exactly, or else case-insensitively)
 * spelled as the field is, at every level `node` describes. When several keys of one object
 * fold to the same field, they are applied in document order, the last one winning (as Go
 * decodes them one after the other into the same field). Keys no field matches, map keys and
 * opaque values are kept as they are. Returns new objects; `value` is not changed.
 */
export function canonicalKeys<T>(value: T, node: KeyNode): T {
  return canon(value, node) as T;
}

function canon(value: unknown, node: KeyNode): unknown {
  if (Array.isArray(value)) {
    const item = node.i;
    return item ? value.map((v) => canon(v, item)) : value;
  }
  if (!isObject(value) || (!node.p && !node.m)) return value;
  const out: Record<string, unknown> = {};
  const p = node.p;
  for (const [key, v] of Object.entries(value)) {
    let name = key;
    let child = node.m;
    if (p) {
      const field = Object.hasOwn(p, key) ? key : foldIndex(p).get(foldKey(key));
      if (field !== undefined) {
        name = field;
        child = p[field];
      }
    }
    const next = child ? canon(v, child) : v;
    put(out, name, Object.hasOwn(out, name) && child ? mergeInto(out[name], next, child) : next);
  }
  return out;
}
