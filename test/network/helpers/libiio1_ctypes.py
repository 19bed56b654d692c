"""libiio main's C library (lib/libiio.so.1, what PyPI's pylibiio 1.0 wraps) driven from
Python's stdlib ctypes: pylibiio itself cannot be installed here (PyPI is unreachable),
so a test uses the library it loads, through the same C calls.

Usage: libiio1_ctypes.py URI DEVICE CHANNEL ATTR [WRITE_VALUE] [SAMPLES]
Prints, one per line: the devices (id and name), the attribute's value, after a write
the value read back (or the write's error), then `samples N` and the hex of the first
64 bytes of a buffer read of the device's first input channel (or its error).
The library is found through LD_LIBRARY_PATH / the default search (libiio.so.1).
"""
import ctypes
import sys

lib = ctypes.CDLL('libiio.so.1')
P = ctypes.c_void_p
for name, res, args in [
    ('iio_create_context', P, [P, ctypes.c_char_p]),
    ('iio_context_destroy', None, [P]),
    ('iio_context_get_devices_count', ctypes.c_uint, [P]),
    ('iio_context_get_device', P, [P, ctypes.c_uint]),
    ('iio_device_get_id', ctypes.c_char_p, [P]),
    ('iio_device_get_name', ctypes.c_char_p, [P]),
    ('iio_device_find_channel', P, [P, ctypes.c_char_p, ctypes.c_bool]),
    ('iio_device_get_channels_count', ctypes.c_uint, [P]),
    ('iio_device_get_buffer', P, [P, ctypes.c_uint]),
    ('iio_channel_find_attr', P, [P, ctypes.c_char_p]),
    ('iio_channel_enable', None, [P, P]),
    ('iio_attr_read_raw', ctypes.c_ssize_t, [P, ctypes.c_char_p, ctypes.c_size_t]),
    ('iio_attr_write_string', ctypes.c_ssize_t, [P, ctypes.c_char_p]),
    ('iio_create_channels_mask', P, [ctypes.c_uint]),
    ('iio_channels_mask_destroy', None, [P]),
    ('iio_buffer_create_stream', P, [P, ctypes.c_size_t, ctypes.c_size_t, P]),
    ('iio_stream_get_next_block', P, [P]),
    ('iio_stream_destroy', None, [P]),
    ('iio_block_start', P, [P]),
    ('iio_block_end', P, [P]),
    ('iio_strerror', None, [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]),
]:
    f = getattr(lib, name)
    f.restype = res
    f.argtypes = args


def err(ptr):
    """libiio's iio_err(): pointers in the last page encode -errno."""
    v = ptr or 0
    return v - (1 << 64) if v >= (1 << 64) - 4095 else 0


def strerror(code):
    buf = ctypes.create_string_buffer(256)
    lib.iio_strerror(-code, buf, 256)
    return buf.value.decode()


def read(attr):
    buf = ctypes.create_string_buffer(4096)
    n = lib.iio_attr_read_raw(attr, buf, 4096)
    return buf.value.decode() if n >= 0 else 'error: %s' % strerror(n)


uri, dev_name, chn_name, attr_name = sys.argv[1:5]
write = sys.argv[5] if len(sys.argv) > 5 and sys.argv[5] != '-' else None
samples = int(sys.argv[6]) if len(sys.argv) > 6 else 0

ctx = lib.iio_create_context(None, uri.encode())
if err(ctx):
    print('context error: %s' % strerror(err(ctx)))
    sys.exit(1)
dev = None
for i in range(lib.iio_context_get_devices_count(ctx)):
    d = lib.iio_context_get_device(ctx, i)
    name = lib.iio_device_get_name(d)
    print('device %s %s' % (lib.iio_device_get_id(d).decode(), (name or b'').decode()))
    if lib.iio_device_get_id(d).decode() == dev_name or (name or b'').decode() == dev_name:
        dev = d
chn = lib.iio_device_find_channel(dev, chn_name.encode(), False)
attr = lib.iio_channel_find_attr(chn, attr_name.encode())
print('read %s' % read(attr))
if write is not None:
    n = lib.iio_attr_write_string(attr, write.encode())
    print('write %s' % (n if n >= 0 else strerror(n)))
    print('read back %s' % read(attr))
if samples:
    mask = lib.iio_create_channels_mask(lib.iio_device_get_channels_count(dev))
    lib.iio_channel_enable(chn, mask)
    buf = lib.iio_device_get_buffer(dev, 0)
    stream = lib.iio_buffer_create_stream(buf, 4, samples, mask)
    if err(stream):
        print('stream error: %s' % strerror(err(stream)))
    else:
        block = lib.iio_stream_get_next_block(stream)
        if err(block):
            print('block error: %s' % strerror(err(block)))
        else:
            start, end = lib.iio_block_start(block), lib.iio_block_end(block)
            data = ctypes.string_at(start, end - start)
            print('samples %d' % (len(data) // 2))
            print('data %s' % data[:64].hex())
        lib.iio_stream_destroy(stream)
    lib.iio_channels_mask_destroy(mask)
lib.iio_context_destroy(ctx)
