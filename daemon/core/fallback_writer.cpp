// SPDX-License-Identifier: LGPL-2.1-or-later
#include "fallback_writer.h"

#include <cstring>

#include "atomic_file.h"
#include "log.h"

namespace lkmd {

void FallbackWriter::publish(const Policy &policy, std::function<void()> written) {
    if (!readIndex_) {
        if (written)
            written();
        return;
    }
    runner_.submit([index = readIndex_, policy, runtime = runtimeDir_, modprobe = modprobeDir_,
                    written = std::move(written)](ModuleBackend &) -> JobRunner::Completion {
        ModuleIndex modules;
        if (const int r = needsModuleIndex(policy) ? index(&modules) : 0; r < 0)
            logger("lkmd")->warn(
                "Could not read the module index ({}): while lkmd does not "
                "answer, its policy holds for module names only",
                std::strerror(-r));
        const FallbackFiles files = compileFallback(policy, modules);
        const auto write = [](const std::filesystem::path &path, const std::string &text) {
            if (const int r = writeFileAtomically(path, text); r < 0)
                logger("lkmd")->error("Could not write '{}': {}", path.string(), std::strerror(-r));
        };
        write(runtime / "fallback-policy", files.helperPolicy);
        std::error_code ec;
        if (files.modprobeConf.empty()) {
            std::filesystem::remove(modprobe / "lkmd.conf", ec);
        } else {
            std::filesystem::create_directories(modprobe, ec);
            write(modprobe / "lkmd.conf", files.modprobeConf);
        }
        return written;
    });
}

}  // namespace lkmd
