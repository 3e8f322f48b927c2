import { pluginMain } from '../../lib/skel/dispatch';
import { cmdAdd, cmdCheck, cmdDel, cmdGc } from './firewall';

pluginMain({ add: cmdAdd, del: cmdDel, check: cmdCheck, gc: cmdGc }, 'CNI firewall plugin (cni-ts)');
