import { definePlugin } from '../../lib/skel/dispatch';
import { bridge as keys } from '../../lib/generated/keys';
// host-local runs in-process when CNI_PATH resolves it to our own build (saves a Node start).
import '../../ipam/host-local/register';
import { loadNetConf } from './config';
import { cmdAdd, cmdCheck, cmdDel, cmdGc, cmdStatus } from './bridge';

export const plugin = definePlugin({
  about: 'CNI bridge plugin (cni-ts)',
  loadConf: loadNetConf,
  add: cmdAdd, del: cmdDel, check: cmdCheck, gc: cmdGc, status: cmdStatus,
  keys,
});
