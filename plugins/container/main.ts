import { configOnly, definePlugin } from '../../lib/skel/dispatch';
import { container as keys } from '../../lib/generated/keys';
import { loadNetConf } from './config';
import { cmdAdd, cmdCheck } from './container';

export const plugin = definePlugin({
  about: 'CNI container plugin (cni-ts): Docker --network container:<id>',
  // DEL, GC and STATUS never look at the target: a DEL must succeed after the target is gone.
  loadConf: (args) => loadNetConf(args, args.command === 'ADD' || args.command === 'CHECK'),
  // DEL, GC, STATUS: nothing was created and no state is kept, but a broken config is still refused.
  add: cmdAdd, check: cmdCheck, del: configOnly, gc: configOnly, status: configOnly,
  keys,
});
