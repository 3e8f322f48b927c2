/**
 * IP forwarding in the plugin's own netns (the host side), as the reference's ip.EnableForward:
 * IPv4 `ip_forward` and IPv6 `conf/all/forwarding`, each only for a family in use, written only
 * when not already 1 (no process: the plugin runs in that netns).
 */
import { readFileSync, writeFileSync } from 'node:fs';

export function enableForwarding(families: { v4?: boolean; v6?: boolean }): void {
  const knobs: string[] = [];
  if (families.v4) knobs.push('/proc/sys/net/ipv4/ip_forward');
  if (families.v6) knobs.push('/proc/sys/net/ipv6/conf/all/forwarding');
  for (const k of knobs) {
    if (readFileSync(k, 'utf8').trim() !== '1') writeFileSync(k, '1');
  }
}
