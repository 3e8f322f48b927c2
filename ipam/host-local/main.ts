/** host-local: allocates addresses from local ranges, leases kept under dataDir. */
import { definePlugin } from '../../lib/skel/dispatch';
import { host_local as keys } from '../../lib/generated/keys';
import { loadIpamConf } from './config';
import { cmdAdd, cmdCheck, cmdDel, cmdGc, cmdStatus } from './host-local';

export const plugin = definePlugin({
  about: 'CNI host-local plugin (cni-ts)',
  loadConf: (args) => loadIpamConf(args.conf, args.argsMap),
  add: cmdAdd, del: cmdDel, check: cmdCheck, gc: cmdGc, status: cmdStatus,
  keys,
});
