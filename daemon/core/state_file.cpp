// SPDX-License-Identifier: LGPL-2.1-or-later
#include "state_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "atomic_file.h"
#include "log.h"

namespace lkmd {

bool StateFile::stage(std::string text) {
    std::lock_guard guard(stagedLock_);
    staged_ = std::move(text);
    ++stagedVersion_;
    const bool queue = !flushQueued_;
    flushQueued_ = true;
    return queue;
}

int StateFile::flush() {
    std::lock_guard writing(writeLock_);
    std::string text;
    std::uint64_t version = 0;
    {
        std::lock_guard guard(stagedLock_);
        flushQueued_ = false;
        if (stagedVersion_ == writtenVersion_)
            return 0;
        text = staged_;
        version = stagedVersion_;
    }
    if (const int r = writeFileAtomically(path_, text); r < 0)
        return r;
    writtenVersion_ = version;
    return 0;
}

int StateFile::read(std::string *text) const {
    std::ifstream in(path_);
    if (!in)
        return errno != 0 ? -errno : -ENOENT;
    std::ostringstream content;
    content << in.rdbuf();
    *text = content.str();
    return 0;
}

void persistRegistry(ModuleRegistry &registry, StateFile &file, JobRunner &runner) {
    registry.setChangeHandler([&registry, &file, &runner] {
        if (!file.stage(registry.serialize()))
            return;
        runner.submit([&file](ModuleBackend &) -> JobRunner::Completion {
            const int r = file.flush();
            if (r < 0)
                logger("lkmd")->warn("Could not write '{}': {}, will retry on the next change",
                                     file.path().string(), std::strerror(-r));
            return {};
        });
    });
}

int restoreRegistry(std::string_view text,
                    const std::function<std::uint64_t(const std::string &)> &identityOf,
                    ModuleRegistry *registry, RestoreCounts *counts) {
    ModuleRegistry previous;
    const int r = ModuleRegistry::parse(text, &previous, &counts->skipped);
    if (r < 0)
        return r;
    for (const auto &[name, saved] : previous.records()) {
        const std::uint64_t identity = identityOf(name);
        ModuleRecord record = saved;
        if (record.inserting && identity != 0) {
            // finit_module() runs to its end even when its caller is killed: the module that is
            // there now is the one lkmd was inserting. (Only a load by someone else in the
            // moment between lkmd's death and this start could be mistaken for it.)
            record.inserting = false;
            record.identity = identity;
            registry->record(name, std::move(record));
            ++counts->adopted;
        } else if (!record.inserting && identity != 0 && identity == record.identity) {
            registry->record(name, std::move(record));
            ++counts->kept;
        } else {
            ++counts->dropped;
        }
    }
    return 0;
}

}  // namespace lkmd
