/**
 * Runs libiio's real iiod for the network tests: on an XML context, or on fake
 * FIFO-backed IIO devices in a private mount namespace (libiio's local backend reads
 * them as real devices). Every server gets its own ephemeral port; stop() kills what
 * was started, by process group.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A port nobody listens on now (the kernel's pick). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on the port. */
export async function waitForPort(port: number, host = '127.0.0.1', tries = 200): Promise<void> {
  for (let i = 0; i < tries; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = new Socket();
      s.once('error', () => resolve(false));
      s.connect(port, host, () => {
        s.destroy();
        resolve(true);
      });
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${host}:${port}`);
}

export interface RunningIiod {
  readonly port: number;
  readonly uri: string;
  /** The shell that owns the namespace (fake devices) or iiod itself (XML). */
  readonly proc: ChildProcess;
  /** Output of iiod and the setup, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

function spawnGroup(
  cmd: string,
  args: string[],
  env?: NodeJS.ProcessEnv,
): { proc: ChildProcess; log: () => string } {
  const proc = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20000)));
  proc.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20000)));
  return { proc, log: () => out };
}

function stopper(proc: ChildProcess): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        resolve();
        return;
      }
      proc.once('exit', () => resolve());
      try {
        process.kill(-proc.pid!, 'SIGKILL');
      } catch {
        resolve();
      }
    });
}

/** `iiod -u xml:FILE -p PORT`. */
export async function startXmlIiod(xmlFile: string): Promise<RunningIiod> {
  const port = await freePort();
  const { proc, log } = spawnGroup('iiod', ['-u', `xml:${xmlFile}`, '-p', String(port)]);
  try {
    await waitForPort(port);
  } catch (err) {
    await stopper(proc)();
    throw new Error(`iiod did not start: ${(err as Error).message}\n${log()}`);
  }
  return { port, uri: `ip:127.0.0.1:${port}`, proc, log, stop: stopper(proc) };
}

/**
 * libiio main's iiod (1.0) on a context URI (`emu:FILE.xml` answers attribute reads from
 * the XML; 1.0's `xml:` answers them ENOSYS). Its log goes to stdout, block-buffered
 * when that is a pipe (and iiod lingers on SIGTERM, so it is killed before it flushes):
 * `stdbuf -o0 -e0` makes every line reach `log()` as it is written.
 */
export async function startMainIiod(
  main: { iiod: string; env: NodeJS.ProcessEnv },
  contextUri: string,
): Promise<RunningIiod> {
  const port = await freePort();
  const { proc, log } = spawnGroup(
    'stdbuf',
    ['-o0', '-e0', main.iiod, '-u', contextUri, '-p', String(port)],
    main.env,
  );
  try {
    await waitForPort(port);
  } catch (err) {
    await stopper(proc)();
    throw new Error(`libiio main's iiod did not start: ${(err as Error).message}\n${log()}`);
  }
  return { port, uri: `ip:127.0.0.1:${port}`, proc, log, stop: stopper(proc) };
}

/** One fake device: a FIFO as its /dev node and sysfs files libiio's local backend reads. */
export interface FakeDevice {
  readonly name: string;
  /** Scan elements, in index order: `in_voltage0` or `out_voltage0`, le:s16/16 (`in_timestamp`: le:s64/64). */
  readonly channels: readonly string[];
  /** Input: a shell command whose stdout feeds the FIFO (restarted when the reader closes). */
  readonly source?: string;
  /** Output: the file the FIFO's bytes are appended to. */
  readonly sink?: string;
  /** Extra sysfs attribute files (name → value) in the device directory. */
  readonly attrs?: Readonly<Record<string, string>>;
  /** Attribute files bind-mounted read-only: writes fail with EROFS, even for root. */
  readonly readOnlyAttrs?: Readonly<Record<string, string>>;
}

/**
 * The data of a fake input device: a 16-bit little-endian counter over the scan, the
 * value of channel c in scan s being (4s + c) mod 32768, holding only the channels
 * enabled when the reader opened the FIFO (as a kernel buffer does). One long-running
 * generator per device (no start-up delay per open); written in whole scans of at most
 * 4 KiB, atomic pipe writes, so a read of the FIFO returns whole scans.
 */
export const COUNTER_SOURCE = 'counter';

