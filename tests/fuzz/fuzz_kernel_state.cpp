// SPDX-License-Identifier: LGPL-2.1-or-later
// What lkmd reads from the kernel: /proc/modules text, and sysfs paths built from names and
// devpaths that came from untrusted places (uevents, the bus). Fields: /proc/modules, a devpath,
// a module name. Rows parsed have names lkmd can act on; no path escapes the sysfs root.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>

#include "fuzz_input.h"
#include "hotplug.h"
#include "kernel_state.h"
#include "request_name.h"

namespace {

// A small sysfs: one bound driver of "e1000" and a device. Beside it, a driver that no read may
// reach.
struct Fixture {
    Fixture() {
        namespace fs = std::filesystem;
        char pattern[] = "/tmp/lkmd-fuzz-XXXXXX";
        root = mkdtemp(pattern);
        sysfs = root / "sys";
        fs::create_directories(sysfs / "devices/pci0000:00/0000:00:03.0");
        fs::create_directories(sysfs / "bus/pci/drivers/e1000");
        fs::create_directories(sysfs / "module/e1000/drivers");
        fs::create_symlink("../../../bus/pci/drivers/e1000",
                           sysfs / "module/e1000/drivers/pci:e1000");
        fs::create_directory_symlink("../../../../devices/pci0000:00/0000:00:03.0",
                                     sysfs / "bus/pci/drivers/e1000/0000:00:03.0");
        std::ofstream(sysfs / "devices/pci0000:00/0000:00:03.0/modalias")
            << "pci:v00008086d0000100Esv\n";
        // A modalias names a directory a request could climb out of: "usb:/../../../secret".
        fs::create_directories(sysfs / "module/usb:");
        fs::create_directories(root / "secret/drivers/pci:evil");
        fs::create_directories(root / "proc");
    }
    std::filesystem::path root;
    std::filesystem::path sysfs;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    static Fixture fixture;
    const std::vector<std::string> fields = fuzzFields(data, size, 3);
    for (const lkmd::LoadedModule &module : lkmd::parseProcModules(fields[0])) {
        FUZZ_ASSERT(!module.name.empty());
        FUZZ_ASSERT(module.name.find('/') == std::string::npos);
        FUZZ_ASSERT(module.refcnt >= -1);
        for (const std::string &holder : module.holders)
            FUZZ_ASSERT(!holder.empty() && holder.find('/') == std::string::npos);
    }
    (void)lkmd::whyInvalidModalias(fields[0]);

    lkmd::KernelState state(fixture.root / "proc", fixture.sysfs);
    const std::string &devpath = fields[1];
    if (state.deviceExists(devpath))
        FUZZ_ASSERT(devpath.starts_with("/") && devpath.find("..") == std::string::npos);
    const std::string &name = fields[2];
    const lkmd::ModuleBindings bindings = state.readBindings(name);
    if (!bindings.drivers.empty())
        FUZZ_ASSERT(lkmd::whyInvalidModuleName(name) == nullptr);
    (void)state.moduleIdentity(name);
    return 0;
}
