import { alwaysReady, definePlugin } from '../../lib/skel/dispatch';
import { tuning as keys } from '../../lib/generated/keys';
import { cmdAdd, cmdCheck, cmdDel, cmdGc, loadConf } from './tuning';

export const plugin = definePlugin({
  about: 'CNI tuning plugin (cni-ts)',
  loadConf,
  // STATUS: the reference has none (the installed one answers "unknown CNI_COMMAND: STATUS"), and nothing can be unavailable.
  add: cmdAdd, del: cmdDel, check: cmdCheck, gc: cmdGc, status: alwaysReady,
  keys,
});
