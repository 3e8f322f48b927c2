import { alwaysReady, definePlugin } from '../../lib/skel/dispatch';
import { bandwidth as keys } from '../../lib/generated/keys';
import { loadNetConf } from './config';
import { cmdAdd, cmdCheck, cmdDel, cmdGc } from './bandwidth';

export const plugin = definePlugin({
  about: 'CNI bandwidth plugin (cni-ts)',
  loadConf: loadNetConf,
  // STATUS: the reference has none (the installed one answers "unknown CNI_COMMAND: STATUS"), and nothing can be unavailable.
  add: cmdAdd, del: cmdDel, check: cmdCheck, gc: cmdGc, status: alwaysReady,
  keys,
});
