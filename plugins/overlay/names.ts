/**
 * Names across hosts, for dnsname chained after overlay (Docker's overlay networks resolve the
 * containers of every host). dnsname keeps this host's names in `<runDir>/<net>/addnhosts`
 * (its dnsmasq serves that file, plus every file in `<runDir>/<net>/hosts.d/`). The agent:
 *  - publishes the local file's entries under `<prefix>/names/<subnet key>`, bound to the
 *    host's lease (so a host that leaves takes its names along);
 *  - writes every other host's entries to `hosts.d/overlay-peers`, which dnsmasq re-reads by
 *    itself when it changes (inotify on a hostsdir; no signal needed).
 */
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { join } from 'node:path';
import type { EtcdClient, KeyValue, WatchEvent } from '../../lib/etcd/client';
import type { OverlayConf } from './config';
import { namesPrefix } from './registry';
import { writeAtomic } from './state';

export interface NameEntry {
  IP: string;
  Names: string[];
}

/** hosts(5) lines → entries (comments and blank lines skipped). */
export function parseHostsEntries(text: string): NameEntry[] {
  const out: NameEntry[] = [];
  for (const line of text.split('\n')) {
    const [ip, ...names] = line.replace(/#.*/, '').trim().split(/\s+/);
    if (ip && names.length) out.push({ IP: ip, Names: names });
  }
  return out;
}

export function peersHostsFile(byHost: Map<string, NameEntry[]>): string {
  const lines = ['# Written by the overlay agent: the containers of the other hosts of this network.'];
  for (const key of [...byHost.keys()].sort()) for (const e of byHost.get(key)!) lines.push(`${e.IP}\t${e.Names.join(' ')}`);
  return lines.join('\n') + '\n';
}

export class NameSync {
  private readonly local: string;
  private readonly peersFile: string;
  private readonly remote = new Map<string, NameEntry[]>();
  private lease?: { id: string; key: string };
  private published?: string;
  private lastWritten?: string;

  constructor(
    private readonly conf: OverlayConf,
    private readonly etcd: EtcdClient,
    private readonly log: (m: string) => void,
  ) {
    const dir = join(conf.namesRunDir!, conf.name);
    this.local = join(dir, 'addnhosts');
    this.peersFile = join(dir, 'hosts.d', 'overlay-peers');
    watchFile(this.local, { interval: 1000, persistent: false }, () => void this.publishIfChanged().catch(() => undefined));
  }

  stop(): void {
    unwatchFile(this.local);
  }

  private myKey(): string | undefined {
    return this.lease ? `${namesPrefix(this.conf.etcd.prefix)}${this.lease.key.slice(this.lease.key.lastIndexOf('/') + 1)}` : undefined;
  }

  setLease(id: string, subnetKeyPath: string): void {
    this.lease = { id, key: subnetKeyPath };
    this.published = undefined;
  }

  /** Publishes the local entries when they differ from what was last published (or etcd lost it). */
  async publishIfChanged(): Promise<void> {
    const key = this.myKey();
    if (!key) return;
    let text = '';
    try {
      text = readFileSync(this.local, 'utf8');
    } catch {
      /* no dnsname here yet: nothing to publish */
    }
    const value = JSON.stringify(parseHostsEntries(text));
    if (value === this.published) return;
    await this.etcd.put(key, value, this.lease!.id);
    this.published = value;
    this.log(`names: published ${JSON.parse(value).length} entries under ${key}`);
  }

  /** After a list: every other host's names, and ours again. */
  resync(kvs: KeyValue[]): void {
    this.remote.clear();
    const prefix = namesPrefix(this.conf.etcd.prefix);
    const mine = this.myKey();
    for (const kv of kvs) if (kv.key.startsWith(prefix) && kv.key !== mine) this.setRemote(kv.key, kv.value);
    if (!kvs.some((kv) => kv.key === mine)) this.published = undefined;
    this.writePeers();
    void this.publishIfChanged().catch(() => undefined);
  }

  onEvent(ev: WatchEvent): void {
    if (ev.kv.key === this.myKey()) {
      if (ev.type === 'DELETE') this.published = undefined;
      return;
    }
    if (ev.type === 'DELETE') this.remote.delete(ev.kv.key);
    else this.setRemote(ev.kv.key, ev.kv.value);
    this.writePeers();
  }

  private setRemote(key: string, value: string): void {
    try {
      const entries = JSON.parse(value) as NameEntry[];
      this.remote.set(key, Array.isArray(entries) ? entries.filter((e) => typeof e?.IP === 'string' && Array.isArray(e.Names)) : []);
    } catch {
      this.log(`names: ignoring ${key}: not JSON`);
    }
  }

  private writePeers(): void {
    const text = peersHostsFile(this.remote);
    if (text === this.lastWritten) return;
    writeAtomic(this.peersFile, text);
    this.lastWritten = text;
    this.log(`names: ${[...this.remote.values()].reduce((n, e) => n + e.length, 0)} entries of other hosts written to ${this.peersFile}`);
  }
}
