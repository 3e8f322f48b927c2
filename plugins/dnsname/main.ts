import { definePlugin } from '../../lib/skel/dispatch';
import { dnsname as keys } from '../../lib/generated/keys';
import { loadNetConf } from './config';
import { cmdAdd, cmdCheck, cmdDel, cmdGc, cmdStatus } from './dnsname';

export const plugin = definePlugin({
  about: 'CNI dnsname plugin (cni-ts): container names served by dnsmasq',
  loadConf: loadNetConf,
  add: cmdAdd, del: cmdDel, check: cmdCheck, gc: cmdGc, status: cmdStatus,
  keys,
});
