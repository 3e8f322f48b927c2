// Every plugin's definition (its main.ts), imported without running anything: the keys it
// matches are its schema's, and each verb is implemented or declared to have nothing to do.
// Also the generated config types, checked by tsc (the @ts-expect-error lines).
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import * as generatedKeys from '../lib/generated/keys';
import type { BridgeNetConf, HostLocalNetConf, PortmapNetConf } from '../lib/generated/validators';
import type { Plugin } from '../lib/skel/dispatch';
import { plugin as bandwidth } from './bandwidth/main';
import { plugin as bridge } from './bridge/main';
import { plugin as container } from './container/main';
import { plugin as dnsname } from './dnsname/main';
import { plugin as firewall } from './firewall/main';
import { plugin as host } from './host/main';
import { plugin as loopback } from './loopback/main';
import { plugin as macvlan } from './macvlan/main';
import { plugin as none } from './none/main';
import { plugin as overlay } from './overlay/main';
import { plugin as portmap } from './portmap/main';
import { plugin as ptp } from './ptp/main';
import { plugin as tuning } from './tuning/main';
import { plugin as hostLocal } from '../ipam/host-local/main';

const PLUGINS: Record<string, Plugin> = { bandwidth, bridge, container, dnsname, firewall, host, 'host-local': hostLocal, loopback, macvlan, none, overlay, portmap, ptp, tuning };

it('lists every plugin folder', () => {
  const folders = ['plugins', 'ipam'].flatMap((d) => readdirSync(join(__dirname, '..', d)).filter((n) => existsSync(join(__dirname, '..', d, n, 'main.ts'))));
  expect(Object.keys(PLUGINS).sort()).toEqual(folders.sort());
});

it.each(Object.keys(PLUGINS))('%s matches the config keys of its own schema.json', (name) => {
  const keys: Record<string, unknown> = generatedKeys;
  expect(PLUGINS[name]!.keys).toBe(keys[name.replace(/\W/g, '_')]);
});

it('declares these verbs as having nothing to do (each with its reason); every other verb is implemented', () => {
  const table = Object.fromEntries(Object.entries(PLUGINS).map(([n, p]) => [n, Object.keys(p.noops).sort()]));
  expect(table).toEqual({
    bandwidth: ['status'],
    bridge: [],
    container: [],
    dnsname: [],
    firewall: ['status'],
    host: [],
    'host-local': [],
    loopback: ['gc', 'status'],
    macvlan: [],
    none: [],
    overlay: [],
    portmap: ['status'],
    ptp: [],
    tuning: ['status'],
  });
  for (const p of Object.values(PLUGINS)) for (const why of Object.values(p.noops)) expect(why.length).toBeGreaterThan(20);
});

it('only host may use its own netns; only overlay has a command word', () => {
  expect(Object.entries(PLUGINS).filter(([, p]) => p.allowOwnNetns).map(([n]) => n)).toEqual(['host']);
  expect(Object.entries(PLUGINS).flatMap(([n, p]) => Object.keys(p.commands).map((c) => `${n} ${c}`))).toEqual(['overlay agent']);
});

it('types each config from its schema (checked by tsc)', () => {
  const backend: BridgeNetConf['ipMasqBackend'] = 'nftables';
  // @ts-expect-error the schema's enum has no such backend
  const bogus: BridgeNetConf['ipMasqBackend'] = 'ebtables';
  const mappings: NonNullable<PortmapNetConf['runtimeConfig']>['portMappings'] = [{ hostPort: 8080, containerPort: 80 }];
  // @ts-expect-error containerPort is required by the schema
  const partial: NonNullable<PortmapNetConf['runtimeConfig']>['portMappings'] = [{ hostPort: 8080 }];
  const dataDir: NonNullable<HostLocalNetConf['ipam']>['dataDir'] = '/var/lib/cni/networks';
  expect([backend, bogus, mappings, partial, dataDir]).toHaveLength(5);
});
