import { pluginMain } from '../../lib/skel/dispatch';
import { cmdAdd, cmdCheck, cmdDel, cmdGc, cmdStatus } from './container';

pluginMain({ add: cmdAdd, del: cmdDel, check: cmdCheck, gc: cmdGc, status: cmdStatus }, 'CNI container plugin (cni-ts): Docker --network container:<id>');
