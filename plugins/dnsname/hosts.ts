/**
 * The per-network hosts file dnsmasq reads (`addn-hosts`), edited as text. Pure: no I/O.
 *
 * One line per address of an attachment, in hosts(5) format, with the owner in a trailing
 * comment (hosts(5) and dnsmasq both treat `#` to the end of the line as a comment):
 *
 *   10.88.0.5	web web.dns.podman db db.dns.podman	# cni:<containerID>:<ifname>
 *
 * So DEL and GC remove exactly the lines of one (container ID, interface) without a side index
 * that could drift from the file dnsmasq actually serves. Lines without our owner comment
 * (hand edits) are kept as they are and never count as an attachment.
 */

export interface Owner {
  containerID: string;
  ifname: string;
}

export interface HostsLine {
  ip: string;
  names: string[];
  owner?: Owner;
  /** The line as read (used to keep foreign lines byte for byte). */
  raw: string;
}

// The owner comment. CNI forbids ':' and whitespace in both container IDs and interface names,
// so the split is unambiguous and a hand-written comment does not look like one.
const OWNER_RE = /#\s*cni:([^\s:]+):([^\s:]+)\s*$/;

export function parseHosts(text: string): HostsLine[] {
  const out: HostsLine[] = [];
  for (const raw of text.split('\n')) {
    if (raw.trim() === '') continue;
    const hash = raw.indexOf('#');
    const body = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    const [ip = '', ...names] = body.split(/\s+/);
    const m = hash >= 0 ? OWNER_RE.exec(raw.slice(hash)) : null;
    const line: HostsLine = { ip, names, raw };
    if (m && ip && names.length > 0) line.owner = { containerID: m[1]!, ifname: m[2]! };
    out.push(line);
  }
  return out;
}

export function formatHosts(lines: HostsLine[]): string {
  return lines.map((l) => l.raw + '\n').join('');
}

/** `name name.domain alias alias.domain ...` for one address. */
export function hostnamesFor(name: string, aliases: string[], domain: string): string[] {
  return [name, ...aliases].flatMap((n) => [n, `${n}.${domain}`]);
}

export function entryLine(ip: string, names: string[], owner: Owner): HostsLine {
  return { ip, names, owner, raw: `${ip}\t${names.join(' ')}\t# cni:${owner.containerID}:${owner.ifname}` };
}

const sameOwner = (a: Owner | undefined, b: Owner): boolean => !!a && a.containerID === b.containerID && a.ifname === b.ifname;

/** The attachment's lines replaced by one line per ip (a repeated ADD does not duplicate). */
export function setEntries(lines: HostsLine[], owner: Owner, ips: string[], names: string[]): HostsLine[] {
  return [...lines.filter((l) => !sameOwner(l.owner, owner)), ...ips.map((ip) => entryLine(ip, names, owner))];
}

/** Drops the lines whose owner `drop` selects; returns what is left and how many went. */
export function removeEntries(lines: HostsLine[], drop: (o: Owner) => boolean): { lines: HostsLine[]; removed: number } {
  const kept = lines.filter((l) => !l.owner || !drop(l.owner));
  return { lines: kept, removed: lines.length - kept.length };
}

export function entriesOf(lines: HostsLine[], owner: Owner): HostsLine[] {
  return lines.filter((l) => sameOwner(l.owner, owner));
}

/** Distinct attachments with at least one line: when 0, the network's server can stop. */
export function attachmentCount(lines: HostsLine[]): number {
  return new Set(lines.filter((l) => l.owner).map((l) => `${l.owner!.containerID}\0${l.owner!.ifname}`)).size;
}
