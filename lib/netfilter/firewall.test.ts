import type { Family } from '../ip/cidr';
import type { FirewallSpec } from './driver';
import { firewallMissing as iptFirewallMissing, firewallSetupLines, iptFirewall } from './iptables/firewall';
import { parseSaveTable, restoreScript, type SavedTable } from './iptables/save';
import { emptyRuleset } from './nftables/json';
import { firewallSetupLines as nftFirewallSetupLines } from './nftables/firewall';

const iptFirewallSetupScript = (s: FirewallSpec, f: Family, t: SavedTable): string | undefined => restoreScript('filter', firewallSetupLines(s, f, t));
const iptFirewallTeardownScript = (s: FirewallSpec, f: Family, t: SavedTable): string | undefined => restoreScript('filter', iptFirewall.teardown(s, f, t));
const nftFirewallSetupScript = (s: FirewallSpec, rs: ReturnType<typeof emptyRuleset>): string => nftFirewallSetupLines(s, rs).join('\n') + '\n';

const S: FirewallSpec = { network: 'net', containerID: 'ctr-a', ifName: 'eth0', addresses: ['10.1.0.5/24'], policy: 'isolated', bridge: 'br0', adminChain: 'CNI-ADMIN' };
const C = '"name: \\"net\\" id: \\"ctr-a\\""';

describe('firewall iptables text', () => {
  it('setup on an empty filter table: isolation jump ends up before CNI-FORWARD', () => {
    const s = iptFirewallSetupScript(S, 4, parseSaveTable('', 'filter'))!.split('\n');
    const fwd = s.indexOf('-I FORWARD 1 -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD');
    const iso = s.indexOf('-I FORWARD 1 -m comment --comment "CNI firewall plugin rules (ingressPolicy: isolated)" -j CNI-ISOLATION-STAGE-1');
    expect(fwd).toBeGreaterThan(0);
    expect(iso).toBeGreaterThan(fwd);
    expect(s).toContain(`-A CNI-FORWARD -s 10.1.0.5/32 -m comment --comment ${C} -j ACCEPT`);
    expect(s).toContain('-I CNI-ISOLATION-STAGE-1 1 -i br0 -o br0 -m comment --comment "CNI firewall plugin rules (ingressPolicy: isolated)" -j DROP');
    expect(s).toContain('-I CNI-ISOLATION-STAGE-2 1 -o br0 -m comment --comment "CNI firewall plugin rules (ingressPolicy: isolated)" -j DROP');
  });
  it('teardown removes the owner and the reference\'s uncommented rules for its IP, not others', () => {
    const save = [
      '*filter',
      `-A CNI-FORWARD -s 10.1.0.5/32 -m comment --comment ${C} -j ACCEPT`,
      '-A CNI-FORWARD -d 10.1.0.5/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-A CNI-FORWARD -s 10.1.0.6/32 -j ACCEPT',
      'COMMIT',
    ].join('\n');
    const t = iptFirewallTeardownScript(S, 4, parseSaveTable(save, 'filter'))!;
    expect(t).toContain('-D CNI-FORWARD -s 10.1.0.5/32');
    expect(t).toContain('-D CNI-FORWARD -d 10.1.0.5/32');
    expect(t).not.toContain('10.1.0.6');
    expect(iptFirewallTeardownScript({ ...S, addresses: [] }, 4, parseSaveTable(save, 'filter'))).not.toContain('-d 10.1.0.5');
  });
  it('check names what is missing', () => {
    expect(iptFirewallMissing(S, 4, parseSaveTable('', 'filter'))).toContain('iptables FORWARD: no jump to CNI-FORWARD');
  });
});

describe('firewall nftables text', () => {
  it('one transaction: table, jumps, owner accepts, bridge isolation', () => {
    const s = nftFirewallSetupScript(S, emptyRuleset());
    expect(s).toContain('add chain inet cni_ts_firewall forward { type filter hook forward priority filter ; policy accept ; }');
    expect(s).toMatch(/add rule inet cni_ts_firewall containers ip saddr 10\.1\.0\.5 accept comment "[0-9a-f]{16}-[0-9a-f]{16}, net: net, if: eth0, id: ctr-a"/);
    expect(s).toContain('add rule inet cni_ts_firewall isolation_stage_1 iifname "br0" oifname "br0" drop comment "isolated br0: same bridge"');
  });
});
