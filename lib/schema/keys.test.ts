// Config keys matched as Go's encoding/json matches them, with the payloads containerd's CRI
// plugin (go-cni) sends. Uses the key descriptions build.mjs derives from the real schemas.
import { canonicalKeys, deriveKeys, foldKey, mergeKeys, NETCONF_KEYS, type KeyNode } from './keys';
import * as generated from '../generated/keys';
import { bandwidth as validateBandwidth, portmap as validatePortmap, host_local as validateHostLocal } from '../generated/validators';
import { validateConf } from './validate';
import type { NetConf } from '../skel/dispatch';

const keysOf = (schema: Record<string, unknown>): KeyNode => mergeKeys(NETCONF_KEYS, deriveKeys(schema));

// The capability arguments exactly as containerd 1.6 / go-cni 1.1.6 put them in runtimeConfig.
const CONTAINERD_PORTMAPPINGS = [
  { HostPort: 18080, ContainerPort: 80, Protocol: 'tcp', HostIP: '' },
  { HostPort: 18443, ContainerPort: 443, Protocol: 'tcp', HostIP: '127.0.0.1' },
];
const CONTAINERD_BANDWIDTH = { IngressRate: 1000000, IngressBurst: 4294967295, EgressRate: 2000000, EgressBurst: 4294967295 };
const CONTAINERD_DNS = { Servers: ['10.96.0.10'], Searches: ['default.svc.cluster.local', 'svc.cluster.local'], Options: ['ndots:5'] };
const CONTAINERD_IPRANGES = [[{ Subnet: '10.88.0.0/16', RangeStart: '10.88.0.10', RangeEnd: '10.88.0.20', Gateway: '10.88.0.1' }]];

describe('foldKey (encoding/json foldName)', () => {
  it('folds ASCII letters only', () => {
    expect(foldKey('HostPort')).toBe(foldKey('hostport'));
    expect(foldKey('host_Port')).not.toBe(foldKey('hostPort'));
    expect(foldKey('IPRanges')).toBe('ipranges');
  });

  it('folds KELVIN SIGN onto k and LONG S onto s (their simple-fold orbits hold an ASCII letter)', () => {
    expect(foldKey('\u212aey')).toBe('key');
    expect(foldKey('\u017fubnet')).toBe('subnet');
  });

  it('keeps other non-ASCII runes: none of them folds onto an ASCII field name', () => {
    expect(foldKey('\u0130p')).not.toBe(foldKey('ip')); // dotted capital I is its own orbit in Go
    expect(foldKey('ÜNIT')).toBe('Ünit');
  });
});

describe('deriveKeys', () => {
  const schema = {
    type: 'object',
    properties: {
      plain: { type: 'string' },
      opaque: { type: 'object' },
      nested: { type: 'object', properties: { innerKey: { type: 'integer' } } },
      list: { type: 'array', items: { type: 'object', properties: { itemKey: { type: 'string' } } } },
      strings: { type: 'array', items: { type: 'string' } },
      data: { type: 'object', additionalProperties: { type: 'object', properties: { valueKey: { type: 'string' } } } },
      sets: { $ref: '#/$defs/sets' },
      either: { anyOf: [{ properties: { a: {} } }, { properties: { b: {} } }] },
      tree: { $ref: '#/$defs/tree' },
    },
    $defs: {
      sets: { type: 'array', items: { type: 'array', items: { $ref: '#/$defs/range' } } },
      range: { type: 'object', properties: { subnet: {}, rangeStart: {} } },
      tree: { type: 'object', properties: { child: { $ref: '#/$defs/tree' }, leaf: {} } },
    },
  };

  it('describes fields, nested objects, array items, $refs, unions and data maps', () => {
    const k = deriveKeys(schema);
    expect(Object.keys(k.p!)).toEqual(['plain', 'opaque', 'nested', 'list', 'strings', 'data', 'sets', 'either', 'tree']);
    expect(k.p!.plain).toEqual({});
    expect(k.p!.opaque).toEqual({}); // an object with no properties: its keys are left alone
    expect(k.p!.nested).toEqual({ p: { innerKey: {} } });
    expect(k.p!.list).toEqual({ i: { p: { itemKey: {} } } });
    expect(k.p!.strings).toEqual({});
    expect(k.p!.data).toEqual({ m: { p: { valueKey: {} } } });
    expect(k.p!.sets).toEqual({ i: { i: { p: { subnet: {}, rangeStart: {} } } } });
    expect(k.p!.either).toEqual({ p: { a: {}, b: {} } });
    expect(k.p!.tree!.p!.leaf).toEqual({});
  });

  it('refuses a non-ASCII field name and a non-local $ref', () => {
    expect(() => deriveKeys({ properties: { 'ключ': {} } })).toThrow(/ASCII/);
    expect(() => deriveKeys({ $ref: 'https://example.com/x.json' })).toThrow(/local/);
  });

  it('the generated descriptions mark the data maps of our schemas', () => {
    expect(generated.tuning.p!.sysctl).toEqual({ m: {} });
    expect(generated.tuning.p!.args!.p!.cni!.p!.sysctl).toEqual({ m: {} });
    expect(generated.dnsname.p!.runtimeConfig!.p!.aliases).toEqual({ m: {} });
    expect(generated.dnsname.p!.capabilities).toEqual({ m: {} });
    expect(generated.host.p!.runtimeConfig).toEqual({});
    expect(generated.host.p!.args).toEqual({});
    expect(generated.host_local.p!.ipam!.p!.ranges).toEqual({ i: { i: { p: { subnet: {}, rangeStart: {}, rangeEnd: {}, gateway: {} } } } });
  });
});

