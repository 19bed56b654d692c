// selfTest(): a quick check that the binary works on the machine it was loaded on (run
// under qemu-user for the arm64/armv7 prebuilds): eventfd, ioctl encoding, the block
// pool's lending rules, and the streaming thread moving bytes through a pipe.
#pragma once

#include <string>
#include <vector>

namespace iiokit {
namespace selftest {

struct Check {
  std::string name;
  bool ok;
  std::string detail;
};

bool run(std::vector<Check>* checks);

}  // namespace selftest
}  // namespace iiokit