const COUNTER_PY = `
import os, struct, sys, errno, time
dev, fifo = sys.argv[1], sys.argv[2]
enable = dev + '/buffer/enable'
names = sorted(f[:-3] for f in os.listdir(dev + '/scan_elements') if f.endswith('_en'))
def val(path):
    return open(path).read().strip('\\0\\n ')
def drain():
    # A kernel buffer is flushed when disabled; a pipe is not: drop what was left.
    r = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        while os.read(r, 65536):
            pass
    except BlockingIOError:
        pass
    os.close(r)
while True:
    fd = os.open(fifo, os.O_WRONLY)
    try:
        while True:
            # libiio opens the node, then enables channels, then the buffer
            while val(enable) != '1':
                time.sleep(0.0005)
            stamp = os.stat(enable).st_mtime_ns
            en = sorted(int(val(dev + '/scan_elements/' + n + '_index')) for n in names
                        if val(dev + '/scan_elements/' + n + '_en') == '1')
            per = len(en) or 1
            scans = 4096 // (2 * per)
            os.set_blocking(fd, False)
            s = 0
            chunk = b''
            while True:
                if os.stat(enable).st_mtime_ns != stamp:
                    break  # the buffer was disabled (and maybe enabled again)
                if not chunk:
                    chunk = struct.pack('<%dH' % (scans * len(en)),
                                        *[((s + k) * 4 + c) % 32768 for k in range(scans) for c in en])
                    s += scans
                try:
                    os.write(fd, chunk)  # at most 4 KiB: all or nothing
                    chunk = b''
                except BlockingIOError:
                    time.sleep(0.0002)
            drain()
    except OSError as e:
        if e.errno != errno.EPIPE:
            raise
    finally:
        os.close(fd)
`;

/**
 * The data of a device with its own clock, for counting what an outage lost: scan s is
 * made at t0 + s / rate whether anybody reads or not (as a real converter), so after a
 * reader comes back the first scan it gets tells how many it missed. Channels (le, by
 * scan index): `in_voltage0` = s & 0xffff, `in_voltage1` = s >> 16 (a 32-bit counter),
 * `in_timestamp` (le:s64/64) = 10^12 + s × 10^9 / rate ns. Only the enabled channels are
 * stored, in the kernel's layout; written with blocking writes of whole scans, at most
 * 4 KiB, while the buffer stays enabled. The rate is the device's `sampling_frequency`.
 */
export const CLOCK_SOURCE = 'clock';

const CLOCK_PY = `
import os, struct, sys, time
dev, fifo = sys.argv[1], sys.argv[2]
enable = dev + '/buffer/enable'
rate = float(open(dev + '/sampling_frequency').read())
t0 = time.monotonic()
def val(path):
    return open(path).read().strip('\\0\\n ')
names = sorted(f[:-3] for f in os.listdir(dev + '/scan_elements') if f.endswith('_en'))
def layout():
    els = []
    for n in names:
        if val(dev + '/scan_elements/' + n + '_en') != '1':
            continue
        idx = int(val(dev + '/scan_elements/' + n + '_index'))
        size = 8 if 'timestamp' in n else 2
        els.append((idx, n, size))
    els.sort()
    off, out, big = 0, [], 1
    for idx, n, size in els:
        off = (off + size - 1) // size * size
        out.append((n, off, size))
        off += size
        big = max(big, size)
    return out, (off + big - 1) // big * big
def drain():
    r = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        while os.read(r, 65536):
            pass
    except BlockingIOError:
        pass
    os.close(r)
def scan(s, lay, nbytes):
    b = bytearray(nbytes)
    for n, off, size in lay:
        if n.endswith('voltage0'):
            struct.pack_into('<H', b, off, s & 0xffff)
        elif n.endswith('voltage1'):
            struct.pack_into('<H', b, off, (s >> 16) & 0xffff)
        else:
            struct.pack_into('<q', b, off, 10**12 + int(s * 1e9 / rate))
    return bytes(b)
while True:
    fd = os.open(fifo, os.O_WRONLY)
    try:
        while val(enable) != '1':
            time.sleep(0.0005)
        stamp = os.stat(enable).st_mtime_ns
        lay, nbytes = layout()
        per = max(1, 4096 // nbytes)
        s = int((time.monotonic() - t0) * rate)
        # the buffer disabled (the value, and the mtime for a disable and enable between
        # two looks) ends this stream: what is left in the pipe is dropped, as a kernel
        # buffer is flushed, so that the next reader never reads this layout's scans
        while os.stat(enable).st_mtime_ns == stamp and val(enable) == '1':
            due = int((time.monotonic() - t0) * rate)
            if due <= s:
                time.sleep(0.0005)
                continue
            k = min(per, due - s)
            os.write(fd, b''.join(scan(s + i, lay, nbytes) for i in range(k)))
            s += k
        drain()
    except OSError:
        pass
    finally:
        os.close(fd)
`;