describe('canonicalKeys with the payloads containerd sends', () => {
  it("portmap: PascalCase portMappings become the schema's spelling and pass validation", () => {
    const conf = { cniVersion: '1.0.0', name: 'k8s-pod-network', type: 'portmap', capabilities: { portMappings: true }, runtimeConfig: { portMappings: CONTAINERD_PORTMAPPINGS } };
    expect(() => validateConf(validatePortmap, conf, 'portmap')).toThrow(); // what the bug was
    const c = canonicalKeys(conf, generated.portmap);
    expect(c.runtimeConfig.portMappings).toEqual([
      { hostPort: 18080, containerPort: 80, protocol: 'tcp', hostIP: '' },
      { hostPort: 18443, containerPort: 443, protocol: 'tcp', hostIP: '127.0.0.1' },
    ]);
    expect(() => validateConf(validatePortmap, c, 'portmap')).not.toThrow();
    expect(c.capabilities).toEqual({ portMappings: true });
  });

  it('host-local: ipRanges, ips, and the legacy and ranges keys of ipam, in any case', () => {
    const conf = {
      cniVersion: '1.0.0',
      Name: 'net',
      IPAM: { Type: 'host-local', Ranges: [[{ SUBNET: '10.99.0.0/24' }]], DataDir: '/tmp/x', Routes: [{ Dst: '0.0.0.0/0' }] },
      RuntimeConfig: { IPRanges: CONTAINERD_IPRANGES, IPs: ['10.88.0.15/16'] },
    } as unknown as NetConf;
    const c = canonicalKeys(conf, generated.host_local);
    expect(c).toEqual({
      cniVersion: '1.0.0',
      name: 'net',
      ipam: { type: 'host-local', ranges: [[{ subnet: '10.99.0.0/24' }]], dataDir: '/tmp/x', routes: [{ dst: '0.0.0.0/0' }] },
      runtimeConfig: { ipRanges: [[{ subnet: '10.88.0.0/16', rangeStart: '10.88.0.10', rangeEnd: '10.88.0.20', gateway: '10.88.0.1' }]], ips: ['10.88.0.15/16'] },
    });
    expect(validateHostLocal(c)).toBe(true);
  });

  it("bandwidth: containerd's PascalCase rates become the schema's spelling and pass validation", () => {
    const conf = { cniVersion: '1.0.0', name: 'k8s-pod-network', type: 'bandwidth', capabilities: { bandwidth: true }, runtimeConfig: { bandwidth: CONTAINERD_BANDWIDTH } };
    const c = canonicalKeys(conf, generated.bandwidth);
    expect(c.runtimeConfig.bandwidth).toEqual({ ingressRate: 1000000, ingressBurst: 4294967295, egressRate: 2000000, egressBurst: 4294967295 });
    expect(() => validateConf(validateBandwidth, c, 'bandwidth')).not.toThrow();
  });

  it('bandwidth, dns, mac and ips, against a schema that declares them (as the plugins reading them do)', () => {
    const keys = keysOf({
      properties: {
        runtimeConfig: {
          properties: {
            bandwidth: { properties: { ingressRate: {}, ingressBurst: {}, egressRate: {}, egressBurst: {} } },
            dns: { properties: { servers: { type: 'array' }, searches: {}, options: {} } },
            mac: {},
            ips: { type: 'array', items: { type: 'string' } },
          },
        },
      },
    });
    const c = canonicalKeys({ runtimeConfig: { bandwidth: CONTAINERD_BANDWIDTH, dns: CONTAINERD_DNS, MAC: 'aa:bb:cc:dd:ee:ff', ips: ['10.1.0.5/24'] } }, keys);
    expect(c.runtimeConfig).toEqual({
      bandwidth: { ingressRate: 1000000, ingressBurst: 4294967295, egressRate: 2000000, egressBurst: 4294967295 },
      dns: { servers: ['10.96.0.10'], searches: ['default.svc.cluster.local', 'svc.cluster.local'], options: ['ndots:5'] },
      mac: 'aa:bb:cc:dd:ee:ff',
      ips: ['10.1.0.5/24'],
    });
  });

  it('the top-level keys every config has, and prevResult (decoded into the result structs)', () => {
    const c = canonicalKeys(
      {
        CNIVersion: '1.0.0',
        NAME: 'n',
        Type: 'bridge',
        DNS: { Nameservers: ['10.0.0.1'] },
        PrevResult: { CNIVersion: '1.0.0', Interfaces: [{ Name: 'eth0', Sandbox: '/run/netns/x' }], IPs: [{ Address: '10.0.0.2/24', Interface: 0 }], Routes: [{ Dst: '0.0.0.0/0', GW: '10.0.0.1' }] },
      },
      NETCONF_KEYS,
    );
    expect(c).toEqual({
      cniVersion: '1.0.0',
      name: 'n',
      type: 'bridge',
      dns: { nameservers: ['10.0.0.1'] },
      prevResult: { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: '/run/netns/x' }], ips: [{ address: '10.0.0.2/24', interface: 0 }], routes: [{ dst: '0.0.0.0/0', gw: '10.0.0.1' }] },
    });
  });
});

