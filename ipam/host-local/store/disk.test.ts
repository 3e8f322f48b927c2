// DiskStore on a temp dir: the reference's exact file format, and the index staying honest
// when another writer (the reference) changes the lease directory behind our back.
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatIP, parseIP } from '../../../lib/ip/cidr';
import { DiskStore, INDEX_ROOT } from './disk';

const ip = (s: string) => parseIP(s)!;
let dataDir: string;
let store: DiskStore;
const leaseDir = () => join(dataDir, 'net1');
const locked = <T>(fn: () => Promise<T>) => store.withLock(fn);
const ips = (xs: { family: 4 | 6; value: bigint }[]) => xs.map(formatIP).sort();

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'hl-disk-'));
  store = new DiskStore('net1', dataDir);
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

describe('DiskStore format', () => {
  it('writes <ip> with "id\\r\\nifname", mode 0600, and last_reserved_ip.<N>', async () => {
    expect(await locked(() => store.reserve(' c1 ', 'eth0', ip('10.0.0.2'), '0'))).toBe(true);
    expect(await locked(() => store.reserve('c2', 'eth0', ip('fd00::0002'), '1'))).toBe(true);
    expect(readFileSync(join(leaseDir(), '10.0.0.2'), 'utf8')).toBe('c1\r\neth0');
    expect(statSync(join(leaseDir(), '10.0.0.2')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(leaseDir(), 'fd00::2'), 'utf8')).toBe('c2\r\neth0');
    expect(readFileSync(join(leaseDir(), 'last_reserved_ip.0'), 'utf8')).toBe('10.0.0.2');
    expect(formatIP((await store.lastReservedIP('1'))!)).toBe('fd00::2');
    expect(existsSync(join(leaseDir(), 'lock'))).toBe(true);
    expect(readdirSync(leaseDir()).sort()).toEqual(['10.0.0.2', 'fd00::2', 'last_reserved_ip.0', 'last_reserved_ip.1', 'lock']);
  });

  it('never writes through a symlink planted as last_reserved_ip or lock', async () => {
    const outside = join(dataDir, 'outside');
    writeFileSync(outside, 'precious');
    symlinkSync(outside, join(leaseDir(), 'last_reserved_ip.0'));
    expect(await locked(() => store.reserve('c1', 'eth0', ip('10.0.0.2'), '0'))).toBe(true);
    expect(readFileSync(outside, 'utf8')).toBe('precious');
    expect(lstatSync(join(leaseDir(), 'last_reserved_ip.0')).isFile()).toBe(true);
    expect(readFileSync(join(leaseDir(), 'last_reserved_ip.0'), 'utf8')).toBe('10.0.0.2');
    // A planted lock file link is refused rather than followed (creating a file elsewhere).
    const other = new DiskStore('net2', dataDir);
    symlinkSync(join(dataDir, 'made-by-link'), join(dataDir, 'net2', 'lock'));
    await expect(other.withLock(async () => undefined)).rejects.toThrow(/lock/);
    expect(existsSync(join(dataDir, 'made-by-link'))).toBe(false);
  });

  it('refuses an address already leased (O_EXCL), whoever wrote it', async () => {
    writeFileSync(join(leaseDir(), '10.0.0.3'), 'other\r\neth0');
    expect(await locked(() => store.reserve('c1', 'eth0', ip('10.0.0.3'), '0'))).toBe(false);
    expect(readFileSync(join(leaseDir(), '10.0.0.3'), 'utf8')).toBe('other\r\neth0');
    expect(await store.isReserved(ip('10.0.0.3'))).toBe(true);
    expect(await store.isReserved(ip('10.0.0.4'))).toBe(false);
  });

  it('finds and releases by (id, ifname), falling back to legacy bare-id leases', async () => {
    writeFileSync(join(leaseDir(), '10.0.0.5'), 'c1\r\neth0');
    writeFileSync(join(leaseDir(), '10.0.0.6'), 'c1\r\neth1');
    writeFileSync(join(leaseDir(), '10.0.0.7'), 'legacy\n');
    expect(ips(await locked(() => store.getByID('c1', 'eth0')))).toEqual(['10.0.0.5']);
    expect(await locked(() => store.findByID('legacy', 'whatever'))).toBe(true);
    await locked(() => store.releaseByID('c1', 'eth0'));
    expect(readdirSync(leaseDir()).sort()).toEqual(['10.0.0.6', '10.0.0.7', 'lock']);
    await locked(() => store.releaseByID('legacy', 'eth3'));
    expect(existsSync(join(leaseDir(), '10.0.0.7'))).toBe(false);
    await locked(() => store.releaseByID('nobody', 'eth0'));
    expect(await locked(() => store.findByID('c1', 'eth0'))).toBe(false);
  });

  it('releaseIP removes only a lease the attachment holds', async () => {
    writeFileSync(join(leaseDir(), '10.0.0.5'), 'c1\r\neth0');
    await locked(() => store.releaseIP(ip('10.0.0.5'), 'c2', 'eth0'));
    expect(existsSync(join(leaseDir(), '10.0.0.5'))).toBe(true);
    await locked(() => store.releaseIP(ip('10.0.0.5'), 'c1', 'eth0'));
    expect(existsSync(join(leaseDir(), '10.0.0.5'))).toBe(false);
  });

  it('gc keeps valid attachments (and legacy leases of a valid id) and removes the rest', async () => {
    writeFileSync(join(leaseDir(), '10.0.0.5'), 'keep\r\neth0');
    writeFileSync(join(leaseDir(), '10.0.0.6'), 'keep\r\neth1');
    writeFileSync(join(leaseDir(), '10.0.0.7'), 'keep');
    writeFileSync(join(leaseDir(), '10.0.0.8'), 'gone\r\neth0');
    writeFileSync(join(leaseDir(), 'last_reserved_ip.0'), '10.0.0.8');
    const out = await locked(() => store.gc([{ containerID: 'keep', ifname: 'eth0' }]));
    expect(ips(out.released)).toEqual(['10.0.0.6', '10.0.0.8']);
    expect(readdirSync(leaseDir()).sort()).toEqual(['10.0.0.5', '10.0.0.7', 'last_reserved_ip.0', 'lock']);
    // The index GC left behind answers correctly.
    expect(ips(await locked(() => store.getByID('keep', 'eth0')))).toEqual(['10.0.0.5', '10.0.0.7']);
  });
});

