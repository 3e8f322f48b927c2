import { alwaysReady, definePlugin } from '../../lib/skel/dispatch';
import { firewall as keys } from '../../lib/generated/keys';
import { loadNetConf } from './config';
import { cmdAdd, cmdCheck, cmdDel, cmdGc } from './firewall';

export const plugin = definePlugin({
  about: 'CNI firewall plugin (cni-ts)',
  loadConf: loadNetConf,
  // STATUS: the reference has none (the installed one answers "unknown CNI_COMMAND: STATUS"), and nothing can be unavailable.
  add: cmdAdd, del: cmdDel, check: cmdCheck, gc: cmdGc, status: alwaysReady,
  keys,
});
