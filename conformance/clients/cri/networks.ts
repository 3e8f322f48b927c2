// The two conflists the CRI suite runs under: containerd CI's own (script/setup/install-cni:
// bridge cni0 + host-local 10.88.0.0/16 + portmap, cniVersion 1.0.0) and kind's default network
// (kindnetd's template: ptp + host-local + portmap, cniVersion 0.3.1). Both get the bandwidth
// plugin with its capability appended, so the pod's bandwidth annotations reach a plugin, and
// host-local's dataDir in the test's temp dir. containerd CI's IPv6 range is left out (IPv4 only).
import type { ReferenceBug } from '../../helpers/plugin-dir';

export interface NetworkCase {
  title: string;
  /** The main plugin (the one that makes eth0 and the host-side veth). */
  main: 'bridge' | 'ptp';
  /** Binaries the conflist needs in bin_dir (containerd adds its own loopback network). */
  plugins: string[];
  /** "a.b." prefix every pod IP must start with, and the subnet for messages. */
  ipPrefix: string;
  subnet: string;
  conflist(dataDir: string): Record<string, unknown>;
  /** The reference bug the leak case (Stop with an empty CNI_NETNS) hits with this conflist. */
  leakBug?: ReferenceBug;
}

const bandwidth = { type: 'bandwidth', capabilities: { bandwidth: true } };
const portmap = { type: 'portmap', capabilities: { portMappings: true } };

export const NETWORKS: NetworkCase[] = [
  {
    title: "containerd CI's conflist (bridge cni0 + host-local + portmap + bandwidth, 1.0.0)",
    main: 'bridge',
    plugins: ['bridge', 'host-local', 'portmap', 'bandwidth', 'loopback'],
    ipPrefix: '10.88.',
    subnet: '10.88.0.0/16',
    conflist: (dataDir) => ({
      cniVersion: '1.0.0',
      name: 'containerd-net',
      plugins: [
        {
          type: 'bridge',
          bridge: 'cni0',
          isGateway: true,
          ipMasq: true,
          promiscMode: true,
          ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: '10.88.0.0/16' }]], routes: [{ dst: '0.0.0.0/0' }] },
        },
        portmap,
        bandwidth,
      ],
    }),
    // The reference bridge skips its ipMasq teardown on a DEL with an empty CNI_NETNS.
    leakBug: 'del-empty-netns-leaks-masq',
  },
  {
    title: "kind's conflist (ptp + host-local + portmap + bandwidth, 0.3.1)",
    main: 'ptp',
    plugins: ['ptp', 'host-local', 'portmap', 'bandwidth', 'loopback'],
    ipPrefix: '10.244.0.',
    subnet: '10.244.0.0/24',
    conflist: (dataDir) => ({
      cniVersion: '0.3.1',
      name: 'kindnet',
      plugins: [
        {
          type: 'ptp',
          ipMasq: false,
          ipam: { type: 'host-local', dataDir, routes: [{ dst: '0.0.0.0/0' }], ranges: [[{ subnet: '10.244.0.0/24' }]] },
          mtu: 1500,
        },
        portmap,
        bandwidth,
      ],
    }),
  },
];
