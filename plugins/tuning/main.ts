import { pluginMain } from '../../lib/skel/dispatch';
import { cmdAdd, cmdCheck, cmdDel } from './tuning';

pluginMain({ add: cmdAdd, del: cmdDel, check: cmdCheck }, 'CNI tuning plugin (cni-ts)');
