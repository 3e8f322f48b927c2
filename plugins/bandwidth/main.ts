import { definePlugin, noop } from '../../lib/skel/dispatch';
import { bandwidth as keys } from '../../lib/generated/keys';
import { loadNetConf } from './config';
import { cmdAdd, cmdCheck, cmdDel, cmdGc } from './bandwidth';

export const plugin = definePlugin({
  about: 'CNI bandwidth plugin (cni-ts)',
  loadConf: loadNetConf,
  add: cmdAdd,
  del: cmdDel,
  check: cmdCheck,
  gc: cmdGc,
  // The reference has none: qdiscs and ifbs need no daemon, pool or lock that could be unavailable.
  status: noop('shaping needs no daemon, pool or lock: nothing can be unavailable'),
  keys,
});
