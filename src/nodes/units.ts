/**
 * The unit a channel's value is in after `(raw + offset) * scale`, as the kernel's
 * sysfs-bus-iio ABI defines it per channel type. Note that IIO "SI" values are often
 * milli-units: voltages in mV, currents in mA, temperatures in m°C.
 */
const UNITS: Readonly<Record<string, string>> = {
  voltage: 'mV',
  altvoltage: 'mV',
  current: 'mA',
  altcurrent: 'mA',
  power: 'mW',
  accel: 'm/s²',
  gravity: 'm/s²',
  anglvel: 'rad/s',
  angl: 'rad',
  deltaangl: 'rad',
  deltavelocity: 'm/s',
  velocity: 'm/s',
  magn: 'Gs',
  temp: 'm°C',
  pressure: 'kPa',
  humidityrelative: 'm%',
  illuminance: 'lx',
  distance: 'm',
  capacitance: 'nF',
  resistance: 'Ω',
  energy: 'J',
  electricalconductivity: 'S/m',
  ph: 'pH',
  massconcentration: 'µg/m³',
  colortemp: 'K',
  phase: 'rad',
  timestamp: 'ns',
};

/** The unit of a channel type after scaling, or '' when the ABI gives none. */
export function unitOf(channelType: string): string {
  return UNITS[channelType] ?? '';
}
