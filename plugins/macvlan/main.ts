import { definePlugin } from '../../lib/skel/dispatch';
import { macvlan as keys } from '../../lib/generated/keys';
// host-local runs in-process when CNI_PATH resolves it to our own build (saves a Node start).
import '../../ipam/host-local/register';
import { loadNetConf } from './config';
import { cmdAdd, cmdCheck, cmdDel, cmdGc, cmdStatus } from './macvlan';

export const plugin = definePlugin({
  about: 'CNI macvlan plugin (cni-ts)',
  loadConf: loadNetConf,
  add: cmdAdd, del: cmdDel, check: cmdCheck, gc: cmdGc, status: cmdStatus,
  keys,
});