export function fakeSetup(devices: readonly FakeDevice[], dir: string): string {
  const lines = [
    'set -e',
    'mount -t tmpfs none /sys/bus && mkdir -p /sys/bus/iio/devices',
    'mount -t tmpfs none /dev',
    'mknod /dev/null c 1 3; mknod /dev/zero c 1 5; mknod /dev/urandom c 1 9; chmod 666 /dev/null /dev/zero',
  ];
  devices.forEach((d, n) => {
    const D = `/sys/bus/iio/devices/iio:device${n}`;
    lines.push(`mkdir -p ${D}/scan_elements ${D}/buffer`);
    lines.push(`echo ${d.name} > ${D}/name`);
    for (const [k, v] of Object.entries(d.attrs ?? {})) lines.push(`echo '${v}' > ${D}/${k}`);
    for (const [k, v] of Object.entries(d.readOnlyAttrs ?? {})) {
      lines.push(`echo '${v}' > ${D}/${k}`);
      lines.push(`mount --bind ${D}/${k} ${D}/${k} && mount -o remount,ro,bind ${D}/${k}`);
    }
    d.channels.forEach((c, i) => {
      lines.push(`echo 0 > ${D}/scan_elements/${c}_en`);
      lines.push(`echo ${i} > ${D}/scan_elements/${c}_index`);
      const type = c.endsWith('timestamp') ? 'le:s64/64' : 'le:s16/16';
      lines.push(`echo ${type}'>>'0 > ${D}/scan_elements/${c}_type`);
      if (!c.endsWith('timestamp')) lines.push(`echo 100 > ${D}/${c}_raw`);
    });
    lines.push(
      `echo 0 > ${D}/buffer/enable; echo 4096 > ${D}/buffer/length; echo 1 > ${D}/buffer/watermark`,
    );
    lines.push(`mkfifo /dev/iio:device${n}`);
    if (d.source === COUNTER_SOURCE) {
      lines.push(`python3 ${dir}/counter.py ${D} /dev/iio:device${n} 2>/dev/null &`);
    } else if (d.source === CLOCK_SOURCE) {
      lines.push(`python3 ${dir}/clock.py ${D} /dev/iio:device${n} 2>/dev/null &`);
    } else if (d.source) {
      lines.push(`( while :; do ${d.source} > /dev/iio:device${n} 2>/dev/null || true; done ) &`);
    }
    if (d.sink) {
      lines.push(`( while :; do cat /dev/iio:device${n} >> ${d.sink} || true; done ) &`);
    }
  });
  lines.push('set +e');
  return lines.join('\n');
}

export interface FakeIiod extends RunningIiod {
  /** PID of the iiod process now serving (changes after restartIiod). */
  iiodPid(): number;
  /** kill -9 of iiod alone (the devices stay). */
  killIiod(signal?: NodeJS.Signals): void;
  /** SIGSTOP of iiod, resolved once every thread of it is stopped. */
  freezeIiod(): Promise<void>;
  /** Starts iiod again in the same namespace, on the same port. */
  restartIiod(): Promise<void>;
  /** Runs a command inside the namespace (e.g. to read a sysfs file back). */
  exec(cmd: string, args: string[]): Promise<{ stdout: string; status: number | null }>;
}

