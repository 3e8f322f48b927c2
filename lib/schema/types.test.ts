// schemaType: the TypeScript type build.mjs writes for each schema.json. Pure text in, text out;
// plugins/definitions.test.ts checks the generated types with tsc.
import { schemaType, typeName } from './types';

describe('schemaType', () => {
  it('types scalars, enums, consts and lists of types', () => {
    expect(schemaType({ type: 'string', minLength: 1, pattern: '^/' })).toBe('string');
    expect(schemaType({ type: 'integer', minimum: 0 })).toBe('number');
    expect(schemaType({ enum: ['', 'iptables', 'nftables'] })).toBe('"" | "iptables" | "nftables"');
    expect(schemaType({ const: 4 })).toBe('4');
    expect(schemaType({ type: ['array', 'null'], items: { type: 'string' } })).toBe('Array<string> | null');
  });

  it('marks required properties, keeps other keys open unless the schema closes the object', () => {
    expect(schemaType({ type: 'object', required: ['name'], properties: { name: { type: 'string' }, mtu: { type: 'integer' } } })).toBe(
      '{ name: string; mtu?: number; [k: string]: unknown; }',
    );
    expect(schemaType({ type: 'object', properties: { a: { type: 'boolean' } }, additionalProperties: false })).toBe('{ a?: boolean; }');
    // A required name the properties do not describe is there, of any type.
    expect(schemaType({ type: 'object', required: ['x'] })).toBe('{ x: unknown; [k: string]: unknown; }');
  });

  it('types a map by its values, but not when named properties share the object', () => {
    expect(schemaType({ type: 'object', additionalProperties: { type: 'string' } })).toBe('{ [k: string]: string; }');
    expect(schemaType({ type: 'object', properties: { a: { type: 'integer' } }, additionalProperties: { type: 'string' } })).toBe('{ a?: number; [k: string]: unknown; }');
  });

  it('follows local $refs, anyOf and allOf; quotes keys that are not identifiers', () => {
    const root = {
      type: 'object',
      properties: { 'cni.dev/valid-attachments': { $ref: '#/$defs/list' }, names: { anyOf: [{ type: 'boolean' }, { type: 'object', properties: { runDir: { type: 'string' } } }] } },
      $defs: { list: { type: 'array', items: { type: 'object', required: ['containerID'], properties: { containerID: { type: 'string' } } } } },
    };
    expect(schemaType(root)).toBe(
      '{ "cni.dev/valid-attachments"?: Array<{ containerID: string; [k: string]: unknown; }>; names?: boolean | { runDir?: string; [k: string]: unknown; }; [k: string]: unknown; }',
    );
    expect(schemaType({ allOf: [{ type: 'object', properties: { a: { type: 'string' } } }, { required: ['a'] }] })).toBe('{ a?: string; [k: string]: unknown; }');
  });

  it('says unknown for what it does not understand, never something narrower', () => {
    expect(schemaType({ not: { type: 'string' } })).toBe('unknown');
    expect(schemaType(true)).toBe('unknown');
    expect(schemaType({ anyOf: [{ type: 'string' }, {}] })).toBe('unknown');
    expect(() => schemaType({ $ref: 'other.json#/x' })).toThrow(/only local references/);
  });

  it('names a type after the plugin folder', () => {
    expect(typeName('host-local')).toBe('HostLocal');
    expect(typeName('bridge')).toBe('Bridge');
  });
});
