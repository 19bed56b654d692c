// ioctl numbers and argument layouts of the kernel ABIs the addon talks to.
//
// The numbers are composed here from the _IOC encoding instead of being taken from the
// UAPI headers, because the build machine's headers may predate them (Debian 12 ships
// 6.1 headers without the IIO DMABUF ioctls) while the binary must work on newer kernels.
// The shift and direction constants come from <linux/ioctl.h>, i.e. from the target
// architecture, so MIPS/PowerPC/SPARC encodings come out right too.
// test/unit/native-ioctl.test.ts compares every number with what gcc computes from the
// real headers.
#pragma once

#include <linux/ioctl.h>

#include <cstdint>

namespace iiokit {

constexpr unsigned long ioc(unsigned long dir, unsigned long type, unsigned long nr,
                            unsigned long size) {
  return (dir << _IOC_DIRSHIFT) | (type << _IOC_TYPESHIFT) | (nr << _IOC_NRSHIFT) |
         (size << _IOC_SIZESHIFT);
}
constexpr unsigned long ior(unsigned long type, unsigned long nr, unsigned long size) {
  return ioc(_IOC_READ, type, nr, size);
}
constexpr unsigned long iow(unsigned long type, unsigned long nr, unsigned long size) {
  return ioc(_IOC_WRITE, type, nr, size);
}
constexpr unsigned long iowr(unsigned long type, unsigned long nr, unsigned long size) {
  return ioc(_IOC_READ | _IOC_WRITE, type, nr, size);
}

// include/uapi/linux/iio/events.h
struct IioEventData {
  uint64_t id;
  int64_t timestamp;
};
static_assert(sizeof(IioEventData) == 16, "struct iio_event_data is 16 bytes");

// include/uapi/linux/iio/buffer.h (6.11+ for the DMABUF part)
struct IioDmabuf {
  uint32_t fd;
  uint32_t flags;
  uint64_t bytes_used;
};
static_assert(sizeof(IioDmabuf) == 16, "struct iio_dmabuf is 16 bytes");
constexpr uint32_t kIioDmabufCyclic = 1u << 0;

// include/uapi/linux/dma-heap.h
struct DmaHeapAllocationData {
  uint64_t len;
  uint32_t fd;
  uint32_t fd_flags;
  uint64_t heap_flags;
};
static_assert(sizeof(DmaHeapAllocationData) == 24, "struct dma_heap_allocation_data is 24 bytes");

// include/uapi/linux/dma-buf.h
struct DmaBufSync {
  uint64_t flags;
};
constexpr uint64_t kDmaBufSyncRead = 1;
constexpr uint64_t kDmaBufSyncWrite = 2;
constexpr uint64_t kDmaBufSyncStart = 0;
constexpr uint64_t kDmaBufSyncEnd = 4;
// DMA_BUF_IOCTL_EXPORT_SYNC_FILE (Linux 6.0+): a sync_file holding the DMABUF's current
// fences, which is how user space learns a fence's error (IIO reports an aborted transfer
// only there: -EINTR when the buffer is disabled under it).
struct DmaBufExportSyncFile {
  uint32_t flags;
  int32_t fd;
};
static_assert(sizeof(DmaBufExportSyncFile) == 8, "struct dma_buf_export_sync_file is 8 bytes");

// include/uapi/linux/sync_file.h
struct SyncFileInfo {
  char name[32];
  int32_t status;  // 1 signalled, 0 active, < 0 the fence's error
  uint32_t flags;
  uint32_t num_fences;
  uint32_t pad;
  uint64_t sync_fence_info;
};
static_assert(sizeof(SyncFileInfo) == 56, "struct sync_file_info is 56 bytes");

constexpr unsigned long kIioGetEventFdIoctl = ior('i', 0x90, sizeof(int));
constexpr unsigned long kIioBufferGetFdIoctl = iowr('i', 0x91, sizeof(int));
constexpr unsigned long kIioBufferDmabufAttachIoctl = iow('i', 0x92, sizeof(int));
constexpr unsigned long kIioBufferDmabufDetachIoctl = iow('i', 0x93, sizeof(int));
constexpr unsigned long kIioBufferDmabufEnqueueIoctl = iow('i', 0x94, sizeof(IioDmabuf));
constexpr unsigned long kDmaHeapIoctlAlloc = iowr('H', 0x0, sizeof(DmaHeapAllocationData));
constexpr unsigned long kDmaBufIoctlSync = iow('b', 0, sizeof(DmaBufSync));
constexpr unsigned long kDmaBufIoctlExportSyncFile = iowr('b', 2, sizeof(DmaBufExportSyncFile));
constexpr unsigned long kSyncIocFileInfo = iowr('>', 4, sizeof(SyncFileInfo));

}  // namespace iiokit