describe('DiskStore index', () => {
  const indexDir = () => join(dataDir, INDEX_ROOT, 'net1');

  it('keeps the derived index outside the lease directory and seals it', async () => {
    await locked(() => store.reserve('c1', 'eth0', ip('10.0.0.2'), '0'));
    expect(existsSync(join(indexDir(), 'stamp'))).toBe(true);
    const st = statSync(leaseDir(), { bigint: true });
    expect(readFileSync(join(indexDir(), 'stamp'), 'utf8').trim()).toBe(`${st.ino}:${st.mtimeNs}`);
  });

  it('answers from the index without reading unrelated leases', async () => {
    for (let i = 2; i < 50; i++) writeFileSync(join(leaseDir(), `10.0.0.${i}`), `c${i}\r\neth0`);
    await locked(() => store.findByID('warm', 'eth0')); // rebuild once
    // Make every other lease unreadable garbage: an index answer never looks at them.
    for (let i = 2; i < 50; i++) if (i !== 7) writeFileSync(join(leaseDir(), `10.0.0.${i}`), `c${i}\r\neth0`); // same content, no dir change
    const spy = jest.spyOn(require('node:fs'), 'readFileSync');
    expect(ips(await locked(() => store.getByID('c7', 'eth0')))).toEqual(['10.0.0.7']);
    const leaseReads = spy.mock.calls.filter((c) => String(c[0]).startsWith(leaseDir() + '/10.')).length;
    spy.mockRestore();
    expect(leaseReads).toBe(1); // the verification read of 10.0.0.7 only
  });

  it('notices a lease created by another writer right after our seal', async () => {
    await locked(() => store.reserve('c1', 'eth0', ip('10.0.0.2'), '0'));
    // The reference, within the same clock tick: create a lease without our index knowing.
    writeFileSync(join(leaseDir(), '10.0.0.3'), 'ref\r\neth0');
    expect(ips(await locked(() => store.getByID('ref', 'eth0')))).toEqual(['10.0.0.3']);
  });

  it('notices a lease removed and re-created for another owner by another writer', async () => {
    await locked(() => store.reserve('a', 'eth0', ip('10.0.0.2'), '0'));
    unlinkSync(join(leaseDir(), '10.0.0.2'));
    writeFileSync(join(leaseDir(), '10.0.0.2'), 'b\r\neth0');
    expect(await locked(() => store.findByID('a', 'eth0'))).toBe(false);
    expect(ips(await locked(() => store.getByID('b', 'eth0')))).toEqual(['10.0.0.2']);
  });

  it('survives a damaged or missing index', async () => {
    await locked(() => store.reserve('a', 'eth0', ip('10.0.0.2'), '0'));
    rmSync(join(dataDir, INDEX_ROOT), { recursive: true });
    expect(await locked(() => store.findByID('a', 'eth0'))).toBe(true);
    await locked(() => store.reserve('b', 'eth0', ip('10.0.0.3'), '0'));
    // A bucket naming a lease that belongs to someone else (the lease directory untouched, so
    // the stamp still matches): the verification read catches it and forces a rebuild.
    for (const f of readdirSync(indexDir())) {
      if (f !== 'stamp') writeFileSync(join(indexDir(), f), readFileSync(join(indexDir(), f), 'utf8').replace(/10\.0\.0\.2$/m, '10.0.0.3'));
    }
    expect(ips(await locked(() => store.getByID('a', 'eth0')))).toEqual(['10.0.0.2']);
  });

  it('a fresh store on the same directory trusts a sealed index (second process)', async () => {
    await locked(() => store.reserve('a', 'eth0', ip('10.0.0.2'), '0'));
    const other = new DiskStore('net1', dataDir);
    await other.withLock(async () => expect(ips(await other.getByID('a', 'eth0'))).toEqual(['10.0.0.2']));
    await other.withLock(() => other.releaseByID('a', 'eth0'));
    expect(await locked(() => store.findByID('a', 'eth0'))).toBe(false);
  });
});
