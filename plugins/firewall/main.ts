import { pluginMain } from '../../lib/skel/dispatch';
import { cmdAdd, cmdCheck, cmdDel } from './firewall';

pluginMain({ add: cmdAdd, del: cmdDel, check: cmdCheck }, 'CNI firewall plugin (cni-ts)');
