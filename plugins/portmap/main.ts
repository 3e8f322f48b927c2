import { definePlugin, noop } from '../../lib/skel/dispatch';
import { portmap as keys } from '../../lib/generated/keys';
import { loadNetConf } from './config';
import { cmdAdd, cmdCheck, cmdDel, cmdGc } from './portmap';

export const plugin = definePlugin({
  about: 'CNI portmap plugin (cni-ts)',
  loadConf: loadNetConf,
  add: cmdAdd,
  del: cmdDel,
  check: cmdCheck,
  gc: cmdGc,
  // The reference has none: mappings need no daemon, pool or lock that could be unavailable.
  status: noop('port mappings need no daemon, pool or lock: nothing can be unavailable'),
  keys,
});
