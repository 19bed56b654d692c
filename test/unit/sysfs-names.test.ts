import assert from 'node:assert/strict';
import {
  channelIdOf,
  extendedNameOf,
  isChannelFile,
  nameSysfsDevice,
  placeEventFile,
  sharedAttrLevel,
  shortAttrName,
  type SysfsDeviceNames,
} from '../../src/names/sysfs-names';

/** channel key → [attribute name, file] pairs, for compact assertions. */
function channelsOf(d: SysfsDeviceNames): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const c of d.channels) {
    const key = `${c.isOutput ? 'out' : 'in'}:${c.id}${c.name !== undefined ? `(${c.name})` : ''}`;
    out[key] = c.attrs.map((a) => `${a.name}=${a.filename}`);
  }
  return out;
}

describe("libiio 0.24's sysfs naming rules (src/names/sysfs-names.ts)", () => {
  describe('single files', () => {
    it('recognises channel files strictly: index digit or modifier before the attribute', () => {
      assert.equal(isChannelFile('in_voltage0_raw', true), true);
      assert.equal(isChannelFile('in_accel_x_raw', true), true);
      assert.equal(isChannelFile('in_voltage1-voltage2_raw', true), true);
      assert.equal(isChannelFile('in_timestamp_en', true), true);
      assert.equal(isChannelFile('in_voltage_scale', true), false);
      assert.equal(isChannelFile('in_sampling_frequency', true), false);
      assert.equal(isChannelFile('in_steps_input', true), false);
      assert.equal(isChannelFile('sampling_frequency', true), false);
      assert.equal(isChannelFile('current_timestamp_clock', false), false);
      // not strictly, any in_X_Y is a channel
      assert.equal(isChannelFile('in_steps_input', false), true);
      assert.equal(isChannelFile('in_voltage', false), false);
    });

    it('takes the channel id: type+index, type_modifier, differential pair', () => {
      assert.equal(channelIdOf('in_voltage0_raw'), 'voltage0');
      assert.equal(channelIdOf('out_altvoltage0_RX_LO_frequency'), 'altvoltage0');
      assert.equal(channelIdOf('in_accel_x_calibbias'), 'accel_x');
      assert.equal(channelIdOf('in_voltage1-voltage2_raw'), 'voltage1-voltage2');
      assert.equal(channelIdOf('in_activity_walking_input'), 'activity_walking');
      assert.equal(channelIdOf('in_timestamp_en'), 'timestamp');
      assert.equal(channelIdOf('in_sampling_frequency'), 'sampling');
      assert.equal(channelIdOf('in_voltage'), undefined);
    });

    it('strips direction, id, modifier and extended name from attribute names', () => {
      assert.equal(shortAttrName('in_voltage0_raw'), 'raw');
      assert.equal(shortAttrName('in_accel_x_calibbias'), 'calibbias');
      assert.equal(shortAttrName('in_voltage0_scale_available'), 'scale_available');
      assert.equal(shortAttrName('out_voltage0_V1_raw'), 'V1_raw');
      assert.equal(shortAttrName('out_voltage0_V1_raw', 'V1'), 'raw');
      assert.equal(shortAttrName('in_voltage_V1_scale', 'V1'), 'scale');
      assert.equal(shortAttrName('in_voltage-voltage_scale'), 'scale');
    });

    it('finds an extended name only as a common prefix of at least two names', () => {
      assert.equal(extendedNameOf(['V1_raw', 'V1_scale']), 'V1');
      assert.equal(
        extendedNameOf(['RX_LO_frequency', 'RX_LO_external', 'RX_LO_powerdown']),
        'RX_LO',
      );
      assert.equal(extendedNameOf(['V1_raw']), undefined, 'one file: ambiguous, no name');
      assert.equal(extendedNameOf(['raw', 'scale']), undefined);
      assert.equal(extendedNameOf(['V1_raw', 'V2_raw']), undefined);
      // only whole `_`-separated words count
      assert.equal(extendedNameOf(['abc_x', 'abd_x']), undefined);
    });

    it('grades shared attributes: by type, differential by type, private through the name', () => {
      const v0 = { id: 'voltage0', isOutput: false };
      const diff = { id: 'voltage1-voltage2', isOutput: false };
      const accel = { id: 'accel_x', isOutput: false };
      const named = { id: 'voltage0', isOutput: false, name: 'V1' };
      assert.equal(sharedAttrLevel(v0, 'in_voltage_scale'), 1);
      assert.equal(sharedAttrLevel(v0, 'out_voltage_scale'), 0, 'other direction');
      assert.equal(sharedAttrLevel({ id: 'voltage0', isOutput: true }, 'out_voltage_scale'), 1);
      assert.equal(sharedAttrLevel(v0, 'in_voltage-voltage_scale'), 0);
      assert.equal(sharedAttrLevel(diff, 'in_voltage-voltage_scale'), 1);
      assert.equal(sharedAttrLevel(diff, 'in_voltage_scale'), 1, 'libiio gives it to pairs too');
      assert.equal(sharedAttrLevel(accel, 'in_accel_scale'), 1);
      assert.equal(sharedAttrLevel(accel, 'in_anglvel_scale'), 0);
      assert.equal(sharedAttrLevel(named, 'in_voltage_V1_scale'), 2);
      assert.equal(sharedAttrLevel(v0, 'in_sampling_frequency'), 0);
      assert.equal(sharedAttrLevel(v0, 'sampling_frequency'), 0);
    });
  });

  describe('whole devices', () => {
    it("names iio_dummy as libiio does (the VM's dummy0, files in sysfs order)", () => {
      const d = nameSysfsDevice({
        files: [
          'uevent',
          'in_voltage0_offset',
          'in_steps_en',
          'in_activity_walking_input',
          'in_accel_x_calibbias',
          'dev',
          'in_sampling_frequency',
          'in_steps_input',
          'in_accel_x_calibscale',
          'in_voltage0_scale',
          'in_voltage1-voltage2_raw',
          'in_voltage3-voltage4_raw',
          'current_timestamp_clock',
          'in_voltage0_raw',
          'in_voltage-voltage_scale',
          'in_accel_x_raw',
          'name',
          'in_steps_calibheight',
          'out_voltage0_raw',
          'in_activity_running_input',
        ],
        scanFiles: [
          'in_accel_x_en',
          'in_accel_x_index',
          'in_timestamp_type',
          'in_voltage3-voltage4_en',
          'in_voltage0_en',
          'in_voltage3-voltage4_type',
          'in_voltage1-voltage2_index',
          'in_voltage0_index',
          'in_accel_x_type',
          'in_timestamp_en',
          'in_voltage3-voltage4_index',
          'in_voltage0_type',
          'in_timestamp_index',
          'in_voltage1-voltage2_type',
          'in_voltage1-voltage2_en',
        ],
      });
      assert.deepEqual(channelsOf(d), {
        'in:voltage0': [
          'offset=in_voltage0_offset',
          'raw=in_voltage0_raw',
          'scale=in_voltage0_scale',
        ],
        'in:activity_walking': ['input=in_activity_walking_input'],
        'in:accel_x': [
          'calibbias=in_accel_x_calibbias',
          'calibscale=in_accel_x_calibscale',
          'raw=in_accel_x_raw',
        ],
        'in:voltage1-voltage2': ['raw=in_voltage1-voltage2_raw', 'scale=in_voltage-voltage_scale'],
        'in:voltage3-voltage4': ['raw=in_voltage3-voltage4_raw', 'scale=in_voltage-voltage_scale'],
        'out:voltage0': ['raw=out_voltage0_raw'],
        'in:activity_running': ['input=in_activity_running_input'],
        'in:timestamp': [],
        // not strict: made from the leftovers, after the others
        'in:steps': ['calibheight=in_steps_calibheight', 'en=in_steps_en', 'input=in_steps_input'],
        'in:sampling': ['frequency=in_sampling_frequency'],
      });
      // creation order decides the order of channels that are not scan elements
      assert.deepEqual(
        d.channels.map((c) => c.id),
        [
          'voltage0',
          'activity_walking',
          'accel_x',
          'voltage1-voltage2',
          'voltage3-voltage4',
          'voltage0',
          'activity_running',
          'timestamp',
          'steps',
          'sampling',
        ],
      );
      assert.deepEqual(d.attrs, ['current_timestamp_clock']);
      assert.equal(d.hasName, true);
      assert.equal(d.hasLabel, false);
      const ts = d.channels.find((c) => c.id === 'timestamp')!;
      assert.deepEqual(ts.scanFiles, {
        en: 'scan_elements/in_timestamp_en',
        index: 'scan_elements/in_timestamp_index',
        type: 'scan_elements/in_timestamp_type',
      });
      assert.equal(ts.isScanElement, true);
      assert.equal(d.channels.find((c) => c.id === 'steps')!.isScanElement, false);
      assert.deepEqual(d.ignored, []);
    });

    it('extended names: cut from every file of the channel, its scan elements too', () => {
      const d = nameSysfsDevice({
        files: ['out_voltage0_V1_raw', 'out_voltage0_V1_scale', 'out_voltage1_V2_raw', 'label'],
        scanFiles: ['out_voltage0_V1_en', 'out_voltage0_V1_index', 'out_voltage0_V1_type'],
      });
      assert.deepEqual(channelsOf(d), {
        'out:voltage0(V1)': ['raw=out_voltage0_V1_raw', 'scale=out_voltage0_V1_scale'],
        // a single file: libiio cannot tell an extended name from an attribute name
        'out:voltage1': ['V2_raw=out_voltage1_V2_raw'],
      });
      assert.deepEqual(d.channels[0].scanFiles, {
        en: 'scan_elements/out_voltage0_V1_en',
        index: 'scan_elements/out_voltage0_V1_index',
        type: 'scan_elements/out_voltage0_V1_type',
      });
      assert.equal(d.hasLabel, true);
    });

    it('the name does not depend on the order of the files', () => {
      const files = [
        'in_voltage0_V1_scale_available',
        'in_voltage0_V1_raw',
        'in_voltage0_V1_scale',
      ];
      const a = nameSysfsDevice({ files });
      const b = nameSysfsDevice({ files: [...files].reverse() });
      assert.equal(a.channels[0].name, 'V1');
      assert.deepEqual(channelsOf(a), channelsOf(b));
      assert.deepEqual(
        a.channels[0].attrs.map((x) => x.name),
        ['raw', 'scale', 'scale_available'],
      );
    });

    it('shared attributes: private through the extended name beats shared by type', () => {
      const d = nameSysfsDevice({
        files: [
          'in_voltage0_V1_raw',
          'in_voltage0_V1_offset',
          'in_voltage1_raw',
          'in_voltage_V1_scale',
          'in_voltage_scale',
          'in_voltage_scale_available',
        ],
      });
      assert.deepEqual(channelsOf(d), {
        // in_voltage_V1_scale is private to the channel named V1: it goes there only
        'in:voltage0(V1)': [
          'offset=in_voltage0_V1_offset',
          'raw=in_voltage0_V1_raw',
          'scale=in_voltage_V1_scale',
          'scale=in_voltage_scale',
          'scale_available=in_voltage_scale_available',
        ],
        'in:voltage1': [
          'raw=in_voltage1_raw',
          'scale=in_voltage_scale',
          'scale_available=in_voltage_scale_available',
        ],
      });
      assert.deepEqual(d.attrs, []);
    });

    it('shared by type with modifiers, by direction, by all; _available lists', () => {
      const d = nameSysfsDevice({
        files: [
          'in_accel_x_raw',
          'in_accel_y_raw',
          'in_accel_scale',
          'in_accel_scale_available',
          'in_accel_x_calibbias_available',
          'out_voltage0_raw',
          'out_voltage_scale',
          'in_sampling_frequency',
          'in_sampling_frequency_available',
          'sampling_frequency',
          'sampling_frequency_available',
        ],
      });
      assert.deepEqual(channelsOf(d), {
        'in:accel_x': [
          'calibbias_available=in_accel_x_calibbias_available',
          'raw=in_accel_x_raw',
          'scale=in_accel_scale',
          'scale_available=in_accel_scale_available',
        ],
        'in:accel_y': [
          'raw=in_accel_y_raw',
          'scale=in_accel_scale',
          'scale_available=in_accel_scale_available',
        ],
        'out:voltage0': ['raw=out_voltage0_raw', 'scale=out_voltage_scale'],
        // shared by direction: libiio makes a channel "sampling" of it
        'in:sampling': [
          'frequency=in_sampling_frequency',
          'frequency_available=in_sampling_frequency_available',
        ],
      });
      assert.deepEqual(d.attrs, ['sampling_frequency', 'sampling_frequency_available']);
    });

    it('a shared file without a channel of its type becomes an index-less channel', () => {
      const d = nameSysfsDevice({ files: ['in_voltage-voltage_scale', 'in_temp_input'] });
      assert.deepEqual(channelsOf(d), {
        'in:voltage-voltage': ['scale=in_voltage-voltage_scale'],
        'in:temp': ['input=in_temp_input'],
      });
    });

    it('modifiers: the kernel table, longest match (where libiio 0.24 differs)', () => {
      const d = nameSysfsDevice({
        files: [
          'in_rot_from_north_magnetic_raw',
          'in_rot_from_north_magnetic_tilt_comp_raw',
          'in_accel_linear_x_raw',
          'in_intensity_ir_raw',
          'in_concentration_co2_raw',
        ],
      });
      assert.deepEqual(channelsOf(d), {
        'in:rot_from_north_magnetic': ['raw=in_rot_from_north_magnetic_raw'],
        'in:rot_from_north_magnetic_tilt_comp': ['raw=in_rot_from_north_magnetic_tilt_comp_raw'],
        'in:accel_linear_x': ['raw=in_accel_linear_x_raw'],
        'in:intensity_ir': ['raw=in_intensity_ir_raw'],
        'in:concentration_co2': ['raw=in_concentration_co2_raw'],
      });
    });

    it('the same id in both directions makes two channels', () => {
      const d = nameSysfsDevice({ files: ['in_voltage0_raw', 'out_voltage0_raw'] });
      assert.deepEqual(Object.keys(channelsOf(d)), ['in:voltage0', 'out:voltage0']);
    });

    it('leaves out what libiio would choke on, and says so', () => {
      const d = nameSysfsDevice({
        files: ['in_voltage0_raw'],
        scanFiles: ['foo', 'in_voltage0_en', 'in_voltage0_bogus'],
      });
      assert.deepEqual(d.ignored.sort(), ['scan_elements/foo', 'scan_elements/in_voltage0_bogus']);
      assert.deepEqual(d.channels[0].scanFiles, { en: 'scan_elements/in_voltage0_en' });
    });

    // Expectations below are libiio 1.0's add_event (local.c), worked by hand: a file of
    // events/ is a channel's when some known channel's id starts at offset 3 or 4 (strstr).
    describe('event attributes (events/, libiio 1.0)', () => {
      /** channel key → [event attribute name, file] pairs. */
      const eventsOf = (d: SysfsDeviceNames): Record<string, string[]> => {
        const out: Record<string, string[]> = {};
        for (const c of d.channels) {
          if (!c.eventAttrs.length) continue;
          out[`${c.isOutput ? 'out' : 'in'}:${c.id}`] = c.eventAttrs.map(
            (a) => `${a.name}=${a.filename}`,
          );
        }
        return out;
      };

      it("a channel's own files, sorted by name; shared ones are the device's", () => {
        const d = nameSysfsDevice({
          files: ['in_accel_x_raw', 'in_accel_y_raw'],
          eventFiles: [
            'in_accel_x_thresh_rising_value',
            'in_accel_y_thresh_rising_value',
            'in_accel_thresh_rising_en',
            'in_accel_x_thresh_rising_hysteresis',
            'in_accel_thresh_rising_period',
            'in_accel_x_thresh_falling_en',
          ],
        });
        assert.deepEqual(eventsOf(d), {
          'in:accel_x': [
            'thresh_falling_en=in_accel_x_thresh_falling_en',
            'thresh_rising_hysteresis=in_accel_x_thresh_rising_hysteresis',
            'thresh_rising_value=in_accel_x_thresh_rising_value',
          ],
          'in:accel_y': ['thresh_rising_value=in_accel_y_thresh_rising_value'],
        });
        // shared by type: no channel id follows "in_", so libiio keeps the file name
        assert.deepEqual(d.eventAttrs, [
          'in_accel_thresh_rising_en',
          'in_accel_thresh_rising_period',
        ]);
        // event files are not attributes of any other kind
        assert.deepEqual(
          d.channels.map((c) => c.attrs.map((a) => a.name)),
          [['raw'], ['raw']],
        );
        assert.deepEqual(d.attrs, []);
      });

      it("iio_dummy: voltage0's by direction, steps' the device's (steps is made later)", () => {
        const d = nameSysfsDevice({
          files: [
            'in_voltage0_raw',
            'out_voltage0_raw',
            'in_activity_running_input',
            'in_steps_input',
            'in_steps_en',
          ],
          eventFiles: [
            'in_voltage0_thresh_rising_en',
            'in_activity_running_thresh_rising_value',
            'in_steps_change_en',
          ],
        });
        assert.deepEqual(eventsOf(d), {
          'in:voltage0': ['thresh_rising_en=in_voltage0_thresh_rising_en'],
          'in:activity_running': ['thresh_rising_value=in_activity_running_thresh_rising_value'],
        });
        assert.deepEqual(d.eventAttrs, ['in_steps_change_en']);
        assert.ok(
          d.channels.some((c) => c.id === 'steps'),
          'steps is a channel all the same',
        );
      });

      it('no extended name is cut (libiio looks events up before naming channels)', () => {
        const d = nameSysfsDevice({
          files: ['in_voltage0_V1_raw', 'in_voltage0_V1_scale'],
          eventFiles: ['in_voltage0_V1_thresh_rising_en'],
        });
        assert.equal(d.channels[0].name, 'V1');
        assert.deepEqual(eventsOf(d), {
          'in:voltage0': ['V1_thresh_rising_en=in_voltage0_V1_thresh_rising_en'],
        });
      });

      it('strstr quirks: offset 4 counts for "in_" too; the first occurrence decides', () => {
        const chans = [
          { id: 'voltage1', isOutput: false },
          { id: 'voltage10', isOutput: false },
        ];
        // "voltage1" is found at 3 in "in_voltage10_...": a channel's, and get_channel_id
        // then names voltage10
        assert.deepEqual(placeEventFile('in_voltage10_thresh_rising_en', chans), {
          kind: 'channel',
          channel: 1,
          name: 'thresh_rising_en',
        });
        // an output file for an input-only channel: libiio fails the context, we skip it
        assert.deepEqual(placeEventFile('out_voltage1_thresh_rising_en', chans), {
          kind: 'ignored',
        });
        assert.deepEqual(placeEventFile('in_voltage_thresh_rising_en', chans), { kind: 'device' });
        assert.deepEqual(placeEventFile('events_enabled', chans), { kind: 'device' });
        // "in_xvoltage1_..." has voltage1 at offset 4: libiio calls it a channel's, then
        // finds no channel "xvoltage1"
        assert.deepEqual(placeEventFile('in_xvoltage1_thresh_en', chans), { kind: 'ignored' });
      });

      it('a file libiio cannot place is skipped and reported', () => {
        const d = nameSysfsDevice({
          files: ['in_voltage0_raw'],
          eventFiles: ['out_voltage0_thresh_rising_en', 'in_voltage0_thresh_rising_en'],
        });
        assert.deepEqual(d.ignored, ['events/out_voltage0_thresh_rising_en']);
        assert.deepEqual(eventsOf(d), {
          'in:voltage0': ['thresh_rising_en=in_voltage0_thresh_rising_en'],
        });
      });

      it('hwmon devices have none', () => {
        const d = nameSysfsDevice({ hwmon: true, files: ['temp1_input'], eventFiles: ['x_y'] });
        assert.deepEqual(d.eventAttrs, []);
        assert.deepEqual(d.channels[0].eventAttrs, []);
      });
    });

    it('hwmon: channels by prefix, pwmN itself an attribute, everything an input', () => {
      const d = nameSysfsDevice({
        hwmon: true,
        files: [
          'name',
          'temp1_input',
          'temp1_max',
          'temp1_label',
          'in0_input',
          'pwm1',
          'pwm1_enable',
          'fan1_input',
          'intrusion0_alarm',
          'update_interval',
          'uevent',
        ],
      });
      assert.deepEqual(channelsOf(d), {
        'in:temp1': ['input=temp1_input', 'label=temp1_label', 'max=temp1_max'],
        'in:in0': ['input=in0_input'],
        'in:pwm1': ['enable=pwm1_enable', 'pwm1=pwm1'],
        'in:fan1': ['input=fan1_input'],
        'in:intrusion0': ['alarm=intrusion0_alarm'],
      });
      assert.deepEqual(d.attrs, ['update_interval']);
      assert.equal(d.hasName, true);
    });
  });
});
