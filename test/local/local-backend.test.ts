/**
 * The local: backend on copies of the VM's sysfs: options, the streaming handle, file
 * conventions, errors that a copy can show, hwmon, libiio.ini, the context scanner.
 * (Errors only a kernel gives — EACCES, EBUSY, EINVAL — are in test/kernel.)
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createContext, IioError, type Context } from '../../src';
import type { LocalBackend } from '../../src/backends/local';
import { attrText } from '../../src/backends/local/files';
import { scanLocalContexts } from '../../src/backends/local/scanner';
import { parseLibiioIni } from '../../src/backends/local/sysfs-scan';
import { scanContexts } from '../../src/scan';
import {
  copySnapshot,
  loadSnapshot,
  snapshotNames,
  snapshotOptions,
  type Snapshot,
} from '../helpers/sysfs-snapshot';

const s: Snapshot = loadSnapshot(snapshotNames()[0]);

async function withCopy(
  f: (root: string, open: (o?: Record<string, unknown>) => Promise<Context>) => Promise<void>,
): Promise<void> {
  const copy = copySnapshot(s);
  try {
    await f(copy.root, (o = {}) =>
      createContext('local:', { ...snapshotOptions(s, copy.root), ...o }),
    );
  } finally {
    copy.remove();
  }
}

function backendOf(ctx: Context): LocalBackend {
  return ctx.backendForInternalUse as LocalBackend;
}

async function rejects(p: Promise<unknown>, code: string, ...parts: string[]): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof IioError, String(e));
    assert.equal(e.code, code, e.message);
    for (const part of parts) assert.ok(e.message.includes(part), `"${part}" in ${e.message}`);
    return true;
  });
}

describe(`local: backend on the ${s.name} snapshot`, function () {
  this.timeout(30000);

  it('lists every entry of /sys/bus/iio/devices, sorted by id, with libiio context attributes', async () => {
    const ctx = await createContext('local:', snapshotOptions(s));
    try {
      assert.deepEqual(
        ctx.devices.map((d) => d.id),
        [
          'iio:device0',
          'iio:device1',
          'iio:device2',
          'iio:device3',
          'iio_evgen',
          'iio_sysfs_trigger',
          'trigger0',
          'trigger1',
          'trigger2',
        ],
      );
      // control nodes: no name, not triggers, their files are device attributes
      const sysfsTrig = ctx.device('iio_sysfs_trigger');
      assert.equal(sysfsTrig.name, undefined);
      assert.equal(sysfsTrig.isTrigger, false);
      assert.deepEqual(
        sysfsTrig.attrs.map((a) => a.name),
        ['add_trigger', 'remove_trigger'],
      );
      assert.equal(ctx.device('iio_evgen').attrs.length, 10);
      assert.equal(ctx.name, 'local');
      assert.equal(ctx.uri, 'local:');
      assert.deepEqual(Object.keys(ctx.attrs), ['local,kernel', 'uri']);
      assert.equal(ctx.attrs['local,kernel'], s.manifest.uname.release);
      assert.ok(ctx.description.startsWith(`Linux (none) ${s.manifest.uname.release} `));
      const dac = ctx.device('loopback_dac');
      assert.deepEqual(
        dac.debugAttrs.map((a) => a.name),
        ['direct_reg_access'],
      );
      assert.deepEqual(
        dac.bufferAttrs.map((a) => a.name),
        ['data_available', 'direction'],
      );
      assert.equal(ctx.device('hrtimer0').isTrigger, true);
    } finally {
      await ctx.close();
    }
  });

  it('follows the recorded directory order for index-less channels', async () => {
    const order = { ...s.manifest.readdirOrder };
    const key = 'bus/iio/devices/iio:device0';
    order[key] = [...order[key]].reverse();
    const reversed = await createContext('local:', { ...snapshotOptions(s), readdirOrder: order });
    const normal = await createContext('local:', snapshotOptions(s));
    try {
      const ids = (c: Context): string[] =>
        c
          .device('dummy0')
          .channels.filter((x) => !x.isScanElement)
          .map((x) => x.toString());
      assert.deepEqual(ids(normal), [
        'activity_walking (input)',
        'voltage0 (output)',
        'activity_running (input)',
        'steps (input)',
        'sampling (input)',
      ]);
      assert.deepEqual(ids(reversed), [
        'activity_running (input)',
        'voltage0 (output)',
        'activity_walking (input)',
        'steps (input)',
        'sampling (input)',
      ]);
    } finally {
      await reversed.close();
      await normal.close();
    }
  });

  it('hands the streaming layer the right files, nodes and timeout', async () => {
    await withCopy(async (root, open) => {
      const ctx = await open({ devDir: '/tmp/devnodes', timeoutMs: 250 });
      try {
        const dummy = ctx.device('dummy0');
        const h = backendOf(ctx).handleOf(dummy.info);
        const dir = `${root}/bus/iio/devices/iio:device0`;
        assert.equal(h.sysfsDir, dir);
        assert.equal(h.devNode, '/tmp/devnodes/iio:device0');
        assert.equal(h.bufferDir, `${dir}/buffer0`);
        assert.equal(h.scanElementsDir, `${dir}/buffer0`);
        assert.equal(h.timeoutMs, 250);
        assert.equal(h.uri, 'local:');
        assert.deepEqual(
          h.scanElementStems,
          dummy.channels.map((c) => (c.isScanElement ? `in_${c.id}` : '')),
        );
        assert.equal(h.scanElementStems.filter(Boolean).length, 5);
        await ctx.setTimeout(0);
        assert.equal(backendOf(ctx).handleOf(dummy.info).timeoutMs, 0);
        assert.throws(() => backendOf(ctx).handleOf(ctx.device('hrtimer0').info), /ENODEV/);
      } finally {
        await ctx.close();
      }
      const dflt = await createContext('local:', snapshotOptions(s, root));
      assert.equal(backendOf(dflt).handleOf(dflt.device('dummy0').info).timeoutMs, 1000);
      assert.equal(
        backendOf(dflt).handleOf(dflt.device('dummy0').info).devNode,
        '/dev/iio:device0',
      );
      await dflt.close();
    });
  });

  it('reads like libiio: last newline or NUL cut, text ends at a NUL, empty is EIO', async () => {
    assert.equal(attrText(Buffer.from('73\n')), '73');
    assert.equal(attrText(Buffer.from('realtime\n\0')), 'realtime\n');
    assert.equal(attrText(Buffer.from('abc')), 'abc');
    assert.equal(attrText(Buffer.from('a\0b\n')), 'a');
    assert.equal(attrText(Buffer.from('\n')), '');
    assert.equal(attrText(Buffer.alloc(0)), undefined);
    await withCopy(async (root, open) => {
      const ctx = await open();
      try {
        const file = `${root}/bus/iio/devices/iio:device0/in_voltage0_raw`;
        writeFileSync(file, '');
        await rejects(
          ctx.device('dummy0').channel('voltage0', false).readAttr('raw'),
          'EIO',
          'device iio:device0',
          'channel voltage0',
          'attribute raw',
          `file ${file}`,
          'context local:',
        );
      } finally {
        await ctx.close();
      }
    });
  });

  it('writes the value and its NUL, as libiio does', async () => {
    await withCopy(async (root, open) => {
      const ctx = await open();
      try {
        const ch = ctx.device('dummy0').channel('voltage0', true);
        assert.equal(await ch.attr('raw').write(42), 3);
        const file = `${root}/bus/iio/devices/iio:device0/out_voltage0_raw`;
        assert.deepEqual(readFileSync(file), Buffer.from('42\0'));
        assert.equal(await ch.readAttr('raw'), '42');
        await ctx.device('dummy0').writeBufferAttr('direction', 'in');
        assert.equal(
          readFileSync(`${root}/bus/iio/devices/iio:device0/buffer/direction`, 'utf8'),
          'in\0',
        );
      } finally {
        await ctx.close();
      }
    });
  });

  it('event attributes: read from and written to events/ (with the NUL), errors name the file', async () => {
    await withCopy(async (root, open) => {
      const ctx = await open();
      try {
        const dummy = ctx.device('dummy0');
        const v0 = dummy.channel('voltage0', false);
        const dir = `${root}/bus/iio/devices/iio:device0/events`;
        assert.deepEqual(
          v0.eventAttrs.map((a) => [a.name, a.filename]),
          [
            ['thresh_rising_en', 'in_voltage0_thresh_rising_en'],
            ['thresh_rising_value', 'in_voltage0_thresh_rising_value'],
          ],
        );
        assert.deepEqual(
          dummy.eventAttrs.map((a) => a.name),
          ['in_steps_change_en'],
        );
        // values as the copy holds them (what the kernel showed)
        assert.equal(
          await v0.readEventAttr('thresh_rising_value'),
          readFileSync(`${dir}/in_voltage0_thresh_rising_value`, 'utf8').trim(),
        );
        await v0.writeEventAttr('thresh_rising_value', 42);
        assert.deepEqual(
          readFileSync(`${dir}/in_voltage0_thresh_rising_value`),
          Buffer.from('42\0'),
        );
        assert.equal(await v0.readEventAttr('thresh_rising_value'), '42');
        await v0.writeEventAttr('thresh_rising_en', true);
        assert.equal(readFileSync(`${dir}/in_voltage0_thresh_rising_en`, 'utf8'), '1\0');
        await dummy.writeEventAttr('in_steps_change_en', 1);
        assert.equal(readFileSync(`${dir}/in_steps_change_en`, 'utf8'), '1\0');
        // the file name reaches the same attribute
        assert.equal(v0.eventAttr('in_voltage0_thresh_rising_value').name, 'thresh_rising_value');
        rmSync(`${dir}/in_voltage0_thresh_rising_en`);
        await rejects(
          v0.readEventAttr('thresh_rising_en'),
          'ENOENT',
          'device iio:device0',
          'channel voltage0',
          'attribute thresh_rising_en',
          `file ${dir}/in_voltage0_thresh_rising_en`,
        );
        await rejects(
          Promise.resolve().then(() => v0.readEventAttr('thresh_falling_value')),
          'ENOENT',
          'no event attribute "thresh_falling_value"',
          'channel voltage0',
        );
        // channels without events/ files have none
        assert.deepEqual(dummy.channel('accel_x').eventAttrs, []);
        assert.deepEqual(ctx.device('loopback_adc').eventAttrs, []);
      } finally {
        await ctx.close();
      }
    });
  });

  it('registers: libiio formats, "0x<addr>" then read; "0x<addr> 0x<value>" to write', async () => {
    await withCopy(async (root, open) => {
      const ctx = await open();
      try {
        const dac = ctx.device('loopback_dac');
        const file = `${root}/kernel/debug/iio/iio:device2/direct_reg_access`;
        await dac.writeRegister(0x10, 0xbeef);
        assert.equal(readFileSync(file, 'utf8'), '0x10 0xbeef\0');
        // a copy echoes the address back, where the kernel would answer the value
        assert.equal(await dac.readRegister(0x2a), 0x2a);
        assert.equal(readFileSync(file, 'utf8'), '0x2a\0');
        await rejects(
          Promise.resolve().then(() => dac.readRegister(-1)),
          'EINVAL',
          'device iio:device2',
        );
        await rejects(
          Promise.resolve().then(() => dac.writeRegister(1, 2 ** 32)),
          'EINVAL',
          'device iio:device2',
        );
      } finally {
        await ctx.close();
      }
    });
  });

  it('_available attributes are parsed by readAvailable() on channels and devices', async () => {
    await withCopy(async (root, open) => {
      const dev = `${root}/bus/iio/devices`;
      writeFileSync(
        `${dev}/iio:device0/in_voltage0_scale_available`,
        '0.001333 0.002666 0.005333\n',
      );
      writeFileSync(`${dev}/iio:device0/in_voltage_offset_available`, '[-10 1 10]\n');
      writeFileSync(`${dev}/trigger0/sampling_frequency_available`, '[1 1 1000]\n');
      const ctx = await open({ readdirOrder: undefined });
      try {
        const v0 = ctx.device('dummy0').channel('voltage0', false);
        assert.deepEqual(await v0.readAvailable('scale'), {
          kind: 'list',
          values: ['0.001333', '0.002666', '0.005333'],
        });
        assert.deepEqual(await v0.readAvailable('offset_available'), {
          kind: 'range',
          min: -10,
          step: 1,
          max: 10,
        });
        assert.deepEqual(await ctx.device('hrtimer0').readAvailable('sampling_frequency'), {
          kind: 'range',
          min: 1,
          step: 1,
          max: 1000,
        });
        assert.deepEqual(
          await v0.attr('scale_available').readAvailable(),
          await v0.readAvailable('scale'),
        );
        await rejects(
          v0.readAvailable('raw'),
          'ENOENT',
          'device iio:device0',
          'channel voltage0',
          'attribute raw_available',
        );
      } finally {
        await ctx.close();
      }
    });
  });

  it('ENOENT names the file when an attribute disappears; unknown names name the attribute', async () => {
    await withCopy(async (root, open) => {
      const ctx = await open();
      try {
        const file = `${root}/bus/iio/devices/trigger0/sampling_frequency`;
        rmSync(file);
        const hr = ctx.device('hrtimer0');
        await rejects(
          hr.readAttr('sampling_frequency'),
          'ENOENT',
          'device trigger0',
          `file ${file}`,
        );
        await rejects(
          hr.writeAttr('sampling_frequency', 5),
          'ENOENT',
          'device trigger0',
          `file ${file}`,
        );
        await rejects(
          Promise.resolve().then(() => hr.readAttr('nosuch')),
          'ENOENT',
          'device trigger0',
          'attribute nosuch',
        );
        await rejects(hr.getTrigger(), 'ENOENT', 'device trigger0', 'trigger/current_trigger');
      } finally {
        await ctx.close();
      }
    });
  });

  it('triggers: current_trigger empty is null, a name is the trigger, unknown is ENXIO', async () => {
    await withCopy(async (root, open) => {
      const ctx = await open();
      try {
        const adc = ctx.device('loopback_adc');
        const file = `${root}/bus/iio/devices/iio:device3/trigger/current_trigger`;
        assert.equal(await adc.getTrigger(), null);
        await adc.setTrigger('hrtimer1');
        assert.equal(readFileSync(file, 'utf8'), 'hrtimer1\0');
        assert.equal((await adc.getTrigger())?.id, 'trigger1');
        writeFileSync(file, 'elsewhere\n');
        await rejects(adc.getTrigger(), 'ENXIO', 'device iio:device3');
        await adc.setTrigger(null);
        assert.equal(readFileSync(file, 'utf8'), '\0');
        assert.equal(await adc.getTrigger(), null);
      } finally {
        await ctx.close();
      }
    });
  });

  it('multi-buffer devices: bufferN/ listed in `buffers`, read through bufferIndex', async () => {
    await withCopy(async (root, open) => {
      const b1 = `${root}/bus/iio/devices/iio:device3/buffer1`;
      mkdirSync(b1);
      for (const [f, v] of [
        ['direction', 'out'],
        ['length', '4'],
        ['enable', '0'],
        ['watermark', '1'],
        ['data_available', '3'],
        ['hwfifo_enabled', '0'],
        ['out_voltage0_en', '0'],
        ['out_voltage0_index', '0'],
        ['out_voltage0_type', 'le:s16/16>>0'],
      ])
        writeFileSync(`${b1}/${f}`, `${v}\n`);
      const ctx = await open();
      try {
        const adc = ctx.device('loopback_adc');
        assert.deepEqual(
          adc.info.buffers?.map((b) => [b.index, b.direction, b.attrs.map((a) => a.name)]),
          [
            [0, 'in', ['data_available']],
            [1, 'out', ['data_available', 'hwfifo_enabled']],
          ],
        );
        // buffer 0 stays what libiio 0.24 shows
        assert.deepEqual(
          adc.bufferAttrs.map((a) => a.name),
          ['data_available', 'direction'],
        );
        const backend = backendOf(ctx);
        const attr = { name: 'data_available' };
        assert.equal(
          await backend.readAttr({ kind: 'buffer', device: adc.info, attr, bufferIndex: 1 }),
          '3',
        );
        assert.equal(await backend.readAttr({ kind: 'buffer', device: adc.info, attr }), '0');
      } finally {
        await ctx.close();
      }
    });
  });

  it('debugfs is optional (absent for non-root): no debug attributes, no error', async () => {
    await withCopy(async (root, open) => {
      rmSync(`${root}/kernel`, { recursive: true });
      const ctx = await open();
      assert.deepEqual(ctx.device('loopback_dac').debugAttrs, []);
      await ctx.close();
    });
  });

  it('bad options and a missing sysfs give clear errors', async () => {
    await rejects(createContext('local:foo'), 'EINVAL', 'local: takes no address');
    await rejects(createContext('local:', { sysfsRoot: 42 }), 'EINVAL', 'sysfsRoot');
    await rejects(createContext('local:', { timeoutMs: -1 }), 'EINVAL', 'timeout');
    await rejects(
      createContext('local:', { sysfsRoot: '/nonexistent-sysfs' }),
      'ENOENT',
      'industrialio',
      'file /nonexistent-sysfs/bus/iio/devices',
      'context local:',
    );
  });

  it('hwmon devices when asked (libiio WITH_HWMON), next to IIO or alone', async () => {
    await withCopy(async (root, open) => {
      const hw = `${root}/class/hwmon/hwmon0`;
      mkdirSync(hw, { recursive: true });
      for (const [f, v] of [
        ['name', 'cpu_thermal'],
        ['temp1_input', '42000'],
        ['temp1_crit', '95000'],
        ['in0_input', '1200'],
        ['uevent', ''],
      ])
        writeFileSync(`${hw}/${f}`, `${v}\n`);
      const without = await open();
      assert.equal(without.findDevice('hwmon0'), undefined);
      await without.close();
      const ctx = await open({ hwmon: true });
      try {
        const d = ctx.device('cpu_thermal');
        assert.equal(d.id, 'hwmon0');
        assert.equal(ctx.devices[0].id, 'hwmon0', 'sorted with the IIO devices');
        assert.deepEqual(
          d.channels.map((c) => `${c.id}:${c.attrs.map((a) => a.name).join(',')}`).sort(),
          ['in0:input', 'temp1:crit,input'],
        );
        assert.equal(
          d.channels.every((c) => !c.isOutput && !c.isScanElement),
          true,
        );
        assert.equal(await d.channel('temp1').readAttr('input'), '42000');
      } finally {
        await ctx.close();
      }
      rmSync(`${root}/bus`, { recursive: true });
      const alone = await open({ hwmon: true });
      assert.deepEqual(
        alone.devices.map((x) => x.id),
        ['hwmon0'],
      );
      await alone.close();
    });
  });

  it("context attributes from libiio's INI file come first", async () => {
    assert.deepEqual(
      parseLibiioIni(
        '[Other]\na=1\n[Context Attributes]\n# note\nhw_model = Pluto\nserial=42\n[Next]\nb=2\n',
      ),
      [
        ['hw_model', 'Pluto'],
        ['serial', '42'],
      ],
    );
    await withCopy(async (root, open) => {
      const ini = join(root, 'libiio.ini');
      writeFileSync(ini, '[Context Attributes]\nhw_model=VM\n');
      const ctx = await open({ iniFile: ini });
      assert.deepEqual(Object.keys(ctx.attrs), ['hw_model', 'local,kernel', 'uri']);
      assert.equal(ctx.attrs.hw_model, 'VM');
      await ctx.close();
    });
  });

  it('the scanner reports local: with the device names and the machine, as libiio', async () => {
    await withCopy(async (root) => {
      assert.deepEqual(await scanLocalContexts(root), [
        { uri: 'local:', description: '(Local IIO devices)' },
      ]);
      mkdirSync(`${root}/firmware/devicetree/base`, { recursive: true });
      writeFileSync(`${root}/firmware/devicetree/base/model`, 'Raspberry Pi 4 Model B\0');
      const [found] = await scanLocalContexts(root);
      const m = /^\((.*) on Raspberry Pi 4 Model B\)$/.exec(found.description);
      assert.ok(m, found.description);
      assert.deepEqual(m[1].split(', ').sort(), [
        'dummy0',
        'dummy1',
        'loopback_adc',
        'loopback_dac',
      ]);
      assert.deepEqual(await scanLocalContexts('/nonexistent-sysfs'), []);
    });
    // registered under "local" for scanContexts() (this machine may or may not have IIO)
    const all = await scanContexts('local');
    assert.ok(all.every((c) => c.uri === 'local:'));
  });
});