describe('keys that are data are left alone', () => {
  it("tuning's sysctl map: the key is renamed, the sysctl names inside are not", () => {
    const c = canonicalKeys({ SYSCTL: { 'net.ipv4.conf.IFNAME.Arp_Notify': '1', 'Net/IPv6/Conf/IFNAME/Mtu': '1400' }, Args: { CNI: { Sysctl: { 'net.core.SOMAXCONN': '8' } } } }, generated.tuning);
    expect(c).toEqual({ sysctl: { 'net.ipv4.conf.IFNAME.Arp_Notify': '1', 'Net/IPv6/Conf/IFNAME/Mtu': '1400' }, args: { cni: { sysctl: { 'net.core.SOMAXCONN': '8' } } } });
  });

  it("dnsname's aliases map is keyed by network name; capabilities by capability name", () => {
    const c = canonicalKeys({ Capabilities: { Aliases: true }, RuntimeConfig: { Aliases: { MyNet: ['Web'], DomainName: ['x'] } } }, generated.dnsname);
    expect(c).toEqual({ capabilities: { Aliases: true }, runtimeConfig: { aliases: { MyNet: ['Web'], DomainName: ['x'] } } });
  });

  it('free-form args entries and keys no schema lists keep their spelling (other plugins may read them)', () => {
    const c = canonicalKeys(
      { Args: { K8S_POD_NAME: 'web', CNI: { IPs: ['10.1.0.9'], Extra: 1 } }, someOtherPluginKey: { HostPort: 1 }, IPMasq: true },
      generated.host_local,
    );
    expect(c).toEqual({ args: { K8S_POD_NAME: 'web', cni: { ips: ['10.1.0.9'], Extra: 1 } }, someOtherPluginKey: { HostPort: 1 }, IPMasq: true });
  });

  it('opaque objects (no properties in the schema) are left alone', () => {
    const c = canonicalKeys({ RuntimeConfig: { PortMappings: [{ HostPort: 1 }] }, Args: { CNI: {} } }, generated.host);
    expect(c).toEqual({ runtimeConfig: { PortMappings: [{ HostPort: 1 }] }, args: { CNI: {} } });
  });
});

