// errorsText and validateConf, with hand-written ajv-shaped errors and one real ajv validator.
import Ajv from 'ajv';
import { errorsText, validateConf, type AjvError, type ValidateFunction } from './validate';
import { CniError } from '../skel/errors';

describe('errorsText', () => {
  it('says "invalid" when there is nothing to report', () => {
    expect(errorsText(undefined)).toBe('invalid');
    expect(errorsText(null)).toBe('invalid');
    expect(errorsText([])).toBe('invalid');
  });

  it('turns the JSON pointer into a dotted path under conf', () => {
    const errors: AjvError[] = [
      { instancePath: '/bridge', message: 'must be string' },
      { instancePath: '/mtu', message: 'must be >= 68' },
      { instancePath: '/ipam/ranges/0/0/subnet', message: 'must match format "cidr"' },
    ];
    expect(errorsText(errors)).toBe('conf.bridge must be string, conf.mtu must be >= 68, conf.ipam.ranges.0.0.subnet must match format "cidr"');
  });

  it('names the root as conf', () => {
    expect(errorsText([{ instancePath: '', message: "must have required property 'type'" }])).toBe("conf must have required property 'type'");
  });

  it('adds the offending property and the allowed values', () => {
    expect(
      errorsText([
        { instancePath: '', message: 'must NOT have additional properties', params: { additionalProperty: 'bogus' } },
        { instancePath: '/mode', message: 'must be equal to one of the allowed values', params: { allowedValues: ['bridge', 'private'] } },
      ]),
    ).toBe('conf must NOT have additional properties (bogus), conf.mode must be equal to one of the allowed values: ["bridge","private"]');
  });

  it('falls back when ajv gives no message', () => {
    expect(errorsText([{ instancePath: '/x' }])).toBe('conf.x is invalid');
  });

  it('decodes ~1 and ~0 in keys (a sysctl name holds slashes)', () => {
    expect(errorsText([{ instancePath: '/sysctl/net~1ipv4~1conf~1IFNAME~1rp_filter', message: 'must be string' }])).toBe(
      'conf.sysctl.net/ipv4/conf/IFNAME/rp_filter must be string',
    );
    expect(errorsText([{ instancePath: '/a~0b', message: 'must be string' }])).toBe('conf.a~b must be string');
  });
});

describe('validateConf', () => {
  const ajv = new Ajv({ allErrors: true });
  const validator = ajv.compile({
    type: 'object',
    required: ['name', 'type'],
    properties: {
      name: { type: 'string' },
      type: { type: 'string' },
      mtu: { type: 'integer', minimum: 68 },
      mode: { enum: ['bridge', 'private'] },
    },
  }) as unknown as ValidateFunction;

  it('accepts a valid config', () => {
    expect(() => validateConf(validator, { name: 'n', type: 'bridge', mtu: 1500 }, 'bridge')).not.toThrow();
  });

  it('throws code 7 with every problem in details', () => {
    let err: unknown;
    try {
      validateConf(validator, { name: 'n', mtu: 10, mode: 'vepa' }, 'bridge');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CniError);
    const c = err as CniError;
    expect(c.code).toBe(7);
    expect(c.message).toBe('invalid bridge configuration');
    expect(c.details).toBe(
      "conf must have required property 'type', conf.mtu must be >= 68, conf.mode must be equal to one of the allowed values: [\"bridge\",\"private\"]",
    );
  });
});
