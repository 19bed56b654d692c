/**
 * The kernel's IIO enums (include/uapi/linux/iio/types.h, Linux 6.12) and their sysfs
 * spellings (drivers/iio/industrialio-core.c), plus the later values libiio main knows.
 * Arrays are indexed by enum value: the kernel's name arrays are not in enum order.
 */

/** enum iio_chan_type → sysfs name. */
export const CHANNEL_TYPES: readonly string[] = [
  'voltage',
  'current',
  'power',
  'accel',
  'anglvel',
  'magn',
  'illuminance',
  'intensity',
  'proximity',
  'temp',
  'incli',
  'rot',
  'angl',
  'timestamp',
  'capacitance',
  'altvoltage',
  'cct',
  'pressure',
  'humidityrelative',
  'activity',
  'steps',
  'energy',
  'distance',
  'velocity',
  'concentration',
  'resistance',
  'ph',
  'uvindex',
  'electricalconductivity',
  'count',
  'index',
  'gravity',
  'positionrelative',
  'phase',
  'massconcentration',
  'deltaangl',
  'deltavelocity',
  'colortemp',
  'chromaticity',
  // after 6.12 (libiio main, 2026)
  'attention',
  'altcurrent',
  'coverage',
];

/**
 * Channel types libiio 0.24–0.26 knows (enum values below this). iio_info prints
 * `WARN:iio_channel_get_type()=UNKNOWN` for the others; `iiokit info` does the same so
 * the two outputs diff clean, while Channel.type still names the kernel's type.
 */
export const LIBIIO_0X_TYPE_COUNT = 35;

/**
 * Kernel types libiio 1.0 cannot name: its table spells IIO_DELTA_ANGL and
 * IIO_DELTA_VELOCITY `delta_angl` and `delta_velocity`, so a `deltaangl_x` channel matches
 * nothing there, and its iio_info prints `iio_channel_get_type() = UNKNOWN` for it.
 */
export const LIBIIO1_UNNAMED_TYPES: ReadonlySet<string> = new Set(['deltaangl', 'deltavelocity']);

/** enum iio_modifier → sysfs name; 0 (IIO_NO_MOD) has none. */
export const MODIFIERS: readonly string[] = [
  '',
  'x',
  'y',
  'z',
  'x&y',
  'x&z',
  'y&z',
  'x&y&z',
  'x|y',
  'x|z',
  'y|z',
  'x|y|z',
  'both',
  'ir',
  'sqrt(x^2+y^2)',
  'x^2+y^2+z^2',
  'clear',
  'red',
  'green',
  'blue',
  'quaternion',
  'ambient',
  'object',
  'from_north_magnetic',
  'from_north_true',
  'from_north_magnetic_tilt_comp',
  'from_north_true_tilt_comp',
  'running',
  'jogging',
  'walking',
  'still',
  'sqrt(x^2+y^2+z^2)',
  'i',
  'q',
  'co2',
  'voc',
  'uv',
  'duv',
  'pm1',
  'pm2p5',
  'pm4',
  'pm10',
  'ethanol',
  'h2',
  'o2',
  'linear_x',
  'linear_y',
  'linear_z',
  'pitch',
  'yaw',
  'roll',
  'uva',
  'uvb',
  // after 6.12 (libiio main, 2026)
  'rms',
  'active',
  'reactive',
  'apparent',
  'quaternionaxis',
];

/** enum iio_event_type → sysfs text. */
export const EVENT_TYPES: readonly string[] = [
  'thresh',
  'mag',
  'roc',
  'thresh_adaptive',
  'mag_adaptive',
  'change',
  'mag_referenced',
  'gesture',
  'fault',
];

/** enum iio_event_direction → sysfs text; 3 (IIO_EV_DIR_NONE) is omitted from names. */
export const EVENT_DIRECTIONS: readonly string[] = [
  'either',
  'rising',
  'falling',
  'none',
  'singletap',
  'doubletap',
  'openwire',
];

/** iio_chan_info_postfix: the suffixes of channel info attributes. */
export const CHANNEL_INFO_SUFFIXES: readonly string[] = [
  'raw',
  'input',
  'scale',
  'offset',
  'calibscale',
  'calibbias',
  'peak_raw',
  'peak_scale',
  'quadrature_correction_raw',
  'mean_raw',
  'filter_low_pass_3db_frequency',
  'filter_high_pass_3db_frequency',
  'sampling_frequency',
  'frequency',
  'phase',
  'hardwaregain',
  'hysteresis',
  'hysteresis_relative',
  'integration_time',
  'en',
  'calibheight',
  'calibweight',
  'debounce_count',
  'debounce_time',
  'calibemissivity',
  'oversampling_ratio',
  'thermocouple_type',
  'calibambient',
  'zeropoint',
  'trough_raw',
];

/** hwmon channel prefixes libiio maps to channel types (in = voltage, curr = current, ...). */
export const HWMON_TYPES: readonly string[] = [
  'in',
  'fan',
  'pwm',
  'temp',
  'curr',
  'power',
  'energy',
  'humidity',
  'intrusion',
];
