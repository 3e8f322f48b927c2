import { pluginMain } from '../../lib/skel/dispatch';
import { cmdAdd, cmdCheck, cmdDel } from './portmap';

pluginMain({ add: cmdAdd, del: cmdDel, check: cmdCheck }, 'CNI portmap plugin (cni-ts)');