describe("Go's rule when keys compete", () => {
  const pm = (o: Record<string, unknown>) => canonicalKeys({ runtimeConfig: { portMappings: [o] } }, generated.portmap).runtimeConfig.portMappings[0];

  it('two keys for one field: the last in the document wins (golang/go#43664), whichever is exact', () => {
    expect(pm({ hostPort: 1, HostPort: 2, containerPort: 80 })).toEqual({ hostPort: 2, containerPort: 80 });
    expect(pm({ HostPort: 2, hostPort: 1, containerPort: 80 })).toEqual({ hostPort: 1, containerPort: 80 });
    expect(pm({ HOSTPORT: 3, HostPort: 2, containerPort: 80 })).toEqual({ hostPort: 2, containerPort: 80 });
  });

  it('an exact match picks its own field before a case-insensitive one; otherwise the first declared field', () => {
    const keys = deriveKeys({ properties: { foo: {}, FOO: {} } });
    expect(canonicalKeys({ FOO: 1 }, keys)).toEqual({ FOO: 1 });
    expect(canonicalKeys({ foo: 1 }, keys)).toEqual({ foo: 1 });
    expect(canonicalKeys({ Foo: 1 }, keys)).toEqual({ foo: 1 });
  });

  it('a second struct value for the same field is decoded into the first (fields it does not name are kept)', () => {
    const c = canonicalKeys(
      { runtimeConfig: { portMappings: [{ hostPort: 1, containerPort: 80 }] }, RuntimeConfig: { PortMappings: [{ HostPort: 2 }] } },
      generated.portmap,
    );
    expect(c.runtimeConfig).toEqual({ portMappings: [{ hostPort: 2, containerPort: 80 }] });
  });

  it('nested arrays of structs are matched at every depth', () => {
    const c = canonicalKeys({ ipam: { ranges: [[{ Subnet: 'a' }, { SUBNET: 'b', Gateway: 'g' }], [{ subnet: 'c' }]] } }, generated.host_local);
    expect(c.ipam.ranges).toEqual([[{ subnet: 'a' }, { subnet: 'b', gateway: 'g' }], [{ subnet: 'c' }]]);
  });

  it('does not change its input, and keeps a "__proto__" key as data', () => {
    const input = JSON.parse('{"Name":"n","__proto__":{"polluted":true},"runtimeConfig":{"PortMappings":[{"HostPort":1}]}}');
    const before = JSON.stringify(input);
    const c = canonicalKeys(input, generated.portmap) as Record<string, unknown>;
    expect(JSON.stringify(input)).toBe(before);
    expect(Object.getPrototypeOf(c)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(c)).toEqual(['name', '__proto__', 'runtimeConfig']);
  });

  it('keys named like Object.prototype members are plain unknown keys', () => {
    const c = canonicalKeys({ runtimeConfig: { toString: 1, constructor: { a: 1 } }, RuntimeConfig: { constructor: { b: 2 } } }, generated.portmap);
    expect(c).toEqual({ runtimeConfig: { toString: 1, constructor: { b: 2 } } });
  });

  it('values of the wrong type are left for validation to refuse', () => {
    expect(canonicalKeys({ RuntimeConfig: 'x', Name: 5 }, generated.portmap)).toEqual({ runtimeConfig: 'x', name: 5 });
    expect(canonicalKeys({ runtimeConfig: { PortMappings: { HostPort: 1 } } }, generated.portmap)).toEqual({ runtimeConfig: { portMappings: { HostPort: 1 } } });
  });
});