/** iiod (`-u local:`) serving fake devices in a private mount namespace. Needs root. */
export async function startFakeIiod(devices: readonly FakeDevice[]): Promise<FakeIiod> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'iiokit-fake-'));
  const script = join(dir, 'ns.sh');
  const pidFile = join(dir, 'iiod.pid');
  const iiodPid = (): number => Number(readFileSync(pidFile, 'utf8').trim());
  writeFileSync(join(dir, 'counter.py'), COUNTER_PY);
  writeFileSync(join(dir, 'clock.py'), CLOCK_PY);
  writeFileSync(
    script,
    [
      fakeSetup(devices, dir),
      `start_iiod() { iiod -p ${port} & echo $! > ${pidFile}; }`,
      'start_iiod',
      // Keep the namespace alive after iiod dies (kill -9 tests restart it).
      'while :; do sleep 3600; done',
    ].join('\n'),
  );
  const { proc, log } = spawnGroup('unshare', ['-m', '--propagation', 'private', 'bash', script]);
  const stopGroup = stopper(proc);
  const stop = async (): Promise<void> => {
    try {
      process.kill(iiodPid(), 'SIGKILL'); // a restarted iiod is not in the group
    } catch {
      // already gone
    }
    await stopGroup();
  };
  try {
    await waitForPort(port);
  } catch (err) {
    await stop();
    throw new Error(`fake iiod did not start: ${(err as Error).message}\n${log()}`);
  }

  const nsexec = (cmd: string, args: string[], detached = false): ChildProcess =>
    spawn('nsenter', ['-t', String(proc.pid), '-m', cmd, ...args], {
      stdio: detached ? 'ignore' : ['ignore', 'pipe', 'pipe'],
      detached,
    });
  return {
    port,
    uri: `ip:127.0.0.1:${port}`,
    proc,
    log,
    stop,
    iiodPid,
    killIiod: (signal = 'SIGKILL') => process.kill(iiodPid(), signal),
    freezeIiod: async () => {
      const pid = iiodPid();
      process.kill(pid, 'SIGSTOP');
      // the stop reaches each thread asynchronously: wait until none runs
      for (let i = 0; i < 400; i++) {
        const states = readdirSync(`/proc/${pid}/task`).map(
          (t) => /State:\s+(\S)/.exec(readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8'))?.[1],
        );
        if (states.every((st) => st === 'T' || st === 't')) return;
        await new Promise((r) => setTimeout(r, 5));
      }
      throw new Error(`iiod ${pid} did not stop`);
    },
    restartIiod: async () => {
      // a new iiod in the namespace, in the shell's process group so stop() ends it too
      const child = spawn(
        'nsenter',
        [
          '-t',
          String(proc.pid),
          '-m',
          'bash',
          '-c',
          `iiod -p ${port} & echo $! > ${pidFile}; wait`,
        ],
        { stdio: 'ignore' },
      );
      child.unref();
      await waitForPort(port);
    },
    exec: (cmd, args) =>
      new Promise((resolve) => {
        const c = nsexec(cmd, args);
        let stdout = '';
        c.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
        c.on('close', (status) => resolve({ stdout, status }));
      }),
  };
}

/** libiio main's iiod and our server, side by side on the same fake devices. */
export interface FakePair {
  /** libiio main's iiod (`-u local:`). */
  readonly iiod: { readonly port: number; readonly uri: string };
  /** `iiokit serve -u local:` (this checkout's bin/iiokit.js). */
  readonly ours: { readonly port: number; readonly uri: string };
  /** Both servers' output and the setup's, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

/**
 * Starts libiio main's iiod and `iiokit serve -u local:` in one private mount namespace
 * holding the fake devices: both serve the very same sysfs files and FIFOs through their
 * local backends. Needs root, libiio main and our native addon.
 */
export async function startFakePair(
  devices: readonly FakeDevice[],
  main: { iiod: string; env: NodeJS.ProcessEnv },
  extraServeArgs: readonly string[] = [],
): Promise<FakePair> {
  const [p1, p2] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'iiokit-pair-'));
  const script = join(dir, 'ns.sh');
  const cli = join(__dirname, '../../../../bin/iiokit.js');
  writeFileSync(join(dir, 'counter.py'), COUNTER_PY);
  writeFileSync(
    script,
    [
      fakeSetup(devices, dir),
      `stdbuf -o0 -e0 ${main.iiod} -p ${p1} &`,
      `${process.execPath} ${cli} serve -u local: -p ${p2} ${extraServeArgs.join(' ')} &`,
      'while :; do sleep 3600; done',
    ].join('\n'),
  );
  const { proc, log } = spawnGroup(
    'unshare',
    ['-m', '--propagation', 'private', 'bash', script],
    main.env,
  );
  const stop = stopper(proc);
  try {
    await waitForPort(p1);
    await waitForPort(p2);
  } catch (err) {
    await stop();
    throw new Error(`the servers did not start: ${(err as Error).message}\n${log()}`);
  }
  return {
    iiod: { port: p1, uri: `ip:127.0.0.1:${p1}` },
    ours: { port: p2, uri: `ip:127.0.0.1:${p2}` },
    log,
    stop,
  };
}
