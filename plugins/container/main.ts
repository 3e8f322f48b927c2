import { configOnly, definePlugin } from '../../lib/skel/dispatch';
import { container as keys } from '../../lib/generated/keys';
import { loadNetConf } from './config';
import { cmdAdd, cmdCheck } from './container';

export const plugin = definePlugin({
  about: 'CNI container plugin (cni-ts): Docker --network container:<id>',
  // DEL, GC and STATUS never look at the target: a DEL must succeed after the target is gone.
  loadConf: (args) => loadNetConf(args, args.command === 'ADD' || args.command === 'CHECK'),
  add: cmdAdd,
  // The joiner owns nothing, so the target's network is never touched; the config is still checked.
  del: configOnly,
  check: cmdCheck,
  // No state of its own: nothing to collect, always available; a broken config is still refused.
  gc: configOnly,
  status: configOnly,
  keys,
});
