import { pluginMain } from '../../lib/skel/dispatch';
import { cmdAdd, cmdCheck, cmdDel } from './loopback';

pluginMain({ add: cmdAdd, del: cmdDel, check: cmdCheck }, 'CNI loopback plugin (cni-ts)');
