// The in-process host-local (what bridge and macvlan run when CNI_PATH resolves to our build)
// sees its own keys canonical, whatever case the runtime used: the calling plugin matched only
// its own fields, and an exec'd host-local would match these itself.
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import './register';
import { ipamAdd, ipamExec } from '../../lib/ipam/exec';
import { BUNDLE_MARKER as MARKER } from '../../lib/self/self';
import { parseConf, type CmdArgs } from '../../lib/skel/dispatch';
import { bridge as bridgeKeys } from '../../lib/generated/keys';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hl-inproc-'));
  // Our own build of host-local, as far as resolveIpam can tell (the marker on line 2).
  writeFileSync(join(dir, 'host-local'), `#!/bin/false\n${MARKER}host-local\n`);
  chmodSync(join(dir, 'host-local'), 0o755);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

it('bridge → in-process host-local with containerd-style PascalCase ipam keys and ipRanges', async () => {
  const text = JSON.stringify({
    cniVersion: '1.0.0',
    name: 'containerd-net',
    type: 'bridge',
    IPAM: { Type: 'host-local', DataDir: join(dir, 'leases'), Ranges: [[{ Subnet: '10.99.0.0/24' }]] },
    runtimeConfig: { IPRanges: [[{ Subnet: '10.88.0.0/16', RangeStart: '10.88.0.10', RangeEnd: '10.88.0.20', Gateway: '10.88.0.1' }]] },
  });
  const stdin = Buffer.from(text);
  // What the skeleton of bridge hands its cmdAdd: bridge's own fields canonical, ipam.type too.
  const conf = parseConf(stdin, bridgeKeys);
  expect(conf.ipam).toMatchObject({ type: 'host-local', DataDir: join(dir, 'leases') });
  const args: CmdArgs = { command: 'ADD', containerID: 'c1', netns: '/run/netns/x', ifName: 'eth0', args: '', argsMap: {}, path: [dir], stdin, conf };
  const r = await ipamAdd(args);
  expect(r.ips).toEqual([
    { address: '10.88.0.10/16', gateway: '10.88.0.1' },
    { address: '10.99.0.2/24', gateway: '10.99.0.1' },
  ]);
  expect(readdirSync(join(dir, 'leases', 'containerd-net')).sort()).toEqual(['10.88.0.10', '10.99.0.2', 'last_reserved_ip.0', 'last_reserved_ip.1', 'lock']);
  // The bytes for an exec'd IPAM are untouched, and the caller's conf is not rewritten.
  expect(args.stdin.toString()).toBe(text);
  expect(conf.ipam).toHaveProperty('DataDir');
  await ipamExec('DEL', { ...args, command: 'DEL', netns: '' });
  expect(readdirSync(join(dir, 'leases', 'containerd-net')).filter((f) => /^\d/.test(f))).toEqual([]);
});
